"""The ipywidgets tree of :class:`~nbops.widgets.run_browser.RunBrowser` (thin glue).

Imported only when a browser is first displayed in a kernel (or ``.widget`` is used), so it
may import ipywidgets at module level. Every callback goes through ``browser.guard``: errors
appear in the browser's message line, never as a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from nbops.widgets.chart import PER_RUN
from nbops.widgets.compare import comparison_html
from nbops.widgets.filters import FILTER_HELP

if TYPE_CHECKING:
    from nbops.record import RunRecord
    from nbops.widgets.run_browser import RunBrowser

MAX_SELECT_ROWS = 10


@dataclass
class Controls:
    """The browser's widgets, by role (tests and users reach them as ``browser.controls``)."""

    root: w.VBox
    message: w.HTML
    filter: w.Text
    sort_by: w.Dropdown
    descending: w.ToggleButton
    refresh: w.Button
    prev: w.Button
    next: w.Button
    page_label: w.HTML
    table: w.HTML
    select: w.SelectMultiple
    clear: w.Button
    compare: w.HTML
    chart_metric: w.Dropdown
    chart_x: w.Dropdown
    chart: w.HTML
    syncing: bool = False


def build(browser: RunBrowser) -> w.VBox:
    small = w.Layout(width="auto")
    c = Controls(
        root=w.VBox(),
        message=w.HTML(),
        filter=w.Text(
            placeholder="filter: accuracy >= 0.9, max_depth = 3, status = FINISHED",
            description_tooltip=FILTER_HELP,
            continuous_update=False,
            layout=w.Layout(width="420px"),
        ),
        sort_by=w.Dropdown(description="sort by", layout=w.Layout(width="260px")),
        descending=w.ToggleButton(value=True, description="desc", icon="arrow-down", layout=small),
        refresh=w.Button(description="Refresh", icon="refresh", tooltip="show new runs"),
        prev=w.Button(description="‹ prev", layout=small),
        next=w.Button(description="next ›", layout=small),
        page_label=w.HTML(),
        table=w.HTML(),
        select=w.SelectMultiple(layout=w.Layout(width="420px")),
        clear=w.Button(description="Clear selection", layout=small),
        compare=w.HTML(),
        chart_metric=w.Dropdown(description="chart", layout=w.Layout(width="240px")),
        chart_x=w.Dropdown(description="against", layout=w.Layout(width="260px")),
        chart=w.HTML(),
    )
    browser.controls = c
    _wire(browser, c)
    c.root.children = [
        w.HBox([c.filter, c.sort_by, c.descending, c.refresh]),
        c.message,
        c.table,
        w.HBox([c.prev, c.page_label, c.next]),
        w.HTML("<b>compare</b> (select two or more runs: ctrl/shift-click)"),
        w.HBox([c.select, c.clear]),
        c.compare,
        w.HBox([c.chart_metric, c.chart_x]),
        c.chart,
    ]
    c.root.add_class("nbops-run-browser")
    return c.root


def _wire(b: RunBrowser, c: Controls) -> None:
    def when(widget: w.Widget, action: Any) -> None:
        handler = b.guard(action)
        widget.observe(lambda change: None if c.syncing else handler(change), names="value")

    when(c.filter, lambda: b.table.set_filter(c.filter.value))
    when(c.sort_by, lambda: b.table.sort(c.sort_by.value))
    when(c.descending, lambda: b.table.sort(b.table.sort_key, c.descending.value))
    when(c.select, lambda: _select(b, c))
    when(c.chart_metric, lambda: setattr(b, "chart_metric", c.chart_metric.value))
    when(c.chart_x, lambda: setattr(b, "chart_x", c.chart_x.value))
    c.refresh.on_click(lambda _: b.guard(b.refresh)())
    c.prev.on_click(b.guard(lambda: b.table.go(b.table.page - 1)))
    c.next.on_click(b.guard(lambda: b.table.go(b.table.page + 1)))
    c.clear.on_click(b.guard(lambda: b.table.select([])))


def _select(b: RunBrowser, c: Controls) -> None:
    """Selections on other pages stay; this page's runs follow the list's value."""
    on_page = {r.run_id for r in b.table.page_rows()}
    kept = [s for s in b.table.selected if s not in on_page]
    b.table.select([*kept, *c.select.value])


def sync(b: RunBrowser, root: w.VBox) -> None:
    """Render the browser's state into its widgets (observers are muted meanwhile)."""
    c: Controls = b.controls
    t = b.table
    c.syncing = True
    try:
        c.message.value = b.message_html()
        _options(c.sort_by, t.sort_keys(), t.sort_key)
        c.descending.value = t.descending
        c.descending.description, c.descending.icon = (
            ("desc", "arrow-down") if t.descending else ("asc", "arrow-up")
        )
        c.table.value = b.page_html()
        c.page_label.value = f"<span style='padding:0 8px'>{t.status_text()}</span>"
        c.prev.disabled, c.next.disabled = t.page == 0, t.page >= t.page_count - 1
        page = t.page_rows()
        c.select.options = [(_label(b, r), r.run_id) for r in page]
        c.select.rows = max(2, min(len(page), MAX_SELECT_ROWS))
        c.select.value = tuple(r.run_id for r in page if r.run_id in t.selected)
        c.clear.description = f"Clear selection ({len(t.selected)})"
        c.compare.value = comparison_html(b.comparison())
        _options(c.chart_metric, t.metric_names(), b.chart_metric)
        x_keys = [PER_RUN] + [k for k in t.sort_keys() if k.startswith(("params.", "metrics."))]
        _options(c.chart_x, x_keys, b.chart_x, labels={PER_RUN: "each run"})
        c.chart.value = b.chart()
    finally:
        c.syncing = False


def _options(
    dropdown: w.Dropdown, keys: list[str], value: str | None, labels: dict[str, str] | None = None
) -> None:
    options = [((labels or {}).get(k, k), k) for k in keys]
    if list(dropdown.options) != options:
        dropdown.options = options
    dropdown.value = value if value in keys else None


def _label(b: RunBrowser, record: RunRecord) -> str:
    """One line per run in the selection list: name, id, the first metrics."""
    metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted(record.metrics.items())[:2])
    ident = (record.run_id or "")[:8]
    name = record.name if record.name and record.name != ident else ""
    return " ".join(x for x in (name, f"({ident})", record.status.lower(), metrics) if x)
