"""Level 0 -> 1 end to end: a tracked notebook is promoted and run, and reproduces its metrics.

Real papermill kernels, real DVC, a SQLite MLflow store in tmp_path; CLI called in-process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import papermill
import pytest
import yaml
from mlflow.tracking import MlflowClient

from nbops.cli import main
from nbops.config import Config

pytestmark = pytest.mark.kernel


def write_project(project: Path) -> Path:
    from nbops.examples import write_wine_project

    return write_wine_project(project)


def stage_states(out: str) -> dict[str, str]:
    return {
        line.split("'")[1]: ("unchanged" if "didn't change" in line else "ran")
        for line in out.splitlines()
        if line.startswith("Stage '") or "Running stage" in line
    }


def test_tracked_notebook_promotes_runs_and_reproduces(
    project: Path,
    config: Config,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    notebook = write_project(project)
    # headless, as in CI: nbops finds the notebook and delivers its runs before papermill returns
    papermill.execute_notebook(
        str(notebook),
        str(project / "executed.ipynb"),
        cwd=str(project),
        kernel_name="python3",
        progress_bar=False,
    )

    assert main(["promote", "wine_pipeline.ipynb", "--check"]) == 0
    out = capsys.readouterr().out
    pipeline = project / "pipelines" / "wine_pipeline"
    assert "accuracy" in out and "match" in out.lower()
    assert (pipeline / "dvc.yaml").is_file() and (pipeline / "data" / "wine.csv.dvc").is_file()
    for path in pipeline.rglob("*"):  # generated files (executed reports are outputs)
        generated = path.suffix in {".yaml", ".ipynb", ".json", ".md", ".dvc"}
        if path.is_file() and generated and "reports" not in path.parts:
            assert str(project) not in path.read_text(), f"absolute path in {path}"

    client = MlflowClient(tracking_uri=config.tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("wine_pipeline").experiment_id])
    steps = {
        r.data.tags.get("nbops.step") for r in runs if r.data.tags.get("nbops.source") == "step"
    }
    assert steps == {"validate_data", "load", "train", "evaluate", "validate_model"}
    parents = [r for r in runs if r.data.tags.get("nbops.source") == "pipeline"]
    children = [r for r in runs if r.data.tags.get("nbops.source") == "step"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}

    params = yaml.safe_load((pipeline / "params.yaml").read_text())
    params["max_depth"] = 3
    (pipeline / "params.yaml").write_text(yaml.safe_dump(params))
    assert main(["run", str(pipeline)]) == 0
    out = capsys.readouterr().out
    assert "3 ran, 2 unchanged" in out

    dag = subprocess.run(
        [sys.executable, "-m", "dvc", "dag"],
        cwd=pipeline,
        capture_output=True,
        text=True,
        env=os.environ | {"DVC_NO_ANALYTICS": "1"},
        check=True,
    )
    assert all(name in dag.stdout for name in ("load", "train", "evaluate"))

    elsewhere = project / "copy" / "wine_pipeline"
    shutil.copytree(
        pipeline,
        elsewhere,
        ignore=shutil.ignore_patterns(".dvc", "artifacts", "reports", "metrics"),
    )
    assert main(["run", str(elsewhere)]) == 0
    assert "5 ran" in capsys.readouterr().out  # 3 steps and the 2 gates
    assert (elsewhere / "metrics" / "evaluate.json").is_file()
