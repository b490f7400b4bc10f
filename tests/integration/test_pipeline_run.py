"""``run_pipeline`` end to end on a hand-built 3-step pipeline: real DVC, papermill kernels and
a SQLite MLflow store in tmp (the lead adds the same through ``nbops promote``).

One test walks the life of a pipeline, because each run builds on the state the previous one
left (DVC's lock and cache): first run, no-op run (with a stale lock to clear), a param change,
a failing step, the resumed run, and the folder copied elsewhere.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
from sklearn.linear_model import Ridge

import nbops
from nbops.config import load_config
from nbops.pipeline.run import PipelineResult, run_pipeline
from nbops.session import Session

sys.path.insert(0, str(Path(__file__).parent))
from pipeline_fixture import PARAMS, build_pipeline, set_param

pytestmark = pytest.mark.kernel


def step_command() -> str:
    """``nbops step`` once the CLI has it (the contract's command), else the module itself."""
    from nbops.cli import build_parser

    try:
        with contextlib.redirect_stderr(io.StringIO()):
            build_parser().parse_args(["step", "x.ipynb"])
    except SystemExit:
        return "python -m nbops.pipeline.step"
    return "nbops step"


def mlflow_runs(uri: str, experiment: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    return list(client.search_runs([found.experiment_id])) if found else []


def children_of(uri: str, result: PipelineResult) -> dict[str, object]:
    runs = mlflow_runs(uri, result.name)
    parent = result.parent_run_id
    return {
        r.data.tags["nbops.step"]: r
        for r in runs
        if r.data.tags.get("mlflow.parentRunId") == parent
    }


def quiet(folder: Path, **kwargs: object) -> tuple[PipelineResult, str]:
    lines: list[str] = []
    result = run_pipeline(folder, echo=lines.append, **kwargs)  # type: ignore[arg-type]
    return result, "\n".join(lines)


def track_notebook_run(session: Session, alpha: float) -> float:
    """What the source notebook's ``%%track`` cell records, for the reproducibility check."""
    n_rows, scale = PARAMS["n_rows"], PARAMS["scale"]
    df = pd.read_csv("pipelines/demo/data/raw.csv").head(n_rows)
    X = df[["a", "b"]].to_numpy() * scale
    y = df["target"]
    with nbops.track(
        "train", experiment="demo", params=["n_rows", "scale", "alpha"], session=session, wait=True
    ) as run:
        model = Ridge(alpha=alpha).fit(X, y)
        score = float(model.score(X, y))
    assert run.record is not None and run.record.run_id
    return score


def test_pipeline_lifecycle(project: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = build_pipeline(project / "pipelines" / "demo", step_command())
    uri = load_config(project).tracking_uri

    # 1. first run: every step runs; a parent run and one child per step
    first, log = quiet(folder)
    assert first.status == "FINISHED", first.error
    assert first.ran() == ["load", "features", "train"]
    assert "running    load" in log and "done       train" in log
    assert (folder / ".dvc").is_dir()  # dvc init --no-scm: no project contained the folder
    assert sorted(p.name for p in (folder / "artifacts").rglob("*.*")) == [
        "X.npy",
        "df.parquet",
        "model.joblib",
        "y.parquet",
    ]
    assert json.loads((folder / "metrics" / "train.json").read_text()).keys() == {"score"}
    assert first.metrics.keys() == {"rows", "score"}
    parent = next(r for r in mlflow_runs(uri, "demo") if r.info.run_id == first.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["nbops.source"] == "pipeline"
    assert parent.data.params == {k: str(v) for k, v in PARAMS.items()}
    assert parent.data.metrics["score"] == first.metrics["score"]
    assert parent.data.tags["nbops.step.train.status"] == "ran"
    assert float(parent.data.tags["nbops.step.load.duration"]) > 0
    children = children_of(uri, first)
    assert sorted(children) == ["features", "load", "train"]
    train = children["train"]
    assert train.data.tags["nbops.source"] == "step"
    assert train.data.params["alpha"] == "1.0"
    assert train.data.metrics["score"] == first.metrics["score"]
    # lineage in MLflow: what a step loaded is the dataset the step before it produced
    produced = {
        d.dataset.name: d.dataset.digest for d in children["features"].inputs.dataset_inputs
    }
    loaded = {
        d.dataset.name: (d.dataset.digest, {t.key: t.value for t in d.tags})
        for d in train.inputs.dataset_inputs
    }
    assert loaded["X"][0] == produced["X"] and len(produced["X"]) == 32
    assert loaded["X"][1]["mlflow.data.context"] == "training"  # train fits on it
    assert parent.info.run_name.startswith("demo · manual · data ")
    assert parent.data.tags["nbops.pipeline.trigger"] == "manual"
    assert (project / "mlflow.db").is_file() and not (folder / "mlflow.db").exists()

    # 2. nothing changed: no step runs and no run is recorded; a stale rwlock (a pid
    # that is alive but not DVC: a reused pid) would block DVC and is cleared first
    rwlock = folder / ".dvc" / "tmp" / "rwlock"
    held = {"pid": os.getpid(), "cmd": "dvc repro"}
    rwlock.write_text(json.dumps({"write": {str(folder / "artifacts" / "load"): held}}))
    second, log = quiet(folder)
    assert second.status == "FINISHED", second.error
    assert second.ran() == []
    assert [s.state for s in second.steps] == ["unchanged"] * 3
    assert any("stale DVC lock" in w for w in second.warnings)
    assert second.parent_run_id is None and "up to date" in log  # dvc status: nothing to do

    # 3. one param changed: only the step that uses it runs; the check compares the metric
    # with the notebook's tracked run that has the same parameters (not the newer one)
    set_param(folder, "alpha", 0.5)
    session = Session(load_config(project))
    expected = track_notebook_run(session, alpha=0.5)
    track_notebook_run(session, alpha=2.0)  # newer, other parameters: must not be used
    third, log = quiet(folder, check=True)
    assert third.status == "FINISHED", third.error
    assert third.ran() == ["train"]
    assert third.check is not None and third.check.ok, third.check.text()
    row = next(r for r in third.check.rows if r.name == "score")
    assert row.notebook == pytest.approx(expected, abs=1e-9)
    assert "score" in log and "| yes" in log
    # Ridge's default solver draws no random numbers: random_state=None is not warned about
    assert not any("random_state" in w for w in third.check.warnings)

    # 4. a failing step: the error names the step and cell, the parent run is FAILED, earlier
    # outputs stay, later steps do not run
    set_param(folder, "scale", 0)
    fourth, log = quiet(folder)
    assert fourth.status == "FAILED" and not fourth.ok
    assert fourth.failed_step == "features"
    assert fourth.error is not None
    assert "step 'features' failed in cell 5" in fourth.error
    assert "scale must be positive, got 0" in fourth.error and "raise ValueError" in fourth.error
    assert fourth.error in log
    assert [s.state for s in fourth.steps] == ["unchanged", "failed", "not run"]
    assert (folder / "artifacts" / "load" / "df.parquet").is_file()
    assert (folder / "reports" / "02_features.ipynb").is_file()
    failed_parent = next(
        r for r in mlflow_runs(uri, "demo") if r.info.run_id == fourth.parent_run_id
    )
    assert failed_parent.info.status == "FAILED"
    assert "features" in failed_parent.data.tags["nbops.error"]
    failed_child = children_of(uri, fourth)["features"]  # recorded by the post-cell hook
    assert failed_child.info.status == "FAILED"

    # 5. fixed: DVC resumes at the failed step; load does not run again
    set_param(folder, "scale", 3.0)
    fifth, _ = quiet(folder)
    assert fifth.status == "FINISHED", fifth.error
    assert fifth.ran() == ["features", "train"]
    assert fifth.step("load").state == "unchanged"

    # 6. copied like a git clone (no .dvc, no generated outputs), it runs anywhere: relative
    # paths only; with no project around it, its store is its own
    copy = tmp_path_factory.mktemp("elsewhere") / "demo"
    ignore = shutil.ignore_patterns(".dvc", "artifacts", "metrics", "reports", ".nbops")
    shutil.copytree(folder, copy, ignore=ignore)
    sixth, _ = quiet(copy)
    assert sixth.status == "FINISHED", sixth.error
    assert sixth.ran() == ["load", "features", "train"]
    assert sixth.metrics["score"] == pytest.approx(fifth.metrics["score"], abs=1e-12)
    assert (copy / ".dvc").is_dir() and (copy / "mlflow.db").is_file()
