"""The live summary of a running ``%%track`` cell: elapsed time, step, metric curves.

A cell that trains for minutes showed nothing until it ended. While it runs, a ticker thread
shows the summary (after :data:`SHOW_AFTER` seconds, or at once when a metric is logged with a
step) and updates it in place every :data:`INTERVAL` seconds: elapsed time, "step 7 of 20"
inside ``nbops.steps()``, the last value of each metric logged so far and a small curve of each
stepped one. When the cell ends the same display becomes the final summary. A cell shorter than
:data:`SHOW_AFTER` that logs no stepped metric looks exactly as before: only the final summary.

Updates are plain ``update_display_data`` messages (kernel -> frontend on IOPub, sent while the
cell runs), so the last state is ordinary HTML in the saved notebook. Only kernels that update
outputs in place (Jupyter, VS Code) get a live view; a terminal gets the final summary only.
Nothing here may break the cell: a failed update stops the live view, never the cell.
"""

from __future__ import annotations

import contextvars
import copy
import logging
import threading
import time
from typing import Any

from nbops.capture import Capture
from nbops.display import Summary

log = logging.getLogger("nbops")
SHOW_AFTER = 1.0  # seconds
INTERVAL = 0.5  # seconds between updates, at most


class LiveSummary:
    """Shows and updates the summary of ``capture`` while its code runs (see module doc)."""

    def __init__(self, capture: Capture) -> None:
        self.capture = capture
        self.handle: Any = None  # the display handle, once shown
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._dirty = False
        self._progress: tuple[int, int, int | None] | None = None
        self._thread: threading.Thread | None = None
        self._failed = False

    def start(self) -> LiveSummary:
        """Attach to the capture's collector and start the ticker (in the cell's context, so
        its output goes to this cell)."""
        self.capture.collector.live = self
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run, args=(self._tick,), name="nbops-live", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> Any:
        """Stop updating; the display handle to turn into the final summary (None if the
        summary was never shown)."""
        self._stop.set()
        self.capture.collector.live = None
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        return None if self._failed else self.handle

    # ---- the collector's LiveHook --------------------------------------------------------

    def metric(self, key: str, value: float, step: int) -> None:
        self._dirty = True
        if self.handle is None:
            self._show()  # the cell's thread: the first curve appears with its first point

    def progress(self, step: int, done: int, total: int | None) -> None:
        self._progress = (step, done, total)
        self._dirty = True

    # ---- drawing --------------------------------------------------------------------------

    def _tick(self) -> None:
        started = time.monotonic()
        while not self._stop.wait(INTERVAL):
            if self.handle is None and time.monotonic() - started < SHOW_AFTER and not self._dirty:
                continue
            self._show()

    def _show(self) -> None:
        with self._lock:
            if self._failed or self._stop.is_set():
                return
            try:
                summary = self.summary()
                if self.handle is None:
                    from IPython.display import display

                    self.handle = display(summary, display_id=True)
                else:
                    self.handle.update(summary)
                self._dirty = False
            except Exception as exc:  # the live view is a convenience: never break the cell
                self._failed = True
                log.debug("nbops: live summary stopped: %s", exc)

    def summary(self) -> Summary:
        """The running state: the record so far, elapsed time as its duration."""
        collector = self.capture.collector
        record = copy.copy(self.capture.record)
        record.end = time.time()
        record.metrics = dict(collector.metrics)
        record.metric_history = {k: list(v) for k, v in list(collector.history.items())}
        return Summary(record, "running", _progress_text(self._progress))


def _progress_text(progress: tuple[int, int, int | None] | None) -> str:
    """``step 7 (8 of 20)`` inside ``nbops.steps(range(20))``."""
    if progress is None:
        return ""
    step, done, total = progress
    return f"step {step} ({done} of {total})" if total is not None else f"step {step}"
