"""Promoting again is safe inside a git repository: what promote or DVC wrote is never taken for
a hand edit, --force keeps the data git-ignored, a new --out takes promote's workflow along, and
`nbops level`'s next step for a missing gate works when run as printed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_notebook

from nbops.level import assess
from nbops.promote import promote
from nbops.promote.manifest import sha256

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

READ = """\
import pandas as pd
DATA = "data/"
df = pd.read_csv(DATA + "d.csv")
n = len(df)
"""


def git_project(root: Path, source: str = READ) -> Path:
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "data").mkdir()
    (root / "data" / "d.csv").write_text("a,y\n" + "".join(f"{i},{i % 2}\n" for i in range(20)))
    nb = new_notebook(cells=[new_code_cell(source, metadata={"tags": ["step:load"]})])
    nbformat.write(nb, root / "nb.ipynb")
    return root / "nb.ipynb"


def ignored(root: Path, path: Path) -> bool:
    done = subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=root)
    return done.returncode == 0


def test_promote_again_with_and_without_force_keeps_the_data_ignored(project: Path) -> None:
    nb = git_project(project)
    out = promote(nb).out_dir
    assert (out / ".gitignore").read_text().splitlines()[-1] == "/data"  # dvc add's entry
    assert ignored(project, out / "data" / "d.csv")
    before = (out / ".gitignore").read_text()

    again = promote(nb)  # nothing changed, nothing refused
    assert again.written == [] and (out / ".gitignore").read_text() == before
    forced = promote(nb, force=True)
    assert forced.written == [] and ignored(project, out / "data" / "d.csv")


def test_a_gitignore_dvc_appended_to_is_not_a_hand_edit(project: Path) -> None:
    """A pipeline promoted by an nbops that did not list DVC's entry: `dvc add` appended it
    after promote recorded the file's hash."""
    nb = git_project(project)
    out = promote(nb).out_dir
    gitignore = out / ".gitignore"
    legacy = gitignore.read_text().split("# Data copied in")[0]
    manifest = json.loads((out / ".nbops-promote.json").read_text())
    manifest["files"][".gitignore"] = sha256(legacy.encode())
    (out / ".nbops-promote.json").write_text(json.dumps(manifest))
    gitignore.write_text(legacy + "/data\n")  # what `dvc add` appended

    result = promote(nb)
    assert ".gitignore" in result.written and not result.removed
    assert gitignore.read_text().endswith("/data\n") and ignored(project, out / "data" / "d.csv")
    gitignore.write_text(gitignore.read_text() + "secrets.txt\n")  # a real hand edit
    with pytest.raises(Exception, match=r"changed by hand since the last promote: \.gitignore"):
        promote(nb)


def test_a_new_out_folder_takes_the_workflow_along(project: Path) -> None:
    nb = git_project(project)
    workflow = project / ".github" / "workflows" / "nb.yml"
    promote(nb, out=project / "pipelines" / "first")
    assert "PIPELINE: pipelines/first" in workflow.read_text()

    moved = promote(nb, out=project / "pipelines" / "second")  # the first one still exists
    assert "PIPELINE: pipelines/second" in workflow.read_text()
    assert any("rewrote" in n and "pipelines/first" in n for n in moved.notes)

    shutil.rmtree(project / "pipelines")  # deleted, then promoted somewhere else
    promote(nb, out=project / "ml" / "third")
    assert "PIPELINE: ml/third" in workflow.read_text()

    workflow.write_text(workflow.read_text() + "# mine\n")
    kept = promote(nb, out=project / "ml" / "fourth")
    assert workflow.read_text().endswith("# mine\n")
    assert any(n.startswith("kept .github/workflows/nb.yml") for n in kept.notes)


def _as_an_older_nbops_left_it(out: Path) -> None:
    """No validate_data stage, no contract: what a pipeline promoted before promote folded
    path expressions looks like (its manifest recorded exactly those files)."""
    dvc_yaml = yaml.safe_load((out / "dvc.yaml").read_text())
    dvc_yaml["stages"].pop("validate_data")
    for stage in dvc_yaml["stages"].values():
        stage["deps"] = [d for d in stage["deps"] if d != "metrics/validate_data.json"]
    (out / "dvc.yaml").write_text(yaml.safe_dump(dvc_yaml, sort_keys=False))
    params = yaml.safe_load((out / "params.yaml").read_text())
    params.pop("drift", None)
    (out / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (out / "schema.yaml").unlink()
    shutil.rmtree(out / "reference")
    manifest = json.loads((out / ".nbops-promote.json").read_text())
    files = {k: v for k, v in manifest["files"].items() if k not in ("schema.yaml",)}
    files = {k: v for k, v in files.items() if not k.startswith("reference/")}
    for rel in ("dvc.yaml", "params.yaml"):
        files[rel] = sha256((out / rel).read_bytes().decode().encode())
    manifest.update(files=files, missing_gates={})
    (out / ".nbops-promote.json").write_text(json.dumps(manifest))


def run_printed(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(command, shell=True, cwd=cwd, env=env, capture_output=True, text=True)


def test_level_next_step_for_a_missing_gate_works_as_printed(project: Path) -> None:
    nb = git_project(project)
    out = promote(nb).out_dir
    _as_an_older_nbops_left_it(out)
    item = next(i for i in assess(project).items if i.key == "data_validation")
    assert not item.ok and item.next_step == "nbops promote nb.ipynb --out pipelines/nb"

    done = run_printed(item.next_step, project)
    assert done.returncode == 0, done.stderr
    assert next(i for i in assess(project).items if i.key == "data_validation").ok


def test_level_shows_why_a_gate_is_missing_and_the_fix(project: Path) -> None:
    source = "import glob\nimport pandas as pd\ndf = pd.read_csv(sorted(glob.glob('data/*'))[0])"
    nb = git_project(project, source)
    promote(nb)
    item = next(i for i in assess(project).items if i.key == "data_validation")
    assert "cell 1 ('import glob')" in item.detail and "could not work out" in item.detail
    fix, command = item.next_step.split(", then: ")
    assert fix == "tag cell 1 `data:data/d.csv` in nb.ipynb"
    assert command == "nbops promote nb.ipynb --out pipelines/nb"

    cells = nbformat.read(nb, as_version=4)
    cells.cells[0].metadata["tags"].append("data:data/d.csv")  # the fix, as printed
    nbformat.write(cells, nb)
    assert run_printed(command, project).returncode == 0
    assert next(i for i in assess(project).items if i.key == "data_validation").ok
