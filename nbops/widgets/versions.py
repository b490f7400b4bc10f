"""The promotion panel's view model: versions in decision order, their holdout metrics, data
validation and gate results, and the questions asked before an alias moves (stdlib only).

The pipeline's model gate tags each version it registers (``nbops.gate.*``,
``nbops.validation.data``, ``nbops.pipeline.run``) and logs, in the version's run, the
candidate's holdout metric under its own name and the champion's on the same holdout as
``champion.<metric>``. Versions registered by hand have none of these: they show ``—``.
"""

from __future__ import annotations

import shlex
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from nbops.errors import RegistryError
from nbops.store.registry_store import VersionInfo
from nbops.widgets.render import MISSING

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"  # as nbops.registry
TAG_GATE_DECISION = "nbops.gate.decision"
TAG_GATE_METRIC = "nbops.gate.metric"
TAG_GATE_REASONS = "nbops.gate.reasons"
TAG_VALIDATION = "nbops.validation.data"
TAG_PIPELINE_RUN = "nbops.pipeline.run"
CHAMPION_PREFIX = "champion."
MAX_OTHER_METRICS = 3
MAX_REASONS = 48


@dataclass
class PanelModel:
    """A model's versions as the panel shows them: champion, challenger, then newest first."""

    name: str
    versions: list[VersionInfo]
    aliases: dict[str, int]
    gate_metric: str | None  # the metric the gate decided on (the most common tag)
    other_metrics: list[str]

    @property
    def champion(self) -> int | None:
        return self.aliases.get(CHAMPION)

    @property
    def challenger(self) -> int | None:
        return self.aliases.get(CHALLENGER)

    @property
    def previous(self) -> int | None:
        return self.aliases.get(PREVIOUS)


def panel_model(name: str, versions: Sequence[VersionInfo]) -> PanelModel:
    aliases = {alias: v.version for v in versions for alias in v.aliases}
    rank = {aliases.get(CHAMPION): 0, aliases.get(CHALLENGER): 1}
    ordered = sorted(versions, key=lambda v: (rank.get(v.version, 2), -v.version))
    gates = Counter(v.tags[TAG_GATE_METRIC] for v in versions if v.tags.get(TAG_GATE_METRIC))
    gate_metric = gates.most_common(1)[0][0] if gates else None
    names = sorted({k for v in versions for k in v.metrics if not k.startswith(CHAMPION_PREFIX)})
    others = [m for m in names if m != gate_metric][: MAX_OTHER_METRICS + (gate_metric is None)]
    return PanelModel(name, ordered, aliases, gate_metric, others)


def header(model: PanelModel) -> list[str]:
    metrics = []
    if model.gate_metric:
        metrics = [f"{model.gate_metric} (holdout)", f"champion's {model.gate_metric}"]
    return ["version", "aliases", "created", "run", *metrics, *model.other_metrics,
            "data validation", "gate", "gate reasons", "last change"]  # fmt: skip


def rows(model: PanelModel) -> list[list[str]]:
    table = []
    for v in model.versions:
        metrics = []
        if model.gate_metric:
            metrics = [
                _num(v.metrics.get(model.gate_metric)),
                _num(v.metrics.get(CHAMPION_PREFIX + model.gate_metric)),
            ]
        table.append(
            [
                f"v{v.version}",
                ", ".join(v.aliases) or MISSING,
                time.strftime("%Y-%m-%d %H:%M", time.localtime(v.created.timestamp())),
                (v.run_id or "")[:8] or MISSING,
                *metrics,
                *[_num(v.metrics.get(m)) for m in model.other_metrics],
                v.tags.get(TAG_VALIDATION) or MISSING,
                v.tags.get(TAG_GATE_DECISION) or MISSING,
                _short(v.tags.get(TAG_GATE_REASONS)),
                last_change(v),
            ]
        )
    return table


def headline(model: PanelModel) -> str:
    def who(alias: str) -> str:
        version = model.aliases.get(alias)
        return f"v{version}" if version is not None else "none"

    return (
        f"model {model.name!r}: champion {who(CHAMPION)}, challenger {who(CHALLENGER)}, "
        f"previous {who(PREVIOUS)} ({len(model.versions)} version(s))"
    )


def promote_question(model: PanelModel) -> str:
    """What "Promote challenger" will do; a RegistryError when there is nothing to promote."""
    if model.challenger is None:
        raise RegistryError(
            f"no version of model {model.name!r} has alias {CHALLENGER!r}: nothing to promote",
            fix=f"register a candidate (nbops model register RUN {shlex.quote(model.name)}) "
            "or promote a version by number: nbops model promote NAME VERSION",
            model=model.name,
            alias=CHALLENGER,
        )
    text = f"Promote challenger v{model.challenger} to champion?"
    if model.champion is not None and model.champion != model.challenger:
        text += f" The champion v{model.champion} becomes previous (the rollback target)."
    return text


def rollback_question(model: PanelModel) -> str:
    """What "Roll back" will do; a RegistryError when there is no previous champion."""
    if model.previous is None:
        raise RegistryError(
            f"no version of model {model.name!r} has alias {PREVIOUS!r}: nothing to roll back to",
            fix=f"promote a version first: nbops model promote {shlex.quote(model.name)} VERSION",
            model=model.name,
            alias=PREVIOUS,
        )
    text = f"Roll back: make the previous champion v{model.previous} the champion again?"
    if model.champion is not None:
        text += f" v{model.champion} loses the champion alias (it stays registered)."
    return text


def last_change(version: VersionInfo) -> str:
    """The newest alias event of a version: ``champion set 01-02 10:00 by alice``."""
    events = [e for e in version.history if "alias" in e] or version.history
    if not events:
        return MISSING
    e = events[-1]
    what = f"{e['alias']} {e.get('action', '')}" if "alias" in e else str(e.get("op", ""))
    when = str(e.get("at", ""))[5:16].replace("T", " ")  # MM-DD HH:MM (UTC)
    return f"{what} {when} by {e.get('by', '?')}".strip()


def _num(value: float | None) -> str:
    return MISSING if value is None else f"{value:.4g}"


def _short(text: str | None) -> str:
    if not text:
        return MISSING
    return text if len(text) <= MAX_REASONS else text[: MAX_REASONS - 1] + "…"
