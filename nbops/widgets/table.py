"""The run browser's table model: columns, filtering, sorting, paging and the selection.

Pure logic over :class:`~nbops.record.RunRecord` lists (stdlib only), so it is tested without
a frontend and the widget only forwards events to it. Thousands of runs stay responsive: a
page renders ``page_size`` rows; filtering and sorting are one pass over the loaded records.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from nbops import names
from nbops.display import format_duration
from nbops.errors import UsageError
from nbops.record import RunRecord
from nbops.widgets.filters import FILTER_HELP, ORDERING, Condition, as_number, parse_filter

BUILTIN = ("run", "name", "experiment", "status", "started", "duration", "data")
MAX_METRIC_COLUMNS = 8
MAX_PARAM_COLUMNS = 8
MAX_VALUE = 18


@dataclass(frozen=True)
class Column:
    key: str  # "status", "metrics.accuracy", "params.max_depth", ...
    title: str


class RunTable:
    """Loaded runs plus the view state: filter, sort, page, selection (run ids)."""

    def __init__(self, records: Iterable[RunRecord] = (), page_size: int = 20) -> None:
        if page_size < 1:
            raise UsageError(f"page_size must be >= 1, got {page_size}", fix="pass page_size=20")
        self.page_size = page_size
        self.sort_key, self.descending = "started", True
        self.conditions: list[Condition] = []
        self.filter_text = ""
        self.page = 0
        self.selected: list[str] = []
        self.records: list[RunRecord] = []
        self.columns: list[Column] = []
        self._metrics: set[str] = set()
        self._params: set[str] = set()
        self._rows: list[RunRecord] | None = None
        self.load(records)

    # ---- state changes ------------------------------------------------------------------

    def load(self, records: Iterable[RunRecord]) -> list[RunRecord]:
        """Replace the runs (a refresh); keeps filter, sort and still-present selections.
        Returns the runs that were not loaded before."""
        known = {r.run_id for r in self.records}
        self.records = list(records)
        self._metrics = {k for r in self.records for k in r.metrics}
        self._params = {k for r in self.records for k in r.params}
        self.columns = _columns(self.records)
        present = {r.run_id for r in self.records}
        self.selected = [s for s in self.selected if s in present]
        self._rows = None
        self.page = min(self.page, self.page_count - 1)
        return [r for r in self.records if r.run_id not in known] if known else []

    def set_filter(self, text: str) -> None:
        """Apply ``text`` (see :mod:`nbops.widgets.filters`); a UsageError leaves it unchanged.
        A number column compared with a word (``accuracy > high``) is an error too: it would
        match nothing without saying why."""
        conditions = parse_filter(text)
        for condition in conditions:
            key = self.resolve(condition.key)
            if condition.op != "~" and as_number(condition.value) is None and self.numeric(key):
                kind = "ordering" if condition.op in ORDERING else "comparison"
                raise UsageError(
                    f"{condition.key!r} holds numbers, and {condition.value!r} is not one "
                    f"(in the {kind} `{condition}`)",
                    fix=f"compare with a number, e.g. `{condition.key} {condition.op} 0.9`; "
                    f"`{condition.key} ~ TEXT` matches text",
                )
        self.conditions, self.filter_text = conditions, text.strip()
        self._rows, self.page = None, 0

    def sort(self, key: str, descending: bool | None = None) -> None:
        """Sort by any column key; None keeps the direction (numbers first descending)."""
        self.sort_key = self.resolve(key)
        if descending is not None:
            self.descending = descending
        self._rows, self.page = None, 0

    def go(self, page: int) -> None:
        self.page = max(0, min(page, self.page_count - 1))

    def select(self, run_ids: Iterable[str]) -> None:
        """The compared runs, in the order given (unknown ids are an error)."""
        present = {r.run_id for r in self.records}
        wanted = list(dict.fromkeys(run_ids))
        missing = [i for i in wanted if i not in present]
        if missing:
            raise UsageError(f"no loaded run {missing[0]!r}", fix="refresh, or pick a listed run")
        self.selected = wanted

    # ---- reading ------------------------------------------------------------------------

    @property
    def rows(self) -> list[RunRecord]:
        """Filtered and sorted runs (cached until the state changes)."""
        if self._rows is None:
            kept = [r for r in self.records if all(self._holds(c, r) for c in self.conditions)]
            self._rows = _sorted(kept, lambda r: self.value(r, self.sort_key), self.descending)
        return self._rows

    @property
    def page_count(self) -> int:
        return max(1, -(-len(self.rows) // self.page_size))

    def page_rows(self) -> list[RunRecord]:
        start = self.page * self.page_size
        return self.rows[start : start + self.page_size]

    def selected_records(self) -> list[RunRecord]:
        by_id = {r.run_id: r for r in self.records}
        return [by_id[i] for i in self.selected if i in by_id]

    def sort_keys(self) -> list[str]:
        """Every key the table can sort or filter by (visible columns first)."""
        keys = [c.key for c in self.columns]
        extra = [f"metrics.{m}" for m in sorted(self._metrics)]
        extra += [f"params.{p}" for p in sorted(self._params)]
        return keys + [k for k in [*BUILTIN, *extra] if k not in keys]

    def metric_names(self) -> list[str]:
        return sorted(self._metrics)

    def param_names(self) -> list[str]:
        return sorted(self._params)

    def resolve(self, key: str) -> str:
        """A column key for ``key``: built-in, ``params.X``/``metrics.X``, or a bare metric
        or param name (metrics first), or a param's short name (``max_depth`` for
        ``model.max_depth``); a UsageError listing what exists, or the long names an
        ambiguous short name matches, otherwise."""
        key = key.strip()
        if key in BUILTIN:
            return key
        kind, _, name = key.partition(".")
        if (kind == "metrics" and name in self._metrics) or (
            kind == "params" and name in self._params
        ):
            return key
        if key in self._metrics:
            return f"metrics.{key}"
        if key in self._params:
            return f"params.{key}"
        wanted = name if kind == "params" and name else key  # a short name: nbops.names
        if names.check_unambiguous((r.params for r in self.records), wanted, FILTER_HELP):
            return f"params.{wanted}"
        known = ", ".join([*BUILTIN, *sorted(self._metrics), *sorted(self._params)][:30])
        raise UsageError(f"no column {key!r} in these runs (columns: {known})", fix=FILTER_HELP)

    def value(self, record: RunRecord, key: str) -> Any:
        """The raw value of a column (None when the run has none)."""
        kind, _, name = key.partition(".")
        if kind == "metrics" and name:
            return record.metrics.get(name)
        if kind == "params" and name:
            return names.lookup(record.params, name)  # the long name, or the short one
        if key == "run":
            return record.run_id
        if key == "started":
            return record.start or None
        if key == "data":
            return _data_text(record) or None
        return getattr(record, key, None)

    def cells(self, record: RunRecord) -> list[str]:
        """The record's row as text, one cell per visible column."""
        return [cell_text(c.key, self.value(record, c.key)) for c in self.columns]

    def header(self) -> list[str]:
        arrow = " ▼" if self.descending else " ▲"
        return [c.title + (arrow if c.key == self.sort_key else "") for c in self.columns]

    def numeric(self, key: str) -> bool:
        """True when every loaded run's value of the column is a number (metrics, durations,
        numeric params); such a column sorts and filters as numbers."""
        if key.startswith("metrics.") or key in ("duration", "started"):
            return True
        values = [self.value(r, key) for r in self.records]
        present = [v for v in values if v is not None and v != ""]
        return bool(present) and all(as_number(v) is not None for v in present)

    def sort_state(self, key: str) -> str:
        """``ascending``/``descending`` for the sorted column, ``none`` for the others (the
        ``aria-sort`` a header carries)."""
        if key != self.sort_key:
            return "none"
        return "descending" if self.descending else "ascending"

    def click_sort(self, key: str) -> None:
        """A header click: sort by it (numbers and times newest/highest first), or reverse
        the order when it is already the sorted column."""
        key = self.resolve(key)
        if key == self.sort_key:
            self.sort(key, not self.descending)
        else:
            self.sort(key, self.numeric(key))

    def status_text(self) -> str:
        shown = len(self.rows)
        where = f" matching {self.filter_text!r}" if self.conditions else ""
        return (
            f"{shown:,} of {len(self.records):,} run(s){where}; page {self.page + 1}/"
            f"{self.page_count}; sorted by {self.sort_key} {'desc' if self.descending else 'asc'}"
        )

    def _holds(self, condition: Condition, record: RunRecord) -> bool:
        return condition.holds(self.value(record, self.resolve(condition.key)))


