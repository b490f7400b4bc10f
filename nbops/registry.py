"""The model registry: register, promote and roll back through MLflow aliases.

Every alias change (the CLI, a promotion widget, the pipeline's model gate) goes through
:func:`_Model.apply`, so each one is made and recorded the same way. Stages are deprecated in
MLflow; nbops uses three aliases: ``champion`` (what serves: ``models:/NAME@champion``),
``challenger`` (a candidate awaiting a decision) and ``previous`` (the champion the current one
replaced: the rollback target).

MLflow keeps no alias history, so every change is written as tags on each version it touches:
``nbops.alias.<alias>.set`` / ``.removed`` (ISO time, with ``.by`` and ``.reason``) and an
append-only ``nbops.history`` JSON list (oldest events dropped past a cap). Rollback reads that
history to find the champion before ``previous``.

Like the tracker, this uses ``MlflowClient(tracking_uri=...)`` only (the registry is the
tracking store, never a fluent or global registry URI) and imports mlflow inside functions.
There is no lock across processes: two concurrent promotions both apply; the history shows it.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import re
import shlex
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from nbops.config import Config
from nbops.errors import NbopsError, RegistryError, RunNotFoundError, StoreError, UsageError
from nbops.store import sqlite
from nbops.store.mapping import equals_filter
from nbops.store.mlflow_store import LOCK_RETRY_DELAYS

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

    from nbops.session import Session

T = TypeVar("T")
Event = dict[str, Any]

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"
TAG_HISTORY = "nbops.history"
HISTORY_MAX_EVENTS = 50
HISTORY_MAX_CHARS = 20_000  # MLflow allows 100,000 per registry tag; keep the UI readable
REASON_MAX_CHARS = 1_000
_ALIAS, _RESERVED = re.compile(r"[\w-]{1,255}"), re.compile(r"(?i)latest|v\d+")  # MLflow's rules


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


# ---- the public operations ------------------------------------------------------------


def register(
    session_or_config: Session | Config,
    run_id: str,
    name: str,
    artifact_path: str = "model",
    *,
    alias: str | None = CHALLENGER,
    reason: str = "",
    actor: str | None = None,
) -> VersionInfo:
    """Register ``runs:/<run_id>/<artifact_path>`` as a new version of ``name`` (created if
    missing) and give it ``alias``; alias ``champion`` is a promotion (``previous`` is kept)."""
    if alias is not None and (not _ALIAS.fullmatch(alias) or _RESERVED.fullmatch(alias)):
        raise UsageError(  # checked before the version is created, not after
            f"{alias!r} cannot be an alias: MLflow allows letters, digits, _ and - and reserves "
            "'latest' and v<number>",
            fix=f"use {CHALLENGER!r}, {CHAMPION!r} or another name",
            alias=alias,
        )
    with _model(_config_of(session_or_config), name, "register a model version") as model:
        model.check_artifact(run_id, artifact_path)
        at, who = _now(), _actor(actor)
        event = {"at": at, "by": who, "op": "register", "reason": _clip(reason), "run": run_id}
        version = model.create_version(run_id, artifact_path, event)
        if alias == CHAMPION:
            model.apply(_champion_plan(model.aliases(), version), "register", reason, who)
        elif alias is not None:
            model.apply({alias: version}, "register", reason, who)
        return model.info(model.version(version))


def list_versions(session_or_config: Session | Config, name: str) -> list[VersionInfo]:
    """Every version of ``name``, newest first, with aliases, run metrics and history."""
    with _model(_config_of(session_or_config), name, "list model versions") as model:
        aliases = model.aliases()
        return [model.info(mv, aliases) for mv in model.versions()]


def promote(
    session_or_config: Session | Config,
    name: str,
    version: int | str | None = None,
    *,
    challenger: bool = False,
    reason: str = "",
    actor: str | None = None,
) -> RegistryChange:
    """Make ``version`` (or the current challenger) the champion; the champion it replaces
    becomes ``previous``; ``challenger`` is removed if it pointed at the promoted version."""
    if (version is None) == (not challenger):
        raise UsageError(
            "promote takes a version or challenger=True (exactly one)",
            fix=f"nbops model promote {shlex.quote(name)} VERSION  (or --challenger)",
            model=name,
        )
    with _model(_config_of(session_or_config), name, "promote a model version") as model:
        aliases = model.aliases()
        if challenger:
            fix = (
                f"register a candidate (nbops model register RUN {model.q}) or promote a "
                f"version by number: nbops model promote {model.q} VERSION"
            )
            number = model.holder(aliases, CHALLENGER, "nothing to promote", fix)
        else:
            number = _version_number(version, name)
            model.version(number)  # a clear error for a version that does not exist
        return model.apply(_champion_plan(aliases, number), "promote", reason, _actor(actor))


def rollback(
    session_or_config: Session | Config, name: str, *, reason: str = "", actor: str | None = None
) -> RegistryChange:
    """Make ``previous`` the champion again. The demoted champion only loses ``champion`` (it
    stays registered; promote it to restore it). ``previous`` moves to the champion the new
    one had replaced, if the history records one that still exists; otherwise it is removed,
    so repeated rollbacks walk back through the promotions until there is nothing left."""
    with _model(_config_of(session_or_config), name, "roll back a model") as model:
        aliases = model.aliases()
        fix = f"promote a version first: nbops model promote {model.q} VERSION"
        target = model.holder(aliases, PREVIOUS, "nothing to roll back to", fix)
        demoted = aliases.get(CHAMPION)
        before = _replaced(model.history(target))
        if before in (target, demoted) or not model.has_version(before):
            before = None
        plan = {**_champion_plan(aliases, target), PREVIOUS: before}
        return model.apply(plan, "rollback", reason, _actor(actor))


# ---- plans: which alias goes where ------------------------------------------------------


def _champion_plan(aliases: dict[str, int], version: int) -> dict[str, int | None]:
    """Aliases after ``version`` becomes champion; order matters: champion moves first, so a
    failure halfway never leaves the model without one."""
    plan: dict[str, int | None] = {CHAMPION: version}
    old = aliases.get(CHAMPION)
    if old is not None and old != version:
        plan[PREVIOUS] = old
    elif aliases.get(PREVIOUS) == version:
        plan[PREVIOUS] = None  # the rollback target cannot be the champion itself
    if aliases.get(CHALLENGER) == version:
        plan[CHALLENGER] = None
    return plan


def _replaced(history: list[Event]) -> int | None:
    """The champion ``version`` replaced the last time it was promoted (not rolled back to)."""
    for event in reversed(history):
        promoted = event.get("alias") == CHAMPION and event.get("action") == "set"
        if promoted and event.get("op") != "rollback":
            replaced = event.get("from")
            return replaced if isinstance(replaced, int) else None
    return None


# ---- one registered model in one store --------------------------------------------------


class _Model:
    """The MLflow calls the operations are built from, with nbops' errors and history."""

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

    def create_version(self, run_id: str, artifact_path: str, event: Event) -> int:
        if self.get(self.client.get_registered_model, self.name) is None:
            try:
                self.call(self.client.create_registered_model, self.name)
            except Exception as exc:  # another process created it meanwhile: fine
                if getattr(exc, "error_code", None) != "RESOURCE_ALREADY_EXISTS":
                    raise
        source = f"runs:/{run_id}/{artifact_path}"
        tags = {TAG_HISTORY: json.dumps([event], separators=(",", ":"))}
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


