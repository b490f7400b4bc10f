"""MlflowTracker against a real SQLite MLflow store: write, idempotency, reading, models,
and an unusable store that `sync` recovers from."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nbops.config import Config, default_tracking_uri
from nbops.errors import RunNotFoundError, StoreError
from nbops.record import Context, DataRef, ModelRef, RunRecord
from nbops.store import MlflowTracker, Spool, sync
from nbops.store.mapping import TAG_RECORD_ID
from nbops.store.run_lookup import RunLookup

mlflow = pytest.importorskip("mlflow")


@dataclass
class Store:
    config: Config
    spool: Spool
    tracker: MlflowTracker

    @property
    def client(self):  # type: ignore[no-untyped-def]
        return mlflow.tracking.MlflowClient(tracking_uri=self.config.tracking_uri)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One store per module: MLflow's first use of a SQLite file migrates it (~1.5 s)."""
    root = tmp_path_factory.mktemp("project")
    config = Config(project_root=root, tracking_uri=default_tracking_uri(root))
    yield Store(config, Spool(config.state_dir), MlflowTracker(config))


def _record(name: str, experiment: str = "train.ipynb", **extra: object) -> RunRecord:
    now = time.time()
    values: dict[str, object] = {
        "name": name,
        "experiment": experiment,
        "status": "FINISHED",
        "start": now - 2,
        "end": now,
        "params": {"lr": 0.1, "layers": [64, 32], "weird name!": "x", "long": "y" * 7000},
        "metrics": {"acc": 0.91, "loss": float("nan")},
        "data": [
            DataRef("df", "input", "DataFrame", "xxh3:0123456789abcdef"),
            DataRef("data/out.csv", "output", "file", None),
        ],
        "code": "model.fit(df)\n",
        "code_hash": "abc123",
        "context": Context(notebook="train.ipynb", git_commit="deadbeef", git_dirty=False),
        "tags": {"team": "ml"},
    }
    values.update(extra)
    return RunRecord(**values)  # type: ignore[arg-type]


def _runs_of(store: Store, record: RunRecord) -> list:  # type: ignore[type-arg]
    experiment = store.client.get_experiment_by_name(record.experiment)
    return store.client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`{TAG_RECORD_ID}` = '{record.record_id}'"
    )


def test_write_creates_one_complete_run(store: Store) -> None:
    record = _record("baseline")
    run_id = store.tracker.write(store.spool.put(record))

    (run,) = _runs_of(store, record)
    assert run.info.run_id == run_id == record.run_id
    assert run.info.status == "FINISHED" and run.info.run_name == "baseline"
    assert run.data.params["lr"] == "0.1"
    assert run.data.params["layers"] == "[64, 32]"
    assert run.data.params["weird name_"] == "x"
    assert len(run.data.params["long"]) == 6000
    assert run.data.metrics["acc"] == pytest.approx(0.91)
    tags = run.data.tags
    found = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert found["df"].dataset.digest == "0123456789abcdef"
    assert found["data/out.csv"].dataset.digest == "unhashed"
    assert found["data/out.csv"].tags[0].value == "output"  # mlflow.data.context
    assert tags["nbops.code_hash"] == "abc123"
    assert tags["mlflow.source.name"] == "train.ipynb"
    assert tags["mlflow.source.type"] == "NOTEBOOK"
    assert tags["mlflow.source.git.commit"] == "deadbeef"
    assert tags["nbops.git.dirty"] == "false"
    assert tags["team"] == "ml"
    artifacts = {a.path for a in store.client.list_artifacts(run_id, "nbops")}
    assert artifacts == {"nbops/record.json", "nbops/cell.py"}
    assert run.info.artifact_uri.startswith((store.config.project_root / "mlartifacts").as_uri())


def test_writing_the_same_entry_twice_keeps_one_run(store: Store) -> None:
    record = _record("twice")
    entry = store.spool.put(record)
    first = store.tracker.write(entry)
    second = store.tracker.write(entry)
    assert first == second
    assert len(_runs_of(store, record)) == 1