def cell_text(key: str, value: Any) -> str:
    if value is None:
        return ""
    if key == "run":
        return str(value)[:8]
    if key == "started":
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))
    if key == "duration" and isinstance(value, int | float):
        return format_duration(value)
    if key.startswith("metrics."):
        return f"{value:.4g}" if isinstance(value, int | float) else str(value)
    text = str(value)
    return text if len(text) <= MAX_VALUE * 2 or key == "data" else text[: MAX_VALUE - 1] + "…"


def _data_text(record: RunRecord) -> str:
    """Short fingerprints of the inputs (outputs when none), as ``name:1a2b3c4d``."""
    refs = record.inputs() or record.outputs()
    parts = [f"{d.name}:{d.short}" for d in refs[:2]]
    if len(refs) > 2:
        parts.append(f"+{len(refs) - 2}")
    return " ".join(parts)


def _columns(records: Sequence[RunRecord]) -> list[Column]:
    """Columns worth showing: metrics always, params only where runs differ (as ``nbops runs``)."""
    columns = [Column("run", "run"), Column("name", "name")]
    if len({r.experiment for r in records}) > 1:
        columns.append(Column("experiment", "experiment"))
    columns += [Column("status", "status"), Column("started", "started")]
    columns.append(Column("duration", "duration"))
    metrics = sorted({k for r in records for k in r.metrics})[:MAX_METRIC_COLUMNS]
    columns += [Column(f"metrics.{m}", m) for m in metrics]
    values: dict[str, set[str]] = {}
    for record in records:
        for key, value in record.params.items():
            values.setdefault(key, set()).add(str(value))
    varying = [k for k, v in values.items() if len(v) > 1 or len(records) == 1]
    columns += [Column(f"params.{p}", p) for p in sorted(varying)[:MAX_PARAM_COLUMNS]]
    if any(r.data for r in records):
        columns.append(Column("data", "data"))
    return columns


def _sorted(records: list[RunRecord], key: Any, descending: bool) -> list[RunRecord]:
    """Numbers as numbers when every value of the column is one, else text; missing last."""
    pairs = [(key(r), r) for r in records]
    present = [(v, r) for v, r in pairs if v is not None and v != ""]
    missing = [r for v, r in pairs if v is None or v == ""]
    numbers = [as_number(v) for v, _ in present]
    if all(n is not None for n in numbers):
        ordered = sorted(
            zip(numbers, present, strict=True), key=lambda p: cast(float, p[0]), reverse=descending
        )
        return [r for _, (_, r) in ordered] + missing
    ordered_text = sorted(present, key=lambda p: str(p[0]).lower(), reverse=descending)
    return [r for _, r in ordered_text] + missing
