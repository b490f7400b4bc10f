"""The compact summary nbops shows under a tracked cell.

A few lines that answer "what did this cell just record?": run and experiment, status and
duration, params, metrics, data in/out with short fingerprints, the model, and the warnings
worth acting on (e.g. an estimator without ``random_state``). When the record could not be
delivered to MLflow the summary says where it is kept and how to deliver it later.

Stdlib only: IPython finds ``_repr_html_`` by duck typing, and the same text goes to
terminals, logs and ``text/plain``. The HTML escapes every value, uses inline CSS only (no
JavaScript), and inherits colours so it reads in light and dark JupyterLab themes.
"""

from __future__ import annotations

import html
import math
from typing import Any

from nbops.curves import curves_html, curves_text
from nbops.links import run_link
from nbops.record import DataRef, RunRecord

STATES = ("running", "saving", "saved", "failed", "local", "lost")
MAX_PARAMS = 8
MAX_METRICS = 8
MAX_DATA = 6
MAX_VALUE = 40  # characters of one param value
MAX_ERROR = 200
CACHE_NOTE = "nbops.cache.note"  # the tag nbops.cache.cell writes
SPOOL_HINT = "kept in .nbops/spool; run `nbops sync` (or `%nbops sync`) to deliver it"

_STATE_TEXT = {
    "running": "running… (updated live; recorded when the cell ends)",
    "saving": "saving to MLflow…",
    "saved": "saved to MLflow",
    "failed": "not saved to MLflow",
    "local": "not delivered to MLflow",
    "lost": "NOT SAVED anywhere",
}
_STATE_COLOUR = {  # mid-tone colours with alpha: readable on light and dark backgrounds
    "running": "rgba(33, 150, 243, 0.8)",
    "saving": "rgba(128, 128, 128, 0.6)",
    "saved": "rgba(46, 160, 67, 0.8)",
    "failed": "rgba(218, 54, 51, 0.85)",
    "local": "rgba(210, 153, 34, 0.85)",
    "lost": "rgba(218, 54, 51, 0.85)",
}


class Summary:
    """IPython display object for one record; re-create it to update a display handle.

    ``state="running"`` is the live view of a cell still running (:mod:`nbops.live`): the
    record so far, ``message`` as its progress (elapsed time, step)."""

    def __init__(
        self, record: RunRecord, state: str = "saving", message: str = "", ui: str = ""
    ) -> None:
        if state not in STATES:
            raise ValueError(f"state must be one of {STATES}, got {state!r}")
        self.record = record
        self.state = state
        self.message = message
        self.ui = ui  # MLflow's UI address, for a link to the run (nbops.links)

    def _repr_html_(self) -> str:
        return render_html(self.record, self.state, self.message, self.ui)

    def __repr__(self) -> str:
        return render_text(self.record, self.state, self.message, self.ui)


def render_text(record: RunRecord, state: str = "saving", message: str = "", ui: str = "") -> str:
    """The summary as plain text lines (terminals, logs, ``text/plain``)."""
    lines = [_headline(record, state)]
    lines += [f"  {label}: {value}" for label, value in _rows(record, state)]
    if record.metric_history:
        lines.append(f"  curves: {curves_text(record.metric_history)}")
    lines += [f"  ⚠ {warning}" for warning in record.warnings]
    link = _link(record, state, ui)
    if link:
        lines.append(f"  MLflow: {link}")
    lines.append(f"  {_footer(state, message)}")
    return "\n".join(lines)


def _link(record: RunRecord, state: str, ui: str) -> str:
    return run_link(ui, record.run_id, record.experiment_id) if state == "saved" else ""


def render_html(record: RunRecord, state: str = "saving", message: str = "", ui: str = "") -> str:
    """The summary as a small self-contained HTML block (escaped, inline CSS, no script)."""
    esc = html.escape
    colour = _STATE_COLOUR.get(state, _STATE_COLOUR["saving"])
    box = (
        f"border-left:3px solid {colour};padding:2px 8px;margin:2px 0;"
        "font-size:0.85em;line-height:1.45;color:inherit;background:transparent;"
        "font-family:var(--jp-code-font-family, monospace)"
    )
    label = "opacity:0.65"
    parts = [f'<div class="nbops-summary" style="{box}">']
    parts.append(f"<div><b>{esc(_headline(record, state))}</b></div>")
    for name, value in _rows(record, state):
        parts.append(f'<div><span style="{label}">{esc(name)}:</span> {esc(value)}</div>')
    parts.append(curves_html(record.metric_history))
    for warning in record.warnings:
        parts.append(f'<div style="color:{_STATE_COLOUR["local"]}">⚠ {esc(warning)}</div>')
    footer_style = f"color:{colour}" if state in ("failed", "local", "lost") else label
    footer = esc(_footer(state, message))
    link = _link(record, state, ui)
    if link:
        anchor = f'<a href="{esc(link)}" target="_blank" rel="noopener">open the run in MLflow</a>'
        footer += f" · {anchor}"
    parts.append(f'<div style="{footer_style}">{footer}</div>')
    parts.append("</div>")
    return "".join(parts)