def test_an_interrupted_write_is_finished_not_duplicated(store: Store) -> None:
    """A crash after create_run left a RUNNING run with part of the data."""
    record = _record("interrupted")
    experiment = store.client.get_experiment_by_name(record.experiment)
    if experiment is None:
        store.tracker.write(store.spool.put(_record("setup")))
        experiment = store.client.get_experiment_by_name(record.experiment)
    partial = store.client.create_run(
        experiment.experiment_id, tags={TAG_RECORD_ID: record.record_id}, run_name="interrupted"
    )
    store.client.log_param(partial.info.run_id, "lr", "0.1")
    store.client.log_metric(partial.info.run_id, "acc", 0.91)

    assert store.tracker.write(store.spool.put(record)) == partial.info.run_id
    (run,) = _runs_of(store, record)
    assert run.info.status == "FINISHED"
    assert run.data.params["layers"] == "[64, 32]"
    history = store.client.get_metric_history(run.info.run_id, "acc")
    assert len(history) == 1  # not logged a second time


def test_list_and_get_round_trip(store: Store) -> None:
    experiment = "roundtrip.ipynb"
    old = _record("shared-name", experiment, start=1_000.0, end=1_001.0)
    new = _record("shared-name", experiment, start=2_000.0, end=2_001.0, status="FAILED")
    new.error = "ValueError: boom"
    for record in (old, new):
        store.tracker.write(store.spool.put(record))

    listed = store.tracker.list_runs(experiment)
    assert [r.record_id for r in listed] == [new.record_id, old.record_id]  # newest first
    top = listed[0]
    assert top.status == "FAILED" and top.error == "ValueError: boom"
    assert top.experiment == experiment and top.start == 2_000.0 and top.end == 2_001.0
    assert top.params["lr"] == "0.1" and top.metrics["acc"] == pytest.approx(0.91)
    assert {(d.name, d.role, d.fingerprint) for d in top.data} == {
        ("df", "input", "xxh3:0123456789abcdef"),
        ("data/out.csv", "output", None),
    }
    assert top.context.notebook == "train.ipynb" and top.tags == {"team": "ml"}
    assert new.record_id in {r.record_id for r in store.tracker.list_runs()}  # all experiments
    assert store.tracker.list_runs("no-such-experiment") == []

    full = store.tracker.get_run(old.run_id or "")
    assert full.record_id == old.record_id
    assert full.params["layers"] == [64, 32]  # typed again: read from record.json
    assert full.code == "model.fit(df)\n" and full.status == "FINISHED"
    assert store.tracker.get_run((old.run_id or "")[:8]).record_id == old.record_id
    assert store.tracker.get_run("shared-name").record_id == new.record_id  # newest wins
    assert store.tracker.get_run(old.record_id).run_id == old.run_id


def test_unknown_ref_raises_run_not_found_with_recent_runs(store: Store) -> None:
    store.tracker.write(store.spool.put(_record("some-run")))
    with pytest.raises(RunNotFoundError, match="no run matches 'nope'") as info:
        store.tracker.get_run("nope")
    assert "recent runs" in str(info.value) and "nbops runs" in info.value.fix


