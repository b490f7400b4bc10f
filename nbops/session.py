"""A tracking session: config, local spool, background writer and caches, shared by all runs.

One session lives per IPython shell (owned by the magics) or per process (``nbops.track()``
in scripts: :func:`default_session`); a pipeline's is its enclosing project's
(:func:`pipeline_session`, :func:`project_start`). It turns a finished
:class:`~nbops.capture.Capture` into a spooled record and hands it to the writer.

What identifies a run (experiment, notebook, project root, store, source) is fixed in
:meth:`Session.commit`, on the cell's thread, in the process that ran it: the spooled record
carries it, and whoever delivers it later (the writer thread, ``nbops sync``, another process)
writes it as is. The rest of the context (git state, package versions) is completed by the
writer just before delivery (:func:`complete_context`), off the cell's critical path.

In a headless kernel (papermill, nbclient, nbval: :mod:`nbops.capture.frontend`) each tracked
cell waits until its run is in MLflow, because the kernel is shut down right after the last
cell; ``%load_ext`` then opens the store ahead of time (:meth:`Session.warm`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
import threading
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbops.capture import Capture, CaptureOptions
from nbops.capture import context as ctx
from nbops.capture.frontend import delivers_at_cell_end
from nbops.capture.namespace import STAT_PREFIX, complete_file_hashes
from nbops.config import ROOT_MARKERS, Config, find_project_root, load_config
from nbops.dvc import DVC_DIR
from nbops.hashing.files import FileHashCache
from nbops.record import RunRecord
from nbops.store.admit import admit
from nbops.store.protocol import Tracker
from nbops.store.spool import MemoryEntry, Spool, SpoolEntry
from nbops.store.writer import Writer

if TYPE_CHECKING:
    from nbops.capture.discovery import Found, NotebookFinder

log = logging.getLogger("nbops")
Done = Callable[[RunRecord, BaseException | None], None]
_UNKNOWN_SHELL = object()
# seconds a live kernel's background write waits after its cell: the reply goes out first
REPLY_GRACE = 0.05


class Session:
    """Everything runs of one shell or process share; cheap to create (all parts are lazy)."""

    def __init__(self, config: Config | None = None) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._notebook: Found | None = None
        self._finder: NotebookFinder | None = None
        self._at_cell_end: bool | None = None
        self.lost: list[tuple[RunRecord, str]] = []  # records neither spooled nor delivered

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
        return Writer(self.config, tracker_factory=_mlflow_tracker, complete=complete_context)

    @property
    def finder(self) -> NotebookFinder:
        """The notebook lookup (its module, with urllib, is imported on first use only)."""
        with self._lock:
            if self._finder is None:
                from nbops.capture.discovery import NotebookFinder

                self._finder = NotebookFinder(self.config.notebook)
            return self._finder

    def tracker(self) -> Tracker:
        """The store, for writing (a missing SQLite store is created)."""
        return _mlflow_tracker(self.config)

    def reader(self) -> Tracker:
        """The store, for reading: a missing SQLite store is reported, never created."""
        from nbops.store.mlflow_store import MlflowTracker

        return MlflowTracker(self.config, create=False)

    def warm(self, shell: Any) -> None:
        """At ``%load_ext``: start looking for the notebook; in a headless kernel also import
        MLflow and open the store now, so the first tracked cell's run is delivered sooner."""
        try:
            if self.delivers_at_cell_end(shell):
                self.writer.warm()
            threading.Thread(target=self._start_finder, name="nbops-warm", daemon=True).start()
        except Exception:  # warming is an optimisation: never fail the extension for it
            log.debug("nbops: warming the session failed", exc_info=True)

    def _start_finder(self) -> None:
        with contextlib.suppress(Exception):
            self.finder.start()
            ctx.package_versions(())  # primes the installed-distributions map (~0.1-0.3 s)

    def delivers_at_cell_end(self, shell: Any = _UNKNOWN_SHELL) -> bool:
        """Does each tracked cell wait for MLflow (a headless kernel, or ``delivery = sync``)?"""
        if self._at_cell_end is None:
            if not self.config.async_write:
                self._at_cell_end = True
            else:
                if shell is _UNKNOWN_SHELL:
                    shell = _ipython()
                self._at_cell_end = delivers_at_cell_end(self.config.delivery, shell)
        return self._at_cell_end

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
        """Finish the capture, fix the run's identity, spool the record, queue it for MLflow
        (and, at the end of a headless cell, wait for it). Never raises."""
        record, payload = capture.finish(error)
        record.context.packages = dict.fromkeys(sorted(ctx.imported_top_level(capture.ns)), "")
        self.identify(record, capture.ns, capture.options.notebook)
        record.name = record.name or record.record_id[:8]  # shown at once, and the run's name
        entry = self.spool_record(record, payload, on_done)
        if entry is None:
            return record, None
        if self.config.delivery == "spool":  # `nbops run` delivers its stages' runs itself
            return record, entry
        if self.delivers_at_cell_end():
            self.writer.submit(entry, on_done)
            self.writer.wait(record.record_id, self.config.flush_timeout)
        else:  # let the kernel reply and go idle before the write takes the GIL
            self.writer.submit(entry, on_done, defer=REPLY_GRACE)
        return record, entry

    def notebook_path(self, ns: Mapping[str, Any]) -> str | None:
        """The notebook this kernel runs, if nbops can find it."""
        return self._find_notebook(ns)[0][0]

    def check_state(self, capture: Capture, shell: Any) -> None:
        """The hidden-state warning for a tracked cell about to run: its warnings and the
        kernel's state (``nbops.state``) go on the record. Never raises."""
        from nbops.capture.staleness import check_cell

        try:
            found = capture.options.notebook or self.notebook_path(capture.ns)
            check_cell(shell, capture.record, found)
        except Exception:  # a check must never break the cell
            log.debug("nbops: the hidden-state check failed", exc_info=True)

    def identify(
        self,
        record: RunRecord,
        ns: Mapping[str, Any] | None = None,
        notebook: str | None = None,
    ) -> RunRecord:
        """Fix what identifies ``record`` where it ran: its project root, notebook, experiment
        and store. Values already set (``--experiment``, a pipeline's records) are kept."""
        partial = record.context
        found: Found = (partial.notebook, partial.notebook_source)
        if notebook:
            found = (str(Path(notebook).expanduser().absolute()), "argument")
        elif not partial.notebook:
            found, note = self._find_notebook(ns or {})
            if note:
                record.warnings.append(note)
        record.context = replace(
            partial,
            notebook=found[0],
            notebook_source=found[1] if found[0] else "unknown",
            project_root=partial.project_root or str(self.config.project_root),
        )
        record.experiment = record.experiment or experiment_for(found[0], self.config)
        record.store = record.store or self.config.tracking_uri
        return admit(record)

    def spool_record(
        self, record: RunRecord, payload: dict[str, Any] | None, on_done: Done | None = None
    ) -> SpoolEntry | None:
        """Put the record in the spool; if that fails, deliver it straight away; if that
        fails too, keep it in :attr:`lost` and say so (the summary shows what was recorded)."""
        try:
            return self.spool.put(record, payload)
        except Exception as exc:  # the disk is full or .nbops unwritable
            spool_error = f"{type(exc).__name__}: {exc}"
            log.warning("nbops: spool write failed: %s", spool_error)
        entry = MemoryEntry(record, payload)
        try:
            self.writer.deliver_now(entry)
        except Exception as exc:
            reason = (
                f"not saved: the local spool ({self.spool.root}) failed ({spool_error}) and "
                f"MLflow failed ({type(exc).__name__}: {exc}); fix the folder's permissions or "
                "free disk space, then run the cell again"
            )
            record.warnings.append(reason)
            self.lost.append((record, reason))
            if on_done is not None:
                on_done(record, exc)
            return None
        record.warnings.append(
            f"the local spool ({self.spool.root}) failed ({spool_error}): the run was written "
            "to MLflow directly"
        )
        if on_done is not None:
            on_done(record, None)
        return None

    def _find_notebook(self, ns: Mapping[str, Any]) -> tuple[Found, str]:
        """The notebook this process runs: found once per session (a path, once known, is
        kept; an unknown one is looked for again at the next cell)."""
        with self._lock:
            if self._notebook is not None:
                return self._notebook, ""
        found, note = self.finder.resolve(ns, _history())
        if found[0]:
            with self._lock:
                self._notebook = found
        return found, note

    def flush(self, timeout: float | None = None) -> list[tuple[RunRecord, BaseException]]:
        return self.writer.flush(timeout)

    def deliver_pending(self) -> None:
        """Before reading the store: deliver what a kernel that shut down too fast left in the
        spool (``nbops sync`` does the same, with a report). A store that does not exist yet is
        left for ``nbops sync`` to create: reading never creates one."""
        from nbops.store import sqlite

        if self.spool.pending() and sqlite.exists(self.config.tracking_uri):
            from nbops.store.sync import sync

            sync(self.config, complete=complete_context)

    def earlier_failures(self) -> list[tuple[RunRecord, BaseException]]:
        """Background writes that failed since the last look (none if nothing was written)."""
        return self.writer.take_failures() if "writer" in self.__dict__ else []


