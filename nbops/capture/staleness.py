"""The hidden-state warning: a variable whose value does not match what running the notebook top
to bottom would give, named with the cell to re-run.

Judged from the kernel's :class:`~nbops.capture.state.StateLog` and the notebook as saved
(:mod:`nbops.notebook.order`; executions are placed on its cells by cell id, else by source).
A variable read by a cell is flagged when the cell that produced it

- was edited after it ran, or deleted (Restart & Run All would compute something else);
- sits below the reading cell (top to bottom, the reader runs first);
- ran its own code again on its own earlier result, and the value changed (``X = X[keep]`` run
  twice filters twice);
- was computed from a variable that a later execution has set again (the producer is stale);
- read such a value itself (the problem is upstream).

The saved notebook lags the editor (JupyterLab saves every two minutes): an edit is only seen
once saved, and only code saved after it ran counts as changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nbops.capture.state import Execution, StateLog, log_of
from nbops.notebook.order import SavedCell, SavedNotebook, saved_notebook
from nbops.record import RunRecord

MAX_DEPTH = 4  # how far up a chain of stale values the check walks
MAX_ORDER_LINES = 20  # executions out of order that %nbops check lists one by one
DELETED = (
    "a cell deleted after it ran: Restart & Run All would not define it; put that code back "
    "in a cell above this one"
)


@dataclass
class Issue:
    variable: str
    message: str

    @property
    def derived(self) -> bool:
        """Computed from a value that is itself the problem (listed after the causes)."""
        return ", which used " in self.message


@dataclass
class Report:
    """What one check found: issues with the values read, executions out of order, and the
    verdict recorded on the run (``clean``, ``hidden state``, ``out of order``, ``unknown``)."""

    issues: list[Issue] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    unplaced: int = 0
    notebook: str | None = None

    @property
    def verdict(self) -> str:
        if self.issues:
            return "hidden state"
        if self.order:
            return "out of order"
        if self.unplaced or self.notebook is None:
            return "unknown"
        return "clean"

    def summary(self) -> str:
        """One line for the run's tag and ``--check``: the verdict and its first reason."""
        if self.issues:
            return f"hidden state: {self.issues[0].message}"
        if self.order:
            return f"out of order: {self.order[0]}"
        if self.verdict == "unknown":
            where = (
                "the notebook was not found"
                if self.notebook is None
                else (f"{self.unplaced} execution(s) not in the saved notebook")
            )
            return f"unknown: {where}"
        return "clean: every cell ran in order, top to bottom, and none changed since"


