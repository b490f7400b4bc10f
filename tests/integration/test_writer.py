"""The writer delivers spooled records off the caller's thread, reports failures without
raising, keeps failed entries for later, and never double-delivers across processes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from nbops.config import Config, default_tracking_uri
from nbops.errors import StoreError
from nbops.record import Context, RunRecord
from nbops.store import Spool, SpoolEntry, Writer, sync
from nbops.store.spool import LOCK_FILE


class FakeTracker:
    """Records writes; fails while ``failing`` is set; blocks while ``gate`` is clear."""

    def __init__(self) -> None:
        self.written: list[str] = []
        self.failing = False
        self.gate = threading.Event()
        self.gate.set()
        self.threads: set[str] = set()
        self.attempts = 0

    def write(self, entry: SpoolEntry) -> str:
        self.attempts += 1
        self.threads.add(threading.current_thread().name)
        assert self.gate.wait(10)
        if self.failing:
            raise StoreError("store down", fix="start it")
        self.written.append(entry.record_id)
        entry.record.run_id = "run-" + entry.record_id[:6]
        return entry.record.run_id

    def list_runs(self, experiment: str | None = None, max_results: int = 1000) -> list[RunRecord]:
        return []

    def get_run(self, ref: str) -> RunRecord:
        raise NotImplementedError


def _record(name: str = "cell") -> RunRecord:
    now = time.time()
    return RunRecord(name=name, experiment="nb", status="FINISHED", start=now, end=now)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(project_root=tmp_path, tracking_uri=default_tracking_uri(tmp_path))


def test_async_submit_returns_at_once_and_flush_waits(config: Config) -> None:
    tracker = FakeTracker()
    tracker.gate.clear()  # the store is slow
    writer = Writer(config, lambda _config: tracker)
    done: list[tuple[RunRecord, BaseException | None]] = []
    entry = writer.spool.put(_record())

    started = time.monotonic()
    writer.submit(entry, lambda record, exc: done.append((record, exc)))
    assert time.monotonic() - started < 0.1
    assert done == []
    tracker.gate.set()

    assert writer.flush(timeout=10) == []
    assert done == [(entry.record, None)] and entry.record.run_id == "run-" + entry.record_id[:6]
    assert tracker.threads == {"nbops-writer"}
    assert writer.spool.pending() == []
    writer.close()


def test_flush_timeout_returns_without_waiting_forever(config: Config) -> None:
    tracker = FakeTracker()
    tracker.gate.clear()
    writer = Writer(config, lambda _config: tracker)
    writer.submit(writer.spool.put(_record()))
    started = time.monotonic()
    assert writer.flush(timeout=0.2) == []
    assert time.monotonic() - started < 2
    tracker.gate.set()
    writer.close()


def test_failure_is_reported_not_raised_and_the_entry_stays(config: Config) -> None:
    tracker = FakeTracker()
    tracker.failing = True
    writer = Writer(config, lambda _config: tracker)
    done: list[tuple[RunRecord, BaseException | None]] = []
    entry = writer.spool.put(_record())

    writer.submit(entry, lambda record, exc: done.append((record, exc)))
    failures = writer.flush(timeout=10)

    assert [(r.record_id, type(e)) for r, e in failures] == [(entry.record_id, StoreError)]
    assert done[0][0] is entry.record and isinstance(done[0][1], StoreError)
    assert [e.record_id for e in writer.spool.pending()] == [entry.record_id]
    assert writer.flush(timeout=10) == []  # failures are returned once
    writer.close()


def test_next_successful_write_delivers_the_backlog(config: Config) -> None:
    tracker = FakeTracker()
    writer = Writer(config, lambda _config: tracker)
    writer.backlog_min_age = 0.0
    tracker.failing = True
    first = writer.spool.put(_record("first"))
    writer.submit(first)
    assert len(writer.flush(timeout=10)) == 1

    tracker.failing = False
    second = writer.spool.put(_record("second"))
    writer.submit(second)
    assert writer.flush(timeout=10) == []
    assert tracker.written == [second.record_id, first.record_id]
    assert writer.spool.pending() == []
    writer.close()


def test_sync_mode_writes_on_the_callers_thread(config: Config) -> None:
    tracker = FakeTracker()
    writer = Writer(replace(config, async_write=False), lambda _config: tracker)
    entry = writer.spool.put(_record())
    writer.submit(entry)
    assert tracker.written == [entry.record_id]
    assert tracker.threads == {threading.current_thread().name}
    assert writer.flush() == []


def test_a_broken_tracker_factory_never_raises_into_the_caller(config: Config) -> None:
    def factory(_config: Config) -> FakeTracker:
        raise RuntimeError("cannot build a tracker")

    writer = Writer(replace(config, async_write=False), factory)
    entry = writer.spool.put(_record())
    writer.submit(entry)  # no exception
    (failure,) = writer.flush()
    assert isinstance(failure[1], RuntimeError)
    assert writer.spool.pending()[0].record_id == entry.record_id


def test_the_completion_hook_runs_on_the_writer_thread_and_survives_a_failure(
    config: Config,
) -> None:
    """The session completes a record's context (git, packages) on the writer thread, under
    the entry's claim; a failed delivery keeps the completed record in the spool."""
    tracker = FakeTracker()
    tracker.failing = True
    seen: list[str] = []

    def complete(record: RunRecord, _config: Config) -> bool:
        seen.append(threading.current_thread().name)
        record.context = Context(git_commit="cafe", python="3")
        return True

    writer = Writer(config, lambda _config: tracker, complete=complete)
    writer.submit(writer.spool.put(_record()))
    assert len(writer.flush(timeout=10)) == 1
    assert seen == ["nbops-writer"]
    assert writer.spool.pending()[0].record.context.git_commit == "cafe"
    writer.close()


