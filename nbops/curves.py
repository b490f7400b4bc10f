"""Small curves of stepped metrics (loss per epoch, score per iteration) for the run summary.

Drawn as inline SVG text (stdlib only, like the widgets' chart): the live summary of a running
``%%track`` cell is re-sent a few times a second, so it must be cheap to build and to render,
and the same HTML must read in a saved notebook, nbconvert and GitHub. Colours come from
``currentColor``: light and dark themes both read.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

MAX_CURVES = 6
MAX_POINTS = 240  # per curve: a sparkline has no room for more
WIDTH, HEIGHT = 170, 40
_LINE = "rgba(33,150,243,0.95)"


def curves_html(history: Mapping[str, Sequence[Sequence[float]]]) -> str:
    """One small chart per metric (the first :data:`MAX_CURVES`): steps across, values up,
    first and last value written beside it. Empty when no metric has two points."""
    cells = [_curve(name, points) for name, points in list(history.items())[:MAX_CURVES]]
    cells = [c for c in cells if c]
    if not cells:
        return ""
    more = len(history) - MAX_CURVES
    if more > 0:
        cells.append(f'<span style="opacity:0.65">+{more} more</span>')
    return (
        '<div class="nbops-curves" style="display:flex;flex-wrap:wrap;gap:4px 14px;'
        'margin:3px 0">' + "".join(cells) + "</div>"
    )


def curves_text(history: Mapping[str, Sequence[Sequence[float]]]) -> str:
    """``loss 0.91 → 0.12 (20 steps)``, for terminals and ``text/plain``."""
    parts = []
    for name, points in history.items():
        if points:
            first, last = points[0][1], points[-1][1]
            parts.append(f"{name} {_num(first)} → {_num(last)} ({len(points)} steps)")
    return ", ".join(parts)


def _curve(name: str, points: Sequence[Sequence[float]]) -> str:
    pts = [(float(p[0]), float(p[1])) for p in points if math.isfinite(float(p[1]))]
    if len(pts) < 2:
        return ""
    pts = _thin(pts, MAX_POINTS)
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x_lo, x_hi, y_lo, y_hi = min(xs), max(xs), min(ys), max(ys)
    x_span, y_span = (x_hi - x_lo) or 1.0, (y_hi - y_lo) or 1.0
    pad = 3

    def sx(x: float) -> float:
        return pad + (x - x_lo) / x_span * (WIDTH - 2 * pad)

    def sy(y: float) -> float:
        return HEIGHT - pad - (y - y_lo) / y_span * (HEIGHT - 2 * pad)

    line = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
    last_x, last_y = pts[-1]
    title = f"{name}: {_num(ys[0])} at step {xs[0]:g} → {_num(last_y)} at step {last_x:g}"
    svg = (
        f'<svg class="nbops-curve" data-metric="{html.escape(name)}" data-points="{len(points)}" '
        f'xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'style="vertical-align:middle"><title>{html.escape(title)}</title>'
        f'<rect x="0.5" y="0.5" width="{WIDTH - 1}" height="{HEIGHT - 1}" fill="none" '
        'stroke="currentColor" stroke-opacity="0.15"/>'
        f'<polyline points="{line}" fill="none" stroke="{_LINE}" stroke-width="1.5"/>'
        f'<circle cx="{sx(last_x):.1f}" cy="{sy(last_y):.1f}" r="2.2" fill="{_LINE}"/></svg>'
    )
    label = (
        f'<span style="opacity:0.65">{html.escape(name)}</span> {_num(last_y)}'
        f'<br><span style="opacity:0.55;font-size:0.9em">step {last_x:g} · '
        f"{len(points)} pts · min {_num(y_lo)} max {_num(y_hi)}</span>"
    )
    box = "display:inline-flex;gap:6px;align-items:center"
    return f'<span style="{box}">{svg}<span>{label}</span></span>'


def _thin(points: list[tuple[float, float]], limit: int) -> list[tuple[float, float]]:
    """At most ``limit`` points, evenly spaced, always keeping the last one."""
    if len(points) <= limit:
        return points
    stride = len(points) / (limit - 1)
    kept = [points[int(i * stride)] for i in range(limit - 1)]
    return [*kept, points[-1]]


def _num(value: float) -> str:
    return f"{value:.4g}"