def test_ambiguous_prefix_lists_candidates(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two real run ids sharing 6 characters are too rare to wait for: stub the prefix search."""
    ids = ["abcdef0000000000000000000000000a", "abcdef0000000000000000000000000b"]
    real_search = RunLookup._search  # the tracker's reads go through a RunLookup

    def search(self: RunLookup, experiment_ids: list[str], filter_string: str, limit: int) -> list:  # type: ignore[type-arg]
        if "LIKE 'abcdef%'" in filter_string:
            return [_RunStub(i) for i in ids]
        return real_search(self, experiment_ids, filter_string, limit)

    monkeypatch.setattr(RunLookup, "_search", search)
    with pytest.raises(RunNotFoundError, match="matches 2 runs") as info:
        store.tracker.get_run("abcdef")
    assert all(i in str(info.value) for i in ids)


@dataclass
class _RunInfoStub:
    run_id: str
    run_name: str = "stub"


class _RunStub:
    def __init__(self, run_id: str) -> None:
        self.info = _RunInfoStub(run_id)


def test_model_payload_is_logged_and_loads_back(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sklearn.datasets import load_wine
    from sklearn.ensemble import RandomForestClassifier

    x, y = load_wine(return_X_y=True, as_frame=True)
    model = RandomForestClassifier(n_estimators=3, random_state=0).fit(x, y)
    record = _record("forest", model=ModelRef("model", "sklearn", "RandomForestClassifier"))
    entry = store.spool.put(record, {"model": model, "input_example": x.head(5)})
    fluent_before = mlflow.get_tracking_uri()

    run_id = store.tracker.write(entry)

    assert mlflow.get_tracking_uri() == fluent_before  # no global MLflow state touched
    [output] = store.client.get_run(run_id).outputs.model_outputs
    assert store.tracker.get_run(run_id).model == ModelRef(
        "model", "sklearn", "RandomForestClassifier", "model", logged=True, model_id=output.model_id
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.config.tracking_uri)
    loaded = mlflow.pyfunc.load_model(f"models:/{output.model_id}")
    assert list(loaded.predict(x.head(3))) == list(model.predict(x.head(3)))
    assert loaded.metadata.signature is not None


def test_unusable_store_fails_fast_keeps_the_entry_and_sync_delivers_later(
    tmp_path: Path,
) -> None:
    config = Config(project_root=tmp_path, tracking_uri=default_tracking_uri(tmp_path))
    (tmp_path / "mlflow.db").mkdir()  # the SQLite file cannot be opened
    spool = Spool(config.state_dir)
    record = _record("offline")
    entry = spool.put(record)

    started = time.monotonic()
    with pytest.raises(StoreError, match="is a directory") as info:
        MlflowTracker(config).write(entry)
    assert time.monotonic() - started < 5  # MLflow alone retries such a store for ~100 s
    assert "nbops sync" in info.value.fix
    report = sync(config)
    assert [r.record_id for r, _ in report.failed] == [record.record_id] and not report.ok
    assert [e.record_id for e in spool.pending()] == [record.record_id]

    (tmp_path / "mlflow.db").rmdir()  # fixed
    report = sync(config)
    assert [r.record_id for r in report.delivered] == [record.record_id] and report.ok
    assert spool.pending() == []
    assert MlflowTracker(config).get_run("offline").record_id == record.record_id


def test_a_file_in_the_store_path_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("not a folder", encoding="utf-8")
    config = Config(project_root=tmp_path, tracking_uri=f"sqlite:///{tmp_path}/blocker/mlflow.db")
    with pytest.raises(StoreError, match="is a file"):
        MlflowTracker(config).list_runs()


def test_other_sqlite_store_keeps_artifacts_next_to_it_not_in_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    db = tmp_path / "shared" / "store.db"
    config = Config(project_root=tmp_path / "project", tracking_uri=f"sqlite:///{db}")
    record = _record("no-experiment", experiment=None)  # type: ignore[arg-type]

    tracker = MlflowTracker(config)
    tracker.write(Spool(config.state_dir).put(record))

    run = tracker.get_run(record.run_id or "")
    assert run.experiment == "nbops"
    assert (db.parent / "mlartifacts").is_dir()
    assert list(cwd.iterdir()) == []


_CONCURRENT_WRITER = """
import sys, time
from pathlib import Path
from nbops.config import Config, default_tracking_uri
from nbops.record import RunRecord
from nbops.store import MlflowTracker, Spool
from nbops.store.run_lookup import RunLookup
root = Path(sys.argv[1])
config = Config(project_root=root, tracking_uri=default_tracking_uri(root))
spool, tracker = Spool(root / sys.argv[2]), MlflowTracker(config)
for i in range(3):
    now = time.time()
    record = RunRecord(name=f"w{sys.argv[2]}-{i}", experiment="race", status="FINISHED",
                       start=now, end=now, params={"i": i})
    tracker.write(spool.put(record))
"""


def test_concurrent_first_use_of_a_new_store_does_not_break_it(tmp_path: Path) -> None:
    """MLflow's migrations race when processes open a new SQLite file at once (a kernel and
    `nbops sync`, parallel pipeline steps); nbops serializes the set-up."""
    import subprocess
    import sys

    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CONCURRENT_WRITER, str(tmp_path), str(n)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(3)
    ]
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err[-2000:]
    config = Config(project_root=tmp_path, tracking_uri=default_tracking_uri(tmp_path))
    assert len(MlflowTracker(config).list_runs("race")) == 9


def test_locked_database_is_retried_then_reported(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from nbops.store import mlflow_store

    monkeypatch.setattr(mlflow_store, "LOCK_RETRY_DELAYS", (0.01, 0.01))
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("write failed") from sqlite3.OperationalError("database is locked")
        return "ok"

    assert store.tracker._retrying(flaky) == "ok" and len(calls) == 3

    def locked() -> str:
        raise sqlite3.OperationalError("database is locked")

    with pytest.raises(StoreError, match="database is locked"):
        store.tracker._reading("list runs", locked)
