"""Delivering spooled records to the tracking store off the cell's critical path.

The record is already safe in the spool when :meth:`Writer.submit` is called; the writer only
moves it to MLflow, on a daemon thread (or inline when ``async_write`` is off). A failure is
reported through ``on_done`` and :meth:`Writer.flush`, never raised into the user's cell, and
the entry stays in the spool for ``nbops sync`` or the next successful write. The tracker (and
with it ``import mlflow``, ~1.2 s) is created lazily on the writer thread.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from nbops.store.spool import RECORD_FILE, MemoryEntry, Spool, SpoolEntry
from nbops.store.sync import Complete, Finish, TrackerFactory, Trackers, deliver

if TYPE_CHECKING:
    from nbops.config import Config
    from nbops.record import RunRecord
    from nbops.store.protocol import Tracker

log = logging.getLogger(__name__)

OnDone = Callable[["RunRecord", BaseException | None], None]
# (entry, on_done, not before this time.monotonic()); (None, None, 0): warm the store
_Job = tuple[SpoolEntry | None, OnDone | None, float]


class Writer:
    """Background delivery of spool entries, in submission order, by one daemon thread."""

    backlog_min_age = 30.0  # seconds; younger pending entries may belong to a live writer
    backlog_max_attempts = 3  # per entry and session, so a rejected record is not retried forever
    adopt_wait = 30.0  # seconds to wait for another process delivering one of our entries

    def __init__(
        self,
        config: Config,
        tracker_factory: TrackerFactory | None = None,
        complete: Complete | None = None,
    ) -> None:
        self.config = config
        self.spool = Spool(config.state_dir)
        self._factory = tracker_factory
        self._trackers: Trackers | None = None  # made on the writer thread (imports mlflow)
        self._complete = complete
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._cond = threading.Condition()
        self._queued: dict[str, int] = {}  # record_id -> jobs not yet done
        self._failures: list[tuple[RunRecord, BaseException]] = []
        self._attempts: dict[str, int] = {}
        self._thread: threading.Thread | None = None
        self._closed = False
        _flush_at_exit(self)

    def submit(self, entry: SpoolEntry, on_done: OnDone | None = None, defer: float = 0.0) -> None:
        """Deliver ``entry``; returns at once in async mode. Never raises.

        ``defer`` seconds: start no sooner. A live kernel still has to send the cell's reply
        when the cell returns; a writer that takes the GIL at once (MLflow is Python) delays
        it by up to a switch interval per message, which the user feels and the run does not
        need.

        ``on_done(record, None)`` follows a success (``record.run_id`` set, or None when another
        process delivered it); ``on_done(record, exc)`` a failure (the entry stays spooled).
        The tracker's ``write`` runs under the entry's claim: a wrapper may complete the record
        there (and ``Spool.rewrite`` it) before delivering.
        """
        try:
            if not self.config.async_write or self._closed:
                self._process(entry, on_done)
                return
            with self._cond:
                self._queued[entry.record_id] = self._queued.get(entry.record_id, 0) + 1
            self._ensure_thread()
            self._queue.put((entry, on_done, time.monotonic() + defer))
        except Exception:  # a writer bug must not break the user's cell; the entry is spooled
            log.exception("nbops: could not submit %s; `nbops sync` delivers it", entry.path)

    def warm(self) -> None:
        """Import MLflow and open the store on the writer thread now (a headless kernel's
        first tracked cell then waits less). Never raises."""
        if not self.config.async_write or self._closed:
            return
        try:
            with self._cond:
                self._queued[""] = self._queued.get("", 0) + 1
            self._ensure_thread()
            self._queue.put((None, None, 0.0))
        except Exception:
            log.debug("nbops: could not warm the store", exc_info=True)

    def wait(self, record_id: str, timeout: float | None) -> bool:
        """Block until the record submitted as ``record_id`` is written or failed (or
        ``timeout``); True if it is done. Failures stay for :meth:`flush`/``take_failures``."""
        if threading.current_thread() is self._thread:
            return False
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while record_id in self._queued:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def deliver_now(self, entry: MemoryEntry) -> str | None:
        """Write a record that is not in the spool, on the calling thread, with a tracker of
        its own (trackers are not shared between threads); errors propagate."""
        trackers = Trackers(self.config, self._factory)
        tracker, config = trackers.for_record(entry.record)
        complete = self._complete
        return deliver(
            self.spool, entry, tracker, (lambda r: complete(r, config)) if complete else None
        )

    def take_failures(self) -> list[tuple[RunRecord, BaseException]]:
        """The failures since the last flush or take, without waiting for pending writes."""
        with self._cond:
            failures, self._failures = self._failures, []
        return failures

    def flush(self, timeout: float | None = None) -> list[tuple[RunRecord, BaseException]]:
        """Wait until everything submitted is written (or ``timeout``); return and forget the
        failures since the last flush."""
        if threading.current_thread() is not self._thread:
            deadline = None if timeout is None else time.monotonic() + timeout
            with self._cond:
                while self._queued:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        break
                    self._cond.wait(remaining)
        with self._cond:
            failures, self._failures = self._failures, []
            waiting = sum(self._queued.values())
        if waiting:
            log.warning(
                "nbops: %d record(s) not yet written to MLflow after %.0f s; they stay in %s "
                "and `nbops sync` delivers them",
                waiting,
                timeout or 0,
                self.spool.root,
            )
        return failures

    def close(self) -> None:
        """Flush (bounded by ``config.flush_timeout``) and stop the thread."""
        if self._closed:
            return
        self.flush(self.config.flush_timeout)
        self._closed = True
        if self._thread is not None:
            self._queue.put(None)

    def _at_exit(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: report, never raise
            log.exception("nbops: flushing records at exit failed; `nbops sync` delivers them")

    def _ensure_thread(self) -> None:
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="nbops-writer", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            entry, on_done, not_before = job
            key = entry.record_id if entry is not None else ""
            try:
                if entry is None:
                    self._warm()
                else:
                    time.sleep(max(0.0, not_before - time.monotonic()))
                    self._process(entry, on_done)
            except Exception:  # keep the thread alive for the next record
                log.exception("nbops: writer failed on %s", key or "warm-up")
            finally:
                with self._cond:
                    left = self._queued.pop(key, 1) - 1
                    if left > 0:
                        self._queued[key] = left
                    self._cond.notify_all()

    def _warm(self) -> None:
        tracker, _ = self._tracker_for_config()
        warm = getattr(tracker, "warm", None)
        if warm is not None:
            try:
                warm()
            except Exception as exc:  # the first write reports it, with the record
                log.debug("nbops: warming the store failed: %s", exc)

    def _tracker_for_config(self) -> tuple[object, Config]:
        from nbops.record import RunRecord

        probe = RunRecord(store=self.config.tracking_uri)
        probe.context.project_root = str(self.config.project_root)
        return self._trackers_made().for_record(probe)

    def _trackers_made(self) -> Trackers:
        if self._trackers is None:
            self._trackers = Trackers(self.config, self._factory)
        return self._trackers

    def _process(self, entry: SpoolEntry, on_done: OnDone | None) -> None:
        error = self._deliver(entry, adopt=threading.current_thread() is self._thread)
        if error is not None and getattr(error, "kind", "") == "refused":
            where = self.spool.quarantine(entry, str(error))
            if where is not None:
                entry.record.warnings.append(
                    f"MLflow refuses this run as recorded ({error}); it is set aside in "
                    f"{where} and `nbops sync --retry-quarantined` tries again"
                )
        if error is not None:
            with self._cond:
                self._failures.append((entry.record, error))
            log.debug("nbops: writing %s failed: %s", entry.record.record_id, error)
        if on_done is not None:
            try:
                on_done(entry.record, error)
            except Exception:
                log.exception("nbops: on_done callback failed for %s", entry.record.record_id)
        if error is None:
            self._drain_backlog()

    def _deliver(self, entry: SpoolEntry, adopt: bool = False) -> BaseException | None:
        try:
            tracker, config = self._trackers_made().for_record(entry.record)
            complete = self._complete
            finish = (lambda r: complete(r, config)) if complete else None
            if deliver(self.spool, entry, tracker, finish) is None and adopt:
                self._adopt(entry, tracker, finish)
        except Exception as exc:
            return exc
        return None

    def _adopt(self, entry: SpoolEntry, tracker: Tracker, finish: Finish | None) -> None:
        """Another process (``nbops sync``, ``nbops run``'s deliverer) took this entry: wait
        until it is done, then take the run id it wrote, so the cell's summary links the run
        instead of calling it "not stored"; if it let go undelivered, deliver it here. Only on
        the writer thread: inline writing (``async_write`` off) never makes a cell wait."""
        deadline = time.monotonic() + self.adopt_wait
        while time.monotonic() < deadline:
            if not entry.exists():
                with contextlib.suppress(Exception):  # found later by record id, as ever
                    found = tracker.get_run(entry.record_id)
                    entry.record.run_id = found.run_id
                    entry.record.experiment_id = found.experiment_id or entry.record.experiment_id
                return
            time.sleep(0.1)
            if deliver(self.spool, entry, tracker, finish) is not None:
                return

    def _drain_backlog(self) -> None:
        """The store works again: deliver older entries left by failed writes, once each, and
        yield to newly submitted records."""
        for entry in self.spool.pending():
            if not self._queue.empty():
                return
            if not self._is_backlog(entry):
                continue
            error = self._deliver(entry)
            if error is None:
                continue
            if getattr(error, "kind", "") == "refused":  # never blocks the others
                self.spool.quarantine(entry, str(error))
                continue
            self._attempts[entry.record_id] = self._attempts.get(entry.record_id, 0) + 1
            log.info("nbops: pending %s still fails: %s", entry.record_id, error)
            if getattr(error, "kind", "store") == "store":
                return  # a store that is down again costs time per attempt

    def _is_backlog(self, entry: SpoolEntry) -> bool:
        with self._cond:
            if entry.record_id in self._queued:
                return False
        if self._attempts.get(entry.record_id, 0) >= self.backlog_max_attempts:
            return False
        try:
            age = time.time() - (entry.path / RECORD_FILE).stat().st_mtime
        except OSError:
            return False
        return age >= self.backlog_min_age


def _flush_at_exit(writer: Writer) -> None:
    """Flush when the main thread ends, before ``concurrent.futures`` shuts down.

    Plain ``atexit`` runs too late: by then threading has begun shutting down, so importing
    mlflow on the writer thread fails ("can't register atexit after shutdown") and the last
    record of a short script would stay in the spool. ``threading._register_atexit`` hooks run
    first, in reverse order, so ours must be registered after concurrent.futures' own.
    """
    import concurrent.futures.thread  # noqa: F401  (registers its exit hook before ours)

    ref = weakref.ref(writer)

    def at_exit() -> None:
        alive = ref()
        if alive is not None:
            alive._at_exit()

    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        with contextlib.suppress(RuntimeError):  # a writer created during shutdown
            register(at_exit)
    atexit.register(at_exit)  # fallback; close() is idempotent
