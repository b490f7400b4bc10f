"""HTML and text tables shared by the run browser and the promotion panel (stdlib only).

The HTML is what the widgets show and what a frontend without widget support shows instead:
escaped values, inline CSS only, colours inherited (JupyterLab light and dark themes).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

MISSING = "—"
WRAP_AFTER = 32  # characters
_TABLE = (  # line-height: ipywidgets' HTML sets the widget row height (28px) otherwise
    "border-collapse:collapse;font-size:0.85em;color:inherit;background:transparent;"
    "font-family:var(--jp-code-font-family, monospace);margin:2px 0;line-height:1.4"
)
_CELL = "padding:2px 8px;border-bottom:1px solid rgba(128,128,128,0.25);white-space:nowrap"
_HEAD = _CELL + ";text-align:left;border-bottom:1px solid rgba(128,128,128,0.6)"
_MARKED = "background:rgba(33,150,243,0.15)"


def html_table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    css_class: str = "",
    marked: Sequence[bool] = (),
    titles: Sequence[str] = (),
) -> str:
    """A table; ``marked[i]`` highlights row i (a selected run, the champion)."""
    esc = html.escape
    head = "".join(
        f'<th style="{_HEAD}" title="{esc(t)}">{esc(h)}</th>'
        for h, t in zip(header, [*titles, *[""] * len(header)], strict=False)
    )
    body = []
    for i, row in enumerate(rows):
        style = f' style="{_MARKED}"' if i < len(marked) and marked[i] else ""
        cells = "".join(f'<td style="{_cell(c)}">{esc(c)}</td>' for c in row)
        body.append(f"<tr{style}>{cells}</tr>")
    cls = f' class="{esc(css_class)}"' if css_class else ""
    table = f'<table{cls} style="{_TABLE}"><thead><tr>{head}</tr></thead>'
    return f'<div style="overflow-x:auto">{table}<tbody>{"".join(body)}</tbody></table></div>'


def _cell(text: str) -> str:
    """Short cells stay on one line; long ones (gate reasons, last change) wrap."""
    return _CELL if len(text) <= WRAP_AFTER else _CELL + ";white-space:normal;min-width:14em"


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, for terminals and ``text/plain``."""
    lines = [list(header), *[list(r) for r in rows]]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    return "\n".join(line.rstrip() for line in text)


def box(title: str, body: str, css_class: str) -> str:
    """A titled block for the HTML fallback (no widget frontend)."""
    return (
        f'<div class="{html.escape(css_class)}" style="color:inherit;line-height:1.45">'
        f"<div><b>{html.escape(title)}</b></div>{body}</div>"
    )


def message_html(text: str, kind: str = "info") -> str:
    """A status line: ``kind`` is info, ok or error (errors are never tracebacks)."""
    colour = {"ok": "rgba(46,160,67,0.9)", "error": "rgba(218,54,51,0.9)"}.get(
        kind, "rgba(128,128,128,0.7)"
    )
    lines = "<br>".join(html.escape(line) for line in text.splitlines())
    style = (
        f"border-left:3px solid {colour};padding:2px 8px;font-size:0.85em;color:inherit;"
        "line-height:1.45;margin:4px 0"
    )
    return f'<div class="nbops-message nbops-{kind}" style="{style}">{lines}</div>'
