"""%%track in a real IPython shell, writing to a real SQLite MLflow store in tmp_path."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from nbops.config import Config

TRAIN = """\
n_estimators = 10
max_depth = 3
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
model = RandomForestClassifier(n_estimators=n_estimators, max_depth=max_depth, random_state=0)
model.fit(X_train, y_train)
accuracy = accuracy_score(y_test, model.predict(X_test))
"""

SETUP = """\
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
X, y = load_wine(return_X_y=True, as_frame=True)
"""


def session_of(shell: Any):
    return shell.user_ns["__nbops_session__"]


def runs(config: Config) -> list[Any]:
    client = MlflowClient(tracking_uri=config.tracking_uri)
    exps = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(exps) if exps else []


def datasets(run: Any) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """A run's dataset inputs read back from MLflow: name -> (digest, context, profile)."""
    out = {}
    for item in run.inputs.dataset_inputs:
        context = {t.key: t.value for t in item.tags}["mlflow.data.context"]
        d = item.dataset
        out[d.name] = (d.digest, context, json.loads(d.profile))
    return out


def track(shell: Any, cell: str, line: str = "") -> Any:
    result = shell.run_cell(f"%%track {line}\n{cell}")
    session_of(shell).flush(timeout=60)
    return result


def test_training_cell_records_params_metrics_data_and_model(shell: Any, config: Config) -> None:
    """What MLflow's run page shows of a %%track cell, read back through MlflowClient."""
    import mlflow.artifacts

    from nbops.hashing.frames import fingerprint

    shell.run_cell(SETUP)
    result = track(shell, "# the baseline forest\n" + TRAIN, "--name forest")
    assert result.success
    [run] = runs(config)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "forest"
    # lean params: the two literals (each one param with the setting it feeds) and the one
    # setting that differs from the forest's defaults; none of the 16 other defaults
    assert run.data.params == {"n_estimators": "10", "max_depth": "3", "model.random_state": "0"}
    assert 0.8 < run.data.metrics["accuracy"] <= 1.0
    assert run.data.tags["mlflow.note.content"] == "the baseline forest"
    assert not [k for k in run.data.tags if k.startswith("nbops.data.")]
    # datasets: the nbops fingerprint as digest, MLflow's contexts, the shape
    found = datasets(run)
    assert found["X"][0] == fingerprint(shell.user_ns["X"]).split(":")[1]
    assert {name: found[name][1] for name in ("X", "y", "X_train", "y_train", "X_test")} == {
        "X": "input",
        "y": "input",
        "X_train": "training",
        "y_train": "training",
        "X_test": "evaluation",
    }
    assert found["X_train"][2]["shape"] == [124, 13]
    client = MlflowClient(tracking_uri=config.tracking_uri)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "nbops")}
    assert artifacts == {"nbops/record.json", "nbops/cell.py"}
    # the model is a LoggedModel of the run, linked to its metric and the evaluation data
    [output] = run.outputs.model_outputs
    logged = client.get_logged_model(output.model_id)
    assert logged.source_run_id == run.info.run_id and logged.name == "model"
    assert str(logged.status) in ("READY", "LoggedModelStatus.READY")
    [metric] = logged.metrics
    assert (metric.key, metric.dataset_name) == ("accuracy", "X_test")
    assert metric.dataset_digest == found["X_test"][0]
    assert logged.params["max_depth"] == "3"
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=f"{logged.artifact_location}/MLmodel", tracking_uri=config.tracking_uri
    )
    mlmodel = Path(local).read_text()
    assert "signature:" in mlmodel and "saved_input_example_info" in mlmodel
    assert output.model_id in mlmodel

    from nbops.store.mlflow_store import MlflowTracker

    record = MlflowTracker(config).get_run(run.info.run_id)
    assert record.code.endswith(TRAIN) and record.code_hash.startswith("sha256:")
    assert record.context.python and "scikit-learn" in record.context.packages
    assert record.model is not None and record.model.logged
    assert record.duration is not None and record.duration >= 0


def test_same_data_same_fingerprint_and_last_row_edit_changes_it(
    shell: Any, config: Config
) -> None:
    shell.run_cell(SETUP)
    track(shell, TRAIN)
    track(shell, TRAIN)
    shell.run_cell("X.iloc[-1, -1] = X.iloc[-1, -1] + 1.0")
    track(shell, TRAIN)
    first, second, third = sorted(runs(config), key=lambda r: r.info.start_time)
    fp = [datasets(r)["X"][0] for r in (first, second, third)]
    assert fp[0] == fp[1]
    assert fp[2] != fp[1]  # a last-row edit (MLflow's own digest hashes 10,000 rows only)
    assert datasets(first)["y"][0] == datasets(third)["y"][0]


def test_raising_cell_is_failed_and_the_exception_reaches_the_user(
    shell: Any, config: Config
) -> None:
    shell.run_cell("accuracy = 1.0")  # left by an earlier cell
    result = track(shell, "lr = 0.5\nraise ValueError('bad input in cell')\naccuracy = 0.2")
    assert isinstance(result.error_in_exec, ValueError)
    assert str(result.error_in_exec) == "bad input in cell"
    [run] = runs(config)
    assert run.info.status == "FAILED"
    assert run.data.tags["nbops.error"] == "ValueError: bad input in cell"
    assert run.data.params == {"lr": "0.5"}
    assert run.data.metrics == {}  # no stale accuracy
    assert not [r for r in runs(config) if r.info.status == "RUNNING"]


