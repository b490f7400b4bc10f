"""Shared data through a DVC remote: promote and run the wine example in a git repository, push
data and artifacts to a local-directory remote, clone the repository elsewhere, pull, and run
there: the clone is up to date as pulled, and running every step again reproduces the same
metrics from data with the same fingerprints."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from nbops.cli import main
from nbops.pipeline.layout import stage_names

pytestmark = pytest.mark.kernel

GITIGNORE = "mlflow.db\nmlartifacts/\n.nbops/\n*.nbops-init.lock\n"  # the user's, for %%track
PIPELINE = Path("pipelines") / "wine_pipeline"
STEPS = ("load", "train", "evaluate")  # the notebook's steps: their metrics must reproduce


def sh(cwd: Path, *command: str) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_TERMINAL_PROMPT": "0"}
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def dvc(cwd: Path, *args: str) -> str:
    return sh(cwd, sys.executable, "-m", "dvc", *args)


def git(cwd: Path, *args: str) -> str:
    return sh(cwd, "git", "-c", "user.name=nbops", "-c", "user.email=nbops@example.com", *args)


def md5s(folder: Path) -> dict[str, str]:
    """Every file under ``folder``: relative path -> md5 (DVC's file identity)."""
    return {
        p.relative_to(folder).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def metrics(pipeline: Path) -> dict[str, Any]:
    return {s: json.loads((pipeline / "metrics" / f"{s}.json").read_text()) for s in STEPS}


def lock_data(pipeline: Path) -> dict[str, str]:
    """The md5 of each data file the stages read, as ``dvc.lock`` records it."""
    stages = yaml.safe_load((pipeline / "dvc.lock").read_text())["stages"]
    return {
        dep["path"]: dep["md5"]
        for stage in stages.values()
        for dep in stage.get("deps", [])
        if dep["path"].startswith("data/")
    }


def input_fingerprints(root: Path) -> dict[str, str]:
    """The input datasets' digests of the latest run of each step, in the project's store."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("wine_pipeline")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"])
    found: dict[str, str] = {}
    for run in runs:
        step = run.data.tags.get("nbops.step")
        for item in run.inputs.dataset_inputs if step in STEPS else []:
            if {t.key: t.value for t in item.tags}["mlflow.data.context"] != "output":
                found.setdefault(f"{step}:{item.dataset.name}", item.dataset.digest)
    return found


def run(pipeline: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> str:
    code = main(["run", str(pipeline), *flags])
    out = capsys.readouterr().out
    assert code == 0, out
    return out


def test_push_clone_pull_and_reproduce(
    project: Path, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    from nbops.examples import write_wine_project
    from nbops.promote import promote

    git(project, "init", "-q")
    (project / ".gitignore").write_text(GITIGNORE)
    promote(write_wine_project(project))
    origin = project / PIPELINE
    run(origin, capsys)
    assert (origin / "data" / ".gitignore").read_text().strip() == "/wine.csv"  # dvc add's

    remote = tmp_path_factory.mktemp("remote")
    dvc(project, "remote", "add", "-d", "storage", str(remote))
    assert "pushed" in dvc(project, "push")
    git(project, "add", "-A")
    tracked = git(project, "ls-files").split()
    assert f"{PIPELINE}/dvc.lock" in tracked and f"{PIPELINE}/metrics/evaluate.json" in tracked
    assert not [path for path in tracked if path.startswith(f"{PIPELINE}/artifacts/")]
    assert f"{PIPELINE}/data/wine.csv.dvc" in tracked and f"{PIPELINE}/data/wine.csv" not in tracked
    git(project, "commit", "-q", "-m", "pipeline")

    clone = tmp_path_factory.mktemp("colleague") / "repo"
    git(clone.parent, "clone", "-q", str(project), str(clone))
    copy = clone / PIPELINE
    assert not (copy / "artifacts").exists() and not (copy / "data" / "wine.csv").exists()
    dvc(clone, "pull")
    assert md5s(copy / "artifacts") == md5s(origin / "artifacts")
    assert md5s(copy / "data") == md5s(origin / "data")

    # pulled, the clone is up to date: nothing runs, and its metrics are the committed ones
    run(copy, capsys)
    # no step ran: reports/ holds only what `dvc pull` restored (the data validation report,
    # a DVC output), no executed step notebook
    assert sorted(p.name for p in (copy / "reports").iterdir()) == [
        "validate_data.html",
        "validate_data.json",
        "validate_data.md",
    ]
    assert metrics(copy) == metrics(origin)

    # every step again in the clone (its own store): same metrics, same data fingerprints
    assert f"{len(stage_names(copy))} ran" in run(copy, capsys, "--force")
    assert metrics(copy) == metrics(origin)
    assert lock_data(copy) == lock_data(origin) != {}
    fingerprints = input_fingerprints(clone)
    assert fingerprints == input_fingerprints(project)
    assert any(key.startswith("train:") for key in fingerprints)