# ---- plumbing ------------------------------------------------------------------------------


@contextlib.contextmanager
def _model(config: Config, name: str, action: str) -> Iterator[_Model]:
    """A :class:`_Model`; a failure that is not an nbops error becomes a StoreError."""
    try:
        yield _Model(config, name)
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


def _client(config: Config) -> MlflowClient:
    """A client whose registry is the tracking store (pinned: a registry URI set elsewhere in
    the process must not redirect nbops), set up the way the tracker sets up a new store."""
    uri = config.tracking_uri
    sqlite.check_usable(uri)
    from mlflow.tracking import MlflowClient

    with sqlite.setup_lock(uri):
        sqlite.create_if_missing(uri, lambda u: MlflowClient(tracking_uri=u, registry_uri=u))
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _config_of(session_or_config: Session | Config) -> Config:
    """Both work: a kernel has a Session; the pipeline gate and tests may have only a Config.
    A Session first delivers spooled runs, so a run just tracked can be registered."""
    if isinstance(session_or_config, Config):
        return session_or_config
    session_or_config.deliver_pending()
    return session_or_config.config


def _version_number(version: int | str | None, name: str) -> int:
    text = str(version).strip().lstrip("vV")
    if not text.isdigit() or int(text) < 1:
        raise UsageError(
            f"model version {version!r} is not a version number",
            fix=f"pass a number like 3 (`nbops model list {shlex.quote(name)}` lists them)",
            model=name,
        )
    return int(text)


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


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):  # no USER/LOGNAME and no passwd entry (containers)
        return "unknown"


def _clip(reason: str) -> str:
    reason = reason.strip()
    return reason if len(reason) <= REASON_MAX_CHARS else reason[: REASON_MAX_CHARS - 3] + "..."
