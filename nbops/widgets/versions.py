"""The promotion panel's view model: versions in decision order, their scores labelled with the
holdout they were measured on, data validation and gate results, which buttons apply (and why
not), and the questions asked before an alias moves (stdlib only).

The pipeline's model gate tags each version it registers (``nbops.gate.*``,
``nbops.validation.data``, ``nbops.pipeline.run``) and logs, in the version's run, the
candidate's holdout metric under its own name and the champion's on the same holdout as
``champion.<metric>``; ``nbops.gate.holdout`` says which holdout (rows, fingerprint). Scores
on different holdouts are not comparable, so every score carries its holdout's label (H1, H2,
...) and the panel says when a column mixes holdouts. Versions registered by hand have none of
these: they show ``—`` and "holdout unknown".
"""

from __future__ import annotations

import json
import shlex
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from nbops.errors import RegistryError
from nbops.store.registry_info import VersionInfo
from nbops.widgets.render import MISSING

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"  # as nbops.registry
TAG_GATE_DECISION = "nbops.gate.decision"
TAG_GATE_METRIC = "nbops.gate.metric"
TAG_GATE_REASONS = "nbops.gate.reasons"
TAG_HOLDOUT = "nbops.gate.holdout"
TAG_VALIDATION = "nbops.validation.data"
TAG_PIPELINE_RUN = "nbops.pipeline.run"
CHAMPION_PREFIX = "champion."
MAX_OTHER_METRICS = 3
REASONS_PREVIEW = 34  # characters shown before the rest is folded
UNKNOWN = "?"


@dataclass(frozen=True)
class Holdout:
    """What a version's scores were measured on."""

    rows: int | None
    fingerprint: str

    @property
    def short(self) -> str:
        return self.fingerprint.split(":", 1)[-1][:8]


@dataclass
class PanelModel:
    """A model's versions as the panel shows them: champion, challenger, then newest first."""

    name: str
    versions: list[VersionInfo]
    aliases: dict[str, int]
    gate_metric: str | None  # the metric the gate decided on (the most common tag)
    other_metrics: list[str]
    holdouts: dict[int, str]  # version -> holdout label ("H1"), for versions that have one
    holdout_info: dict[str, Holdout]  # label -> holdout

    @property
    def champion(self) -> int | None:
        return self.aliases.get(CHAMPION)

    @property
    def challenger(self) -> int | None:
        return self.aliases.get(CHALLENGER)

    @property
    def previous(self) -> int | None:
        return self.aliases.get(PREVIOUS)

    @property
    def mixed_holdouts(self) -> bool:
        """True when the score column holds scores of more than one holdout (or of unknown
        ones beside known ones): the panel then says so above the table."""
        scored = [v for v in self.versions if self.gate_metric in v.metrics]
        labels = {self.holdouts.get(v.version, UNKNOWN) for v in scored}
        return len(labels) > 1


@dataclass(frozen=True)
class Button:
    """A panel button: whether it applies now, and if not, why (its tooltip)."""

    enabled: bool
    why: str


def panel_model(name: str, versions: Sequence[VersionInfo]) -> PanelModel:
    aliases = {alias: v.version for v in versions for alias in v.aliases}
    rank = {aliases.get(CHAMPION): 0, aliases.get(CHALLENGER): 1}
    ordered = sorted(versions, key=lambda v: (rank.get(v.version, 2), -v.version))
    gates = Counter(v.tags[TAG_GATE_METRIC] for v in versions if v.tags.get(TAG_GATE_METRIC))
    gate_metric = gates.most_common(1)[0][0] if gates else None
    names = sorted({k for v in versions for k in v.metrics if not k.startswith(CHAMPION_PREFIX)})
    others = [m for m in names if m != gate_metric][: MAX_OTHER_METRICS + (gate_metric is None)]
    holdouts, info = _holdouts(versions)
    return PanelModel(name, ordered, aliases, gate_metric, others, holdouts, info)


def _holdouts(versions: Sequence[VersionInfo]) -> tuple[dict[int, str], dict[str, Holdout]]:
    """Labels H1, H2, ... in the order the holdouts first appear (oldest version first)."""
    labels: dict[Holdout, str] = {}
    by_version: dict[int, str] = {}
    for v in sorted(versions, key=lambda v: v.version):
        holdout = _holdout(v.tags.get(TAG_HOLDOUT))
        if holdout is not None:
            by_version[v.version] = labels.setdefault(holdout, f"H{len(labels) + 1}")
    return by_version, {label: h for h, label in labels.items()}


def _holdout(text: str | None) -> Holdout | None:
    try:
        raw = json.loads(text or "")
        rows = raw.get("rows")
        return Holdout(rows if isinstance(rows, int) else None, str(raw["fingerprint"]))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


# ---- the table --------------------------------------------------------------------------------


def header(model: PanelModel) -> list[str]:
    metrics = []
    if model.gate_metric:
        m = model.gate_metric
        own = "per holdout" if model.mixed_holdouts else "holdout"
        metrics = [f"{m} ({own})", f"champion's {m}"]
    others = [f"{m} (run)" for m in model.other_metrics]
    return ["version", "aliases", "created", "run", "holdout", *metrics, *others,
            "data", "gate", "gate reasons", "last change"]  # fmt: skip


