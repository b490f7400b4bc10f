"""HTML pieces shared by the run browser and the promotion panel (stdlib only).

The widgets are HTML built here, in Python, and drawn by one small ES module
(``static/widgets.js``): elements with a ``data-action`` attribute are the controls (a click,
a change, Enter in a text box sends ``{action, ...data-*}`` to the kernel), ``data-tip`` is a
tooltip. So the same HTML is the live widget, the snapshot saved with the notebook and, without
the controls (``live=False``), the fallback for nbconvert, GitHub and terminals. Values are
escaped, CSS is inline or in ``static/widgets.css``, colours are inherited (light and dark).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

MISSING = "—"
WRAP_AFTER = 32  # characters
_TABLE = (  # line-height: the notebook's CSS sets a tall row height otherwise
    "border-collapse:collapse;font-size:0.85em;color:inherit;background:transparent;"
    "font-family:var(--jp-code-font-family, monospace);margin:2px 0;line-height:1.4"
)
_CELL = "padding:2px 8px;border-bottom:1px solid rgba(128,128,128,0.25);white-space:nowrap"
_HEAD = _CELL + ";text-align:left;border-bottom:1px solid rgba(128,128,128,0.6)"
_MARKED = "background:rgba(33,150,243,0.15)"
esc = html.escape


def attrs(values: Mapping[str, Any]) -> str:
    """`` key="value"`` pairs (escaped); None and False are left out, True is a bare key."""
    parts = []
    for key, value in values.items():
        if value is None or value is False:
            continue
        parts.append(f" {key}" if value is True else f' {key}="{esc(str(value))}"')
    return "".join(parts)


def html_table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    css_class: str = "",
    marked: Sequence[bool] = (),
    titles: Sequence[str] = (),
    head_attrs: Sequence[Mapping[str, Any]] = (),
    row_attrs: Sequence[Mapping[str, Any]] = (),
    raw_columns: Sequence[int] = (),
) -> str:
    """A table; ``marked[i]`` highlights row i (a selected run, the champion). ``head_attrs``
    and ``row_attrs`` add attributes (``data-action``...) to header cells and rows; cells of
    ``raw_columns`` are HTML already (a checkbox, a button), the others are escaped text."""
    head = []
    for i, title in enumerate(header):
        extra = dict(head_attrs[i]) if i < len(head_attrs) else {}
        tip = titles[i] if i < len(titles) else ""
        cell = attrs({"title": tip or None, **extra})
        head.append(f'<th style="{_HEAD}"{cell}>{esc(title)}</th>')
    body = []
    for i, row in enumerate(rows):
        extra = dict(row_attrs[i]) if i < len(row_attrs) else {}
        if i < len(marked) and marked[i]:
            extra["style"] = _MARKED
        cells = "".join(
            f'<td style="{_CELL}">{c}</td>' if j in raw_columns else _td(c)
            for j, c in enumerate(row)
        )
        body.append(f"<tr{attrs(extra)}>{cells}</tr>")
    cls = f' class="{esc(css_class)}"' if css_class else ""
    table = f'<table{cls} style="{_TABLE}"><thead><tr>{"".join(head)}</tr></thead>'
    return f'<div style="overflow-x:auto">{table}<tbody>{"".join(body)}</tbody></table></div>'


def _td(text: str) -> str:
    """Short cells stay on one line; long ones (gate reasons, last change) wrap."""
    style = _CELL if len(text) <= WRAP_AFTER else _CELL + ";white-space:normal;min-width:14em"
    return f'<td style="{style}">{esc(text)}</td>'


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, for terminals and ``text/plain``."""
    lines = [list(header), *[list(r) for r in rows]]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    return "\n".join(line.rstrip() for line in text)


def box(title: str, body: str, css_class: str) -> str:
    """A titled block for the HTML fallback (no widget frontend)."""
    return (
        f'<div class="{esc(css_class)}" style="color:inherit;line-height:1.45">'
        f"<div><b>{esc(title)}</b></div>{body}</div>"
    )


def message_html(text: str, kind: str = "info") -> str:
    """A status line: ``kind`` is info, ok, warn or error (errors are never tracebacks)."""
    colour = {
        "ok": "rgba(46,160,67,0.9)",
        "error": "rgba(218,54,51,0.9)",
        "warn": "rgba(210,153,34,0.9)",
    }.get(kind, "rgba(128,128,128,0.7)")
    lines = "<br>".join(esc(line) for line in text.splitlines())
    style = (
        f"border-left:3px solid {colour};padding:2px 8px;font-size:0.85em;color:inherit;"
        "line-height:1.45;margin:4px 0"
    )
    return f'<div class="nbops-message nbops-{kind}" style="{style}">{lines}</div>'


# ---- controls (drawn only in the live widget; see the module docstring) ---------------------


def button(
    label: str,
    action: str,
    *,
    disabled: bool = False,
    title: str = "",
    css: str = "",
    **data: Any,
) -> str:
    """A button sending ``action``; a disabled one says why in its tooltip (``aria-disabled``,
    not ``disabled``: browsers show no tooltip on a disabled button)."""
    extra = {f"data-{k.replace('_', '-')}": v for k, v in data.items()}
    values = {"class": f"nbops-button {css}".strip(), "data-action": action, "title": title or None}
    state = {"aria-disabled": "true" if disabled else None}
    return f"<button{attrs({**values, **extra, **state})}>{esc(label)}</button>"


def select(action: str, options: Sequence[tuple[str, str]], value: str | None, label: str) -> str:
    """A labelled drop-down of ``(value, text)`` options sending ``{action, value}``."""
    items = "".join(
        f"<option{attrs({'value': v, 'selected': v == value})}>{esc(t)}</option>"
        for v, t in options
    )
    return (
        f'<label class="nbops-field">{esc(label)} '
        f'<select data-action="{esc(action)}">{items}</select></label>'
    )


def text_input(action: str, value: str, *, placeholder: str = "", title: str = "") -> str:
    """A text box sending ``{action, value}`` on Enter or when it loses focus; ``data-keep``:
    what is typed survives a redraw."""
    values = {
        "type": "text",
        "class": "nbops-text",
        "data-action": action,
        "data-keep": True,
        "value": value,
        "placeholder": placeholder or None,
        "title": title or None,
    }
    return f"<input{attrs(values)}>"


def checkbox(action: str, checked: bool, *, title: str = "", **data: Any) -> str:
    extra = {f"data-{k.replace('_', '-')}": v for k, v in data.items()}
    values = {"type": "checkbox", "data-action": action, "title": title or None}
    return f"<input{attrs({**values, **extra, 'checked': checked})}>"


def snapshot_note(what: str, as_of: str) -> str:
    """Shown (by ``widgets.css``) only where the widget has no kernel behind it: a notebook
    reopened with its saved widget state, or a restarted kernel."""
    return (
        f'<div class="nbops-snapshot">Snapshot of this {esc(what)} as of {esc(as_of)}, saved '
        "with the notebook: the kernel that made it is gone, so the controls do nothing. Run "
        "the cell again for a live one.</div>"
    )
