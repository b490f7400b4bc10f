"""The one MLflow writer of an ``nbops run``: delivers the runs its stages spool.

Stages started by ``nbops run`` only spool their runs (``NBOPS_DELIVERY=spool``), so no step
imports MLflow. This thread, in the ``nbops run`` process, imports it once and delivers: first
the pipeline's parent run (spooled RUNNING when the run starts; delivered from DVC's first stage
event on), then each stage's run as the stage ends, each linked to the parent by its record
id. :meth:`Deliverer.finish` delivers what is left before the parent run is finished, so parent
and children look as they always did.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbops.record import RunRecord
    from nbops.session import Session
    from nbops.store.mlflow_store import MlflowTracker
    from nbops.store.sync import SyncReport

log = logging.getLogger(__name__)
DELIVERY_ENV = "NBOPS_DELIVERY"


class Deliverer:
    """A background thread that empties the spool whenever :meth:`kick` is called."""

    def __init__(self, session: Session, on_parent: Callable[[RunRecord], None]) -> None:
        self.session = session
        self.parent: RunRecord | None = None
        self.on_parent = on_parent  # called once, after the parent run is in MLflow
        self.failures: list[tuple[RunRecord, str]] = []
        self._tracker: MlflowTracker | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="nbops-deliver", daemon=True)

    def start(self, parent: RunRecord) -> None:
        """Start the thread; the first delivery waits for DVC's first stage event (or for
        :meth:`finish`), so importing MLflow does not compete with DVC's start-up for the
        CPU."""
        self.parent = parent
        self._thread.start()

    def kick(self) -> None:
        """Something was spooled (the parent run, a stage that ended): deliver it soon."""
        self._wake.set()

    def finish(self, timeout: float | None = None) -> list[tuple[RunRecord, str]]:
        """Deliver everything spooled so far, stop the thread; returns what failed."""
        if not self._thread.is_alive():
            return self.failures
        self.kick()
        self._stop.set()
        self._thread.join(timeout)
        return self.failures

    def _loop(self) -> None:
        linked = False
        while True:
            self._wake.wait()
            self._wake.clear()
            stopping = self._stop.is_set()
            report = self._deliver()
            if not linked and report is not None and self._parent_delivered(report):
                linked = True
                with contextlib.suppress(Exception):
                    assert self.parent is not None
                    self.on_parent(self.parent)
            if stopping:
                return

    def _deliver(self) -> SyncReport | None:
        from nbops.session import complete_context
        from nbops.store.mlflow_store import MlflowTracker
        from nbops.store.sync import sync

        try:
            if self._tracker is None:
                self._tracker = MlflowTracker(self.session.config)
                self._tracker.prime_model_logging()  # a step's model is logged here
            report = sync(self.session.config, self._tracker, complete=complete_context)
        except Exception as exc:  # the spool keeps everything; `nbops sync` delivers it
            log.warning("nbops: delivering the pipeline's runs failed: %s", exc)
            return None
        self.failures = list(report.failed)
        return report

    def _parent_delivered(self, report: SyncReport) -> bool:
        parent = self.parent
        if parent is None:
            return False
        for record in report.delivered:
            if record.record_id == parent.record_id:
                parent.run_id = record.run_id
                return True
        return parent.run_id is not None
