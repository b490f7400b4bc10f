"""The Level 1 gates end to end: the wine notebook promoted, run again and again with real DVC,
papermill kernels and a SQLite MLflow store, as a team's pipeline lives through new data.

One test walks the life of the pipeline, because each run builds on the registry and DVC state
the previous one left: a first champion, a better model promoted, a worse one refused, a
rollback, a batch with a dropped column stopped at validate_data, a drifted batch retrained,
and an unchanged batch that runs nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from nbops import registry
from nbops.cli import main
from nbops.config import Config, load_config
from nbops.errors import StoreError
from nbops.examples import write_wine_project
from nbops.pipeline.retrain import retrain
from nbops.pipeline.run import PipelineResult, run_pipeline
from nbops.promote import promote
from nbops.session import Session
from nbops.validate.model import validate_model

pytestmark = pytest.mark.kernel
MODEL = "wine_pipeline"


def set_params(folder: Path, **values: object) -> None:
    path = folder / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params.update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def run(folder: Path) -> tuple[PipelineResult, str]:
    lines: list[str] = []
    result = run_pipeline(folder, echo=lines.append)
    return result, "\n".join(lines)


def aliases(config: object) -> dict[str, int]:
    versions = registry.list_versions(config, MODEL)  # type: ignore[arg-type]
    return {alias: v.version for v in versions for alias in v.aliases}


def parent_tags(config: object, result: PipelineResult) -> dict[str, str]:
    from mlflow.tracking import MlflowClient

    uri = config.tracking_uri  # type: ignore[attr-defined]
    return dict(MlflowClient(uri).get_run(result.parent_run_id).data.tags)


def champion_loads(config: object, folder: Path) -> None:
    """``models:/NAME@champion`` loads and predicts: the version is the gate's LoggedModel,
    whose metric is linked to the holdout the train step produced."""
    import mlflow

    from nbops.pipeline.serializers import load

    uri = config.tracking_uri  # type: ignore[attr-defined]
    client = mlflow.MlflowClient(uri)
    version = client.get_model_version_by_alias(MODEL, "champion")
    assert version.source.startswith("models:/m-")
    logged = client.get_logged_model(version.source.split("/")[1])
    [metric] = [m for m in logged.metrics if m.key == "accuracy"]
    gate = client.get_run(version.run_id)
    parent = client.get_run(gate.data.tags["mlflow.parentRunId"])
    assert " · manual · data " in parent.info.run_name
    steps = client.search_runs(
        [parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    produced = {  # the datasets of the steps before the gate
        d.dataset.name: d.dataset.digest
        for run in steps
        if run.info.run_id != gate.info.run_id
        for d in run.inputs.dataset_inputs
    }
    assert produced[metric.dataset_name] == metric.dataset_digest
    mlflow.set_tracking_uri(uri)
    try:
        model = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    finally:
        mlflow.set_tracking_uri(None)
    X = load(metric.dataset_name, train_step(folder), "test", folder)
    assert len(model.predict(X.head(3))) == 3


def train_step(folder: Path) -> str:
    params = yaml.safe_load((folder / "params.yaml").read_text())
    return str(params["gate"]["evaluate"]["X"]).rpartition("/")[0]


class StoreDown:
    def write(self, entry: object) -> str:
        raise StoreError("could not write run validate_model: database is locked", fix="wait")


def the_store_fails_as_the_gate_writes(
    folder: Path, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The candidate equals the champion (a pass); the store fails only for the gate's own
    write: the pass turns into a fail that says why, nothing is registered, and the run kept
    in the spool for `nbops sync` says failed too (it said passed)."""
    session = Session(config)
    monkeypatch.setattr(session, "tracker", StoreDown)
    gate = validate_model(folder, session)
    assert not gate.passed and gate.registered_version is None
    assert "could not be written to MLflow" in gate.reasons[-1]
    assert "database is locked" in gate.reasons[-1] and "nbops sync" in gate.reasons[-1]
    assert len(registry.list_versions(config, MODEL)) == 2
    [kept] = [e for e in session.spool.pending() if e.record.name == "validate_model"]
    assert kept.record.tags["nbops.gate.decision"] == "failed"
    assert not json.loads((folder / "reports/validate_model.json").read_text())["passed"]


