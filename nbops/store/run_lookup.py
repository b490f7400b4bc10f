"""Reading runs back from MLflow: listing them, and finding one by run id, id prefix, run name
or record id, with its full record (``nbops/record.json``) when nbops wrote it."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from nbops.errors import NoStoreError, RunNotFoundError
from nbops.record import RunRecord
from nbops.store import mapping
from nbops.store.downloads import quiet
from nbops.store.spool import Spool

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

    from nbops.config import Config

log = logging.getLogger("nbops.store.mlflow_store")

RECORD_ARTIFACT = "nbops/record.json"
SEARCH_LIMIT = 50_000  # SQLAlchemy store's maximum max_results
_HEX = re.compile(r"[0-9a-f]+")


class RunLookup:
    """Reads of one store through ``client``; ``scratch(what)`` gives a temporary folder."""

    def __init__(
        self,
        client: MlflowClient,
        uri: str,
        scratch: Callable[[str], AbstractContextManager[str]],
    ) -> None:
        self.client, self.uri, self.scratch = client, uri, scratch

    def list_records(self, experiment: str | None, max_results: int) -> list[RunRecord]:
        names = self.experiment_names(experiment)
        if not names:
            return []
        runs = self.client.search_runs(
            list(names),
            order_by=["attributes.start_time DESC"],
            max_results=max(1, min(max_results, SEARCH_LIMIT)),
        )
        return [mapping.record_from_run(run, names.get(run.info.experiment_id)) for run in runs]

    def get_record(self, ref: str) -> RunRecord:
        names = self.experiment_names(None)
        run = self._resolve(ref.strip(), list(names))
        experiment = names.get(run.info.experiment_id)
        record = self._read_record(run) or mapping.record_from_run(run, experiment)
        record.run_id = run.info.run_id
        record.experiment_id = str(run.info.experiment_id or "")
        record.status = run.info.status
        record.experiment = experiment or record.experiment
        return record

    def _resolve(self, ref: str, experiment_ids: list[str]) -> Run:
        from mlflow.exceptions import MlflowException

        client = self.client
        if len(ref) == 32 and _HEX.fullmatch(ref):
            with contextlib.suppress(MlflowException):
                return client.get_run(ref)
        if not ref or not experiment_ids:
            raise self._not_found(ref, [])
        prefixed: list[Run] = []
        if len(ref) >= 6 and _HEX.fullmatch(ref):
            prefixed = self._search(experiment_ids, f"attributes.run_id LIKE '{ref}%'", 20)
            if len(prefixed) == 1:
                return prefixed[0]
        named = self._by_name(experiment_ids, ref)
        if named:
            return named[0]
        if _HEX.fullmatch(ref):
            by_record = self._search(experiment_ids, f"tags.`{mapping.TAG_RECORD_ID}` = '{ref}'", 1)
            if by_record:
                return by_record[0]
        if len(prefixed) > 1:
            raise self._not_found(ref, prefixed, ambiguous=True)
        raise self._not_found(ref, self._search(experiment_ids, "", 5))

    def _by_name(self, experiment_ids: list[str], name: str) -> list[Run]:
        """Newest run of that name; a name no filter can quote is compared in Python."""
        filter_string = mapping.equals_filter("attributes.run_name", name)
        if filter_string is not None:
            return self._search(experiment_ids, filter_string, 1)
        runs = self._search(experiment_ids, "", 5000)
        return [run for run in runs if run.info.run_name == name][:1]

    def _search(self, experiment_ids: list[str], filter_string: str, limit: int) -> list[Run]:
        return list(
            self.client.search_runs(
                experiment_ids,
                filter_string=filter_string,
                order_by=["attributes.start_time DESC"],
                max_results=limit,
            )
        )

    def _not_found(
        self, ref: str, candidates: list[Run], ambiguous: bool = False
    ) -> RunNotFoundError:
        lines = [f"  {r.info.run_id}  {r.info.run_name or ''}" for r in candidates]
        if ambiguous:
            message = f"run prefix {ref!r} matches {len(candidates)} runs:\n" + "\n".join(lines)
            fix = "give more characters of the run id"
        else:
            message = f"no run matches {ref!r} in {self.uri}"
            if lines:
                message += "\n recent runs:\n" + "\n".join(lines)
            fix = "pass a run id, a run-id prefix of 6+ characters or a run name (`nbops runs`)"
        return RunNotFoundError(message, fix=fix, ref=ref)

    def experiment_names(self, experiment: str | None) -> dict[str, str]:
        client = self.client
        if experiment is not None:
            found = client.get_experiment_by_name(experiment)
            if found is None or found.lifecycle_stage == "deleted":
                return {}
            return {found.experiment_id: found.name}
        experiments = client.search_experiments(max_results=SEARCH_LIMIT)
        return {e.experiment_id: e.name for e in experiments}

    def _read_record(self, run: Run) -> RunRecord | None:
        """The stored ``record.json``: read in place for local artifacts (no copy, no progress
        bar), downloaded otherwise; None for runs nbops did not write."""
        local = _local_path(run.info.artifact_uri)
        if local is not None:
            path = local / RECORD_ARTIFACT
            text = path.read_text(encoding="utf-8") if path.is_file() else None
        else:
            text = self._download_text(run.info.run_id, RECORD_ARTIFACT)
        if text is None:
            return None
        try:
            return RunRecord.from_json(text)
        except (ValueError, TypeError) as exc:
            run_id = run.info.run_id
            log.warning("nbops: %s of run %s is unreadable: %s", RECORD_ARTIFACT, run_id, exc)
            return None

    def _download_text(self, run_id: str, artifact: str) -> str | None:
        from mlflow.exceptions import MlflowException

        with self.scratch("download") as tmp, quiet():
            try:
                path = self.client.download_artifacts(run_id, artifact, tmp)
            except MlflowException as exc:
                if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                    return None
                raise
            return Path(path).read_text(encoding="utf-8")


def _local_path(artifact_uri: str) -> Path | None:
    from urllib.request import url2pathname

    parsed = urlparse(artifact_uri)
    if parsed.scheme == "file":
        return Path(url2pathname(parsed.path))
    if parsed.scheme == "" and artifact_uri:
        return Path(artifact_uri)
    return None


def no_store_error(config: Config) -> NoStoreError:
    """What a read-only command says before any run was recorded."""
    pending = len(Spool(config.state_dir).pending())
    waiting = (
        f"; {pending} record(s) wait in {config.state_dir / 'spool'}: `nbops sync` creates the "
        "store and delivers them"
        if pending
        else ""
    )
    return NoStoreError(
        f"there is no tracking store yet at {config.tracking_uri}{waiting}",
        fix="record a run first (a %%track cell, `with nbops.track():`, or `nbops run`), or "
        "point tracking_uri ([tool.nbops] or MLFLOW_TRACKING_URI) at an existing store",
        uri=config.tracking_uri,
    )
