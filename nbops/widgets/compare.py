"""What differs between two or more selected runs: the run browser's comparison view model.

Built on :func:`nbops.diff.diff_records` (the same diff as ``nbops diff``): the earliest run is
the baseline and every other run is diffed against it, so deltas read "later minus earlier".
The result is split the way the question is asked: were the **inputs** the same (then the
comparison is fair), which **outputs** differ (predictions change when anything else does: that
is a consequence, not "different data"), which **params**, which **metrics** (with deltas),
and whether the **code** changed (with the diff when the full records are at hand). Stdlib only.
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

SECTIONS = ("inputs", "outputs", "params", "metrics", "code")
MAX_CODE_LINES = 60  # of the diff, in the HTML (folded); the text shows fewer
MAX_TEXT_CODE_LINES = 16


@dataclass
class Comparison:
    """Column i is run i; column 0 is the baseline the deltas are measured from."""

    labels: list[str]
    run_ids: list[str]
    params: dict[str, list[Any]] = field(default_factory=dict)  # None: the run has none
    metrics: dict[str, list[float | None]] = field(default_factory=dict)
    deltas: dict[str, list[float | None]] = field(default_factory=dict)  # run i - baseline
    equal_metrics: list[str] = field(default_factory=list)
    inputs: dict[str, list[str | None]] = field(default_factory=dict)  # differing: fingerprints
    outputs: dict[str, list[str | None]] = field(default_factory=dict)
    same_inputs: list[str] = field(default_factory=list)  # in every run, same fingerprint
    unhashed: list[str] = field(default_factory=list)  # not comparable: never fingerprinted
    code_changed: list[bool] = field(default_factory=list)  # vs baseline; False for it
    code_diff: list[str] = field(default_factory=list)  # baseline -> the last run, if known
    diffs: list[RunDiff] = field(default_factory=list)  # baseline -> run i, for i >= 1

    @property
    def is_empty(self) -> bool:
        return all(d.is_empty for d in self.diffs)

    @property
    def different_inputs(self) -> bool:
        return bool(self.inputs)


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
    _data(result, runs)
    result.code_changed = [False] + [d.code_changed for d in result.diffs]
    result.code_diff = next((d.code_diff for d in reversed(result.diffs) if d.code_diff), [])
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


def _data(result: Comparison, runs: Sequence[RunRecord]) -> None:
    """Per role, the data whose fingerprint is not the same in every run."""
    for role, target in (("input", result.inputs), ("output", result.outputs)):
        names = sorted({d.name for r in runs for d in r.data if d.role == role})
        for name in names:
            prints = [_fingerprint(r, role, name) for r in runs]
            present = [p for p in prints if p is not None]
            if present and all(p == "unhashed" for p in present):
                result.unhashed.append(name)
            elif len(set(prints)) > 1:
                target[name] = prints
            elif role == "input":
                result.same_inputs.append(name)


def _fingerprint(record: RunRecord, role: str, name: str) -> str | None:
    """The full fingerprint ("unhashed" for data that has none; None: not in this run)."""
    for ref in record.data:
        if ref.role == role and ref.name == name:
            return ref.fingerprint or "unhashed"
    return None


def _short(fingerprint: str | None) -> str:
    return MISSING if fingerprint is None else fingerprint.split(":", 1)[-1][:8]


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


def comparison_sections(c: Comparison) -> list[tuple[str, list[list[str]], str]]:
    """``(section, rows, note)`` per section of :data:`SECTIONS`; a row is ``[what, value in
    run 0, value in run 1, ...]``; sections with nothing to show are left out."""
    sections: list[tuple[str, list[list[str]], str]] = []
    rows = [[name, *[_short(p) for p in prints]] for name, prints in c.inputs.items()]
    if rows:
        note = "different input data: part of any difference below comes from the data"
    elif c.same_inputs:
        note = f"same input data in every run ({', '.join(c.same_inputs)}): a fair comparison"
    else:
        note = ""
    if c.unhashed:
        note += ("; " if note else "") + f"not comparable (unhashed): {', '.join(c.unhashed)}"
    if rows or note:
        sections.append(("inputs", rows, note))
    rows = [[name, *[_short(p) for p in prints]] for name, prints in c.outputs.items()]
    if rows:
        sections.append(("outputs", rows, "what the runs produced (differs when anything does)"))
    rows = [
        [k, *[MISSING if v is None else param_text(v) for v in vs]] for k, vs in c.params.items()
    ]
    if rows:
        sections.append(("params", rows, ""))
    rows = []
    for key, values in c.metrics.items():
        cells = []
        for value, delta in zip(values, c.deltas[key], strict=True):
            text = MISSING if value is None else f"{value:.4g}"
            cells.append(text if delta is None else f"{text} ({delta:+.4g})")
        rows.append([key, *cells])
    if rows or c.equal_metrics:
        equal = f"equal in all: {', '.join(c.equal_metrics)}" if c.equal_metrics else ""
        sections.append(("metrics", rows, equal))
    if any(c.code_changed):
        changed = ["changed" if x else "same" for x in c.code_changed[1:]]
        rows = [["cell code", "baseline", *changed]]
        sections.append(("code", rows, ""))
    return sections


def comparison_text(c: Comparison) -> str:
    if len(c.labels) < 2:
        return "select two or more runs to compare them"
    if c.is_empty:
        return _no_difference(c)
    lines = []
    for title, rows, note in comparison_sections(c):
        lines.append(f"{title}:" + (f" {note}" if note else ""))
        if rows:
            lines.append(text_table(["", *c.labels], rows))
    if c.code_diff:
        lines += c.code_diff[:MAX_TEXT_CODE_LINES]
        more = len(c.code_diff) - MAX_TEXT_CODE_LINES
        if more > 0:
            lines.append(f"... {more} more lines of the diff (`nbops diff` shows all)")
    return "\n".join(lines)


def comparison_html(c: Comparison) -> str:
    if len(c.labels) < 2:
        return '<div class="nbops-compare-hint">select two or more runs to compare them</div>'
    if c.is_empty:
        return f'<div class="nbops-compare">{html.escape(_no_difference(c))}</div>'
    parts = ['<div class="nbops-compare">']
    for title, rows, note in comparison_sections(c):
        note_html = f' <span class="nbops-note">{html.escape(note)}</span>' if note else ""
        parts.append(f'<div class="nbops-section" data-section="{title}"><b>{title}</b>{note_html}')
        if rows:
            header = ["vs the earliest", *c.labels]
            parts.append(html_table(header, rows, css_class=f"nbops-compare-{title}"))
        if title == "code" and c.code_diff:
            diff = html.escape("\n".join(c.code_diff[:MAX_CODE_LINES]))
            parts.append(f"<details><summary>the diff</summary><pre>{diff}</pre></details>")
        parts.append("</div>")
    parts.append("</div>")
    return "".join(parts)


def _no_difference(c: Comparison) -> str:
    return f"no differences between {len(c.labels)} runs (same params, metrics, data, code)"
