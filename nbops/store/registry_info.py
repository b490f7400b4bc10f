"""What the registry returns: model versions and alias changes, each formatting itself.

Plain data (stdlib only): the CLI, ``%nbops``, the promotion widget and the model gate show
these; :mod:`nbops.store.registry_store` makes them from MLflow.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"
Event = dict[str, Any]


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

    def text(self) -> str:
        """What a promote/rollback moved, who did it and why, and how to load the champion."""
        champion = self.aliases.get(CHAMPION)
        if not self.changes:
            held = f"version {champion} is the champion" if champion else "it has no champion"
            note = f"{self.note}; " if self.note else ""
            return f"model {self.name!r}: {note}nothing changed ({held})"
        lines = [f"model {self.name!r}: version {champion} is the champion ({self.op})"]
        for c in self.changes:
            old = f"v{c.old}" if c.old is not None else "-"
            new = f"v{c.new}" if c.new is not None else "- (removed)"
            lines.append(f"  {c.alias:<10} {old} -> {new}")
        reason = f"; reason: {self.reason}" if self.reason else ""
        lines.append(f"by {self.actor} at {self.at}{reason}")
        lines.append(f"load it: models:/{self.name}@{CHAMPION}")
        return "\n".join(lines)


@dataclass
class VersionList:
    """`nbops model list NAME`: versions newest first."""

    name: str
    versions: list[VersionInfo]

    def to_json(self) -> str:
        rows = [asdict(v) | {"created": v.created.isoformat()} for v in self.versions]
        return json.dumps(rows, indent=1, default=str)

    def text(self) -> str:
        """Versions, aliases, metrics, the gate's decision and the data validation status
        (versions registered by a pipeline), the latest change."""
        if not self.versions:
            return f"model {self.name!r} has no versions"
        metrics = sorted({k for v in self.versions for k in v.metrics})[:4]
        rows = [["version", "aliases", "run", "created", *metrics, "gate", "data", "last change"]]
        for v in self.versions:
            created = time.strftime("%Y-%m-%d %H:%M", time.localtime(v.created.timestamp()))
            rows.append(
                [
                    str(v.version),
                    ",".join(v.aliases) or "-",
                    (v.run_id or "")[:8],
                    created,
                    *[_num(v.metrics.get(m)) for m in metrics],
                    v.tags.get("nbops.gate.decision", "-"),  # versions the pipeline's gate made
                    v.tags.get("nbops.validation.data", "-"),
                    _last_change(v.history),
                ]
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
        return "\n".join(line.rstrip() for line in lines)


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _last_change(history: list[Event]) -> str:
    if not history:
        return ""
    e = history[-1]
    what = f"{e['alias']} {e['action']}" if "alias" in e else str(e.get("op", ""))
    reason = f": {_short(e.get('reason'))}" if e.get("reason") else ""
    return f"{what} {str(e.get('at', ''))[:16]} by {e.get('by', '?')}{reason}"


def _short(value: object) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= 18 else text[:17] + "…"