def test_cell_runs_unchanged_last_value_and_semicolon(shell: Any) -> None:
    result = track(shell, "x = 21\nx * 2")
    assert result.result == 42
    assert shell.user_ns["x"] == 21
    quiet = track(shell, "x * 2;")
    assert quiet.result is None


def test_explicit_names_and_log_calls_with_no_auto(shell: Any, config: Config) -> None:
    shell.run_cell("import nbops")
    cell = (
        "alpha = 0.1\nweights = {'a': 1}\nloss_value = 0.25\nbeta = 3\n"
        "nbops.log_param('stage', 'dev')\nnbops.log_metric('custom', 7)\n"
    )
    track(shell, cell, "--no-auto --params weights --metrics loss_value")
    [run] = runs(config)
    assert run.data.params == {"weights": '{"a": 1}', "stage": "dev"}
    assert run.data.metrics == {"loss_value": 0.25, "custom": 7.0}


def test_secret_looking_params_are_redacted(shell: Any, config: Config) -> None:
    track(shell, "api_key = 'sk-live-123'\nDB_PASSWORD = 'hunter2'\nlr = 0.1")
    [run] = runs(config)
    assert run.data.params["api_key"] == "***redacted***"
    assert run.data.params["DB_PASSWORD"] == "***redacted***"
    assert "sk-live-123" not in str(run.data)
    assert run.data.params["lr"] == "0.1"


def test_file_read_by_literal_path_is_fingerprinted_like_dvc(
    shell: Any, config: Config, project: Path
) -> None:
    data = project / "data"
    data.mkdir()
    (data / "wine.csv").write_text("a,b\n1,2\n3,4\n")
    shell.run_cell("import pandas as pd")
    track(shell, "df = pd.read_csv('data/wine.csv')\ndf.to_csv('out.csv', index=False)")
    [run] = runs(config)
    md5 = hashlib.md5((data / "wine.csv").read_bytes()).hexdigest()
    found = datasets(run)
    assert found["data/wine.csv"][:2] == (md5, "input")
    assert found["data/wine.csv"][2]["dvc_md5"] == md5
    assert found["out.csv"][1] == "output" and len(found["out.csv"][0]) == 32
    assert found["df"][2]["dvc_md5"] == md5  # the frame read from the file names its md5


def test_unwritable_store_keeps_the_cell_and_sync_delivers_later(
    shell: Any, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbops.config import load_config
    from nbops.session import Session
    from nbops.store.sync import sync

    (project / "broken" / "mlflow.db").mkdir(parents=True)  # a folder where the DB file goes
    broken = f"sqlite:///{project / 'broken' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", broken)
    bad = Session(load_config(project))
    shell.magics_manager.registry["NbopsMagics"]._session = bad
    shell.user_ns["__nbops_session__"] = bad
    result = shell.run_cell("%%track\nlr = 0.3\nresult = lr * 2\nresult")
    assert result.success and result.result == pytest.approx(0.6)
    failures = bad.flush(timeout=60)
    assert len(failures) == 1
    assert len(bad.spool.pending()) == 1

    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    good = load_config(project)
    report = sync(good)  # the record names the store it was made for: still unusable
    assert len(report.failed) == 1 and "broken" in report.failed[0][1]
    report = sync(good, store=good.tracking_uri)  # `nbops sync --store URI`
    assert len(report.delivered) == 1 and not report.failed
    assert bad.spool.pending() == []
    [run] = runs(good)
    assert run.data.params["lr"] == "0.3"


def test_a_failed_write_is_reported_under_the_next_tracked_cell(
    shell: Any, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbops.config import load_config
    from nbops.session import Session

    (project / "broken" / "mlflow.db").mkdir(parents=True)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / 'broken' / 'mlflow.db'}")
    monkeypatch.setenv("NBOPS_ASYNC_WRITE", "false")
    bad = Session(load_config(project))
    shell.magics_manager.registry["NbopsMagics"]._session = bad
    shell.user_ns["__nbops_session__"] = bad
    assert shell.run_cell("%%track\nlr = 0.3").success
    with pytest.warns(RuntimeWarning, match=r"1 earlier run\(s\) could not be written"):
        assert shell.run_cell("%%track\nlr = 0.4").success
    assert len(bad.spool.pending()) == 2


def test_auto_off_in_config_records_only_what_is_named(
    shell: Any, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbops.config import load_config
    from nbops.session import Session

    monkeypatch.setenv("NBOPS_AUTO", "false")
    session = Session(load_config(project))
    shell.magics_manager.registry["NbopsMagics"]._session = session
    shell.user_ns["__nbops_session__"] = session
    track(shell, "lr = 0.1\nbatch = 32", "--params batch")
    [run] = runs(session.config)
    assert run.data.params == {"batch": "32"}


def test_a_broken_pyproject_never_stops_the_cell(
    shell: Any, project: Path, recwarn: pytest.WarningsRecorder
) -> None:
    import subprocess
    import sys

    from nbops.session import Session

    (project / "pyproject.toml").write_text('tool = "x"\n')
    shell.magics_manager.registry["NbopsMagics"]._session = Session()  # reads the file anew
    result = shell.run_cell("%%track\nx = 21\nx * 2")
    assert result.success and result.result == 42
    assert any("not tracking this cell" in str(w.message) for w in recwarn.list)
    done = subprocess.run(
        [sys.executable, "-m", "nbops.cli", "runs"], cwd=project, capture_output=True, text=True
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "must be a table" in done.stderr and "[tool.nbops]" in done.stderr
