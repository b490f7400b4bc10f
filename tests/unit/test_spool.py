"""The spool keeps every record until delivery, atomically, and hands each entry out once."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from nbops.record import ModelRef, RunRecord
from nbops.store.spool import LOCK_FILE, QUARANTINE_DIR, RECORD_FILE, Spool


def _record(name: str = "fit", start: float | None = None) -> RunRecord:
    return RunRecord(
        name=name,
        experiment="nb",
        status="FINISHED",
        start=time.time() if start is None else start,
        end=time.time(),
        params={"lr": 0.1, "layers": [1, 2]},
        metrics={"acc": 0.9},
        code="x = 1\n",
    )


def test_put_writes_a_whole_entry_and_pending_reads_it_back(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    record = _record()
    entry = spool.put(record)

    assert entry.path == tmp_path / "spool" / record.record_id
    assert (entry.path / RECORD_FILE).is_file()
    assert not entry.has_payload
    assert [p.name for p in (tmp_path / "spool").iterdir()] == [record.record_id]  # no temp left
    (loaded,) = spool.pending()
    assert loaded.record == record
    assert loaded.load_payload() is None


def test_pending_is_oldest_first_and_remove_drops_the_entry(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    newer = spool.put(_record("b", start=200.0))
    older = spool.put(_record("a", start=100.0))

    assert [e.record.name for e in spool.pending()] == ["a", "b"]
    spool.remove(older)
    assert [e.record.name for e in spool.pending()] == ["b"]
    assert spool.get(newer.record_id) is not None
    assert spool.get(older.record_id) is None


def test_payload_is_frozen_at_put_time(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    model = {"weights": [1, 2, 3]}
    entry = spool.put(_record(), {"model": model, "input_example": [[1.0]]})
    model["weights"].append(4)  # the user keeps working on the object

    (loaded,) = spool.pending()
    assert loaded.has_payload
    assert loaded.load_payload() == {"model": {"weights": [1, 2, 3]}, "input_example": [[1.0]]}
    assert entry.load_payload() == loaded.load_payload()


def test_unpicklable_payload_keeps_the_record_and_says_why(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    record = _record()
    record.model = ModelRef("clf", "sklearn", "Odd")
    entry = spool.put(record, {"model": threading.Lock()})

    assert not entry.has_payload
    (loaded,) = spool.pending()
    assert "cannot be pickled" in loaded.record.warnings[0]
    assert loaded.record.model is not None and not loaded.record.model.logged


def test_unreadable_entry_is_quarantined_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path)
    good = spool.put(_record())
    broken = tmp_path / "spool" / "broken"
    broken.mkdir()
    (broken / RECORD_FILE).write_text("{not json", encoding="utf-8")

    with caplog.at_level(logging.WARNING):
        pending = spool.pending()

    assert [e.record_id for e in pending] == [good.record_id]
    assert not broken.exists()
    assert len(list((tmp_path / "spool" / QUARANTINE_DIR).iterdir())) == 1
    assert "unreadable" in caplog.text


def test_claim_is_exclusive_and_false_once_the_entry_is_gone(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    entry = spool.put(_record())

    with spool.claim(entry) as first:
        assert first
        with spool.claim(entry) as second:  # flock conflicts across open files, same process too
            assert not second
        spool.remove(entry)
    with spool.claim(entry) as after:
        assert not after


def test_claim_held_by_another_process(tmp_path: Path, hold_lock: Any) -> None:
    spool = Spool(tmp_path)
    entry = spool.put(_record())
    holder = hold_lock(entry.path / LOCK_FILE)
    try:
        with spool.claim(entry) as mine:
            assert not mine
    finally:
        holder.communicate("")
    with spool.claim(entry) as mine:
        assert mine


def test_put_claimed_is_claimed_from_the_moment_it_is_visible(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    with spool.put_claimed(_record()) as entry:
        assert [e.record_id for e in spool.pending()] == [entry.record_id]  # listed...
        with spool.claim(entry) as other:  # ...but a sweep cannot take it
            assert not other
    with spool.claim(entry) as after:  # released at the end of the block
        assert after


def test_put_claimed_keeps_the_entry_and_releases_it_when_the_block_fails(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.put(_record("before"))  # the spool folder exists, so only the new entry could fail
    record = _record("bad")
    with pytest.raises(OSError), spool.put_claimed(record):
        raise OSError("disk full")  # the caller's block fails; the entry was put and stays
    entry = spool.get(record.record_id)
    assert entry is not None
    with spool.claim(entry) as mine:
        assert mine


def test_rewrite_saves_changes_to_the_record(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    entry = spool.put(_record())
    entry.record.context.git_commit = "cafe"
    spool.rewrite(entry)
    (loaded,) = spool.pending()
    assert loaded.record.context.git_commit == "cafe"
    assert sorted(p.name for p in entry.path.iterdir()) == [RECORD_FILE]
