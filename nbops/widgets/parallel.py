"""Parallel coordinates for a sweep: one vertical axis per parameter that varies (and the
chosen metric last), one line per run through its values, coloured by the metric.

A scatter shows one parameter at a time; a sweep over several asks which *combination* scores
well, which parallel coordinates show at a glance (the view W&B and MLflow's UI offer for
sweeps). SVG text, stdlib only, like :mod:`nbops.widgets.chart`; each line carries its run
(``data-run``: a click selects it) and a tooltip with its values.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from nbops.record import RunRecord
from nbops.widgets.chart import colours, legend_html, natural
from nbops.widgets.filters import as_number

MAX_AXES = 8  # parameter axes, plus the metric
MAX_LINES = 2000


@dataclass
class Axis:
    key: str
    title: str
    values: list[Any]  # one per run (None: missing)
    categories: list[str]  # empty for a numeric axis
    lo: float = 0.0
    hi: float = 1.0

    def position(self, value: Any) -> float | None:
        """0 (bottom) .. 1 (top); None for a missing value."""
        if value is None or value == "":
            return None
        if self.categories:
            if len(self.categories) == 1:
                return 0.5
            return self.categories.index(str(value)) / (len(self.categories) - 1)
        number = as_number(value)
        if number is None:
            return None
        return 0.5 if self.hi == self.lo else (number - self.lo) / (self.hi - self.lo)


def axes_for(
    records: Sequence[RunRecord],
    param_keys: Sequence[str],
    metric: str,
    value: Callable[[RunRecord, str], Any],
) -> list[Axis]:
    """Axes for the params whose values differ between ``records`` (the first
    :data:`MAX_AXES`), then the metric."""
    axes = []
    for key in param_keys:
        values = [value(r, key) for r in records]
        if len({str(v) for v in values}) > 1:
            axes.append(_axis(key, key.split(".", 1)[-1], values))
        if len(axes) == MAX_AXES:
            break
    axes.append(_axis(f"metrics.{metric}", metric, [r.metrics.get(metric) for r in records]))
    return axes


def _axis(key: str, title: str, values: list[Any]) -> Axis:
    present = [v for v in values if v is not None and v != ""]
    numbers = [as_number(v) for v in present]
    if present and all(n is not None for n in numbers):
        return Axis(key, title, values, [], min(numbers), max(numbers))  # type: ignore[type-var,arg-type]
    categories = sorted({str(v) for v in present}, key=natural)
    return Axis(key, title, values, categories)


def svg_parallel(
    records: Sequence[RunRecord],
    axes: Sequence[Axis],
    marked: set[str],
    width: int = 720,
    height: int = 300,
) -> str:
    """The chart (lines coloured by the last axis, the metric) with its legend."""
    if len(axes) < 2:
        return (
            '<div style="opacity:0.7">parallel coordinates need a parameter that varies '
            "between the runs shown</div>"
        )
    left, right, top, bottom = 40, 40, 28, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / (len(axes) - 1)
    metric = axes[-1]
    paint, legend = colours(metric.values, scale=True)
    parts = [
        f'<svg class="nbops-parallel" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" style="color:inherit;font-size:11px;font-family:sans-serif">'
    ]
    lines = []
    for i, record in list(enumerate(records))[-MAX_LINES:]:
        coords = []
        for j, axis in enumerate(axes):
            pos = axis.position(axis.values[i])
            if pos is not None:
                coords.append(f"{left + j * step:.1f},{top + plot_h - pos * plot_h:.1f}")
        if len(coords) < 2:
            continue
        run = record.run_id or ""
        selected = run in marked
        tip = _tip(record, axes, i)
        lines.append(
            (
                selected,
                f'<polyline class="nbops-line" points="{" ".join(coords)}" fill="none" '
                f'stroke="{paint(metric.values[i])}" stroke-opacity="{0.95 if selected else 0.55}" '
                f'stroke-width="{3.5 if selected else 1.6}" data-run="{html.escape(run)}" '
                f'data-action="toggle" data-tip="{tip}"><title>{tip}</title></polyline>',
            )
        )
    parts += [line for _, line in sorted(lines, key=lambda pair: pair[0])]  # selected on top
    for j, axis in enumerate(axes):
        x = left + j * step
        parts.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_h}" '
            'stroke="currentColor" stroke-opacity="0.6"/>'
        )
        parts.append(_label(x, top - 10, axis.title[:16], bold=axis is metric))
        parts += _ticks(axis, x, top, plot_h)
    parts.append("</svg>")
    caption = legend_html(metric.title, legend)
    return '<div class="nbops-chart-box">' + "".join(parts) + caption + "</div>"


def _ticks(axis: Axis, x: float, top: float, plot_h: float) -> list[str]:
    if axis.categories:
        shown = axis.categories if len(axis.categories) <= 10 else []
        return [
            _label(x + 4, top + plot_h - (axis.position(c) or 0) * plot_h + 4, c[:12], "start")
            for c in shown
        ]
    return [
        _label(x + 4, top + plot_h + 14, f"{axis.lo:.4g}", "start"),
        _label(x + 4, top + 10, f"{axis.hi:.4g}", "start"),
    ]


def _label(x: float, y: float, text: str, anchor: str = "middle", bold: bool = False) -> str:
    weight = ' font-weight="bold"' if bold else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="currentColor"{weight}>'
        f"{html.escape(text)}</text>"
    )


def _tip(record: RunRecord, axes: Sequence[Axis], i: int) -> str:
    ident = (record.run_id or record.record_id)[:8]
    head = f"{record.name} ({ident})" if record.name and record.name != ident else ident
    values = [f"{a.title} = {_text(a.values[i])}" for a in axes]
    return html.escape("\n".join([head, *values]))


def _text(value: Any) -> str:
    number = as_number(value)
    if number is not None and not isinstance(value, str):
        return f"{number:.4g}"
    return "—" if value is None or value == "" else str(value)[:30]
