"""What the gates decided in one ``nbops run``, for the parent run's metadata and the console.

The gate stages write their reports (``reports/validate_data.json``,
``reports/validate_model.json``); the parent run reads those of the stages that ran in this run
and records the data validation status, the gate decision with its reasons, the champion before
the run (the rollback pointer) and the version registered, as ``nbops.*`` tags.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbops.pipeline import layout
from nbops.pipeline_folder import DATA_STAGE, DEPLOY_STAGE, MODEL_STAGE

TAG_DECISION, TAG_REASONS = "nbops.gate.decision", "nbops.gate.reasons"
TAG_METRIC, TAG_CHAMPION_BEFORE = "nbops.gate.metric", "nbops.champion.before"
TAG_DATA = "nbops.validation.data"
TAG_HOLDOUT = "nbops.gate.holdout"  # JSON {"rows": n, "fingerprint": "xxh128:..."}


@dataclass
class Outcome:
    tags: dict[str, str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)  # what the console shows after the run


def gate_outcome(folder: Path, ran: set[str], failed: set[str]) -> Outcome:
    """The tags and console lines of the gate stages that ran (or failed) in this run."""
    outcome = Outcome()
    if DATA_STAGE in ran | failed:
        report = _report(folder, DATA_STAGE)
        status = str(report.get("status", "failed" if DATA_STAGE in failed else "unknown"))
        outcome.tags[TAG_DATA] = status
        drifted = _drifted(report)
        line = f"data validation: {status}"
        if drifted:
            line += f" (drifted: {', '.join(drifted)})"
        outcome.lines.append(line)
    if MODEL_STAGE in ran:
        report = _report(folder, MODEL_STAGE)
        if report:
            outcome.tags.update(_gate_tags(report))
            outcome.lines.extend(gate_lines(report))
    if DEPLOY_STAGE in ran | failed:
        report = _report(folder, DEPLOY_STAGE)
        version = report.get("version")
        state = "delivered" if report.get("ok") else "FAILED"
        outcome.lines.append(
            f"deploy: {state} (champion v{version})" if report else "deploy: FAILED"
        )
        outcome.lines += [f"  {line}" for line in report.get("lines") or [] if line]
    return outcome


def _report(folder: Path, stage: str) -> dict[str, Any]:
    path = folder / layout.REPORTS_DIR / f"{stage}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _drifted(report: dict[str, Any]) -> list[str]:
    """Drifted feature names from the data report (``drift``: a list or a mapping)."""
    drift = report.get("drift")
    items = drift.items() if isinstance(drift, dict) else enumerate(drift or [])
    names = []
    for key, value in items:
        if isinstance(value, dict) and value.get("drifted"):
            names.append(str(value.get("column", value.get("feature", key))))
    return names


def decision_tags(report: dict[str, Any]) -> dict[str, str]:
    """The gate's decision as tags, from its report (a ``GateResult`` as a dict): the same on
    the stage's run, on the registered version and on the pipeline's parent run."""
    tags = {
        TAG_DECISION: "passed" if report.get("passed") else "failed",
        TAG_REASONS: "; ".join(map(str, report.get("reasons") or []))[:5000],
        TAG_METRIC: str(report.get("metric", "")),
        TAG_CHAMPION_BEFORE: str(report.get("champion_version") or ""),
    }
    if report.get("holdout"):  # what the scores were measured on: the panel labels them
        tags[TAG_HOLDOUT] = json.dumps(report["holdout"], sort_keys=True)
    return tags


def _gate_tags(report: dict[str, Any]) -> dict[str, str]:
    tags = {**decision_tags(report), "nbops.model.name": str(report.get("model_name", ""))}
    if report.get("registered_version") is not None:
        tags["nbops.model.version"] = str(report["registered_version"])
    return tags


def gate_lines(report: dict[str, Any]) -> list[str]:
    """The gate's decision as console lines (``nbops run`` and ``nbops validate model``)."""
    passed = bool(report.get("passed"))
    metric, candidate = report.get("metric"), report.get("candidate")
    champion, version = report.get("champion"), report.get("champion_version")
    against = f"champion v{version}: {_num(champion)}" if version else "no champion yet"
    lines = [
        f"model gate: {'passed' if passed else 'FAILED'}: {metric} {_num(candidate)} ({against})"
    ]
    lines += [f"  - {reason}" for reason in report.get("reasons") or []]
    name, registered = report.get("model_name"), report.get("registered_version")
    if registered is not None:
        aliases = ", ".join(report.get("aliases") or []) or "no alias"
        lines.append(f"  registered {name} v{registered} ({aliases})")
    else:
        lines.append(f"  nothing registered; the champion of {name} is unchanged")
    return lines


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else "n/a"