def rows(model: PanelModel, full_reasons: bool = True) -> list[list[str]]:
    """The table's cells as text; gate reasons in full (the HTML folds long ones)."""
    table = []
    for v in model.versions:
        label = model.holdouts.get(v.version)
        metrics = []
        if model.gate_metric:
            metrics = [
                _scored(v.metrics.get(model.gate_metric), label),
                _scored(v.metrics.get(CHAMPION_PREFIX + model.gate_metric), label),
            ]
        reasons = v.tags.get(TAG_GATE_REASONS) or MISSING
        table.append(
            [
                f"v{v.version}",
                ", ".join(v.aliases) or MISSING,
                time.strftime("%m-%d %H:%M", time.localtime(v.created.timestamp())),
                (v.run_id or "")[:8] or MISSING,
                holdout_text(model, v.version),
                *metrics,
                *[_num(v.metrics.get(m)) for m in model.other_metrics],
                v.tags.get(TAG_VALIDATION) or MISSING,
                v.tags.get(TAG_GATE_DECISION) or MISSING,
                reasons if full_reasons else preview(reasons),
                last_change(v),
            ]
        )
    return table


def holdout_text(model: PanelModel, version: int) -> str:
    """``H2: 92 rows · 1a2b3c4d``, or why there is none."""
    label = model.holdouts.get(version)
    if label is None:
        return "unknown (no gate record)"
    holdout = model.holdout_info[label]
    rows = f"{holdout.rows} rows · " if holdout.rows is not None else ""
    return f"{label}: {rows}{holdout.short}"


def holdout_note(model: PanelModel) -> str:
    """The warning above a table whose score column mixes holdouts ("" when it does not)."""
    if not model.gate_metric or not model.mixed_holdouts:
        return ""
    known = ", ".join(
        f"{label} ({h.rows} rows)" if h.rows is not None else label
        for label, h in model.holdout_info.items()
    )
    unknown = any(
        model.gate_metric in v.metrics and v.version not in model.holdouts for v in model.versions
    )
    kinds = f"holdouts {known}" if known else "holdouts"
    if unknown:
        kinds += " and some measured on data nbops has no record of"
    return (
        f"The {model.gate_metric} scores come from different {kinds}: they are not comparable "
        "down the column. Compare a version with the champion's score in its own row (the same "
        "holdout), or score both versions on one holdout."
    )


def preview(text: str) -> str:
    return text if len(text) <= REASONS_PREVIEW else text[: REASONS_PREVIEW - 1] + "…"


def headline(model: PanelModel) -> str:
    def who(alias: str) -> str:
        version = model.aliases.get(alias)
        return f"v{version}" if version is not None else "none"

    return (
        f"model {model.name!r}: champion {who(CHAMPION)}, challenger {who(CHALLENGER)}, "
        f"previous {who(PREVIOUS)} ({len(model.versions)} version(s))"
    )


# ---- what the buttons may do ---------------------------------------------------------------


def promote_button(model: PanelModel) -> Button:
    if model.challenger is None:
        return Button(
            False,
            f"no version has alias {CHALLENGER!r}: nothing to promote. The pipeline's gate "
            "registers candidates as challenger; to make any version champion use its "
            "'make champion' button",
        )
    return Button(True, f"make challenger v{model.challenger} the champion (asks first)")


def rollback_button(model: PanelModel) -> Button:
    if model.previous is None:
        return Button(
            False,
            f"no version has alias {PREVIOUS!r}: nothing to roll back to (a rollback gives "
            "the champion back to the version it replaced)",
        )
    return Button(True, f"make the previous champion v{model.previous} the champion (asks first)")


def champion_button(model: PanelModel, version: int) -> Button:
    if model.champion == version:
        return Button(False, f"v{version} is the champion")
    return Button(True, f"make v{version} the champion (asks first)")


# ---- the questions asked before an alias moves ------------------------------------------------


def promote_question(model: PanelModel) -> str:
    """What "Promote challenger" will do; a RegistryError when there is nothing to promote."""
    q = shlex.quote(model.name)
    if model.challenger is None:
        raise RegistryError(
            f"no version of model {model.name!r} has alias {CHALLENGER!r}: nothing to promote",
            fix=f"register a candidate (nbops model register RUN {q}) or make a version "
            f"champion by number: nbops model promote {q} VERSION",
            model=model.name,
            alias=CHALLENGER,
        )
    text = f"Promote challenger v{model.challenger} to champion?"
    if model.champion is not None and model.champion != model.challenger:
        text += f" The champion v{model.champion} becomes previous (the rollback target)."
    return text


def champion_question(model: PanelModel, version: int) -> str:
    """What "make champion" on ``version`` will do; a RegistryError for an unknown version."""
    if version not in {v.version for v in model.versions}:
        numbers = ", ".join(f"v{v.version}" for v in model.versions) or "none"
        raise RegistryError(
            f"model {model.name!r} has no version {version} (versions: {numbers})",
            fix="click Refresh: the table may be out of date",
            model=model.name,
            version=version,
        )
    text = f"Make v{version} the champion?"
    if model.champion is not None and model.champion != version:
        text += f" The champion v{model.champion} becomes previous (the rollback target)."
    return text


def rollback_question(model: PanelModel) -> str:
    """What "Roll back" will do; a RegistryError when there is no previous champion."""
    if model.previous is None:
        raise RegistryError(
            f"no version of model {model.name!r} has alias {PREVIOUS!r}: nothing to roll back to",
            fix=f"make a version champion instead: nbops model promote "
            f"{shlex.quote(model.name)} VERSION (or its 'make champion' button)",
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
    when = str(e.get("at", ""))[5:19].replace("T", " ")  # MM-DD HH:MM:SS (UTC)
    return f"{what} {when} by {e.get('by', '?')}".strip()


def _scored(value: float | None, holdout: str | None) -> str:
    if value is None:
        return MISSING
    return f"{value:.4g} · {holdout or UNKNOWN}"


def _num(value: float | None) -> str:
    return MISSING if value is None else f"{value:.4g}"
