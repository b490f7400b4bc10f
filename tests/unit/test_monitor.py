"""The monitor's check on request logs written by the real log writer, against a reference
recorded the way the model gate records it (a small regression, its holdout and gate score):
drift and its evidence threshold, the live metric from fed-back labels, the window (the current
version's stint, after the last trigger), the ``monitor:`` settings, and the log itself
(append-only, MLflow's input formats)."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from nbops.config import load_config
from nbops.errors import ConfigError
from nbops.monitor.analysis import check
from nbops.monitor.config import MonitorConfig
from nbops.monitor.report import markdown, write_reports
from nbops.serve import reference
from nbops.serve.logread import parse_inputs, parse_predictions
from nbops.serve.predlog import PredictionLog, connect, day_file
from nbops.serve.target import Target
from nbops.validate.drift import DriftThresholds
from nbops.validate.gate import EvaluateSpec, GateConfig

GATE = GateConfig(
    model_name="temp",
    metric="mae",
    evaluate=EvaluateSpec("mean_absolute_error", "train/model", "train/X", "train/y"),
    greater_is_better=False,
)


def frame(n: int, shift: float = 0.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"temp_min": rng.normal(8 + shift, 3, n), "wind": rng.gamma(2, 1.5, n)})


@pytest.fixture
def served_model(project: Path) -> tuple[Target, LinearRegression]:
    """Version 1 of model "temp": a regression with its gate reference cached."""
    X = frame(400, seed=1)
    y = 1.2 * X["temp_min"] + 5 - 0.1 * X["wind"]
    model = LinearRegression().fit(X, y)
    target = Target("temp", load_config(project))
    folder = target.version_dir(1)
    folder.mkdir(parents=True)
    holdout = frame(400, seed=2)
    score = float(np.mean(np.abs(model.predict(holdout) - (1.2 * holdout["temp_min"] + 5))))
    reference._write(folder, model, holdout, 1.2 * holdout["temp_min"] + 5, GATE, score)
    return target, model


def send(target: Target, model: LinearRegression, rows: pd.DataFrame, version: int = 1) -> str:
    log = PredictionLog(target.log_dir, target.model)
    rid = f"req-{time.monotonic_ns()}"
    body = json.dumps({"dataframe_split": rows.to_dict(orient="split", index=False)}).encode()
    answer = json.dumps({"predictions": model.predict(rows).tolist()}).encode()
    log.request(time.time(), rid, version, 200, 5.0, "application/json", body, answer)
    log.close()
    return rid


def monitored(target: Target, since: float = 0.0, **settings: object) -> object:
    config = MonitorConfig(**settings)  # type: ignore[arg-type]
    return check(target, config, DriftThresholds(), lambda version: since)


def test_rows_like_the_holdout_are_ok(served_model: tuple[Target, LinearRegression]) -> None:
    target, model = served_model
    send(target, model, frame(300, seed=3))
    result = monitored(target)
    assert result.status == "ok" and result.rows == 300 and not result.triggers
    assert result.reference == "the gate holdout of v1" and not result.drifted
    assert result.prediction is not None and not result.prediction.drifted


def test_shifted_inputs_drift_and_trigger_once_there_is_enough_evidence(
    served_model: tuple[Target, LinearRegression],
) -> None:
    target, model = served_model
    send(target, model, frame(30, shift=9, seed=4))
    few = monitored(target)
    assert few.status == "drift" and not few.triggers
    assert "not acted on below 50 rows (monitor.min_rows)" in " ".join(few.notes)
    send(target, model, frame(30, shift=9, seed=5))
    result = monitored(target)
    assert [t.name for t in result.triggers] == ["drift"]
    reason = result.triggers[0].reason
    assert "inputs drifted (" in reason and "features: temp_min" in reason
    assert "predictions drifted" in reason and "60 rows served by v1" in reason
    assert not monitored(target, retrain_on_drift=False).triggers
    # a retrain acknowledged the drift: later checks look only at later requests
    later = monitored(target, since=time.time())
    assert later.rows == 0 and later.status == "no data"


def test_fed_back_labels_give_the_live_metric_and_the_performance_trigger(
    served_model: tuple[Target, LinearRegression],
) -> None:
    target, model = served_model
    rows = frame(60, seed=6)
    rid = send(target, model, rows)
    truth = 1.2 * rows["temp_min"] + 5 + 4.0  # reality moved: 4 degrees warmer than learned
    log = PredictionLog(target.log_dir, target.model)
    log.feedback(rid, truth[:20].tolist())
    log.close()
    live = monitored(target).live
    assert live is not None and live.labels == 20 and not live.degraded
    assert "judged from 30 (monitor.min_labels)" in live.note
    log = PredictionLog(target.log_dir, target.model)
    log.feedback(rid, truth.tolist())  # all 60: the later label of a row wins
    log.close()
    result = monitored(target)
    assert result.live is not None and result.live.labels == 60
    assert result.live.value == pytest.approx(4.3, abs=0.2) and result.live.degraded
    assert [t.name for t in result.triggers] == ["performance"]
    assert "live mae 4" in result.triggers[0].reason and "is above" in result.triggers[0].reason
    assert not monitored(target, max_drop=None).triggers  # no bound: reported, not acted on
    assert [t.name for t in monitored(target, max_drop=None, metric_threshold=3.0).triggers] == [
        "performance"
    ]


def test_the_window_is_the_current_versions_stint(
    served_model: tuple[Target, LinearRegression],
) -> None:
    target, model = served_model
    v2 = target.version_dir(2)
    v2.mkdir(parents=True)
    for name in ("reference.json",):
        (v2 / name).write_text((target.version_dir(1) / name).read_text())
    send(target, model, frame(70, shift=9, seed=7), version=1)  # drifted, but v1 is gone
    time.sleep(0.01)
    send(target, model, frame(300, seed=8), version=2)
    result = monitored(target)
    assert result.version == 2 and result.rows == 300 and result.status == "ok"


def test_no_log_is_no_data_with_how_to_get_one(project: Path) -> None:
    result = monitored(Target("nothing", load_config(project)))
    assert result.status == "no data" and "nbops serve nothing" in result.notes[0]


def test_reports_are_written(served_model: tuple[Target, LinearRegression], tmp_path: Path) -> None:
    target, model = served_model
    send(target, model, frame(60, shift=9, seed=9))
    result = monitored(target)
    paths = write_reports(tmp_path / "reports", result)
    assert [Path(p).name for p in paths] == ["monitor.md", "monitor.html", "monitor.json"]
    assert "| temp_min | numeric |" in markdown(result)
    assert json.loads(Path(paths[2]).read_text())["status"] == "drift"
    assert '<tr class="drifted">' in Path(paths[1]).read_text()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"min_rows": 0}, "a whole number >= 1"),
        ({"max_drop": -0.1}, "a number >= 0 or null"),
        ({"retrain_on_drift": "yes"}, "true or false"),
        ({"threshold": 1}, "unknown key `monitor.threshold`"),
        ("on", "must be a mapping"),
    ],
)
def test_bad_monitor_settings_are_config_errors(section: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        MonitorConfig.from_params({"monitor": section})
    assert info.value.fix


def test_monitor_settings_keep_defaults() -> None:
    config = MonitorConfig.from_params({"monitor": {"metric_threshold": 2, "min_rows": 10}})
    assert config.metric_threshold == 2.0 and config.min_rows == 10 and config.max_drop == 0.1


@pytest.mark.parametrize(
    ("body", "ctype"),
    [
        (
            {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}},
            "application/json",
        ),
        ({"dataframe_records": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]}, "application/json"),
        ({"inputs": {"a": [1, 3], "b": [2, 4]}}, "application/json"),
        ({"instances": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]}, "application/json"),
        ("a,b\n1,2\n3,4\n", "text/csv"),
    ],
)
def test_every_mlflow_input_format_is_read_back(body: object, ctype: str) -> None:
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    rows = parse_inputs(raw, ctype)
    assert rows.to_dict(orient="list") == {"a": [1, 3], "b": [2, 4]}


def test_tensor_inputs_and_nested_predictions() -> None:
    rows = parse_inputs(b'{"inputs": [[1, 2], [3, 4]]}', "application/json")
    assert list(rows.columns) == ["0", "1"] and len(rows) == 2
    assert parse_predictions(b'{"predictions": [[0.5], [1.5]]}') == [0.5, 1.5]
    assert parse_predictions(b'{"predictions": {"yhat": [1, 2]}}') == [1, 2]


def test_the_log_is_append_only(tmp_path: Path) -> None:
    path = day_file(tmp_path, time.time())
    conn = connect(path)
    with conn:
        conn.execute(
            "INSERT INTO requests VALUES (?,?,?,?,?,?,?,?,?)",
            (1.0, "r", "m", 1, 200, 1.0, "application/json", b"{}", b"{}"),
        )
    for statement in ("UPDATE requests SET status = 500", "DELETE FROM requests"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(statement)
    conn.close()


def test_the_magic_shows_the_check(shell: object, project: Path) -> None:
    from IPython.utils.capture import capture_output

    with capture_output() as captured:
        shell.run_line_magic("nbops", "monitor nothing_served")  # type: ignore[attr-defined]
    (shown,) = captured.outputs  # the result, displayed: the report in Jupyter, text here
    assert "monitor nothing_served: no data" in shown.data["text/plain"]
    assert "nbops serve nothing_served" in shown.data["text/plain"]
    assert shown.data["text/html"].startswith('<div class="nbops-monitor">')


def test_a_target_must_be_a_pipeline_or_a_model_name(project: Path) -> None:
    from nbops.errors import UsageError
    from nbops.serve.target import resolve

    (project / "empty").mkdir()
    with pytest.raises(UsageError, match="neither a promoted pipeline"):
        resolve(project / "empty")
    folder = project / "nogate"
    folder.mkdir()
    (folder / "dvc.yaml").write_text("stages: {}\n")
    (folder / "params.yaml").write_text("alpha: 1\n")
    with pytest.raises(UsageError, match="no model gate") as info:
        resolve(folder)
    assert "promote it again" in info.value.fix
    assert resolve("wine").model == "wine"
