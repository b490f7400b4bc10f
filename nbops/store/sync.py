"""Delivering spooled records: one entry (shared with the writer) or the whole spool.

``nbops sync`` calls :func:`sync` to deliver what a failed or interrupted write left behind.
Each entry is claimed first, so a kernel's writer and ``nbops sync`` never deliver one twice.
A record goes to the store it names (``record.store``, fixed where it ran) in the experiment it
names; only records spooled by an older nbops fall back to the deliverer's configuration.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from nbops.store.spool import MemoryEntry, Spool, SpoolEntry

if TYPE_CHECKING:
    from nbops.config import Config
    from nbops.record import RunRecord
    from nbops.store.protocol import Tracker

log = logging.getLogger(__name__)

# An unreachable MLflow server costs ~4 minutes per call (MLflow's own HTTP retries): after
# this many failures in a row the store is down, not the records.
MAX_FAILURES_IN_A_ROW = 3
Complete = Callable[["RunRecord", "Config"], bool]
Finish = Callable[["RunRecord"], bool]  # Complete with the config given: one record's context
TrackerFactory = Callable[["Config"], "Tracker"]


@dataclass
class SyncReport:
    """What one ``sync`` did; ``failed`` holds the error text per record."""

    delivered: list[RunRecord] = field(default_factory=list)
    failed: list[tuple[RunRecord, str]] = field(default_factory=list)
    skipped: list[RunRecord] = field(default_factory=list)  # another process was delivering it
    quarantined: list[tuple[RunRecord, str]] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)  # --retry-quarantined

    @property
    def ok(self) -> bool:
        return not self.failed

    def text(self, default_store: str) -> str:
        """What was delivered where, what failed or was set aside, and what to do next;
        ``default_store`` is named for records that name none."""
        lines = [f"restored {len(self.restored)} quarantined record(s)"] if self.restored else []
        stores = sorted({r.store or default_store for r in self.delivered})
        lines.append(f"delivered {len(self.delivered)} run(s) to {', '.join(stores) or 'MLflow'}")
        lines += [
            f"  {r.record_id[:8]} -> run {r.run_id} (experiment {r.experiment!r})"
            for r in self.delivered
        ]
        for record, reason in self.failed:
            lines.append(f"  FAILED {record.record_id[:8]}: {reason}")
        if self.failed:
            lines.append(
                "the records stay in .nbops/spool; fix the store and run `nbops sync` again (or "
                "send them to another store: `nbops sync --store URI`)"
            )
        for record, reason in self.quarantined:
            lines.append(f"  SET ASIDE {record.record_id[:8]}: MLflow refuses it: {reason}")
        if self.quarantined:
            lines.append(
                "set-aside records are kept in .nbops/spool/.quarantine with the reason; "
                "`nbops sync --retry-quarantined` tries them again"
            )
        if self.skipped:
            lines.append(f"  {len(self.skipped)} run(s) are being written by another process")
        return "\n".join(lines)


def record_config(record: RunRecord, config: Config) -> Config:
    """The configuration a record is delivered with: its own store and project root."""
    root = record.context.project_root
    changes: dict[str, object] = {}
    if record.store and record.store != config.tracking_uri:
        changes["tracking_uri"] = record.store
    if record.store and root and Path(root) != config.project_root:
        changes["project_root"] = Path(root)
    return replace(config, **changes) if changes else config  # type: ignore[arg-type]


def deliver(
    spool: Spool,
    entry: SpoolEntry | MemoryEntry,
    tracker: Tracker,
    complete: Finish | None = None,
    claimed: bool = False,
) -> str | None:
    """Write one entry and drop it from the spool; None if another process has it (or had it).

    ``complete`` fills in the record's context first; if the write then fails, the completed
    record is saved back to the spool, so a later delivery writes what was known here. The
    tracker's errors propagate; the entry then stays for a later attempt. ``claimed``: the
    caller holds the entry's claim already (:meth:`Spool.put_claimed`).
    """
    if isinstance(entry, MemoryEntry):
        if complete is not None:
            complete(entry.record)
        return tracker.write(entry)  # type: ignore[arg-type]
    if claimed:
        return _write(spool, entry, tracker, complete)
    with spool.claim(entry) as mine:
        return _write(spool, entry, tracker, complete) if mine else None


def _write(
    spool: Spool,
    entry: SpoolEntry,
    tracker: Tracker,
    complete: Finish | None,
) -> str | None:
    changed = complete(entry.record) if complete is not None else False
    try:
        run_id = tracker.write(entry)
    except Exception:
        if changed:
            with contextlib.suppress(OSError):
                spool.rewrite(entry)
        raise
    try:
        spool.remove(entry)
    except OSError as exc:  # delivered anyway; a later retry finds the run and stops there
        log.warning("nbops: delivered %s but could not remove it: %s", entry.path, exc)
    return run_id


class Trackers:
    """One tracker per store URI, made on first use (records may name different stores)."""

    def __init__(self, config: Config, factory: TrackerFactory | None = None) -> None:
        self.config = config
        self.factory = factory or _mlflow_tracker
        self._made: dict[str, Tracker] = {}

    def for_record(self, record: RunRecord) -> tuple[Tracker, Config]:
        config = record_config(record, self.config)
        key = f"{config.tracking_uri}\0{config.project_root}"
        if key not in self._made:
            self._made[key] = self.factory(config)
        return self._made[key], config

    def add(self, config: Config, tracker: Tracker) -> None:
        self._made[f"{config.tracking_uri}\0{config.project_root}"] = tracker


def sync(
    config: Config,
    tracker: Tracker | None = None,
    *,
    complete: Complete | None = None,
    retry_quarantined: bool = False,
    store: str | None = None,
) -> SyncReport:
    """Deliver every pending record, oldest first; never raises for a single record.

    ``store`` sends every pending record there instead of to the store it names (for records
    whose store was misconfigured). A record MLflow refuses for good is quarantined
    (``report.quarantined``) and does not hold
    back the others; after several failures in a row that look like an outage of a store, the
    remaining records for that store are not attempted.
    """
    spool = Spool(config.state_dir)
    report = SyncReport()
    if retry_quarantined:
        report.restored = spool.restore_quarantined()
    trackers = Trackers(config)
    if tracker is not None:
        trackers.add(config, tracker)
    streaks: dict[str, int] = {}
    for entry in spool.pending():
        if store:  # the user re-targets what waits (its own store was unusable)
            entry.record.store = store
        target, record_conf = trackers.for_record(entry.record)
        uri = record_conf.tracking_uri
        if streaks.get(uri, 0) >= MAX_FAILURES_IN_A_ROW:
            reason = f"not attempted: {streaks[uri]} writes in a row to {uri} failed"
            report.failed.append((entry.record, reason))
            continue
        finish = (lambda r, c=record_conf: complete(r, c)) if complete else None
        try:
            run_id = deliver(spool, entry, target, finish)
        except Exception as exc:
            kind = getattr(exc, "kind", "store")
            if kind == "refused" and spool.quarantine(entry, str(exc)) is not None:
                report.quarantined.append((entry.record, str(exc)))
                continue
            report.failed.append((entry.record, str(exc)))
            streaks[uri] = streaks.get(uri, 0) + (kind == "store")
            continue
        streaks[uri] = 0
        if run_id is None:
            report.skipped.append(entry.record)
        else:
            report.delivered.append(entry.record)
    return report


def _mlflow_tracker(config: Config) -> Tracker:
    from nbops.store.mlflow_store import MlflowTracker

    return MlflowTracker(config)
