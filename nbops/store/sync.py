"""Delivering spooled records: one entry (shared with the writer) or the whole spool.

``nbops sync`` calls :func:`sync` to deliver what a failed or interrupted write left behind.
Each entry is claimed first, so a kernel's writer and ``nbops sync`` never deliver one twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nbops.store.spool import Spool, SpoolEntry

if TYPE_CHECKING:
    from nbops.config import Config
    from nbops.record import RunRecord
    from nbops.store.protocol import Tracker

log = logging.getLogger(__name__)

# An unreachable MLflow server costs ~4 minutes per call (MLflow's own HTTP retries): after
# this many failures in a row the store is down, not the records.
MAX_FAILURES_IN_A_ROW = 3


@dataclass
class SyncReport:
    """What one ``sync`` did; ``failed`` holds the error text per record."""

    delivered: list[RunRecord] = field(default_factory=list)
    failed: list[tuple[RunRecord, str]] = field(default_factory=list)
    skipped: list[RunRecord] = field(default_factory=list)  # another process was delivering it

    @property
    def ok(self) -> bool:
        return not self.failed


def deliver(spool: Spool, entry: SpoolEntry, tracker: Tracker) -> str | None:
    """Write one entry and drop it from the spool; None if another process has it (or had it).

    The tracker's errors propagate; the entry then stays for a later attempt.
    """
    with spool.claim(entry) as mine:
        if not mine:
            return None
        run_id = tracker.write(entry)
        try:
            spool.remove(entry)
        except OSError as exc:  # delivered anyway; a later retry finds the run and stops there
            log.warning("nbops: delivered %s but could not remove it: %s", entry.path, exc)
        return run_id


def sync(config: Config, tracker: Tracker | None = None) -> SyncReport:
    """Deliver every pending record, oldest first; never raises for a single record, and
    stops trying once the store has failed several records in a row."""
    if tracker is None:
        from nbops.store.mlflow_store import MlflowTracker

        tracker = MlflowTracker(config)
    spool = Spool(config.state_dir)
    report = SyncReport()
    streak = 0
    for entry in spool.pending():
        if streak >= MAX_FAILURES_IN_A_ROW:
            report.failed.append((entry.record, f"not attempted: {streak} writes in a row failed"))
            continue
        try:
            run_id = deliver(spool, entry, tracker)
        except Exception as exc:
            report.failed.append((entry.record, str(exc)))
            streak += 1
            continue
        streak = 0
        if run_id is None:
            report.skipped.append(entry.record)
        else:
            report.delivered.append(entry.record)
    return report