def test_gates_through_the_life_of_a_pipeline(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook = write_wine_project(project)
    folder = promote(notebook).out_dir
    config = load_config(project)
    params = yaml.safe_load((folder / "params.yaml").read_text())
    assert params["gate"]["metric"] == "accuracy" and params["gate"]["model_name"] == MODEL
    assert (folder / "schema.yaml").is_file() and (folder / "reference/profile.json").is_file()

    # 1. a weak first model: nothing to beat, so it becomes the champion
    set_params(folder, n_estimators=1, max_depth=1)
    first, out = run(folder)
    assert first.status == "FINISHED", out
    assert (
        first.step("validate_data").state == "ran" and first.step("validate_model").state == "ran"
    )
    assert aliases(config) == {"champion": 1}
    tags = parent_tags(config, first)
    assert tags["nbops.gate.decision"] == "passed" and tags["nbops.validation.data"] == "passed"
    assert tags["nbops.model.version"] == "1" and tags["nbops.champion.before"] == ""
    (v1,) = registry.list_versions(config, MODEL)
    assert v1.tags["nbops.gate.decision"] == "passed" and "accuracy" in v1.metrics
    holdout = json.loads(v1.tags["nbops.gate.holdout"])  # what the score was measured on
    assert holdout["rows"] > 0 and holdout["fingerprint"].startswith("xxh128:")
    champion_loads(config, folder)

    # 2. better parameters: version 2 passes the gate and is promoted; v1 is the rollback target
    set_params(folder, n_estimators=30, max_depth=4)
    second, out = run(folder)
    assert second.status == "FINISHED", out
    assert aliases(config) == {"champion": 2, "previous": 1}
    assert "model gate: passed" in out
    assert parent_tags(config, second)["nbops.champion.before"] == "1"
    the_store_fails_as_the_gate_writes(folder, config, monkeypatch)

    # 3. a deliberately worse model: refused, champion unchanged, reason printed and recorded
    set_params(folder, n_estimators=1, max_depth=1)
    worse, out = run(folder)
    assert worse.status == "FINISHED", out
    assert "model gate: FAILED" in out and "nothing registered" in out
    assert aliases(config) == {"champion": 2, "previous": 1}
    assert len(registry.list_versions(config, MODEL)) == 2
    tags = parent_tags(config, worse)
    assert tags["nbops.gate.decision"] == "failed" and "champion" in tags["nbops.gate.reasons"]

    # 4. rollback restores the previous champion
    assert main(["model", "rollback", MODEL]) == 0
    assert aliases(config)["champion"] == 1
    assert main(["model", "promote", MODEL, "2"]) == 0  # back to the better one

    # 5. a batch with a dropped column stops at validate_data; nothing trained or registered
    set_params(folder, n_estimators=30, max_depth=4)
    data = folder / "data" / "wine.csv"
    good = pd.read_csv(data)
    good.drop(columns="alcohol").to_csv(data, index=False)
    broken, out = run(folder)
    assert broken.status == "FAILED" and broken.failed_step == "validate_data"
    assert "alcohol" in (broken.error or "")
    assert broken.step("train").state == "not run"
    assert len(registry.list_versions(config, MODEL)) == 2

    # 6. a drifted batch: retrain runs, drift is reported per feature, the gate decides
    shifted = good.copy()
    features = [c for c in shifted.columns if c != "target"]
    shifted[features] = shifted[features] * 1.5  # a new instrument calibration, say
    shifted.to_csv(data, index=False)
    lines: list[str] = []
    outcome = retrain(folder, echo=lines.append)
    out = "\n".join(lines)
    assert outcome.ran and outcome.ok, out
    assert "data/wine.csv changed" in out
    assert "data validation: drift" in out and "proline" in out
    assert "model gate:" in out
    assert parent_tags(config, outcome.pipeline)["nbops.validation.data"] == "drift"  # type: ignore[arg-type]

    # 7. unchanged data: retrain says so and runs nothing
    lines.clear()
    again = retrain(folder, echo=lines.append)
    assert not again.ran and "up to date" in "\n".join(lines)
