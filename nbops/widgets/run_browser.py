"""``RunBrowser``: runs side by side in the notebook; filter, sort, page, compare, chart.

The state lives in :class:`~nbops.widgets.table.RunTable` (pure); this module reads the runs
through the session's tracker (the store layer ``nbops runs`` uses), builds the view's HTML
(:mod:`nbops.widgets.render`) and maps the frontend's actions onto the table: a click on a
column header sorts, a row's checkbox (or a click on its point in the chart) selects it for
the comparison, the chart plots a metric against a column, coloured by another, or shows the
sweep as parallel coordinates.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any, ClassVar

from nbops.errors import UsageError
from nbops.record import RunRecord
from nbops.widgets.base import WidgetBase, error_text
from nbops.widgets.chart import NO_COLOUR, PER_RUN, chart_points, svg_chart
from nbops.widgets.compare import Comparison, compare, comparison_html, comparison_text
from nbops.widgets.filters import FILTER_HELP
from nbops.widgets.parallel import axes_for, svg_parallel
from nbops.widgets.render import (
    box,
    button,
    checkbox,
    html_table,
    select,
    snapshot_note,
    text_input,
    text_table,
)
from nbops.widgets.table import RunTable

if TYPE_CHECKING:
    from nbops.session import Session

DEFAULT_MAX_RUNS = 5000
SCATTER, PARALLEL = "scatter", "parallel"
COLOUR_KEYS = ("status", "experiment", "name")  # besides params and metrics


class RunBrowser(WidgetBase):
    """A table of runs (newest first) with filter, sort, paging, a comparison and a chart.

    >>> RunBrowser()                      # every experiment of the project's store
    >>> RunBrowser("wine", page_size=50)  # one experiment
    """

    ACTIONS: ClassVar[dict[str, str]] = {
        "filter": "_on_filter",
        "sort": "_on_sort",
        "page": "_on_page",
        "toggle": "_on_toggle",
        "clear": "_on_clear",
        "chart-metric": "_on_chart_metric",
        "chart-x": "_on_chart_x",
        "colour": "_on_colour",
        "mode": "_on_mode",
        "refresh": "_on_refresh",
    }

    def __init__(
        self,
        experiment: str | None = None,
        *,
        page_size: int = 20,
        max_runs: int = DEFAULT_MAX_RUNS,
        session: Session | None = None,
    ) -> None:
        if session is None:
            from nbops.session import default_session

            session = default_session()
        self.session = session
        self.experiment = experiment
        self.max_runs = max_runs
        self.table = RunTable(page_size=page_size)
        self.chart_metric: str | None = None
        self.chart_x = PER_RUN
        self.colour = NO_COLOUR
        self.mode = SCATTER
        self._full: dict[str, RunRecord] = {}  # full records (code) of compared runs
        self.refresh()

    # ---- the model operations (the Python API; the frontend's actions call these) ---------

    def refresh(self) -> list[RunRecord]:
        """Read the runs again (delivering spooled ones first); returns the new runs. A store
        error is shown in the browser and leaves the loaded runs in place."""
        try:
            self.session.deliver_pending()
            records = self.session.reader().list_runs(self.experiment, self.max_runs)
        except Exception as exc:
            self.say(f"could not read the runs: {error_text(exc)}", "error")
            self._sync()
            return []
        self.stamp()
        first = not self.table.records
        new = self.table.load(records)
        metrics = self.table.metric_names()
        if self.chart_metric not in metrics:
            self.chart_metric = metrics[0] if metrics else None
        keys = self.table.sort_keys()
        if self.chart_x != PER_RUN and self.chart_x not in keys:
            self.chart_x = PER_RUN
        if self.colour and self.colour not in keys:
            self.colour = NO_COLOUR
        if not records and self.experiment:
            self._unknown_experiment()
        else:
            where = f"experiment {self.experiment!r}" if self.experiment else "all experiments"
            capped = f" (the newest {self.max_runs:,})" if len(records) >= self.max_runs else ""
            since = "" if first else f"; {len(new)} new since the last refresh"
            self.say(f"{len(records):,} run(s) in {where}{capped}{since}")
        self._sync()
        return new

    def set_filter(self, text: str) -> None:
        """Keep the runs matching ``text``, e.g. ``accuracy >= 0.9, max_depth = 3``."""
        self.table.set_filter(text)
        self._sync()

    def sort(self, key: str, descending: bool | None = None) -> None:
        self.table.sort(key, descending)
        self._sync()

    def go(self, page: int) -> None:
        """Show page ``page`` (0-based)."""
        self.table.go(page)
        self._sync()

    def select(self, run_ids: list[str]) -> Comparison:
        """Compare these runs (ids as listed); returns what differs between them."""
        self.table.select(run_ids)
        self._sync()
        return self.comparison()

    def comparison(self) -> Comparison:
        return compare([self._full_record(r) for r in self.table.selected_records()])

    def set_chart(
        self, metric: str | None = None, against: str | None = None, colour: str | None = None
    ) -> None:
        """Plot ``metric`` against a param or metric (``against``; None: per run), coloured by
        the column ``colour`` ("" for none; None keeps the current one)."""
        if metric is not None:
            key = self.table.resolve(metric)
            if not key.startswith("metrics."):
                raise UsageError(f"{metric!r} is not a metric", fix="chart a metric of the runs")
            self.chart_metric = key.removeprefix("metrics.")
        self.chart_x = PER_RUN if against in (None, PER_RUN) else self.table.resolve(against)
        if colour is not None:
            self.colour = self.table.resolve(colour) if colour else NO_COLOUR
        self._sync()

    def set_view(self, mode: str) -> None:
        """``"scatter"`` (the chart) or ``"parallel"`` (parallel coordinates of the sweep)."""
        if mode not in (SCATTER, PARALLEL):
            raise UsageError(f"no view {mode!r}", fix=f"use {SCATTER!r} or {PARALLEL!r}")
        self.mode = mode
        self._sync()

    def chart(self) -> str:
        """The SVG chart of the chart metric against ``chart_x`` (or per run) over the runs
        passing the filter, coloured by ``colour``; selected runs are ringed."""
        metric = self.chart_metric
        if metric is None:
            return '<div style="opacity:0.7">no metrics to plot</div>'
        t = self.table
        if self.mode == PARALLEL:
            params = [f"params.{p}" for p in t.param_names()]
            axes = axes_for(t.rows, params, metric, t.value)
            return svg_parallel(t.rows, axes, set(t.selected))
        points = chart_points(t.rows, metric, self.chart_x, t.value, set(t.selected), self.colour)
        x_title = "run (oldest to newest)" if self.chart_x == PER_RUN else self.chart_x
        return svg_chart(points, x_title, metric, self.colour)

    # ---- the frontend's actions -------------------------------------------------------------

    def _on_filter(self, msg: dict[str, Any]) -> None:
        self.table.set_filter(str(msg.get("value", "")))

    def _on_sort(self, msg: dict[str, Any]) -> None:
        self.table.click_sort(str(msg["key"]))

    def _on_page(self, msg: dict[str, Any]) -> None:
        self.table.go(int(msg["page"]))

    def _on_toggle(self, msg: dict[str, Any]) -> None:
        run, selected = str(msg["run"]), self.table.selected
        on = msg["value"] if isinstance(msg.get("value"), bool) else run not in selected
        self.table.select([*[s for s in selected if s != run], *([run] if on else [])])

    def _on_clear(self, msg: dict[str, Any]) -> None:
        self.table.select([])

    def _on_chart_metric(self, msg: dict[str, Any]) -> None:
        self.set_chart(metric=str(msg["value"]), against=self.chart_x)

    def _on_chart_x(self, msg: dict[str, Any]) -> None:
        self.set_chart(against=str(msg["value"]))

    def _on_colour(self, msg: dict[str, Any]) -> None:
        self.set_chart(against=self.chart_x, colour=str(msg.get("value") or ""))

    def _on_mode(self, msg: dict[str, Any]) -> None:
        self.set_view(str(msg["mode"]))

    def _on_refresh(self, msg: dict[str, Any]) -> None:
        self.refresh()

    # ---- renderings -----------------------------------------------------------------------

    def page_html(self, live: bool = False) -> str:
        """The current page as a table; ``live`` adds the checkboxes and sortable headers."""
        t = self.table
        rows = t.page_rows()
        cells = [t.cells(r) for r in rows]
        raw: tuple[int, ...] = ()
        header, head_attrs = t.header(), []
        if live:
            head_attrs = [
                {
                    "data-action": "sort",
                    "data-key": c.key,
                    "aria-sort": t.sort_state(c.key),
                    "title": f"sort by {c.key} (click again to reverse)",
                }
                for c in t.columns
            ]
            header, head_attrs, raw = ["", *header], [{}, *head_attrs], (0,)
            cells = [
                [checkbox("toggle", r.run_id in t.selected, run=r.run_id, title="compare"), *c]
                for r, c in zip(rows, cells, strict=True)
            ]
        return html_table(
            header,
            cells,
            css_class="nbops-runs",
            marked=[r.run_id in t.selected for r in rows],
            head_attrs=head_attrs,
            row_attrs=[{"data-run": r.run_id} for r in rows],
            raw_columns=raw,
        )

    def view_html(self) -> str:
        t = self.table
        bar = (
            '<div class="nbops-bar nbops-live">'
            + text_input(
                "filter",
                t.filter_text,
                placeholder="filter: accuracy >= 0.9, max_depth = 3, status = FINISHED",
                title=FILTER_HELP,
            )
            + button("Refresh", "refresh", title="read the runs again (new runs appear)")
            + "</div>"
        )
        pager = (
            '<div class="nbops-bar">'
            + button("‹ prev", "page", disabled=t.page == 0, title="previous page", page=t.page - 1)
            + f"<span>{html.escape(t.status_text())}</span>"
            + button(
                "next ›",
                "page",
                disabled=t.page >= t.page_count - 1,
                title="next page",
                page=t.page + 1,
            )
            + "</div>"
        )
        parts = [
            snapshot_note("run browser", self.as_of),
            self._title(),
            bar,
            self.message_html(),
            self.page_html(live=True),
            pager,
            self._compare_html(live=True),
            self._chart_controls(),
            self.chart(),
        ]
        return '<div class="nbops-root" data-kind="runs">' + "".join(parts) + "</div>"

    def to_html(self) -> str:
        t = self.table
        note = (
            '<div style="opacity:0.7;font-size:0.85em">a static copy: in Jupyter, run the cell '
            "for the interactive browser</div>"
        )
        parts = [note, self.message_html(), self.page_html(), f"<div>{t.status_text()}</div>"]
        if len(t.selected) >= 2:
            parts.append(comparison_html(self.comparison()))
        if t.rows:
            parts.append(self.chart())
        return box(f"nbops runs (as of {self.as_of})", "".join(parts), "nbops-run-browser")

    def to_text(self) -> str:
        t = self.table
        lines = [self.message] if self.message else []
        lines += [text_table(t.header(), [t.cells(r) for r in t.page_rows()]), t.status_text()]
        if len(t.selected) >= 2:
            lines.append(comparison_text(self.comparison()))
        return "\n".join(lines)

    def _title(self) -> str:
        where = f"experiment {self.experiment}" if self.experiment else "all experiments"
        return (
            f'<div class="nbops-title">nbops runs <span class="nbops-asof">{html.escape(where)}'
            f" · as of {html.escape(self.as_of)}</span></div>"
        )

    def _compare_html(self, live: bool) -> str:
        selected = len(self.table.selected)
        if selected < 2:
            hint = "tick two or more runs (or click their points in the chart) to compare them"
            note = f'<span class="nbops-note">{hint}</span>'
            return f'<div class="nbops-section"><b>compare</b> {note}</div>'
        clear = button(f"Clear selection ({selected})", "clear") if live else ""
        head = f'<div class="nbops-section nbops-live"><b>compare</b> {clear}</div>'
        return head + comparison_html(self.comparison())

    def _chart_controls(self) -> str:
        t = self.table
        metrics = [(m, m) for m in t.metric_names()]
        x_keys = [(PER_RUN, "each run")] + [
            (k, k) for k in t.sort_keys() if k.startswith(("params.", "metrics."))
        ]
        colour_keys = [(NO_COLOUR, "nothing")] + [
            (k, k)
            for k in t.sort_keys()
            if k.startswith(("params.", "metrics.")) or k in COLOUR_KEYS
        ]
        scatter = self.mode == SCATTER
        controls = [
            select("chart-metric", metrics, self.chart_metric, "chart"),
            select("chart-x", x_keys, self.chart_x, "against") if scatter else "",
            select("colour", colour_keys, self.colour, "colour by") if scatter else "",
            button(
                "scatter", "mode", disabled=scatter, title="a metric against a column", mode=SCATTER
            ),
            button(
                "parallel coordinates",
                "mode",
                disabled=not scatter,
                title="every parameter that varies, and the metric: for sweeps",
                mode=PARALLEL,
            ),
        ]
        return '<div class="nbops-bar nbops-live">' + "".join(controls) + "</div>"

    def _full_record(self, record: RunRecord) -> RunRecord:
        """The run's full record (with its code, for the code diff) when the store has it;
        the listed one otherwise."""
        run_id = record.run_id or ""
        if run_id not in self._full:
            try:
                self._full[run_id] = self.session.reader().get_run(run_id)
            except Exception:  # a run nbops did not write, or the store went away
                self._full[run_id] = record
        full = self._full[run_id]
        return full if full.run_id == record.run_id else record

    def _unknown_experiment(self) -> None:
        """No run in ``experiment``: say whether the experiment exists, and which do (never
        creating a store to find out)."""
        from nbops.store.sqlite import db_path

        uri = self.session.config.tracking_uri
        db = db_path(uri)
        if db is not None and not db.exists():
            self.say(f"no store yet at {uri}: put %%track on a cell to record a run", "error")
            return
        try:
            from mlflow.tracking import MlflowClient

            client = MlflowClient(tracking_uri=uri)
            names = sorted(e.name for e in client.search_experiments())
        except Exception as exc:
            self.say(f"no runs in experiment {self.experiment!r} ({error_text(exc)})", "error")
            return
        if self.experiment in names:
            self.say(f"no runs in experiment {self.experiment!r} yet; put %%track on a cell")
            return
        known = ", ".join(repr(n) for n in names) if names else "none yet"
        self.say(
            f"no experiment {self.experiment!r} in {self.session.config.tracking_uri}; "
            f"experiments are: {known}\n  fix: RunBrowser(NAME) with one of those, or "
            "RunBrowser() for all of them",
            "error",
        )
