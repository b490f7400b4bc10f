"""A small SVG scatter chart: a metric against a parameter or per run, coloured by a column.

Generated as text (stdlib only): no plotting library to import (matplotlib costs ~0.5 s), no
image encoding, and it renders the same in the widget, the HTML fallback and any browser. Each
point carries its run (``data-run``: a click selects it in the live browser) and a tooltip
(``data-tip``, drawn by ``widgets.js``; ``<title>`` where there is no script). Points that share
an x value (a category, a depth) are spread sideways so they do not hide each other. Axes and
labels use ``currentColor``, so light and dark themes both read.
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
NO_COLOUR = ""
MAX_POINTS = 5000
MAX_CATEGORY_LABELS = 12
MAX_COLOURS = 8  # distinct category colours; the rest share "other"
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
)  # fmt: skip
OTHER = "#999999"
_POINT = "rgba(33,150,243,0.75)"
_SPREAD = 4.0  # px between points sharing an x value


@dataclass(frozen=True)
class Point:
    x: Any  # a number, or a category's text
    y: float
    label: str  # the tooltip: run name and values
    marked: bool = False  # a selected run
    run: str = ""
    colour: Any = None  # the value of the colour column


def chart_points(
    records: Sequence[RunRecord],
    metric: str,
    x_key: str,
    value: Callable[[RunRecord, str], Any],
    marked: set[str] = frozenset(),  # type: ignore[assignment]
    colour_key: str = NO_COLOUR,
) -> list[Point]:
    """Points for runs that have ``metric`` (and a value for ``x_key``), oldest first."""
    runs = sorted(records, key=lambda r: r.start or 0.0)[-MAX_POINTS:]
    points = []
    for i, record in enumerate(runs, start=1):
        y = as_number(record.metrics.get(metric))
        x = i if x_key == PER_RUN else value(record, x_key)
        if y is None or math.isnan(y) or x is None or x == "":
            continue
        ident = (record.run_id or record.record_id)[:8]
        name = record.name if record.name and record.name != ident else ""
        lines = [f"{name} ({ident})" if name else ident, f"{metric} = {y:.4g}"]
        if x_key != PER_RUN:
            lines.append(f"{_short(x_key)} = {_value_text(x)}")
        colour = value(record, colour_key) if colour_key else None
        if colour_key:
            lines.append(f"{_short(colour_key)} = {_value_text(colour)}")
        run_id = record.run_id or ""
        points.append(Point(x, y, "\n".join(lines), run_id in marked, run_id, colour))
    return points


def svg_chart(
    points: Sequence[Point],
    x_title: str,
    y_title: str,
    colour_title: str = "",
    width: int = 620,
    height: int = 280,
) -> str:
    """The chart as an ``<svg>`` element with its legend; a short note when there is nothing
    to plot."""
    if not points:
        return f'<div style="opacity:0.7">no run has {html.escape(y_title)} to plot</div>'
    left, right, top, bottom = 60, 15, 12, 42
    plot_w, plot_h = width - left - right, height - top - bottom
    numeric = all(as_number(p.x) is not None for p in points)
    categories = [] if numeric else sorted({str(p.x) for p in points}, key=natural)
    xs = [as_number(p.x) if numeric else float(categories.index(str(p.x))) for p in points]
    x_lo, x_hi = _span([x for x in xs if x is not None])
    y_lo, y_hi = _span([p.y for p in points])
    scale = colour_title.startswith("metrics.")
    paint, legend = colours([p.colour for p in points], scale) if colour_title else (None, "")

    def sx(x: float | None) -> float:  # never None: every x is a number or a category
        assert x is not None
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
    offsets = _spread(xs, [p.y for p in points])
    order = sorted(range(len(points)), key=lambda i: points[i].marked)  # selected on top
    for i in order:
        point, x = points[i], xs[i]
        fill = paint(point.colour) if paint else _POINT
        ring = ' stroke="currentColor" stroke-width="2"' if point.marked else ""
        tip = html.escape(point.label)
        parts.append(
            f'<circle class="nbops-point" cx="{sx(x) + offsets[i]:.1f}" cy="{sy(point.y):.1f}" '
            f'r="{5 if point.marked else 4}" fill="{fill}" fill-opacity="0.85"{ring} '
            f'data-run="{html.escape(point.run)}" data-action="toggle" data-tip="{tip}">'
            f"<title>{tip}</title></circle>"
        )
    parts.append("</svg>")
    caption = legend_html(colour_title, legend)
    return '<div class="nbops-chart-box">' + "".join(parts) + (caption if legend else "") + "</div>"


def legend_html(title: str, legend: str) -> str:
    return f'<div class="nbops-legend"><span>colour: {html.escape(title)}</span>{legend}</div>'


def colours(values: Sequence[Any], scale: bool = False) -> tuple[Callable[[Any], str], str]:
    """A colour for each value of the colour column, and the legend's HTML: a gradient for
    numbers with many values (low blue to high orange), a palette otherwise (categories by
    frequency, a few numbers in order). ``scale``: a gradient for any numbers (a metric)."""
    present = [v for v in values if v is not None and v != ""]
    numbers = [as_number(v) for v in present]
    few = len({str(v) for v in present}) <= MAX_COLOURS  # a handful of numbers: a palette
    if present and all(n is not None for n in numbers) and (scale or not few):
        lo, hi = min(numbers), max(numbers)  # type: ignore[type-var]

        def ramp(value: Any) -> str:
            number = as_number(value)
            if number is None:
                return OTHER
            return _ramp(0.5 if hi == lo else (number - lo) / (hi - lo))  # type: ignore[operator]

        bar = (
            f'<span class="nbops-swatch">{lo:.4g}</span><span class="nbops-ramp" style="'
            f'background:linear-gradient(90deg,{_ramp(0)},{_ramp(0.5)},{_ramp(1)})"></span>'
            f'<span class="nbops-swatch">{hi:.4g}</span>'
        )
        return ramp, bar
    counts: dict[str, int] = {}
    for value in present:
        counts[str(value)] = counts.get(str(value), 0) + 1
    numeric = all(n is not None for n in numbers)
    ranked = sorted(counts, key=lambda k: natural(k) if numeric else (-counts[k], natural(k)))
    named = {k: PALETTE[i] for i, k in enumerate(ranked[:MAX_COLOURS])}

    def pick(value: Any) -> str:
        return named.get(str(value), OTHER) if value not in (None, "") else OTHER

    items = [(k, c) for k, c in named.items()]
    if len(ranked) > MAX_COLOURS or len(present) < len(values):
        items.append(("other / none", OTHER))
    legend = "".join(
        f'<span class="nbops-swatch"><i style="background:{c}"></i>{html.escape(k[:20])}</span>'
        for k, c in items
    )
    return pick, legend


def _ramp(t: float) -> str:
    """Blue (0) to grey-violet to orange (1): readable on light and dark backgrounds."""
    a, b = (31, 119, 180), (255, 127, 14)
    r, g, bl = (round(a[i] + (b[i] - a[i]) * t) for i in range(3))
    return f"rgb({r},{g},{bl})"


def _spread(xs: Sequence[float | None], ys: Sequence[float]) -> list[float]:
    """Horizontal pixel offsets for points that share an x value and a similar y, centred."""
    groups: dict[tuple[Any, int], list[int]] = {}
    y_span = (max(ys) - min(ys)) or 1.0
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        groups.setdefault((x, round((y - min(ys)) / y_span * 40)), []).append(i)
    offsets = [0.0] * len(xs)
    for members in groups.values():
        for k, i in enumerate(members):
            offsets[i] = (k - (len(members) - 1) / 2) * _SPREAD
    return offsets


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


def natural(text: str) -> tuple[int, float, str]:
    number = as_number(text)
    return (0, number, "") if number is not None else (1, 0.0, text)


def _short(key: str) -> str:
    return key.split(".", 1)[1] if key.startswith(("params.", "metrics.")) else key


def _value_text(value: Any) -> str:
    number = as_number(value)
    if number is not None and not isinstance(value, str):
        return f"{number:.4g}"
    text = str(value)
    return text if len(text) <= 40 else text[:39] + "…"