@functools.cache
def default_session() -> Session:
    """The process's session, shared by ``%%track``, ``nbops.track()``, the widgets and the
    stages that record runs."""
    return Session()


def pipeline_session(folder: Path) -> Session:
    """A session of the project the pipeline belongs to (see :func:`project_start`)."""
    return Session(load_config(project_start(folder)))


def project_start(folder: Path) -> Path:
    """Where to look for the nbops project of a pipeline folder: a ``.dvc`` that ``dvc init
    --no-scm`` put in the pipeline folder must not make the folder its own project when one
    encloses it."""
    own = [m for m in ROOT_MARKERS if (folder / m).exists()]
    if own and own != [DVC_DIR]:
        return folder
    parent = find_project_root(folder.parent)
    if any((parent / m).exists() for m in ROOT_MARKERS):
        return parent
    return folder


def experiment_for(notebook: str | None, config: Config) -> str:
    """The default experiment: the notebook's stem, else the project folder's name."""
    if config.experiment:
        return config.experiment
    return Path(notebook).stem if notebook else config.project_root.name


def complete_context(record: RunRecord, config: Config) -> bool:
    """Complete a record's context (git state, package versions, Python, user, host) just
    before delivery; True if anything changed. Runs on the writer thread (git subprocesses).

    Records spooled by nbops before the run's identity was fixed at capture (no ``store``)
    get their experiment here, as they did then.
    """
    partial = record.context
    if partial.python:
        return False
    root = Path(partial.project_root) if partial.project_root else config.project_root
    notebook = (partial.notebook, partial.notebook_source)
    record.context = ctx.build_context(root, set(partial.packages), notebook)
    if not record.description and record.source == "cell":
        from nbops.capture.describe import heading_above
        from nbops.capture.redact import scrub_text

        record.description = scrub_text(heading_above(partial.notebook, record.code))
    if any(
        ref.kind == "file" and (ref.fingerprint or "").startswith(STAT_PREFIX)
        for ref in record.data
    ):
        # files too big to hash on the cell's thread: their md5, now, if still unchanged
        complete_file_hashes(record, root, FileHashCache(config.state_dir / "filehash.db"))
    if not record.store:
        record.experiment = record.experiment or experiment_for(partial.notebook, config)
    return True


def _mlflow_tracker(config: Config) -> Tracker:
    from nbops.store.mlflow_store import MlflowTracker  # imports mlflow only when it writes

    return MlflowTracker(config)


def _ipython() -> Any:
    module = sys.modules.get("IPython")
    get = getattr(module, "get_ipython", None) if module is not None else None
    return get() if get is not None else None


def _history() -> Sequence[str]:
    """The raw cells this kernel has executed so far, the current one last ([] outside)."""
    shell = _ipython()
    manager = getattr(shell, "history_manager", None)
    raw = getattr(manager, "input_hist_raw", None)
    return list(raw) if isinstance(raw, list) else []
