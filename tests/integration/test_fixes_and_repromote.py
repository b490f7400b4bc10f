"""A notebook promote cannot fully read keeps nothing silent: both gates are said to be missing
with the cell and the tag that attaches them; the tags, applied as printed, attach both gates and
the pipeline runs green. Then, after that run and in a git repository, promoting again (plain,
--force, another --out) finds nothing "changed by hand" and the data stays git-ignored; and a
step that fails names the source notebook's cell and shows the user's own line.

Real papermill kernels, real DVC and git, a SQLite MLflow store in tmp_path."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from nbops.cli import main
from nbops.pipeline.run import run_pipeline

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(shutil.which("git") is None, reason="needs git"),
]

CELLS = [
    ("md", "# Wine, messy\nPaths from a glob, predictions through a helper, scores printed."),
    (
        "setup",
        "import glob\nimport pandas as pd\nfrom sklearn.ensemble import RandomForestClassifier\n"
        "from sklearn.metrics import accuracy_score\nfrom sklearn.model_selection import "
        "train_test_split\n\n\ndef predict_labels(model, X):\n    return model.predict(X)",
    ),
    ("parameters", "test_size = 0.3"),
    ("step:load", 'csv = sorted(glob.glob("data/*.csv"))[0]\ndf = pd.read_csv(csv)\ndf.shape'),
    (
        "step:train",
        "X_train, X_test, y_train, y_test = train_test_split(\n"
        '    df.drop(columns="target"), df["target"], test_size=test_size, random_state=0\n)\n'
        "model = RandomForestClassifier(n_estimators=20, random_state=0)\n"
        "model.fit(X_train, y_train)\npreds = predict_labels(model, X_test)",
    ),
    ("step:score", 'print("accuracy", accuracy_score(y_test, preds))'),
]


def write_project(root: Path) -> Path:
    from sklearn.datasets import load_wine

    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "data").mkdir()
    load_wine(as_frame=True).frame.to_csv(root / "data" / "wine.csv", index=False)
    cells = [
        new_markdown_cell(src) if tag == "md" else new_code_cell(src, metadata={"tags": [tag]})
        for tag, src in CELLS
    ]
    nbformat.write(new_notebook(cells=cells), root / "messy.ipynb")
    return root / "messy.ipynb"


def apply_printed_tags(notebook: Path, out: str) -> list[str]:
    """Add each `tag cell N `TAG`` the promote output asks for; returns the tags added."""
    nb = nbformat.read(notebook, as_version=4)
    added = []
    for number, tag in re.findall(r"tag cell (\d+) `([^`]+)`", out):
        if tag in added or tag.endswith("PATH"):
            continue
        nb.cells[int(number) - 1].metadata.setdefault("tags", []).append(tag)
        added.append(tag)
    nbformat.write(nb, notebook)
    return added


def stages(folder: Path) -> list[str]:
    return list(yaml.safe_load((folder / "dvc.yaml").read_text())["stages"])


def test_printed_fixes_attach_both_gates_and_promote_again_is_safe(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notebook = write_project(project)
    assert main(["promote", notebook.name]) == 0
    out = capsys.readouterr().out
    assert "note: no validate_data stage (the data gate): cell 4 ('csv = " in out
    assert "note: no validate_model stage (the model gate): cell 6 (" in out
    assert apply_printed_tags(notebook, out) == ["data:data/wine.csv", "model:model"]

    assert main(["promote", notebook.name]) == 0
    out = capsys.readouterr().out
    assert "no validate_" not in out, out
    folder = project / "pipelines" / "messy"
    assert stages(folder) == ["validate_data", "load", "train", "score", "validate_model"]
    lines: list[str] = []
    result = run_pipeline(folder, echo=lines.append)
    assert result.status == "FINISHED", "\n".join(lines)
    assert "model gate: passed" in "\n".join(lines)

    # promote again after the run: plain, forced, into another folder
    for args in ([], ["--force"]):
        assert main(["promote", notebook.name, *args]) == 0
        assert "changed by hand" not in capsys.readouterr().out
    data = folder / "data" / "wine.csv"
    assert subprocess.run(["git", "check-ignore", "-q", str(data)], cwd=project).returncode == 0
    assert main(["promote", notebook.name, "--out", "ml/messy"]) == 0
    assert "rewrote .github/workflows/messy.yml" in capsys.readouterr().out
    assert "PIPELINE: ml/messy" in (project / ".github/workflows/messy.yml").read_text()

    # a failing step names the source notebook's cell and shows the user's line
    params = yaml.safe_load((folder / "params.yaml").read_text())
    params["test_size"] = 2.5
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    failed = run_pipeline(folder, echo=lambda _: None)
    assert failed.status == "FAILED" and failed.failed_step == "train"
    assert failed.error is not None
    first, *rest = failed.error.splitlines()
    assert first.startswith("step 'train' failed in cell 5 of ../../messy.ipynb ('X_train, X_test")
    assert "InvalidParameterError" in first or "ValueError" in first
    assert rest[0].strip().startswith("cell 5, line 1: X_train, X_test, y_train, y_test =")
    assert not any("site-packages" in line for line in rest)