def test_an_entry_locked_by_another_process_is_not_delivered_twice(
    config: Config, hold_lock: Any
) -> None:
    spool = Spool(config.state_dir)
    entry = spool.put(_record())
    tracker = FakeTracker()
    holder = hold_lock(entry.path / LOCK_FILE)
    try:
        report = sync(config, tracker)
        assert [r.record_id for r in report.skipped] == [entry.record_id]
        writer = Writer(replace(config, async_write=False), lambda _config: tracker)
        writer.submit(entry)
        assert tracker.written == []
        assert [e.record_id for e in spool.pending()] == [entry.record_id]
    finally:
        holder.communicate("")
    report = sync(config, tracker)
    assert [r.record_id for r in report.delivered] == [entry.record_id]
    assert tracker.written == [entry.record_id] and spool.pending() == []


class Store(FakeTracker):
    """A tracker over one store that several processes write to (``runs``: record -> run)."""

    def __init__(self, runs: dict[str, str]) -> None:
        super().__init__()
        self.runs = runs

    def write(self, entry: SpoolEntry) -> str:
        self.runs[entry.record_id] = super().write(entry)
        return self.runs[entry.record_id]

    def get_run(self, ref: str) -> RunRecord:
        return RunRecord(record_id=ref, run_id=self.runs[ref])


def test_an_entry_another_process_delivers_still_gets_its_run_id(
    config: Config, hold_lock: Any
) -> None:
    """`nbops sync` or `nbops run`'s deliverer took the cell's entry: the cell's summary still
    links the run it wrote (it used to say "not stored" of a stored run)."""
    runs: dict[str, str] = {}
    writer, record, done = Writer(config, lambda _config: Store(runs)), _record(), []
    entry = writer.spool.put(record)
    holder = hold_lock(entry.path / LOCK_FILE)  # the other process has it...
    try:
        writer.submit(entry, lambda r, error: done.append((r.run_id, error)))
        time.sleep(0.5)
        assert done == []  # ...so the writer waits for it
        other = Spool(config.state_dir).get(record.record_id)
        assert other is not None
        runs[record.record_id] = "written-elsewhere"  # the other process delivers it
        Spool(config.state_dir).remove(other)
    finally:
        holder.communicate("")
    assert writer.flush(timeout=10) == []
    assert done == [("written-elsewhere", None)] and record.run_id == "written-elsewhere"
    writer.close()


def test_an_entry_another_process_lets_go_undelivered_is_delivered_here(
    config: Config, hold_lock: Any
) -> None:
    runs: dict[str, str] = {}
    tracker = Store(runs)
    writer, record = Writer(config, lambda _config: tracker), _record()
    entry = writer.spool.put(record)
    holder = hold_lock(entry.path / LOCK_FILE)  # a `nbops sync` that fails and lets go
    try:
        writer.submit(entry)
        time.sleep(0.5)
    finally:
        holder.communicate("")
    assert writer.flush(timeout=10) == []
    assert tracker.written == [record.record_id] and record.run_id == runs[record.record_id]
    assert writer.spool.pending() == []
    writer.close()


def test_real_store_in_a_fresh_process(tmp_path: Path) -> None:
    """The real path: importing nbops.store and submitting do not import mlflow on the
    caller's thread; the atexit flush still writes the run before the process ends."""
    script = textwrap.dedent(
        f"""
        import json, sys, time
        from pathlib import Path
        from nbops.config import Config, default_tracking_uri
        from nbops.record import RunRecord
        from nbops.store import Writer
        imported_early = "mlflow" in sys.modules
        root = Path({str(tmp_path)!r})
        config = Config(project_root=root, tracking_uri=default_tracking_uri(root))
        writer = Writer(config)
        now = time.time()
        record = RunRecord(name="fresh", experiment="nb", status="FINISHED", start=now, end=now,
                           params={{"lr": 0.1}}, metrics={{"acc": 0.5}})
        t0 = time.perf_counter()
        entry = writer.spool.put(record)
        t1 = time.perf_counter()
        writer.submit(entry)
        t2 = time.perf_counter()
        print(json.dumps({{"put": t1 - t0, "submit": t2 - t1, "early": imported_early}}))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    timing = json.loads(out.stdout.strip().splitlines()[-1])
    assert not timing["early"]
    assert timing["submit"] < 0.2
    assert timing["put"] < 0.2
    assert Spool(tmp_path / ".nbops").pending() == []  # written by the atexit flush

    from nbops.store import MlflowTracker

    config = Config(project_root=tmp_path, tracking_uri=default_tracking_uri(tmp_path))
    (run,) = MlflowTracker(config).list_runs("nb")
    assert run.name == "fresh" and run.params == {"lr": "0.1"}


def test_sync_stops_trying_a_store_that_keeps_failing(config: Config) -> None:
    spool = Spool(config.state_dir)
    for n in range(5):
        spool.put(_record(f"r{n}"))
    tracker = FakeTracker()
    tracker.failing = True

    report = sync(config, tracker)

    assert tracker.attempts == 3
    assert len(report.failed) == 5 and "not attempted" in report.failed[-1][1]
    assert len(spool.pending()) == 5
    tracker.failing = False
    assert len(sync(config, tracker).delivered) == 5 and spool.pending() == []
