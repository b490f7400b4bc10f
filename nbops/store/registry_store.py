"""Registered-model aliases and version tags in MLflow: reading and writing them, with history.

:mod:`nbops.registry` decides which alias goes where (the plans); this module makes the change
and records it. MLflow keeps no alias history, so every change is recorded on each version it
touches (:mod:`nbops.store.audit`): an append-only list of events (oldest dropped past a cap)
in a JSON document beside the version's model, and one short ``nbops.audit`` tag.

Like the tracker, this uses ``MlflowClient(tracking_uri=...)`` only (the registry is the
tracking store, never a fluent or global registry URI) and imports mlflow inside functions.
There is no lock across processes: two concurrent promotions both apply; the history shows it.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast

from nbops.errors import NbopsError, RegistryError, RunNotFoundError, StoreError, UsageError
from nbops.store import audit, sqlite
from nbops.store.downloads import quiet
from nbops.store.logged_model import MODELS_URI
from nbops.store.mapping import equals_filter
from nbops.store.mlflow_store import LOCK_RETRY_DELAYS
from nbops.store.registry_info import (  # noqa: F401 (re-exported)
    AliasChange,
    Event,
    ModelVersionInfo,
    RegistryChange,
    VersionInfo,
)

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

    from nbops.config import Config

T = TypeVar("T")

TAG_HISTORY = audit.TAG_HISTORY
HISTORY_MAX_EVENTS = 50
HISTORY_MAX_CHARS = 20_000  # MLflow allows 100,000 per registry tag; keep the UI readable
REASON_MAX_CHARS = 1_000


@contextlib.contextmanager
def open_model(config: Config, name: str, action: str) -> Iterator[RegisteredModel]:
    """A :class:`RegisteredModel`; a failure that is not an nbops error becomes a StoreError."""
    try:
        yield RegisteredModel(config, name)
    except NbopsError:
        raise
    except Exception as exc:
        detail = " ".join(str(exc).split())[:400]
        if getattr(exc, "error_code", None) == "INVALID_PARAMETER_VALUE":  # a reserved alias...
            raise UsageError(f"MLflow refused to {action}: {detail}", model=name) from None
        raise StoreError(
            f"could not {action} for {name!r} in MLflow ({config.tracking_uri}): "
            f"{type(exc).__name__}: {detail}",
            fix=f"check that the tracking store {config.tracking_uri} is reachable and writable "
            "(tracking_uri in [tool.nbops] or MLFLOW_TRACKING_URI)",
            uri=config.tracking_uri,
            model=name,
        ) from exc


class RegisteredModel:
    """The MLflow calls the registry operations are built from, with nbops' errors and
    history. Every alias change goes through :meth:`apply`, so each one is made and recorded
    the same way."""

    def __init__(self, config: Config, name: str) -> None:
        self.uri = config.tracking_uri
        self.name = name
        self.q = shlex.quote(name)  # for the commands in error fixes
        self.client = _client(config)
        self._history: dict[int, list[Event]] = {}
        self._gate: dict[int, dict[str, str]] = {}  # the gate's verdict per version
        self._metrics: dict[str, dict[str, float]] = {}

    def call(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Retry while SQLite says "database is locked" (one writer at a time), < 8 s."""
        for delay in (*LOCK_RETRY_DELAYS, None):
            try:
                return method(*args, **kwargs)
            except Exception as exc:
                if delay is None or not sqlite.is_locked(exc):
                    raise
                time.sleep(delay)
        raise AssertionError("unreachable")

    def get(self, method: Callable[..., T], *args: Any) -> T | None:
        """``method(*args)``, or None if MLflow says the model, version or run does not exist."""
        try:
            return self.call(method, *args)
        except Exception as exc:
            if getattr(exc, "error_code", None) != "RESOURCE_DOES_NOT_EXIST":
                raise
            return None

    def apply(
        self, plan: dict[str, int | None], op: str, reason: str, actor: str
    ) -> RegistryChange:
        """Make the aliases match ``plan``, recording each change on the versions it touches
        right after making it, so history and aliases disagree by one change at most."""
        at, before = _now(), self.aliases()
        changes = [AliasChange(a, before.get(a), new) for a, new in plan.items()]
        changes = [c for c in changes if c.old != c.new]
        base = {"at": at, "by": actor, "op": op, "reason": _clip(reason)}
        for change in changes:
            if change.new is None:
                self.call(self.client.delete_registered_model_alias, self.name, change.alias)
            else:
                version = str(change.new)
                self.call(self.client.set_registered_model_alias, self.name, change.alias, version)
            if change.old is not None:
                removed = {**base, "alias": change.alias, "action": "removed", "to": change.new}
                self.record(change.old, removed)
            if change.new is not None:
                added = {**base, "alias": change.alias, "action": "set", "from": change.old}
                self.record(change.new, added)
        return RegistryChange(self.name, op, at, actor, reason, changes, self.aliases())

    def record(self, version: int, event: Event) -> None:
        self._history[version] = _capped([*self.history(version), event])
        self._save(self.version(version))

    def history(self, version: int) -> list[Event]:
        if version not in self._history:
            self._load(self.version(version))
        return self._history[version]

    def _load(self, mv: ModelVersion) -> None:
        """The version's trail: its document (:mod:`nbops.store.audit`), else its old tags."""
        version = int(mv.version)
        document = self.call(audit.read, self.client, mv, self.uri)
        self._history[version] = audit.events_of(document) or audit.legacy(mv.tags or {})
        self._gate[version] = audit.tags_of(document)

    def _save(self, mv: ModelVersion) -> None:
        """Write the version's document, then its one ``nbops.audit`` tag."""
        version = int(mv.version)
        events = self._history.get(version, [])
        document = {"events": events, "tags": self._gate.get(version, {})}
        self.call(audit.write, self.client, mv, document)
        line = audit.audit_line(version, _held(events), events, self.name)
        set_tag = self.client.set_model_version_tag
        self.call(set_tag, self.name, str(version), audit.TAG_AUDIT, line)

    def create_version(
        self,
        run_id: str,
        source: tuple[str, str | None],
        actor: str,
        reason: str,
        extra: dict[str, str] | None = None,
    ) -> int:
        """A new version of ``source`` (from :meth:`model_source`; the registered model is
        created if missing), its history starting with a ``register`` event; ``extra`` tags
        (the gate's) with it."""
        base = {"at": _now(), "by": actor, "op": "register", "reason": _clip(reason)}
        if self.get(self.client.get_registered_model, self.name) is None:
            try:
                self.call(self.client.create_registered_model, self.name)
            except Exception as exc:  # another process created it meanwhile: fine
                if getattr(exc, "error_code", None) != "RESOURCE_ALREADY_EXISTS":
                    raise
        uri, model_id = source
        create = self.client.create_model_version
        with _default_uri(self.uri if model_id else None):
            mv = self.call(create, self.name, uri, run_id, None, model_id=model_id)
        version = int(mv.version)
        self._history[version] = [{**base, "run": run_id}]
        self._gate[version] = dict(extra or {})
        self._save(mv)
        return version

    def model_source(self, run_id: str, artifact_path: str = "model") -> tuple[str, str | None]:
        """What a version of the run's model points at: the run's LoggedModel
        (``models:/<model_id>``, for ``artifact_path`` "model"), else the run's artifact folder
        (``runs:/<run_id>/<artifact_path>``: runs logged before LoggedModels); (uri, model_id)."""
        run = self.get(self.client.get_run, run_id)
        if run is None:
            raise RunNotFoundError(
                f"no run {run_id!r} in {self.uri}: nothing to register",
                fix="pass a full run id (`nbops runs` lists them); a run still in .nbops/spool "
                "needs `nbops sync` first",
                ref=run_id,
            )
        outputs = list(getattr(getattr(run, "outputs", None), "model_outputs", None) or [])
        if outputs and artifact_path == "model":
            model_id = outputs[-1].model_id
            return MODELS_URI.format(model_id=model_id), model_id
        if not self.call(self.client.list_artifacts, run_id, artifact_path):
            raise RegistryError(
                f"run {run_id} has no artifact {artifact_path!r}: no model to register",
                fix="log a model in that run (%%track --model VAR) or pass the artifact path "
                "that holds it",
                model=self.name,
            )
        return f"runs:/{run_id}/{artifact_path}", None

    def aliases(self) -> dict[str, int]:
        """The model's aliases (alias -> version); a RegistryError if there is no such model."""
        model = self.get(self.client.get_registered_model, self.name)
        if model is not None:
            return {alias: int(version) for alias, version in model.aliases.items()}
        names = [m.name for m in self.call(self.client.search_registered_models, None, 20)]
        known = f"registered: {', '.join(names)}" if names else "no model is registered there"
        raise RegistryError(
            f"no registered model {self.name!r} in {self.uri} ({known})",
            fix=f"check the name, or register a run's model: nbops model register RUN {self.q}",
            model=self.name,
        )

    def exists(self) -> bool:
        return self.get(self.client.get_registered_model, self.name) is not None

    def download(self, version: int, dst: str) -> str:
        """The version's model files, downloaded into ``dst``; their local path."""
        mv = self.version(version)
        return self.download_source(cast(str, mv.source), mv.run_id, dst)  # MLflow sets it

    def download_source(self, source: str, run_id: str | None, dst: str) -> str:
        """The model files of ``source`` (``models:/<model_id>`` or ``runs:/...``) in ``dst``."""
        with quiet():
            return self._download_source(source, run_id, dst)

    def _download_source(self, source: str, run_id: str | None, dst: str) -> str:
        if source.startswith("models:/"):
            import mlflow.artifacts

            logged = self.call(self.client.get_logged_model, source.split("/")[1])
            download = mlflow.artifacts.download_artifacts
            return str(
                self.call(
                    download,
                    artifact_uri=logged.artifact_location,
                    dst_path=dst,
                    tracking_uri=self.uri,
                )
            )
        path = source.split("/", 3)[-1] if source.startswith("runs:/") else "model"
        return str(self.call(self.client.download_artifacts, run_id, path, dst))

    def has_version(self, version: int | None) -> bool:
        args = (self.name, str(version))
        return version is not None and self.get(self.client.get_model_version, *args) is not None

    def holder(self, aliases: dict[str, int], alias: str, what: str, fix: str) -> int:
        if alias in aliases:
            return aliases[alias]
        raise RegistryError(
            f"no version of model {self.name!r} has alias {alias!r}: {what}",
            fix=fix,
            model=self.name,
            alias=alias,
        )

    def version(self, version: int) -> ModelVersion:
        mv = self.get(self.client.get_model_version, self.name, str(version))
        if mv is not None:
            return mv
        numbers = ", ".join(str(int(mv.version)) for mv in reversed(self.versions()))
        raise RegistryError(
            f"model {self.name!r} has no version {version} (versions: {numbers or 'none'})",
            fix=f"pick one of those; `nbops model list {self.q}` shows them with their aliases "
            "and metrics",
            model=self.name,
            version=version,
        )

    def versions(self) -> list[ModelVersion]:
        query = equals_filter("name", self.name)
        if query is None:
            raise UsageError(f"model name {self.name!r} has both quote characters", fix="rename")
        found = self.call(self.client.search_model_versions, query)
        return sorted(found, key=lambda mv: int(mv.version), reverse=True)

    def info(self, mv: ModelVersion, aliases: dict[str, int] | None = None) -> VersionInfo:
        """``mv`` with its aliases (search results leave them out) and its run's metrics."""
        version = int(mv.version)
        held = aliases if aliases is not None else self.aliases()
        names = sorted(a for a, v in held.items() if v == version)
        if version not in self._history:
            self._load(mv)
        tags = {k: v for k, v in (mv.tags or {}).items() if k.startswith("nbops.")}
        tags.update(self._gate.get(version, {}))  # the gate's verdict, from the document
        created = datetime.fromtimestamp((mv.creation_timestamp or 0) / 1000, UTC)
        history = self._history[version]
        if mv.run_id and mv.run_id not in self._metrics:
            run = self.get(self.client.get_run, mv.run_id)  # None: deleted; the version remains
            self._metrics[mv.run_id] = dict(run.data.metrics) if run is not None else {}
        metrics = self._metrics.get(mv.run_id or "", {})
        return VersionInfo(
            self.name,
            version,
            mv.run_id,
            cast(str, mv.source),
            names,
            created,
            metrics,
            tags,
            history,
        )


