"""The MLflow tracking store behind nbops.

Only ``MlflowClient(tracking_uri=...)`` is used, never MLflow's fluent global state
(``mlflow.set_tracking_uri``, ``mlflow.start_run``), which would leak into the user's own MLflow
use in the same kernel. ``import mlflow`` (~1.2 s) happens inside methods only, so it runs on the
writer thread, never at ``import nbops``. One tracker is used by one thread at a time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from nbops._pids import alive
from nbops.errors import NbopsError, StoreError, causes
from nbops.record import RunRecord
from nbops.store import datasets, mapping, sqlite
from nbops.store.logged_model import ModelLogger
from nbops.store.logged_model import quiet as _quiet
from nbops.store.run_lookup import RECORD_ARTIFACT, RunLookup, no_store_error
from nbops.store.spool import Spool

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

    from nbops.config import Config
    from nbops.store.spool import SpoolEntry

log = logging.getLogger(__name__)
T = TypeVar("T")

CODE_ARTIFACT = "nbops/cell.py"
LOCK_RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 4.0)  # "database is locked": < 8 s in all
LOCK_RETRY_BUDGET = 8.0  # seconds of retrying, waits included
_DB_LOGGER = "mlflow.store.db.utils"  # logs every SQLite error with a full traceback
_DB_ERROR = "SQLAlchemy database error"
PARENT_WAIT = 60.0  # seconds a stage's run waits for its parent run being delivered elsewhere
FALLBACK_EXPERIMENT = "nbops"  # not MLflow's "Default": its artifacts live under the cwd
# Experiments nbops creates open on MLflow's model-training view (not its GenAI overview)
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}


class MlflowTracker:
    """Writes spooled records as MLflow runs and reads runs back as records."""

    def __init__(self, config: Config, create: bool = True) -> None:
        self.config = config
        self.uri = config.tracking_uri
        self.create = create
        self._client_obj: MlflowClient | None = None
        self._experiment_ids: dict[str, str] = {}
        self._models = ModelLogger()

    # ---- writing ------------------------------------------------------------------------

    def write(self, entry: SpoolEntry) -> str:
        """Store one record; reuses the run tagged with its record id, so retries are safe.

        Sets ``entry.record.run_id`` (and ``model.logged``) as stored in ``nbops/record.json``.
        """
        created: list[str] = []
        try:
            return self._retrying(lambda: self._write_once(entry, created))
        except StoreError:
            self._experiment_ids.clear()  # a deleted/recreated experiment must be looked up again
            raise
        except Exception as exc:
            self._experiment_ids.clear()
            name = entry.record.name or entry.record.record_id
            error = self._error(f"write run {name}", exc)
            error.kind = _failure_kind(exc)
            if error.kind == "refused":  # a half-written run must not pass for the record
                for run_id in created:
                    with contextlib.suppress(Exception):
                        self._client.delete_run(run_id)
            raise error from exc

    def _write_once(self, entry: SpoolEntry, created: list[str]) -> str:
        record = entry.record
        client = self._client
        experiment = record.experiment or self.config.experiment or FALLBACK_EXPERIMENT
        experiment_id = self._experiment_id(experiment)
        self._link_parent(experiment_id, record)
        run = self._find_run(experiment_id, record.record_id)
        if run is not None and run.info.status != "RUNNING":
            record.run_id = run.info.run_id  # an earlier attempt finished: nothing is missing
            return str(run.info.run_id)
        reused = run is not None
        if run is None:
            run = client.create_run(
                experiment_id,
                start_time=mapping.millis(record.start or time.time()),
                tags=mapping.identity_tags(record),
                run_name=record.name,
            )
            created.append(run.info.run_id)
        run_id = record.run_id = run.info.run_id
        record.experiment_id = experiment_id
        self._log_datasets(run_id, record)
        model_id = None
        if entry.has_payload:
            with self._scratch("model") as tmp:
                model_id = self._models.log(client, experiment_id, run_id, entry, tmp, reused)
        self._log_data(run, record, model_id)
        client.log_text(run_id, record.to_json(), RECORD_ARTIFACT)
        client.log_text(run_id, record.code, CODE_ARTIFACT)
        if record.status != "RUNNING":
            _terminate(client, run_id, record.status, mapping.millis(record.end or time.time()))
        return str(run_id)

    def _link_parent(self, experiment_id: str, record: RunRecord) -> None:
        """A stage names its parent by record id (``nbops run`` writes the parent run while
        the stages run): find the parent's MLflow id, or wait for the parent's delivery."""
        parent = record.tags.get(mapping.TAG_PARENT_RECORD)
        if not parent or mapping.TAG_PARENT_RUN in record.tags:
            return
        run = self._find_run(experiment_id, parent)
        if run is None:
            run = self._parent_from_spool(experiment_id, parent)
        if run is None:
            raise StoreError(
                f"run {record.name or record.record_id} waits for its parent run {parent[:8]} "
                "to be in MLflow",
                fix="`nbops sync` delivers the parent first, then this run",
                kind="record",
            )
        record.tags[mapping.TAG_PARENT_RUN] = run.info.run_id

    def _parent_from_spool(self, experiment_id: str, parent: str) -> Run | None:
        """The parent is still in the local spool: deliver it now, or wait while another
        thread or process does (bounded)."""
        from nbops.store.sync import deliver

        spool = Spool(self.config.state_dir)
        deadline = time.monotonic() + PARENT_WAIT
        while True:
            entry = spool.get(parent)
            if entry is None:  # delivered meanwhile (or never spooled here)
                return self._find_run(experiment_id, parent)
            with contextlib.suppress(NbopsError):
                deliver(spool, entry, self)
            run = self._find_run(experiment_id, parent)
            if run is not None or time.monotonic() > deadline:
                return run
            time.sleep(0.2)

    def prime_model_logging(self) -> None:
        """MLflow maps every installed package the first time it saves a model: fill its
        map ahead, off the critical path, from nbops' copy on disk."""
        from nbops.store.mlflow_packages import prime

        prime()

    def _log_datasets(self, run_id: str, record: RunRecord) -> None:
        """The record's data as the run's dataset inputs, in one call (see
        :mod:`nbops.store.datasets`); MLflow keeps one per dataset, so a retry adds nothing."""
        specs = datasets.specs(record)
        if not specs:
            return
        from mlflow.entities import Dataset, DatasetInput, InputTag

        inputs = [
            DatasetInput(
                Dataset(s.name, s.digest, s.source_type, s.source, s.schema, s.profile),
                [InputTag(datasets.CONTEXT_TAG, s.context)],
            )
            for s in specs
        ]
        self._client.log_inputs(run_id, datasets=inputs)  # a lost race: see _retrying

    def _log_data(self, run: Run, record: RunRecord, model_id: str | None = None) -> None:
        """One ``log_batch`` (more only past MLflow's per-batch limits); on a reused run only
        what is missing, since MLflow refuses changed params and would repeat metrics. The
        metrics are linked to the run's model and to the dataset they were computed on."""
        from mlflow.entities import Metric, Param, RunTag

        params = mapping.params(record)
        metrics = mapping.metrics(record)
        for key in run.data.params:
            params.pop(key, None)
        for key in run.data.metrics:
            metrics.pop(key, None)
        stamp = mapping.millis(record.end or record.start or time.time())
        evaluated = datasets.evaluation_dataset(record)
        link = {"model_id": model_id}
        if evaluated is not None:
            link.update(dataset_name=evaluated.name, dataset_digest=evaluated.digest)
        param_list = [Param(k, v) for k, v in params.items()]
        points = mapping.metric_points(record, metrics, stamp)  # histories: every step
        metric_list = [Metric(k, v, ts, step, **link) for k, v, ts, step in points]
        tag_list = [RunTag(k, v) for k, v in mapping.tags(record).items()]
        for p, m, t in mapping.batches(param_list, metric_list, tag_list):
            self._client.log_batch(run.info.run_id, metrics=m, params=p, tags=t)

    def _experiment_id(self, name: str) -> str:
        if name in self._experiment_ids:
            return self._experiment_ids[name]
        from mlflow.exceptions import MlflowException

        client = self._client
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            try:
                experiment_id = client.create_experiment(
                    name, self._artifact_location(), tags=EXPERIMENT_TAGS
                )
            except MlflowException as exc:  # another process created it first
                experiment = client.get_experiment_by_name(name)
                if experiment is None:
                    raise exc from None
                experiment_id = experiment.experiment_id
        elif experiment.lifecycle_stage == "deleted":
            raise StoreError(
                f"experiment {name!r} is deleted in {self.uri}",
                fix=f"restore it (mlflow experiments restore --experiment-id "
                f"{experiment.experiment_id}) or delete it for good (mlflow gc), then `nbops sync`",
                experiment=name,
                kind="record",
            )
        else:
            experiment_id = experiment.experiment_id
        self._experiment_ids[name] = experiment_id
        return experiment_id

    def _artifact_location(self) -> str | None:
        """``mlartifacts/`` next to a SQLite store; MLflow's default (``./mlruns``) would
        depend on the working directory of whichever process created the experiment."""
        if sqlite.db_path(self.uri) is None:
            return None
        return artifact_root(self.config).as_uri()

    def _find_run(self, experiment_id: str, record_id: str) -> Run | None:
        runs = self._client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{mapping.TAG_RECORD_ID}` = '{record_id}'",
            max_results=1,
        )
        return runs[0] if runs else None

    # ---- reading ------------------------------------------------------------------------

    def list_runs(self, experiment: str | None = None, max_results: int = 1000) -> list[RunRecord]:
        """Runs newest first, mapped from run data (params as strings, no code)."""
        return self._reading(
            "list runs", lambda: self._lookup.list_records(experiment, max_results)
        )

    def get_run(self, ref: str) -> RunRecord:
        """The full record (``nbops/record.json``, else rebuilt from run data)."""
        return self._reading(f"read run {ref!r}", lambda: self._lookup.get_record(ref))

    @property
    def _lookup(self) -> RunLookup:
        return RunLookup(self._client, self.uri, self._scratch)

    # ---- plumbing -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _scratch(self, what: str) -> Iterator[str]:
        """A temporary folder under ``.nbops/tmp`` (a model's input example holds training
        rows: it must not outlive a killed process in /tmp); leftovers of dead processes are
        removed on the next use."""
        folder = self.config.state_dir / "tmp"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            _clean_scratch(folder)
            base: str | None = str(folder)
        except OSError:
            base = None  # an unwritable project: the system's temp folder, as before
        with tempfile.TemporaryDirectory(prefix=f"{what}-{os.getpid()}-", dir=base) as tmp:
            yield tmp

    @property
    def _client(self) -> MlflowClient:
        """Created on first use (on the writer thread); not cached if the store is unusable.
        A reader (``create=False``) never creates a missing SQLite store: it says so."""
        if self._client_obj is None:
            if not self.create and not sqlite.exists(self.uri):
                raise no_store_error(self.config)
            sqlite.check_usable(self.uri)
            from mlflow.tracking import MlflowClient

            sqlite.create_if_missing(self.uri, artifact_root(self.config))
            self._client_obj = self._retrying(lambda: MlflowClient(tracking_uri=self.uri))
        return self._client_obj

    def warm(self) -> None:
        """Import MLflow and open (or create) the store now, ahead of the first write."""
        self._retrying(lambda: self._client.get_experiment_by_name(FALLBACK_EXPERIMENT))

    def _reading(self, action: str, call: Callable[[], T]) -> T:
        try:
            return self._retrying(call)
        except NbopsError:
            raise
        except Exception as exc:
            raise self._error(action, exc, reading=True) from exc

    def _retrying(self, call: Callable[[], T]) -> T:
        """Retry while another writer is in the way, < 8 s total: SQLite says "database is
        locked" (one writer at a time), or a dataset insert lost a race (``_lost_dataset_race``;
        the retry finds the other writer's row, and a record's write is idempotent).

        MLflow already waits up to 20 s (its ``busy_timeout``) before it reports a lock, so
        only locks reported sooner are retried: one that outlasted that wait is an outage, and
        five more 20 s waits would hold the writer for two minutes per record. MLflow's own
        traceback of the error is dropped (this thread only): nbops reports it once, shorter.
        """
        started = time.monotonic()
        with _quiet(logging.getLogger(_DB_LOGGER), _DB_ERROR):
            delays: tuple[float | None, ...] = (*LOCK_RETRY_DELAYS, None)
            for delay in delays:
                try:
                    return call()
                except NbopsError:
                    raise
                except Exception as exc:
                    late = delay is None or time.monotonic() - started + delay > LOCK_RETRY_BUDGET
                    if late or delay is None or not _in_the_way(exc):
                        raise
                    log.info("nbops: %s: %s; retrying in %.1f s", self.uri, _in_the_way(exc), delay)
                    time.sleep(delay)
        raise AssertionError("unreachable")

    def _error(self, action: str, exc: BaseException, reading: bool = False) -> StoreError:
        detail = " ".join(str(exc).split())[:400]
        fix = f"check that the tracking store {self.uri} is reachable and writable"
        fix += " (tracking_uri in [tool.nbops] or MLFLOW_TRACKING_URI)"
        if not reading:
            spool = self.config.state_dir / "spool"
            fix += f"; the record is kept in {spool} and `nbops sync` delivers it later"
        return StoreError(
            f"could not {action} in MLflow ({self.uri}): {type(exc).__name__}: {detail}",
            fix=fix,
            uri=self.uri,
        )


def _clean_scratch(folder: Path) -> None:
    for leftover in folder.iterdir():
        pid = leftover.name.split("-")[1] if leftover.name.count("-") >= 2 else ""
        if pid.isdigit() and not alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)


def _in_the_way(exc: BaseException) -> str:
    """What another writer did that a retry gets past ("" when nothing: raise)."""
    if sqlite.is_locked(exc):
        return "locked by another writer"
    return "the same dataset inserted by another writer" if _lost_dataset_race(exc) else ""


def _lost_dataset_race(exc: BaseException) -> bool:
    """Whether another writer inserted the same dataset between MLflow's lookup and its
    insert: MLflow checks, then inserts, and on SQLite the two are not one transaction. Two
    runs of one pipeline log the same holdout (the train step, and the model gate while the
    train step's run is delivered); 6 of 120 such writes failed when timed to coincide."""
    for seen in causes(exc):
        text = str(seen)
        duplicate = "UNIQUE constraint failed" in text or "duplicate key" in text.lower()
        if duplicate and "dataset" in text:
            return True
    return False


def _failure_kind(exc: BaseException) -> str:
    """``"refused"`` when MLflow rejects the record's content (it would on every attempt),
    else ``"store"`` (see :class:`~nbops.errors.StoreError`)."""
    for seen in causes(exc):
        if isinstance(seen, UnicodeError):
            return "refused"
        if getattr(seen, "error_code", None) == "INVALID_PARAMETER_VALUE":
            return "refused"
    return "store"


def artifact_root(config: Config) -> Path:
    """Where runs of a SQLite store keep their artifacts: ``mlartifacts/`` beside the store."""
    if config.is_default_store:
        return config.project_root / "mlartifacts"
    db = sqlite.db_path(config.tracking_uri)
    return (db.resolve().parent if db is not None else config.project_root) / "mlartifacts"


def _terminate(client: MlflowClient, run_id: str, status: str, end: int) -> None:
    """``set_terminated`` without its "View run at" lines: against a server (a REST store)
    MLflow writes them to stdout, which in a kernel lands in whichever cell runs meanwhile."""
    from mlflow.entities import RunStatus

    store = getattr(getattr(client, "_tracking_client", None), "store", None)
    if store is None:  # not the MLflow client this was written for: the public call
        client.set_terminated(run_id, status, end_time=end)
        return
    store.update_run_info(
        run_id, run_status=RunStatus.from_string(status), end_time=end, run_name=None
    )
