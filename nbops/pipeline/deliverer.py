"""The one MLflow writer of an ``nbops run``: delivers the runs its stages spool.

Stages started by ``nbops run`` only spool their runs (``NBOPS_DELIVERY=spool``), so no step
imports MLflow. This thread delivers: first the pipeline's parent run (spooled RUNNING when the
run starts; delivered from DVC's first stage event on), then each stage's run as the stage ends,
each linked to the parent by its record id. :meth:`Deliverer.finish` delivers what is left
before the parent run is finished, so parent and children look as they always did.

With the warm executor each delivery is a child forked from the zygote (which imports MLflow
once, for the model gate too): the ``nbops run`` process itself never imports MLflow, a second
``import mlflow`` (1.5-2.3 s of CPU) a run no longer pays. Without one (``--cold``, the zygote
gone) the thread delivers in this process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbops.executor.forks import Zygote
    from nbops.record import RunRecord
    from nbops.session import Session
    from nbops.store.mlflow_store import MlflowTracker

log = logging.getLogger(__name__)
DELIVERY_ENV = "NBOPS_DELIVERY"
NEEDS = (
    "mlflow",
    "mlflow.store.tracking.sqlalchemy_store",
    "nbops.store.mlflow_store",
    "nbops.pipeline.deliverer",
    "nbops.store.mlflow_packages:prime",
)


@dataclass
class Delivered:
    """What one delivery did: run ids by record id, and the records that failed."""

    runs: dict[str, str] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)


class Deliverer:
    """A background thread that empties the spool whenever :meth:`kick` is called."""

    def __init__(self, session: Session, on_parent: Callable[[RunRecord], None]) -> None:
        self.session = session
        self.parent: RunRecord | None = None
        self.on_parent = on_parent  # called once, after the parent run is in MLflow (in-process)
        self.failures: list[tuple[str, str]] = []
        self.zygote: Zygote | None = None
        self.env: dict[str, str] = {}
        self._tracker: MlflowTracker | None = None
        self._linked = False
        self._last: RunRecord | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="nbops-deliver", daemon=True)

    def start(
        self, parent: RunRecord, zygote: Zygote | None = None, env: Mapping[str, str] = {}
    ) -> None:
        """Start the thread; the first delivery waits for DVC's first stage event (or for
        :meth:`finish`), so it does not compete with DVC's start-up for the CPU."""
        self.parent, self.zygote, self.env = parent, zygote, dict(env)
        self._thread.start()

    def kick(self) -> None:
        """Something was spooled (the parent run, a stage that ended): deliver it soon."""
        self._wake.set()

    def finish(
        self, last: RunRecord | None = None, timeout: float | None = None
    ) -> list[tuple[str, str]]:
        """Spool ``last`` (the parent run's end) and deliver everything, then stop the thread;
        returns (run, why) of what failed (it stays in the spool for ``nbops sync``). The
        thread spools ``last`` itself, between deliveries: a delivery in progress would
        otherwise remove the new entry with the old one."""
        self._last = last
        self.parent = self.parent or last
        if not self._thread.is_alive():
            self._spool_last()
            done = self._deliver(final=True)
            if done is not None:
                self.failures = done.failed
                self._link(done)
            return self.failures
        self._stop.set()
        self.kick()
        self._thread.join(timeout)
        return self.failures

    def _spool_last(self) -> None:
        if self._last is not None:
            try:
                self.session.spool.put(self._last)
            except Exception as exc:
                self.failures.append((self._last.name or "", f"not spooled: {exc}"))
            self._last = None

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            stopping = self._stop.is_set()
            if stopping:
                self._spool_last()
            done = self._deliver(final=stopping)
            if done is not None:
                self.failures = done.failed
                self._link(done)
            if stopping:
                return

    def _link(self, done: Delivered) -> None:
        parent = self.parent
        if parent is None or parent.record_id not in done.runs:
            return
        parent.run_id = done.runs[parent.record_id]

    def _deliver(self, final: bool) -> Delivered | None:
        zygote = self.zygote
        if zygote is not None and zygote.alive:
            with contextlib.suppress(Exception):  # the zygote gone: deliver here instead
                return self._in_child(zygote, final)
        return self._here()

    def _in_child(self, zygote: Zygote, final: bool) -> Delivered:
        """A delivery in a child forked from the zygote (MLflow already imported there)."""
        state = self.session.config.state_dir / "tmp"
        state.mkdir(parents=True, exist_ok=True)
        handle, result = tempfile.mkstemp(prefix="deliver-", suffix=".json", dir=state)
        os.close(handle)
        close_stale = "1" if not self._linked else "0"
        argv = [result, self.parent.record_id if self.parent else "", close_stale]
        env = {**os.environ, **self.env}
        try:
            child = zygote.fork(
                "call",
                argv,
                env,
                str(self.session.config.project_root),
                [sys.stdout.fileno(), sys.stderr.fileno()],
                NEEDS,
                eager=final,  # the last one is waited for; the others can wait for imports
                target="nbops.pipeline.deliverer:deliver_in_child",
            )
            child.wait()
            data = json.loads(Path(result).read_text(encoding="utf-8") or "{}")
        finally:
            Path(result).unlink(missing_ok=True)
        done = Delivered(dict(data.get("runs", {})), [tuple(f) for f in data.get("failed", [])])
        if self.parent is not None and self.parent.record_id in done.runs:
            self._linked = True
        return done

    def _here(self) -> Delivered | None:
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
        done = Delivered(
            {r.record_id: r.run_id or "" for r in report.delivered},
            [(r.name or r.record_id, why) for r, why in report.failed],
        )
        parent = self.parent
        if parent is not None and parent.record_id in done.runs and not self._linked:
            self._linked = True
            delivered = next(r for r in report.delivered if r.record_id == parent.record_id)
            with contextlib.suppress(Exception):
                self.on_parent(delivered)
        return done


def deliver_in_child(argv: list[str]) -> int:
    """In a zygote child: deliver the spool; write what was delivered (and what failed) to
    ``argv[0]``; once the parent run ``argv[1]`` is in, close runs left RUNNING by killed
    ``nbops run``s (when ``argv[2]`` is ``1``)."""
    from nbops.config import load_config
    from nbops.pipeline.interrupted import close_stale_runs
    from nbops.session import Session, complete_context
    from nbops.store.sync import sync

    result, parent_id, close_stale = argv[0], argv[1], argv[2] == "1"
    session = Session(load_config())
    report = sync(session.config, complete=complete_context)
    data = {
        "runs": {r.record_id: r.run_id for r in report.delivered},
        "failed": [(r.name or r.record_id, why) for r, why in report.failed],
    }
    Path(result).write_text(json.dumps(data), encoding="utf-8")
    parent = next((r for r in report.delivered if r.record_id == parent_id), None)
    if parent is not None and close_stale:
        close_stale_runs(session, parent, print)
    return 0