class Checker:
    """Judges values of one log against one saved notebook."""

    def __init__(self, log: StateLog, notebook: SavedNotebook | None) -> None:
        self.log = log
        self.notebook = notebook
        self.cells = _place(log.executions, notebook)

    def for_cell(self, current: Execution) -> Report:
        """The values ``current`` (a cell about to run) reads."""
        report = self._report()
        if current.count not in self.cells and self.notebook is not None:
            placed = _locate(current, self.notebook, self._last_number())
            if placed is not None:
                self.cells[current.count] = placed
        for name in sorted(current.inputs):
            problem = self._reader_problem(current, name) or self._problem(
                name, current.inputs[name], 0, current.count
            )
            if problem:
                report.issues.append(Issue(name, problem + self._then(current)))
        report.issues.sort(key=lambda issue: issue.derived)
        return report

    def for_kernel(self) -> Report:
        """Every variable the kernel holds (``%nbops check``)."""
        report = self._report(limit=MAX_ORDER_LINES)
        for name, count in sorted(self.log.bindings.items()):
            problem = self._problem(name, count, 0)
            if problem:
                report.issues.append(Issue(name, problem))
        report.issues.sort(key=lambda issue: issue.derived)
        return report

    def _report(self, limit: int = 1) -> Report:
        report = Report(notebook=self.notebook.path if self.notebook else None)
        report.order = self._order(limit)
        report.unplaced = sum(1 for ex in self.log.executions if ex.count not in self.cells)
        return report

    def name(self, ex: Execution) -> str:
        cell = self.cells.get(ex.count)
        if cell is not None:
            return f"cell {cell.number} (In [{ex.count}])"
        return f"In [{ex.count}] (`{ex.first_line}`)"

    def _then(self, current: Execution) -> str:
        cell = self.cells.get(current.count)
        return f", then this cell (cell {cell.number})" if cell else ", then this cell"

    def _reader_problem(self, current: Execution, name: str) -> str:
        producer = self.log.by_count(current.inputs[name])
        here, there = self.cells.get(current.count), self.cells.get(current.inputs[name])
        if producer is None or here is None or there is None or there.number <= here.number:
            return ""
        if producer.raw.strip() == current.raw.strip():
            return ""  # this cell's own earlier run: judged as a re-run
        return (
            f"{name} comes from {self.name(producer)}, below this cell (cell {here.number}): "
            f"run top to bottom, this cell runs before it; move that code above this cell"
        )

    def _problem(self, name: str, count: int, depth: int, at: float = float("inf")) -> str:
        """Why the value of ``name`` produced by execution ``count``, as read at execution
        ``at``, is not what a clean run gives ("" when nothing is known against it)."""
        return self._finding(name, count, depth, at)[0]

    def _finding(self, name: str, count: int, depth: int, at: float) -> tuple[str, str]:
        """(the message, a short form for values computed from this one)."""
        producer = self.log.by_count(count)
        if producer is None or depth > MAX_DEPTH:
            return "", ""
        where = self.name(producer)
        changed, short = self._changed(producer)
        if changed:
            return f"{name} comes from {where}, {changed}", short
        used = producer.inputs_of(name)
        if name in producer.repeated or set(producer.repeated) & set(used):
            return self._repeated(name, producer)
        for source in sorted(used):
            later = self.log.rebound(source, producer.count, at, producer.tokens.get(source))
            if later is not None:
                setter = self.log.by_count(later)
                by = self.name(setter) if setter else f"In [{later}]"
                return (
                    f"{name} comes from {where}, computed from {source} before {by} set "
                    f"{source} again: re-run {self._cell(producer)}"
                ), f"computed before {source} was set again"
        for source, read in sorted(used.items()):
            if read >= producer.count:
                continue
            _, upstream = self._finding(source, read, depth + 1, producer.count)
            if upstream:
                return (
                    f"{name} comes from {where}, which used {source} ({upstream}): re-run "
                    f"{self._cell(producer)} once {source} is right"
                ), f"computed from {source}, {upstream}"
        return "", ""

    def _repeated(self, name: str, producer: Execution) -> tuple[str, str]:
        """The producer ran code on the result of an earlier run of the same code, and the
        value changed (a re-run of one cell, or a copy of a cell below it)."""
        where = self.name(producer)
        used = producer.inputs_of(name)
        changed = next(iter(sorted(set(producer.repeated) & set(used) or producer.repeated)))
        first = self._first_definition(changed, producer)
        earlier = self.log.by_count(producer.repeated[changed])
        same_cell = earlier is None or self.cells.get(earlier.count) == self.cells.get(
            producer.count
        )
        if same_cell:
            since = f" (In [{earlier.count}])" if earlier else ""
            how = f"which ran again on its own earlier result{since}"
        else:
            assert earlier is not None  # same_cell when there is none
            how = f"which ran the code of {self.name(earlier)} again, on that cell's result"
        restart = f"re-run from {first} (or Restart & Run All)"
        if name == changed:
            message = (
                f"{name} comes from {where}, {how}: {name} now depends on how many times that "
                f"code ran; {restart}"
            )
        else:
            message = f"{name} comes from {where}, {how} (computed from {changed}): {restart}"
        return message, f"re-derived by running that code again in {where}"

    def _changed(self, ex: Execution) -> tuple[str, str]:
        """Edited or deleted after it ran (as far as the saved notebook shows)."""
        notebook = self.notebook
        deleted = (DELETED, "its cell was deleted")
        if ex.cell_id and ex.cell_id in self.log.deleted_cells:
            return deleted
        if notebook is None or notebook.mtime <= ex.ended:
            return "", ""
        saved = notebook.with_id(ex.cell_id)
        if saved is not None:
            if saved.source.strip() != ex.raw.strip():
                edited = f"which was edited after it ran: re-run cell {saved.number}"
                return edited, f"cell {saved.number} was edited after it ran"
            return "", ""
        if ex.cell_id and notebook.has_ids:
            return deleted
        if ex.count not in self.cells:
            return (
                "whose code is no longer in the notebook (its cell was edited or deleted after "
                "it ran): re-run the cell that defines it now"
            ), "its code is no longer in the notebook"
        return "", ""

    def _first_definition(self, name: str, ex: Execution) -> str:
        """The execution that first produced ``name`` before the same code re-derived it."""
        current = ex
        for _ in range(len(self.log.executions)):
            earlier = self.log.by_count(current.inputs.get(name, 0))
            if earlier is None:
                break
            current = earlier
            if earlier.raw.strip() != ex.raw.strip():
                return self._cell(earlier)
        return "the cell that first defines it"

    def _cell(self, ex: Execution) -> str:
        cell = self.cells.get(ex.count)
        return f"cell {cell.number}" if cell else f"the cell of In [{ex.count}]"

    def _order(self, limit: int | None = None) -> list[str]:
        """Executions that ran after a cell below them (the first ``limit`` of them, and a
        last line counting the others)."""
        found: list[tuple[Execution, Execution]] = []
        highest: tuple[int, Execution] | None = None
        for ex in self.log.executions:
            cell = self.cells.get(ex.count)
            if cell is None:
                continue
            if highest is not None and cell.number < highest[0]:
                found.append((ex, highest[1]))
            if highest is None or cell.number > highest[0]:
                highest = (cell.number, ex)
        shown = found if limit is None else found[:limit]
        lines = [f"{self.name(ex)} ran after {self.name(above)}" for ex, above in shown]
        if len(found) > len(shown):
            lines.append(f"and {len(found) - len(shown)} more execution(s) out of order")
        return lines

    def _last_number(self) -> int:
        return max((c.number for c in self.cells.values()), default=0)


