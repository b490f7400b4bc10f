"""A run written now comes back with its id even when a sweep of the spool runs the moment it
is spooled. The model gate registers that id; a sweep by ``nbops run``'s deliverer that took
the entry first left the gate with "the run could not be written: nothing registered" while
the run itself said the gate passed (course notebook 05, intermittently)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from nbops.config import Config, default_tracking_uri
from nbops.errors import StoreError
from nbops.pipeline.stage_run import write_now
from nbops.record import RunRecord
from nbops.session import Session
from nbops.store.spool import SpoolEntry
from nbops.store.sync import sync


class Tracker:
    def __init__(self, name: str) -> None:
        self.name, self.written = name, []  # type: tuple[str, list[str]]

    def write(self, entry: SpoolEntry) -> str:
        self.written.append(entry.record_id)
        return f"{self.name}-{entry.record_id[:6]}"

    def list_runs(self, experiment: str | None = None, max_results: int = 1000) -> list[RunRecord]:
        return []

    def get_run(self, ref: str) -> RunRecord:
        raise LookupError(ref)


def test_a_sweep_as_the_entry_appears_does_not_take_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = Config(project_root=tmp_path, tracking_uri=default_tracking_uri(tmp_path))
    session, gate, sweeper = Session(config), Tracker("gate"), Tracker("sweep")
    record = RunRecord(name="validate_model", experiment="p", status="FINISHED", start=time.time())
    rename, swept = os.rename, []

    def rename_then_sweep(src: str | Path, dst: str | Path) -> None:
        rename(src, dst)
        if Path(dst).name == record.record_id and not swept:  # the entry just became visible
            swept.append(sync(config, sweeper))

    monkeypatch.setattr(os, "rename", rename_then_sweep)
    run_id = write_now(session, record, tracker=gate)

    assert swept and [r.name for r in swept[0].skipped] == ["validate_model"]
    assert run_id == f"gate-{record.record_id[:6]}"
    assert sweeper.written == [] and gate.written == [record.record_id]
    assert session.spool.pending() == []  # delivered once, and gone from the spool


class Down(Tracker):
    def write(self, entry: SpoolEntry) -> str:
        raise StoreError("could not write run validate_model: database is locked", fix="wait")


def test_a_failed_write_says_why_and_keeps_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The gate puts the cause in its reasons ("nothing registered" alone named none)."""
    config = Config(project_root=tmp_path, tracking_uri=default_tracking_uri(tmp_path))
    session, why = Session(config), []  # type: tuple[Session, list[str]]
    record = RunRecord(name="validate_model", experiment="p", status="FINISHED", start=time.time())

    assert write_now(session, record, tracker=Down("down"), why=why) is None
    assert len(why) == 1 and why[0].startswith("StoreError: could not write run validate_model")
    assert "database is locked" in why[0] and "fix: wait" in why[0]
    assert "`nbops sync` delivers it" in capsys.readouterr().err
    assert [e.record_id for e in session.spool.pending()] == [record.record_id]
