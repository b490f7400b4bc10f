"""CI closes the loop: the retrain workflow promote writes, run locally step by step as the YAML
runs them (tests/integration/workflow_runner.py), on a fresh clone of a bare git repository
(the remote) with a local folder as the DVC remote. The first scheduled run retrains, pushes
the data and outputs to the DVC remote and commits dvc.lock; the second, on a fresh clone with
no new data, is up to date and commits nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from workflow_runner import run_job

from nbops.promote import promote

pytestmark = pytest.mark.kernel
NOTEBOOK = Path(__file__).parents[1] / "notebooks" / "serve_wine_one_step.ipynb"
NAME = "serve_wine_one_step"
SCHEDULE = {
    "github": {
        "event_name": "schedule",
        "ref_name": "main",
        "event": {"repository": {"default_branch": "main"}},
    },
    "secrets": {},
    "vars": {},
    "inputs": {},
}


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
    env.update(GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com")
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def dvc(cwd: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def origin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """(bare repository, DVC remote folder): a project whose pipeline was promoted and pushed,
    never run."""
    from sklearn.datasets import load_wine

    for key in [k for k in os.environ if k.startswith(("NBOPS_", "MLFLOW_"))]:
        monkeypatch.delenv(key)
    work, bare, storage = tmp_path / "work", tmp_path / "origin.git", tmp_path / "dvc-storage"
    (work / "data").mkdir(parents=True)
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    git(work, "init", "-q", "-b", "main")
    (work / "pyproject.toml").write_text('[project]\nname = "p"\nversion = "0"\n')
    (work / ".gitignore").write_text("mlflow.db\nmlartifacts/\n.nbops/\n")
    load_wine(as_frame=True).frame.to_csv(work / "data" / "wine.csv", index=False)
    shutil.copy(NOTEBOOK, work / NOTEBOOK.name)
    monkeypatch.chdir(work)
    promote(work / NOTEBOOK.name)
    dvc(work, "remote", "add", "-d", "storage", str(storage))
    dvc(work, "push")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "promote")
    git(work, "remote", "add", "origin", str(bare))
    git(work, "push", "-q", "origin", "main")
    return bare, storage


def scheduled_run(bare: Path, checkout: Path) -> str:
    """actions/checkout (a fresh clone), then the job's run steps."""
    git(bare.parent, "clone", "-q", str(bare), str(checkout))
    bin_dir = str(Path(sys.executable).parent)
    env = {"PATH": os.pathsep.join([bin_dir, os.environ["PATH"]])}
    workflow = checkout / ".github" / "workflows" / f"{NAME}.yml"
    job = run_job(workflow, "retrain", checkout, SCHEDULE, skip=("Install",), env=env)
    assert job.step("Retrain").ran and job.step("Share").ran
    return job.output


def test_a_scheduled_retrain_pushes_outputs_and_commits_dvc_lock_then_is_up_to_date(
    origin: tuple[Path, Path], tmp_path: Path
) -> None:
    bare, storage = origin
    before = git(bare, "rev-parse", "main")
    objects = {p for p in storage.rglob("*") if p.is_file()}

    out = scheduled_run(bare, tmp_path / "run1")
    assert "no dvc.lock: the pipeline has not completed a run yet" in out
    assert f"registered {NAME} v1 (champion)" in out
    after = git(bare, "rev-parse", "main")
    assert after != before and git(bare, "rev-list", "--count", f"{before}..{after}") == "1"
    changed = git(bare, "diff", "--name-only", before, after).splitlines()
    pipeline = f"pipelines/{NAME}"
    assert f"{pipeline}/dvc.lock" in changed and f"{pipeline}/metrics/train.json" in changed
    assert not any("mlflow.db" in path or "/reports/" in path for path in changed)
    lock = yaml.safe_load(git(bare, "show", f"{after}:{pipeline}/dvc.lock"))
    out_md5 = lock["stages"]["train"]["outs"][0]["md5"]  # artifacts/train, a folder: <md5>.dir
    pushed = {p for p in storage.rglob("*") if p.is_file()} - objects
    assert any(p.name == out_md5.removesuffix(".dir")[2:] + ".dir" for p in pushed), pushed

    out = scheduled_run(bare, tmp_path / "run2")
    assert f"pipeline {NAME} is up to date" in out
    assert "nothing was retrained: nothing to push or commit" in out
    assert git(bare, "rev-parse", "main") == after
