"""The local spool: every finished record is on disk before anything talks to MLflow.

A spool entry is a folder ``<state_dir>/spool/<record_id>/`` holding ``record.json`` and, when a
model was captured, ``model.pkl``. Entries are built in a hidden temp folder and renamed into
place, so a crash leaves either a whole entry or none. An entry leaves the spool only after the
store has accepted it; until then ``nbops sync`` (or the next successful write) delivers it.
Two processes (a kernel's writer and ``nbops sync``) may look at the same spool: ``claim``
takes a per-entry ``flock`` so an entry is delivered by one of them only.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbops.capture.redact import redact_params
from nbops.record import RunRecord

log = logging.getLogger(__name__)

RECORD_FILE = "record.json"
PAYLOAD_FILE = "model.pkl"
LOCK_FILE = ".lock"
QUARANTINE_DIR = ".quarantine"
_TMP_PREFIX = ".tmp-"
_TRASH_PREFIX = ".trash-"
_STALE_SECONDS = 24 * 3600  # leftovers of crashed puts/removes older than this are deleted


@dataclass
class SpoolEntry:
    """One undelivered record on disk; ``record`` is loaded, the payload only on demand."""

    path: Path
    record: RunRecord
    has_payload: bool

    @property
    def record_id(self) -> str:
        return self.record.record_id

    def exists(self) -> bool:
        return (self.path / RECORD_FILE).is_file()

    def load_payload(self) -> dict[str, Any] | None:
        """Unpickle the model payload (it was frozen at ``put`` time), or None if there is none."""
        if not self.has_payload:
            return None
        import cloudpickle  # lazy: only the writer thread needs it

        with (self.path / PAYLOAD_FILE).open("rb") as handle:
            return cloudpickle.load(handle)


class Spool:
    """The folder of records not yet accepted by the tracking store."""

    def __init__(self, state_dir: Path) -> None:
        self.root = Path(state_dir) / "spool"

    def put(self, record: RunRecord, payload: dict[str, Any] | None = None) -> SpoolEntry:
        """Write ``record`` (and its model payload) atomically; return the new entry.

        Secret-looking params are redacted here, the one place every record passes on its way
        to the store (captured runs are redacted earlier; a pipeline's params.yaml is not).

        The payload is pickled now, so later changes to the user's objects do not change what
        was recorded. A payload that cannot be pickled does not lose the record: the record is
        kept without it and says why in ``record.warnings``.
        """
        record.params = redact_params(record.params)
        final = self.root / record.record_id
        tmp = self.root / f"{_TMP_PREFIX}{record.record_id}-{os.getpid()}"
        try:
            tmp.mkdir()
        except FileNotFoundError:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp.mkdir()
        try:
            has_payload = payload is not None and _dump_payload(payload, tmp / PAYLOAD_FILE, record)
            _write_text(tmp / RECORD_FILE, record.to_json())
            if final.exists():  # the same record spooled again (a retry): replace it
                self._discard(final)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return SpoolEntry(final, record, has_payload)

    def pending(self) -> list[SpoolEntry]:
        """Entries waiting for delivery, oldest first; unreadable ones are quarantined."""
        if not self.root.is_dir():
            return []
        entries = []
        for path in self.root.iterdir():
            if path.name.startswith("."):
                self._clean_leftover(path)
                continue
            entry = self._load(path)
            if entry is not None:
                entries.append(entry)
        entries.sort(key=lambda e: (e.record.start, _mtime(e.path), e.path.name))
        return entries

    def get(self, record_id: str) -> SpoolEntry | None:
        """The pending entry of one record, if it is still in the spool."""
        path = self.root / record_id
        return self._load(path) if path.is_dir() else None

    def rewrite(self, entry: SpoolEntry) -> None:
        """Save changes to ``entry.record`` (context completed before delivery) atomically, so
        a failed delivery keeps them."""
        target = entry.path / RECORD_FILE
        tmp = entry.path / f"{_TMP_PREFIX}{RECORD_FILE}"
        _write_text(tmp, entry.record.to_json())
        os.replace(tmp, target)

    def remove(self, entry: SpoolEntry) -> None:
        """Drop a delivered entry (renamed away first, so a crash never leaves half of it)."""
        if entry.path.exists():
            self._discard(entry.path)

    @contextlib.contextmanager
    def claim(self, entry: SpoolEntry) -> Iterator[bool]:
        """Hold the entry's lock; yield False if another process (or thread) holds it or the
        entry is already gone, so each entry is delivered once."""
        try:
            fd = os.open(entry.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        except (FileNotFoundError, NotADirectoryError):
            yield False  # delivered and removed meanwhile
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            # The holder before us may have delivered and removed it while we waited to lock.
            yield entry.exists()
        finally:
            os.close(fd)  # closing releases the flock

    def _load(self, path: Path) -> SpoolEntry | None:
        try:
            text = (path / RECORD_FILE).read_text(encoding="utf-8")
            record = RunRecord.from_json(text)
        except FileNotFoundError:
            if not path.exists():
                return None  # removed by another process while we listed
            self._quarantine(path, "no record.json")
            return None
        except (OSError, ValueError, TypeError) as exc:
            self._quarantine(path, f"{type(exc).__name__}: {exc}")
            return None
        return SpoolEntry(path, record, (path / PAYLOAD_FILE).is_file())

    def _quarantine(self, path: Path, why: str) -> None:
        """Move an unreadable entry aside (kept for inspection, never retried)."""
        target = self.root / QUARANTINE_DIR / f"{path.name}-{uuid.uuid4().hex[:8]}"
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(path, target)
        except OSError as exc:
            log.warning("nbops: unreadable spool entry %s (%s) stays put: %s", path, why, exc)
            return
        log.warning("nbops: spool entry %s is unreadable (%s); moved to %s", path.name, why, target)

    def _discard(self, path: Path) -> None:
        trash = self.root / f"{_TRASH_PREFIX}{path.name}-{uuid.uuid4().hex[:8]}"
        os.rename(path, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def _clean_leftover(self, path: Path) -> None:
        """Delete temp/trash folders a crashed process left behind, once they are old."""
        if not path.name.startswith((_TMP_PREFIX, _TRASH_PREFIX)):
            return
        if time.time() - _mtime(path) > _STALE_SECONDS:
            shutil.rmtree(path, ignore_errors=True)


def _dump_payload(payload: dict[str, Any], target: Path, record: RunRecord) -> bool:
    import cloudpickle  # lazy: keeps `import nbops` light

    try:
        data = cloudpickle.dumps(payload)
    except Exception as exc:  # an unpicklable model must not lose the record itself
        record.warnings.append(f"model not recorded: it cannot be pickled ({exc})")
        if record.model is not None:
            record.model.logged = False
        return False
    target.write_bytes(data)
    return True


def _write_text(target: Path, text: str) -> None:
    """No fsync: the rename makes the entry atomic against a dying kernel, which is the risk
    here; fsync would cost the cell ~0.6 ms for protection against a power cut only."""
    target.write_text(text, encoding="utf-8")


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
