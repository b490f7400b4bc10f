"""A tracking session: config, local spool, background writer and caches, shared by all runs.

One session lives per IPython shell (owned by the magics) or per process (``nbops.track()``
in scripts). It turns a finished :class:`~nbops.capture.Capture` into a spooled record and
hands it to the writer; the writer completes the record's context (git, packages, notebook
found through the Jupyter sessions API) on its own thread, just before delivery, so that work
stays off the cell's critical path.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

from nbops.capture import Capture, CaptureOptions
from nbops.capture import context as ctx
from nbops.config import Config, load_config
from nbops.fingerprint import FileHashCache
from nbops.record import Context, RunRecord
from nbops.store.protocol import Tracker
from nbops.store.spool import Spool, SpoolEntry
from nbops.store.writer import Writer

log = logging.getLogger("nbops")
Done = Callable[[RunRecord, BaseException | None], None]


class Session:
    """Everything runs of one shell or process share; cheap to create (all parts are lazy)."""

    def __init__(self, config: Config | None = None) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._notebook: tuple[str | None, str] | None = None

    @functools.cached_property
    def config(self) -> Config:
        return self._config or load_config()

    @functools.cached_property
    def spool(self) -> Spool:
        return Spool(self.config.state_dir)

    @functools.cached_property
    def file_cache(self) -> FileHashCache:
        return FileHashCache(self.config.state_dir / "filehash.db")

    @functools.cached_property
    def writer(self) -> Writer:
        return Writer(self.config, tracker_factory=self.tracker)

    def tracker(self) -> Tracker:
        """The store, with records completed (:meth:`finalize`) before they are written."""
        from nbops.store.mlflow_store import MlflowTracker

        return FinalizingTracker(MlflowTracker(self.config), self)

    def capture(
        self, code: str, ns: MutableMapping[str, Any], options: CaptureOptions, raw: str
    ) -> Capture:
        return Capture(
            code,
            ns,
            options,
            root=self.config.project_root,
            file_cache=self.file_cache,
            raw_code=raw,
            hash_max_mb=self.config.hash_max_mb,
        )

    def commit(
        self, capture: Capture, error: BaseException | None, on_done: Done | None = None
    ) -> tuple[RunRecord, SpoolEntry | None]:
        """Finish the capture, spool the record, queue it for MLflow. Never raises."""
        record, payload = capture.finish(error)
        record.context = self._partial_context(capture)
        record.experiment = record.experiment or self.config.experiment or None
        record.name = record.name or record.record_id[:8]  # shown at once, and the run's name
        try:
            entry = self.spool.put(record, payload)
        except Exception as exc:  # the disk is full or .nbops unwritable: say so, keep the cell
            record.warnings.append(
                f"nbops could not save the record under {self.config.state_dir}: {exc}; "
                "fix the folder's permissions or free disk space"
            )
            log.warning("nbops: spool write failed: %s", exc)
            return record, None
        self.writer.submit(entry, on_done)
        return record, entry

    def _partial_context(self, capture: Capture) -> Context:
        """The cheap part of the context, taken on the cell's thread.

        ``python`` stays empty until :meth:`finalize` fills in the rest on the writer thread;
        ``packages`` holds the imported top-level modules (versions not yet looked up).
        """
        explicit = capture.options.notebook
        vscode = capture.ns.get("__vsc_ipynb_file__")
        notebook, source = (explicit, "argument") if explicit else (None, "")
        if not notebook and isinstance(vscode, str):
            notebook, source = vscode, "vscode"
        modules = ctx.imported_top_level(capture.ns)
        return Context(
            notebook=notebook,
            notebook_source=source,
            project_root=str(self.config.project_root),
            packages=dict.fromkeys(sorted(modules), ""),
        )

    def _find_notebook(self) -> tuple[str | None, str]:
        """The notebook path, looked up once per session (the sessions API costs a request)."""
        with self._lock:
            if self._notebook is None or self._notebook[0] is None:
                self._notebook = ctx.find_notebook({}, config_notebook=self.config.notebook)
            return self._notebook

    def finalize(self, record: RunRecord) -> bool:
        """Complete a partial context and the experiment; True if anything changed.

        Runs on the writer thread just before delivery (git, package versions, the sessions
        API). A record spooled by a kernel that died is finalized by ``nbops sync`` instead.
        """
        if record.context.python:
            return False
        partial = record.context
        notebook = (partial.notebook, partial.notebook_source)
        if not partial.notebook:
            notebook = self._find_notebook()
        record.context = ctx.build_context(
            self.config.project_root, set(partial.packages), notebook
        )
        record.experiment = record.experiment or experiment_for(notebook[0], self.config)
        return True

    def flush(self, timeout: float | None = None) -> list[tuple[RunRecord, BaseException]]:
        return self.writer.flush(timeout)

    def deliver_pending(self) -> None:
        """Before reading the store: deliver what a kernel that shut down too fast left in the
        spool (``nbops sync`` does the same, with a report)."""
        if self.spool.pending():
            from nbops.store.sync import sync

            sync(self.config, self.tracker())

    def earlier_failures(self) -> list[tuple[RunRecord, BaseException]]:
        """Background writes that failed since the last look (none if nothing was written)."""
        return self.writer.take_failures() if "writer" in self.__dict__ else []


def experiment_for(notebook: str | None, config: Config) -> str:
    """The default experiment: the notebook's stem, else the project folder's name."""
    if config.experiment:
        return config.experiment
    return Path(notebook).stem if notebook else config.project_root.name


class FinalizingTracker:
    """A Tracker that completes a record's context before the real tracker writes it."""

    def __init__(self, inner: Tracker, session: Session) -> None:
        self.inner = inner
        self.session = session

    def write(self, entry: SpoolEntry) -> str:
        if self.session.finalize(entry.record):
            self.session.spool.rewrite(entry)
        return self.inner.write(entry)

    def list_runs(self, experiment: str | None = None, max_results: int = 1000) -> list[RunRecord]:
        return self.inner.list_runs(experiment, max_results)

    def get_run(self, ref: str) -> RunRecord:
        return self.inner.get_run(ref)