def _client(config: Config) -> MlflowClient:
    """A client whose registry is the tracking store (pinned: a registry URI set elsewhere in
    the process must not redirect nbops); a missing SQLite store is reported, not created."""
    uri = config.tracking_uri
    sqlite.check_usable(uri)
    from mlflow.tracking import MlflowClient

    from nbops.store.run_lookup import no_store_error

    if not sqlite.exists(uri):  # a registry needs runs: never create an empty store for it
        raise no_store_error(config)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


_DEFAULT_URI_LOCK = threading.Lock()


@contextlib.contextmanager
def _default_uri(uri: str | None) -> Iterator[None]:
    """MLflow's SQL registry looks a ``models:/<model_id>`` source up with a client on the
    process's default tracking URI, not the registry's own (still so in MLflow 3.17), and fails
    when they differ: for the one call, make the default this store (a module attribute, not
    the environment), then put it back. Registrations run on the user's thread, not beside
    their own MLflow calls."""
    if uri is None:
        yield
        return
    from mlflow.tracking._tracking_service import utils

    with _DEFAULT_URI_LOCK:
        before = getattr(utils, "_tracking_uri", None)
        utils._tracking_uri = uri  # type: ignore[assignment]
        try:
            yield
        finally:
            utils._tracking_uri = before


def _held(events: list[Event]) -> list[str]:
    """The aliases a version holds after its events (replayed in order)."""
    held: list[str] = []
    for event in events:
        alias = event.get("alias")
        if event.get("action") == "set" and alias and alias not in held:
            held.append(alias)
        elif event.get("action") == "removed" and alias in held:
            held.remove(alias)
    return sorted(held)


def _capped(history: list[Event]) -> list[Event]:
    """The newest events that fit: a tag value has a size limit, and a long list helps no one."""
    history = history[-HISTORY_MAX_EVENTS:]
    while len(history) > 1 and len(json.dumps(history, separators=(",", ":"))) > HISTORY_MAX_CHARS:
        history = history[1:]
    return history


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _clip(reason: str) -> str:
    reason = reason.strip()
    return reason if len(reason) <= REASON_MAX_CHARS else reason[: REASON_MAX_CHARS - 3] + "..."
