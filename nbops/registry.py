"""The model registry: register, promote and roll back through MLflow aliases.

Stages are deprecated in MLflow; nbops uses three aliases: ``champion`` (what serves:
``models:/NAME@champion``), ``challenger`` (a candidate awaiting a decision) and ``previous``
(the champion the current one replaced: the rollback target).

This module decides which alias goes where (the plans); every alias change (the CLI, a promotion
widget, the pipeline's model gate) is made and recorded by
:meth:`nbops.store.registry_store.RegisteredModel.apply`, which appends each change to the
history of the versions it touches (:mod:`nbops.store.audit`). Rollback reads that history to
find the champion before ``previous``.
"""

from __future__ import annotations

import getpass
import re
import shlex
from typing import TYPE_CHECKING

from nbops.config import Config
from nbops.errors import UsageError
from nbops.store.registry_info import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS,
    Event,
    RegistryChange,
    VersionInfo,
)
from nbops.store.registry_info import AliasChange as AliasChange
from nbops.store.registry_info import ModelVersionInfo as ModelVersionInfo
from nbops.store.registry_info import VersionList as VersionList
from nbops.store.registry_store import HISTORY_MAX_CHARS as HISTORY_MAX_CHARS
from nbops.store.registry_store import HISTORY_MAX_EVENTS as HISTORY_MAX_EVENTS
from nbops.store.registry_store import REASON_MAX_CHARS as REASON_MAX_CHARS
from nbops.store.registry_store import TAG_HISTORY as TAG_HISTORY
from nbops.store.registry_store import _capped as _capped  # tests check the cap here
from nbops.store.registry_store import open_model

if TYPE_CHECKING:
    from nbops.session import Session

_ALIAS, _RESERVED = re.compile(r"[\w-]{1,255}"), re.compile(r"(?i)latest|v\d+")  # MLflow's rules


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
    tags: dict[str, str] | None = None,
) -> VersionInfo:
    """Register the run's model (its LoggedModel; for runs logged before LoggedModels, or another
    ``artifact_path``, ``runs:/<run_id>/<artifact_path>``) as a new version of ``name`` (created
    if missing) with version ``tags`` and give it ``alias``; alias ``champion`` is a promotion
    (``previous`` is kept)."""
    if alias is not None and (not _ALIAS.fullmatch(alias) or _RESERVED.fullmatch(alias)):
        raise UsageError(  # checked before the version is created, not after
            f"{alias!r} cannot be an alias: MLflow allows letters, digits, _ and - and reserves "
            "'latest' and v<number>",
            fix=f"use {CHALLENGER!r}, {CHAMPION!r} or another name",
            alias=alias,
        )
    with open_model(_config_of(session_or_config), name, "register a model version") as model:
        source = model.model_source(run_id, artifact_path)
        who = _actor(actor)
        version = model.create_version(run_id, source, who, reason, tags)
        if alias == CHAMPION:
            model.apply(_champion_plan(model.aliases(), version), "register", reason, who)
        elif alias is not None:
            model.apply({alias: version}, "register", reason, who)
        return model.info(model.version(version))


def list_versions(session_or_config: Session | Config, name: str) -> list[VersionInfo]:
    """Every version of ``name``, newest first, with aliases, run metrics and history."""
    with open_model(_config_of(session_or_config), name, "list model versions") as model:
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
    with open_model(_config_of(session_or_config), name, "promote a model version") as model:
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
    so repeated rollbacks walk back through the promotions until there is nothing left.

    With no ``previous`` (never promoted twice, or already rolled back) nothing changes: the
    change returned is empty and its ``note`` says why. A rollback clicked in a panel and run
    again from the CLI (notebook 05) is then harmless, not an error."""
    with open_model(_config_of(session_or_config), name, "roll back a model") as model:
        aliases = model.aliases()
        if PREVIOUS not in aliases:
            note = (
                f"nothing to roll back to: no version of model {name!r} has alias {PREVIOUS!r} "
                f"(to make another version champion: nbops model promote {model.q} VERSION)"
            )
            return RegistryChange(name, "rollback", "", _actor(actor), reason, [], aliases, note)
        target = aliases[PREVIOUS]
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


# ---- plumbing ------------------------------------------------------------------------------


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


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):  # no USER/LOGNAME and no passwd entry (containers)
        return "unknown"