def _headline(record: RunRecord, state: str) -> str:
    """``nbops run 'name' (abcd1234) in 'experiment' · FINISHED · 2.3s``."""
    if state in ("running", "saving"):
        run_id = "pending"
    else:
        run_id = record.run_id[:8] if record.run_id else "not stored"
    name = f"'{record.name}' " if record.name else ""
    head = f"nbops run {name}({run_id})"
    if record.experiment:
        head += f" in '{record.experiment}'"
    status: str = record.status
    if record.error:
        status += f": {_truncate(record.error, MAX_ERROR)}"
    parts = [head, status]
    if record.duration is not None:
        parts.append(format_duration(record.duration))
    return " · ".join(parts)


def _rows(record: RunRecord, state: str) -> list[tuple[str, str]]:
    """The labelled middle lines; empty sections are left out to keep the summary short."""
    rows: list[tuple[str, str]] = []
    if record.description:
        rows.append(("about", _truncate(record.description, MAX_ERROR)))
    if record.params:
        ordered = sorted(record.params.items(), key=lambda kv: "." in kv[0])  # cell's own first
        items = [f"{k}={_truncate(_plain(v), MAX_VALUE)}" for k, v in ordered]
        rows.append(("params", _limited(items, MAX_PARAMS)))
    if record.metrics:
        items = [f"{k}={format_number(v)}" for k, v in record.metrics.items()]
        rows.append(("metrics", _limited(items, MAX_METRICS)))
    for label, refs in (("data in", record.inputs()), ("data out", record.outputs())):
        if refs:
            rows.append((label, _limited([format_data(d) for d in refs], MAX_DATA)))
    if record.model is not None:
        model = record.model
        where = (
            f"logged as '{model.artifact_path}'"
            if model.logged
            else ("to be logged" if state == "saving" else "not logged")
        )
        rows.append(("model", f"{model.variable} ({model.class_name}, {model.flavor}) {where}"))
    if record.tags.get(CACHE_NOTE):  # %%track --cache: served, stored, or why it ran
        rows.append(("cache", record.tags[CACHE_NOTE]))
    return rows


def _footer(state: str, message: str) -> str:
    text = _STATE_TEXT.get(state, state)
    if message:
        text += f": {_truncate(message, MAX_ERROR)}"
    if state in ("failed", "local"):
        text += f"; the record is {SPOOL_HINT}"
    elif state == "lost":
        text += "; neither the local spool nor MLflow took it: copy what it recorded from above"
    return text


def format_data(ref: DataRef) -> str:
    """``df DataFrame [1000×12] 3f2a1b9c``; unhashed data says so (and why, when known)."""
    text = f"{ref.name} {ref.kind}"
    if ref.shape:
        text += " [" + "×".join(str(n) for n in ref.shape) + "]"
    text += f" {ref.short}"
    if ref.note and (not ref.fingerprint or ref.short == "size+mtime"):
        text += f" ({_truncate(ref.note, MAX_VALUE)})"
    return text


def format_number(value: Any) -> str:
    """4 significant digits; ints stay exact when short, odd values fall back to str."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) and abs(value) < 10**6:
        return str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return _truncate(str(value), MAX_VALUE)
    return str(number) if math.isnan(number) or math.isinf(number) else f"{number:.4g}"


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.2f}s" if seconds < 10 else f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def _plain(value: Any) -> str:
    try:
        return value if isinstance(value, str) else str(value)
    except Exception:  # a param whose __str__ raises must not break the summary
        return f"<{type(value).__name__}>"


def _limited(items: list[str], limit: int) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", +{len(items) - limit} more" if len(items) > limit else "")


def _truncate(text: str, limit: int) -> str:
    text = " ".join(text.split())  # one line: newlines would break the layout
    return text if len(text) <= limit else text[: limit - 1] + "…"


def detail_text(record: RunRecord) -> str:
    """``nbops show RUN``: the summary, every param when the summary cut them, where the run
    came from, and its code."""
    lines = [render_text(record, "saved", "")]
    if len(record.params) > MAX_PARAMS:
        lines.append("all params:")
        lines += [f"    {k} = {v!r}" for k, v in sorted(record.params.items())]
    if record.context.notebook or record.context.git_commit:
        dirty = " (dirty)" if record.context.git_dirty else ""
        lines.append(
            f"notebook: {record.context.notebook or '?'}  git: "
            f"{(record.context.git_commit or '-')[:10]}{dirty}"
        )
    if record.code:
        lines += ["code:", *("    " + ln for ln in record.code.splitlines())]
    return "\n".join(lines)
