"""Registered-model aliases and version tags in MLflow: reading and writing them, with history.

:mod:`nbops.registry` decides which alias goes where (the plans); this module makes the change
and records it. MLflow keeps no alias history, so every change is written as tags on each
version it touches: ``nbops.alias.<alias>.set`` / ``.removed`` (ISO time, with ``.by`` and
``.reason``) and an append-only ``nbops.history`` JSON list (oldest events dropped past a cap).

Like the tracker, this uses ``MlflowClient(tracking_uri=...)`` only (the registry is the
tracking store, never a fluent or global registry URI) and imports mlflow inside functions.
There is no lock across processes: two concurrent promotions both apply; the history shows it.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from nbops.errors import NbopsError, RegistryError, RunNotFoundError, StoreError, UsageError
from nbops.store import sqlite
from nbops.store.mapping import equals_filter
from nbops.store.mlflow_store import LOCK_RETRY_DELAYS

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

    from nbops.config import Config

T = TypeVar("T")
Event = dict[str, Any]

TAG_HISTORY = "nbops.history"
HISTORY_MAX_EVENTS = 50
HISTORY_MAX_CHARS = 20_000  # MLflow allows 100,000 per registry tag; keep the UI readable
REASON_MAX_CHARS = 1_000


@dataclass
class VersionInfo:
    """One registered model version, with its run's metrics and its alias history."""

    name: str
    version: int
    run_id: str | None
    source: str
    aliases: list[str]
    created: datetime  # UTC
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)  # the version's nbops.* tags
    history: list[Event] = field(default_factory=list)  # oldest first

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


ModelVersionInfo = VersionInfo  # what register() returns: the same shape as a listed version


@dataclass(frozen=True)
class AliasChange:
    """One alias moving: ``old`` held it before, ``new`` holds it now (None: nobody)."""

    alias: str
    old: int | None
    new: int | None


@dataclass
class RegistryChange:
    """What one register/promote/rollback did, for display and for callers that audit."""

    name: str
    op: str  # "register", "promote", "rollback"
    at: str  # ISO 8601, UTC
    actor: str
    reason: str
    changes: list[AliasChange]
    aliases: dict[str, int]  # every alias of the model afterwards
    note: str = ""  # why nothing changed, when nothing did (a rollback with no previous)


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
        self._metrics: dict[str, dict[str, float]] = {}

    def call(self, method: Callable[..., T], *args: Any) -> T:
        """Retry while SQLite says "database is locked" (one writer at a time), < 8 s."""
        for delay in (*LOCK_RETRY_DELAYS, None):
            try:
                return method(*args)
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
        history = _capped([*self.history(version), event])
        key = f"nbops.alias.{event['alias']}.{event['action']}"
        tags = {key: event["at"], f"{key}.by": event["by"], f"{key}.reason": event["reason"]}
        tags[TAG_HISTORY] = json.dumps(history, separators=(",", ":"))
        for tag, value in tags.items():
            self.call(self.client.set_model_version_tag, self.name, str(version), tag, value)
        self._history[version] = history

    def history(self, version: int) -> list[Event]:
        if version not in self._history:
            self._history[version] = _parse_history(self.version(version).tags)
        return self._history[version]

    def create_version(
        self,
        run_id: str,
        artifact_path: str,
        actor: str,
        reason: str,
        extra: dict[str, str] | None = None,
    ) -> int:
        """A new version of ``runs:/<run_id>/<artifact_path>`` (the model created if missing),
        its history starting with a ``register`` event; ``extra`` tags (the gate's) with it."""
        base = {"at": _now(), "by": actor, "op": "register", "reason": _clip(reason)}
        if self.get(self.client.get_registered_model, self.name) is None:
            try:
                self.call(self.client.create_registered_model, self.name)
            except Exception as exc:  # another process created it meanwhile: fine
                if getattr(exc, "error_code", None) != "RESOURCE_ALREADY_EXISTS":
                    raise
        source = f"runs:/{run_id}/{artifact_path}"
        tags = {**(extra or {})}
        tags[TAG_HISTORY] = json.dumps([{**base, "run": run_id}], separators=(",", ":"))
        mv = self.call(self.client.create_model_version, self.name, source, run_id, tags)
        return int(mv.version)

    def check_artifact(self, run_id: str, artifact_path: str) -> None:
        if self.get(self.client.get_run, run_id) is None:
            raise RunNotFoundError(
                f"no run {run_id!r} in {self.uri}: nothing to register",
                fix="pass a full run id (`nbops runs` lists them); a run still in .nbops/spool "
                "needs `nbops sync` first",
                ref=run_id,
            )
        if not self.call(self.client.list_artifacts, run_id, artifact_path):
            raise RegistryError(
                f"run {run_id} has no artifact {artifact_path!r}: no model to register",
                fix="log a model in that run (%%track --model VAR) or pass the artifact path "
                "that holds it",
                model=self.name,
            )

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
        path = mv.source.split("/", 3)[-1] if mv.source.startswith("runs:/") else "model"
        return str(self.call(self.client.download_artifacts, mv.run_id, path, dst))

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
        tags = {k: v for k, v in (mv.tags or {}).items() if k.startswith("nbops.")}
        created = datetime.fromtimestamp((mv.creation_timestamp or 0) / 1000, UTC)
        history = self._history.setdefault(version, _parse_history(tags))
        if mv.run_id and mv.run_id not in self._metrics:
            run = self.get(self.client.get_run, mv.run_id)  # None: deleted; the version remains
            self._metrics[mv.run_id] = dict(run.data.metrics) if run is not None else {}
        metrics = self._metrics.get(mv.run_id or "", {})
        return VersionInfo(
            self.name, version, mv.run_id, mv.source, names, created, metrics, tags, history
        )


def _client(config: Config) -> MlflowClient:
    """A client whose registry is the tracking store (pinned: a registry URI set elsewhere in
    the process must not redirect nbops); a missing SQLite store is reported, not created."""
    uri = config.tracking_uri
    sqlite.check_usable(uri)
    from mlflow.tracking import MlflowClient

    from nbops.store.mlflow_store import no_store_error

    if not sqlite.exists(uri):  # a registry needs runs: never create an empty store for it
        raise no_store_error(config)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _parse_history(tags: dict[str, str]) -> list[Event]:
    try:
        history = json.loads(tags.get(TAG_HISTORY) or "[]")
    except ValueError:
        return []  # edited by hand: start over rather than fail a promotion
    return [e for e in history if isinstance(e, dict)] if isinstance(history, list) else []


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
