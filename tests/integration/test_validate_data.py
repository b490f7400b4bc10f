"""`nbops validate data` end to end: a pipeline folder with data/wine.csv and its inferred
contract, the CLI in-process, the reports and the run in the project's real MLflow store."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from sklearn.datasets import load_wine

from nbops.cli import main
from nbops.config import Config
from nbops.validate import write_contract
from nbops.validate.tracking import TAG_STATUS


@pytest.fixture
def folder(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pipelines/wine with data/wine.csv and the contract promote would write; the cwd, as in
    the DVC stage."""
    folder = project / "pipelines" / "wine"
    (folder / "data").mkdir(parents=True)
    load_wine(as_frame=True).frame.to_csv(folder / "data" / "wine.csv", index=False)
    assert write_contract(folder, ["data/wine.csv"]) == ["schema.yaml", "reference/profile.json"]
    monkeypatch.chdir(folder)
    return folder


def _runs(config: Config) -> list[object]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=config.tracking_uri)
    experiment = client.get_experiment_by_name("wine")
    assert experiment is not None
    return client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])


def _rewrite(folder: Path, change: Callable[[pd.DataFrame], object]) -> None:
    df = pd.read_csv(folder / "data" / "wine.csv")
    change(df)
    df.to_csv(folder / "data" / "wine.csv", index=False)


def test_passes_then_fails_on_a_dropped_column_with_both_runs_recorded(
    folder: Path, config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "data"]) == 0
    out = capsys.readouterr().out
    assert "data validation: passed (0 of 14 features drifted" in out
    assert "report: reports/validate_data.md" in out
    for name in ("md", "html", "json"):
        assert (folder / "reports" / f"validate_data.{name}").stat().st_size > 0
    metrics = json.loads((folder / "metrics" / "validate_data.json").read_text())
    assert metrics["drift_share"] == 0 and metrics["psi.alcohol"] == 0

    _rewrite(folder, lambda df: df.drop(columns=["alcohol"], inplace=True))
    assert main(["validate", "data", str(folder)]) == 8
    err = capsys.readouterr().err
    assert "data/wine.csv: column 'alcohol' is missing" in err
    assert "edit schema.yaml" in err and "nbops promote" in err
    assert "column 'alcohol' is missing" in (folder / "reports/validate_data.md").read_text()
    assert json.loads((folder / "reports/validate_data.json").read_text())["status"] == "failed"

    passed, failed = _runs(config)
    assert passed.data.tags[TAG_STATUS] == "passed" and passed.info.status == "FINISHED"
    assert passed.data.tags["nbops.step"] == "validate_data"
    assert passed.data.tags["nbops.pipeline"] == "wine"
    assert passed.data.params["drift.psi"] == "0.2"
    assert passed.data.metrics["psi.alcohol"] == 0
    inputs = [d.dataset.name for d in passed.inputs.dataset_inputs]
    assert any("wine.csv" in name for name in inputs)
    assert failed.data.tags[TAG_STATUS] == "failed" and failed.info.status == "FAILED"
    assert failed.data.metrics["schema_problems"] == 1


def test_a_shifted_batch_reports_drift_per_feature(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (folder / "params.yaml").write_text("n_estimators: 50\ndrift:\n  share: 0.05\n")
    _rewrite(folder, lambda df: df.__setitem__("alcohol", df["alcohol"] + 2 * df["alcohol"].std()))
    assert main(["validate", "data", "--no-record"]) == 0
    out = capsys.readouterr().out
    assert "data validation: drift (1 of 14 features drifted (7%; dataset drift at 5%))" in out
    assert "drifted: alcohol  PSI " in out
    report = json.loads((folder / "reports/validate_data.json").read_text())
    assert report["status"] == "drift" and report["thresholds"]["share"] == 0.05
    alcohol = next(f for f in report["drift"] if f["column"] == "alcohol")
    assert alcohol["psi"] > 0.2 and alcohol["drifted"]
    assert alcohol["current_mean"] > alcohol["reference_mean"]
    html = (folder / "reports/validate_data.html").read_text()
    assert '<tr class="drifted"><td>alcohol</td>' in html and "<script" not in html
    assert json.loads((folder / "metrics/validate_data.json").read_text())["psi.alcohol"] > 0.2
    assert not (folder.parents[1] / "mlflow.db").exists()  # --no-record


def test_bad_thresholds_exit_2_naming_params_yaml(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (folder / "params.yaml").write_text("drift:\n  psi: high\n")
    assert main(["validate", "data", "--no-record"]) == 2
    assert "params.yaml: `drift.psi` is 'high'" in capsys.readouterr().err


def test_a_store_failure_does_not_fail_validation(
    folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = folder / "not-a-dir"
    blocker.write_text("a file where the store's folder should be")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{blocker}/mlflow.db")
    assert main(["validate", "data"]) == 0
    captured = capsys.readouterr()
    assert "data validation: passed" in captured.out
    assert "the run 'validate_data' was not written to MLflow" in captured.err
    assert "nbops sync" in captured.err
    spooled = list((folder.parents[1] / ".nbops" / "spool").glob("*/record.json"))
    assert [json.loads(p.read_text())["name"] for p in spooled] == ["validate_data"]


def test_the_python_api_with_two_files_prefixes_feature_names(folder: Path) -> None:
    from nbops.validate import validate_data

    frame = pd.DataFrame({"color": ["red", "white"] * 30, "score": range(60)})
    frame.to_parquet(folder / "data" / "extra.parquet")
    write_contract(folder, ["data/wine.csv", "data/extra.parquet"])
    result = validate_data(folder, record=False)
    assert result.status == "passed" and result.files == ["data/extra.parquet", "data/wine.csv"]
    metrics = result.metrics()
    assert metrics["psi.extra.color"] == 0 and metrics["psi.wine.alcohol"] == 0
    assert len(result.drift) == 16 and metrics["drifted_features"] == 0
    assert result._repr_markdown_().startswith("# Data validation: passed")
