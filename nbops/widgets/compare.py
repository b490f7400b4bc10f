"""What differs between two or more selected runs: the run browser's comparison view model.

Built on :func:`nbops.diff.diff_records` (the same diff as ``nbops diff``): the earliest run is
the baseline and every other run is diffed against it, so deltas read "later minus earlier".
Only what differs is kept: params, metrics (with deltas), "different data" when fingerprints
differ, and whether the code changed. Stdlib only.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nbops.diff import RunDiff, diff_records
from nbops.record import RunRecord
from nbops.store.mapping import param_value as param_text
from nbops.widgets.render import MISSING, html_table, text_table


@dataclass
class Comparison:
    """Column i is run i; column 0 is the baseline the deltas are measured from."""

    labels: list[str]
    run_ids: list[str]
    params: dict[str, list[Any]] = field(default_factory=dict)  # None: the run has none
    metrics: dict[str, list[float | None]] = field(default_factory=dict)
    deltas: dict[str, list[float | None]] = field(default_factory=dict)  # run i - baseline
    equal_metrics: list[str] = field(default_factory=list)
    different_data: list[list[str]] = field(default_factory=list)  # names, per run
    code_changed: list[bool] = field(default_factory=list)  # vs baseline; False for it
    diffs: list[RunDiff] = field(default_factory=list)  # baseline -> run i, for i >= 1

    @property
    def is_empty(self) -> bool:
        return all(d.is_empty for d in self.diffs)


def compare(records: Sequence[RunRecord]) -> Comparison:
    """Compare two or more runs; fewer than two gives an empty comparison."""
    runs = sorted(records, key=lambda r: r.start or 0.0)
    result = Comparison([_label(r) for r in runs], [r.run_id or r.record_id for r in runs])
    if len(runs) < 2:
        return result
    base = runs[0]
    result.diffs = [diff_records(base, other) for other in runs[1:]]
    differing = set()
    for d in result.diffs:
        differing |= d.params_changed.keys() | d.params_added.keys() | d.params_removed.keys()
    for key in sorted(differing):
        result.params[key] = [r.params.get(key) for r in runs]
    _metrics(result, runs)
    result.different_data = [[]] + [_data_names(d) for d in result.diffs]
    result.code_changed = [False] + [d.code_changed for d in result.diffs]
    return result


def _metrics(result: Comparison, runs: Sequence[RunRecord]) -> None:
    names = sorted({k for r in runs for k in r.metrics})
    for name in names:
        values = [_float(r.metrics.get(name)) for r in runs]
        if len({_key(v) for v in values}) == 1:
            result.equal_metrics.append(name)
            continue
        base = values[0]
        result.metrics[name] = values
        result.deltas[name] = [
            None if i == 0 or v is None or base is None else v - base for i, v in enumerate(values)
        ]


def _data_names(diff: RunDiff) -> list[str]:
    changes = [*diff.data_changed, *diff.data_added, *diff.data_removed]
    return sorted({c.name for c in changes})


def _label(record: RunRecord) -> str:
    ident = (record.run_id or record.record_id)[:8]
    return f"{record.name} ({ident})" if record.name and record.name != ident else ident


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _key(value: float | None) -> Any:
    return "nan" if value is not None and math.isnan(value) else value


# ---- rendering ------------------------------------------------------------------------------


def comparison_rows(c: Comparison) -> list[list[str]]:
    """One row per differing thing: ``[what, value in run 0, value in run 1, ...]``."""
    rows = []
    for key, values in c.params.items():
        rows.append([f"param {key}", *[MISSING if v is None else param_text(v) for v in values]])
    for key, values in c.metrics.items():
        cells = []
        for value, delta in zip(values, c.deltas[key], strict=True):
            text = MISSING if value is None else f"{value:.4g}"
            cells.append(text if delta is None else f"{text} ({delta:+.4g})")
        rows.append([f"metric {key}", *cells])
    if any(c.different_data):
        data = [f"different data: {', '.join(n)}" if n else "same" for n in c.different_data[1:]]
        rows.append(["data", "baseline", *data])
    if any(c.code_changed):
        rows.append(["code", "baseline", *["changed" if x else "same" for x in c.code_changed[1:]]])
    return rows


def comparison_text(c: Comparison) -> str:
    if len(c.labels) < 2:
        return "select two or more runs to compare them"
    rows = comparison_rows(c)
    if not rows:
        return f"no differences between {len(c.labels)} runs (same params, metrics, data, code)"
    lines = [text_table(["", *c.labels], rows)]
    if c.equal_metrics:
        lines.append(f"equal in all: {', '.join(c.equal_metrics)}")
    return "\n".join(lines)


def comparison_html(c: Comparison) -> str:
    if len(c.labels) < 2:
        return '<div style="opacity:0.7">select two or more runs to compare them</div>'
    rows = comparison_rows(c)
    if not rows:
        text = f"no differences between {len(c.labels)} runs (same params, metrics, data, code)"
        return f'<div class="nbops-compare">{text}</div>'
    body = html_table(["vs the earliest", *c.labels], rows, css_class="nbops-compare")
    if c.equal_metrics:
        equal = html.escape(", ".join(c.equal_metrics))
        body += f'<div style="opacity:0.7;font-size:0.85em">equal in all: {equal}</div>'
    return body