def _place(executions: list[Execution], notebook: SavedNotebook | None) -> dict[int, SavedCell]:
    """Which saved cell each execution ran (by cell id, else by source: with several cells
    of the same source, the first one below the previous execution's)."""
    placed: dict[int, SavedCell] = {}
    if notebook is None:
        return placed
    last = 0
    for ex in executions:
        cell = _locate(ex, notebook, last)
        if cell is not None:
            placed[ex.count] = cell
            last = cell.number
    return placed


def _locate(ex: Execution, notebook: SavedNotebook, after: int) -> SavedCell | None:
    by_id = notebook.with_id(ex.cell_id)
    if by_id is not None:
        return by_id
    same = notebook.by_source.get(ex.raw.strip(), [])
    return next((c for c in same if c.number > after), same[0] if same else None)


TAG = "nbops.state"  # a tracked run's verdict and its first reason


def check_cell(shell: Any, record: RunRecord, notebook: str | None) -> Report | None:
    """Judge the values the running tracked cell reads: warnings and the verdict go on
    ``record``. None when the kernel is not watched (``state_check = false``)."""
    log = log_of(shell)
    if log is None or log.current is None:
        return None
    report = Checker(log, saved_notebook(notebook)).for_cell(log.current)
    record.warnings += [f"hidden state: {issue.message}" for issue in report.issues]
    record.tags[TAG] = report.summary()
    return report


def kernel_text(shell: Any, notebook: str | None) -> str:
    """``%nbops check``: every variable of the kernel that a clean run would not give, the
    executions out of order, and the verdict."""
    log = log_of(shell)
    if log is None:
        return (
            "nbops is not watching this kernel's cells: load it with `%load_ext nbops` (and "
            "check that [tool.nbops] state_check is not false)"
        )
    checker = Checker(log, saved_notebook(notebook))
    report = checker.for_kernel()
    where = report.notebook or "unknown (name it with NBOPS_NOTEBOOK or %%track --notebook)"
    lines = [f"notebook: {where}; {len(log.executions)} execution(s) seen"]
    if report.issues:
        lines.append("hidden state:")
        lines += [f"  {issue.message}" for issue in report.issues]
    if report.order:
        lines.append("out of order:")
        lines += [f"  {line}" for line in report.order]
    lines.append(report.summary())
    return "\n".join(lines)
