"""``RunBrowser``: runs side by side in the notebook; filter, sort, page, compare, chart.

The state lives in :class:`~nbops.widgets.table.RunTable` (pure); this module reads the runs
through the session's tracker (the store layer ``nbops runs`` uses) and wires ipywidgets to
the table. ipywidgets is imported when the widget is first built, never at import time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nbops.errors import UsageError
from nbops.record import RunRecord
from nbops.widgets.base import WidgetBase, error_text
from nbops.widgets.chart import PER_RUN, chart_points, svg_chart
from nbops.widgets.compare import Comparison, compare, comparison_html, comparison_text
from nbops.widgets.render import box, html_table, text_table
from nbops.widgets.table import RunTable

if TYPE_CHECKING:
    from nbops.session import Session

DEFAULT_MAX_RUNS = 5000


class RunBrowser(WidgetBase):
    """A table of runs (newest first) with filter, sort, paging, a comparison and a chart.

    >>> RunBrowser()                      # every experiment of the project's store
    >>> RunBrowser("wine", page_size=50)  # one experiment
    """

    controls: Any = None  # the widgets by role, once built (nbops.widgets.run_browser_ui)

    def __init__(
        self,
        experiment: str | None = None,
        *,
        page_size: int = 20,
        max_runs: int = DEFAULT_MAX_RUNS,
        session: Session | None = None,
    ) -> None:
        if session is None:
            from nbops.api import default_session

            session = default_session()
        self.session = session
        self.experiment = experiment
        self.max_runs = max_runs
        self.table = RunTable(page_size=page_size)
        self.chart_metric: str | None = None
        self.chart_x = PER_RUN
        self.refresh()

    # ---- the model operations (the widget's callbacks call these) -------------------------

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
        first = not self.table.records
        new = self.table.load(records)
        metrics = self.table.metric_names()
        if self.chart_metric not in metrics:
            self.chart_metric = metrics[0] if metrics else None
        if self.chart_x != PER_RUN and self.chart_x not in self.table.sort_keys():
            self.chart_x = PER_RUN
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
        return compare(self.table.selected_records())

    def set_chart(self, metric: str | None = None, against: str | None = None) -> None:
        """Plot ``metric`` against a param or metric (``against``; None: per run)."""
        if metric is not None:
            key = self.table.resolve(metric)
            if not key.startswith("metrics."):
                raise UsageError(f"{metric!r} is not a metric", fix="chart a metric of the runs")
            self.chart_metric = key.removeprefix("metrics.")
        self.chart_x = PER_RUN if against in (None, PER_RUN) else self.table.resolve(against)
        self._sync()

    def chart(self) -> str:
        """The SVG chart of the chart metric against ``chart_x`` (or per run) over the runs
        passing the filter; selected runs are highlighted."""
        metric = self.chart_metric
        if metric is None:
            return '<div style="opacity:0.7">no metrics to plot</div>'
        x_key = self.chart_x
        marked = set(self.table.selected)
        points = chart_points(self.table.rows, metric, x_key, self.table.value, marked)
        x_title = "run (oldest to newest)" if x_key == PER_RUN else x_key
        return svg_chart(points, x_title, metric)

    # ---- renderings -----------------------------------------------------------------------

    def page_html(self) -> str:
        t = self.table
        rows = t.page_rows()
        marked = [r.run_id in t.selected for r in rows]
        cells = [t.cells(r) for r in rows]
        return html_table(t.header(), cells, css_class="nbops-runs", marked=marked)

    def to_html(self) -> str:
        t = self.table
        parts = [self.message_html(), self.page_html(), f"<div>{t.status_text()}</div>"]
        if len(t.selected) >= 2:
            parts.append(comparison_html(self.comparison()))
        return box("nbops runs", "".join(parts), "nbops-run-browser")

    def to_text(self) -> str:
        t = self.table
        lines = [self.message] if self.message else []
        lines += [text_table(t.header(), [t.cells(r) for r in t.page_rows()]), t.status_text()]
        if len(t.selected) >= 2:
            lines.append(comparison_text(self.comparison()))
        return "\n".join(lines)

    # ---- ipywidgets glue --------------------------------------------------------------------

    def _build(self) -> Any:
        from nbops.widgets.run_browser_ui import build

        return build(self)

    def _sync(self) -> None:
        if self._ui is not None:
            from nbops.widgets.run_browser_ui import sync

            sync(self, self._ui)
