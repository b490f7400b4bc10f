"""A small SVG scatter chart: a metric against a parameter, or a metric per run.

Generated as text (stdlib only): no plotting library to import (matplotlib costs ~0.5 s), no
image encoding, and it renders the same in an ``ipywidgets.HTML``, the HTML fallback and any
browser. Axes and labels use ``currentColor``, so light and dark themes both read.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from nbops.record import RunRecord
from nbops.widgets.filters import as_number

PER_RUN = "run"  # the x "key" for a metric per run, in start order
MAX_POINTS = 5000
MAX_CATEGORY_LABELS = 12
_POINT = "rgba(33,150,243,0.7)"
_MARKED = "rgba(255,120,0,0.95)"


@dataclass(frozen=True)
class Point:
    x: Any  # a number, or a category's text
    y: float
    label: str  # the tooltip: run name and values
    marked: bool = False  # a selected run


def chart_points(
    records: Sequence[RunRecord],
    metric: str,
    x_key: str,
    value: Callable[[RunRecord, str], Any],
    marked: set[str] = frozenset(),  # type: ignore[assignment]
) -> list[Point]:
    """Points for runs that have ``metric`` (and a value for ``x_key``), oldest first."""
    runs = sorted(records, key=lambda r: r.start or 0.0)[-MAX_POINTS:]
    points = []
    for i, record in enumerate(runs, start=1):
        y = as_number(record.metrics.get(metric))
        x = i if x_key == PER_RUN else value(record, x_key)
        if y is None or math.isnan(y) or x is None or x == "":
            continue
        name = record.name or (record.run_id or "")[:8]
        label = f"{name}: {metric}={y:.4g}" + ("" if x_key == PER_RUN else f", {x_key}={x}")
        points.append(Point(x, y, label, record.run_id in marked))
    return points


def svg_chart(
    points: Sequence[Point], x_title: str, y_title: str, width: int = 560, height: int = 260
) -> str:
    """The chart as an ``<svg>`` element; a short note instead when there is nothing to plot."""
    if not points:
        return f'<div style="opacity:0.7">no run has {html.escape(y_title)} to plot</div>'
    left, right, top, bottom = 60, 15, 12, 42
    plot_w, plot_h = width - left - right, height - top - bottom
    numeric = all(as_number(p.x) is not None for p in points)
    categories = [] if numeric else sorted({str(p.x) for p in points}, key=_natural)
    xs = [as_number(p.x) if numeric else categories.index(str(p.x)) for p in points]
    x_lo, x_hi = _span([x for x in xs if x is not None])
    y_lo, y_hi = _span([p.y for p in points])

    def sx(x: float) -> float:
        return left + (x - x_lo) / (x_hi - x_lo) * plot_w

    def sy(y: float) -> float:
        return top + plot_h - (y - y_lo) / (y_hi - y_lo) * plot_h

    parts = [
        f'<svg class="nbops-chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" style="color:inherit;font-size:11px;font-family:sans-serif">',
        f'<g stroke="currentColor" stroke-opacity="0.5"><line x1="{left}" y1="{top + plot_h}" '
        f'x2="{left + plot_w}" y2="{top + plot_h}"/><line x1="{left}" y1="{top}" x2="{left}" '
        f'y2="{top + plot_h}"/></g>',
    ]
    parts += [_text(left - 6, sy(y) + 4, f"{y:.4g}", "end") for y in _ticks(y_lo, y_hi)]
    labels = _x_labels(xs, categories, x_lo, x_hi)
    parts += [_text(sx(x), top + plot_h + 15, text, "middle") for x, text in labels]
    parts.append(_text(left + plot_w / 2, height - 6, x_title, "middle"))
    parts.append(
        f'<text transform="translate(14,{top + plot_h / 2}) rotate(-90)" text-anchor="middle" '
        f'fill="currentColor">{html.escape(y_title)}</text>'
    )
    for point, x in sorted(zip(points, xs, strict=True), key=lambda p: p[0].marked):
        colour, radius = (_MARKED, 5) if point.marked else (_POINT, 3.5)
        parts.append(
            f'<circle cx="{sx(x):.1f}" cy="{sy(point.y):.1f}" r="{radius}" fill="{colour}">'
            f"<title>{html.escape(point.label)}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _x_labels(
    xs: Sequence[float | None], categories: list[str], lo: float, hi: float
) -> list[tuple[float, str]]:
    """Tick positions and labels: round numbers (whole ones only for whole values such as run
    numbers or depths), or the category names when there are few enough."""
    if categories:
        if len(categories) > MAX_CATEGORY_LABELS:
            return []
        return [(float(i), name[:14]) for i, name in enumerate(categories)]
    whole = all(float(x).is_integer() for x in xs if x is not None)
    return [(x, f"{x:.4g}") for x in _ticks(lo, hi) if not whole or x.is_integer()]


def _text(x: float, y: float, text: str, anchor: str) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="currentColor" '
        f'fill-opacity="0.8">{html.escape(text)}</text>'
    )


def _span(values: Sequence[float]) -> tuple[float, float]:
    """The axis range, padded 5%; a single value gets a unit-wide range around it."""
    lo, hi = min(values), max(values)
    if lo == hi:
        pad = abs(lo) * 0.05 or 0.5
        return lo - pad, hi + pad
    pad = (hi - lo) * 0.05
    return lo - pad, hi + pad


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values inside ``[lo, hi]``."""
    raw = (hi - lo) / count
    step = 10.0 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= step * factor:
            step *= factor
            break
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 12) for i in range(int((hi - first) / step) + 1)]


def _natural(text: str) -> tuple[int, float, str]:
    number = as_number(text)
    return (0, number, "") if number is not None else (1, 0.0, text)
