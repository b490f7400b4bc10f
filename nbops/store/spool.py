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

from nbops.capture.redact import redact_record
from nbops.record import RunRecord

log = logging.getLogger(__name__)

RECORD_FILE = "record.json"
PAYLOAD_FILE = "model.pkl"
LOCK_FILE = ".lock"
REASON_FILE = "reason.txt"
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
            payload: dict[str, Any] | None = cloudpickle.load(handle)
            return payload


@dataclass
class MemoryEntry:
    """A record that could not be spooled (disk full, unwritable ``.nbops/``), delivered
    straight from memory; trackers treat it like a :class:`SpoolEntry`."""

    record: RunRecord
    payload: dict[str, Any] | None = None
    path: Path | None = None

    @property
    def record_id(self) -> str:
        return self.record.record_id

    @property
    def has_payload(self) -> bool:
        return self.payload is not None

    def exists(self) -> bool:
        return True

    def load_payload(self) -> dict[str, Any] | None:
        return self.payload


@dataclass
class Quarantined:
    """An entry set aside because it can never be delivered as it is, and why."""

    path: Path
    record_id: str
    reason: str


class Spool:
    """The folder of records not yet accepted by the tracking store."""

    def __init__(self, state_dir: Path) -> None:
        self.root = Path(state_dir) / "spool"

    def put(self, record: RunRecord, payload: dict[str, Any] | None = None) -> SpoolEntry:
        """Write ``record`` (and its model payload) atomically; return the new entry.

        Every stored string is redacted here (``redact_record``: params at any depth, tags,
        error, warnings, code), the one place every record passes on its way to any store
        (captured runs are redacted earlier too; a pipeline's or a gate's are not).

        The payload is pickled now, so later changes to the user's objects do not change what
        was recorded. A payload that cannot be pickled does not lose the record: the record is
        kept without it and says why in ``record.warnings``.
        """
        return self._put(record, payload)[0]

    @contextlib.contextmanager
    def put_claimed(
        self, record: RunRecord, payload: dict[str, Any] | None = None
    ) -> Iterator[SpoolEntry]:
        """:meth:`put`, with the entry's claim held from before it is visible until the block
        ends: a writer that needs the run id (the model gate registers that run) delivers
        its entry itself, and a sweep of the spool in between (``nbops run``'s deliverer,
        ``nbops sync``) passes it by instead of taking it."""
        entry, fd = self._put(record, payload, claim=True)
        try:
            yield entry
        finally:
            if fd is not None:
                os.close(fd)  # closing releases the flock

    def _put(
        self, record: RunRecord, payload: dict[str, Any] | None, claim: bool = False
    ) -> tuple[SpoolEntry, int | None]:
        """The entry, and with ``claim`` the open lock that holds it (taken before the
        rename, on the file that is the entry's lock once it is in place)."""
        redact_record(record)
        final = self.root / record.record_id
        tmp = self.root / f"{_TMP_PREFIX}{record.record_id}-{os.getpid()}"
        try:
            tmp.mkdir()
        except FileNotFoundError:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp.mkdir()
        fd = None
        try:
            if claim:
                fd = _open_lock(tmp)
                fcntl.flock(fd, fcntl.LOCK_EX)
            has_payload = payload is not None and _dump_payload(payload, tmp / PAYLOAD_FILE, record)
            _write_text(tmp / RECORD_FILE, record.to_json())
            if final.exists():  # the same record spooled again (a retry): replace it
                self._discard(final)
            os.rename(tmp, final)
        except BaseException:
            if fd is not None:
                os.close(fd)
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return SpoolEntry(final, record, has_payload), fd

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
            fd = _open_lock(entry.path)
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

    def quarantine(self, entry: SpoolEntry, why: str) -> Path | None:
        """Set aside an entry the store refuses for good (with ``reason.txt``), so it never
        blocks the records behind it; ``restore_quarantined`` puts it back."""
        return self._quarantine(entry.path, why)

    def quarantined(self) -> list[Quarantined]:
        folder = self.root / QUARANTINE_DIR
        if not folder.is_dir():
            return []
        found = []
        for path in sorted(folder.iterdir()):
            try:
                reason = (path / REASON_FILE).read_text(encoding="utf-8").strip()
            except OSError:
                reason = "unknown (no reason.txt)"
            found.append(Quarantined(path, path.name.rsplit("-", 1)[0], reason))
        return found

    def restore_quarantined(self) -> list[str]:
        """Move every quarantined entry back into the spool (``nbops sync
        --retry-quarantined``, after the cause was fixed); returns their record ids."""
        restored = []
        for item in self.quarantined():
            target = self.root / item.record_id
            if target.exists():
                continue
            try:
                os.rename(item.path, target)
            except OSError as exc:
                log.warning("nbops: could not restore %s: %s", item.path, exc)
                continue
            (target / REASON_FILE).unlink(missing_ok=True)
            restored.append(item.record_id)
        return restored

    def _load(self, path: Path) -> SpoolEntry | None:
        try:
            text = (path / RECORD_FILE).read_text(encoding="utf-8")
            record = RunRecord.from_json(text)
            problem = record_shape_problem(record)
        except FileNotFoundError:
            if not path.exists():
                return None  # removed by another process while we listed
            self._quarantine(path, "no record.json")
            return None
        except Exception as exc:  # any content at all: `[]`, `null`, a wrong-typed field...
            self._quarantine(path, f"unreadable record.json: {type(exc).__name__}: {exc}")
            return None
        if problem:
            self._quarantine(path, f"malformed record.json: {problem}")
            return None
        return SpoolEntry(path, record, (path / PAYLOAD_FILE).is_file())

    def _quarantine(self, path: Path, why: str) -> Path | None:
        """Move an entry aside with the reason (kept for inspection, never retried alone)."""
        target = self.root / QUARANTINE_DIR / f"{path.name}-{uuid.uuid4().hex[:8]}"
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(path, target)
        except OSError as exc:
            log.warning("nbops: spool entry %s (%s) stays put: %s", path, why, exc)
            return None
        with contextlib.suppress(OSError):
            (target / REASON_FILE).write_text(why + "\n", encoding="utf-8")
        log.warning("nbops: spool entry %s set aside (%s); kept in %s", path.name, why, target)
        return target

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


# Field -> accepted types: a record whose fields have other types is quarantined on load (it
# would crash every reader and block every delivery behind it).
_SHAPE: dict[str, tuple[type, ...]] = {
    "record_id": (str,),
    "name": (str, type(None)),
    "experiment": (str, type(None)),
    "status": (str,),
    "start": (int, float),
    "end": (int, float, type(None)),
    "params": (dict,),
    "metrics": (dict,),
    "data": (list,),
    "code": (str,),
    "code_hash": (str,),
    "error": (str, type(None)),
    "warnings": (list,),
    "tags": (dict,),
    "run_id": (str, type(None)),
    "source": (str,),
    "store": (str,),
}
_STATUSES = ("RUNNING", "FINISHED", "FAILED", "KILLED")


def record_shape_problem(record: RunRecord) -> str | None:
    """What is wrong with a record's field types (None when it is well formed)."""
    for name, kinds in _SHAPE.items():
        value = getattr(record, name)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            return f"{name} is {type(value).__name__}"
    if not record.record_id or not all(c.isalnum() or c in "-_" for c in record.record_id):
        return f"record_id {record.record_id[:40]!r} is not an id"
    if record.status not in _STATUSES:
        return f"status {record.status[:40]!r}"
    if not all(isinstance(k, str) for k in (*record.params, *record.metrics, *record.tags)):
        return "a param, metric or tag name is not a string"
    if not all(isinstance(v, int | float) for v in record.metrics.values()):
        return "a metric is not a number"
    if not all(isinstance(w, str) for w in record.warnings):
        return "a warning is not text"
    return None


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


def _open_lock(folder: Path) -> int:
    """The entry's lock file, opened (created if missing) for ``flock``."""
    return os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)


def _write_text(target: Path, text: str) -> None:
    """No fsync: the rename makes the entry atomic against a dying kernel, which is the risk
    here; fsync would cost the cell ~0.6 ms for protection against a power cut only."""
    target.write_text(text, encoding="utf-8")


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
