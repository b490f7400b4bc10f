"""A saved notebook's code cells and the order its outputs were made in.

The kernel-side hidden-state check (:mod:`nbops.capture.staleness`) places executions on the
saved cells (by cell id, else by source); promote warns when the saved outputs came from an
out-of-order execution (:func:`order_problems`): its pipeline runs the cells top to bottom, so
its results may differ from what the notebook shows. JSON only (no nbformat): this runs in a
kernel, under a tracked cell.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class SavedCell:
    """A code cell of the saved notebook: ``number`` is 1-based over all cells (as Jupyter and
    nbops' errors count them)."""

    number: int
    cell_id: str | None
    source: str
    count: int | None  # the In [n] its saved outputs came from


@dataclass(frozen=True)
class SavedNotebook:
    path: str
    mtime: float  # when it was saved
    cells: tuple[SavedCell, ...]

    def with_id(self, cell_id: str | None) -> SavedCell | None:
        if not cell_id:
            return None
        return next((c for c in self.cells if c.cell_id == cell_id), None)

    @property
    def has_ids(self) -> bool:
        return any(c.cell_id for c in self.cells)

    @functools.cached_property
    def by_source(self) -> dict[str, list[SavedCell]]:
        """Cells by their source (stripped), in order: where an execution of that code ran."""
        found: dict[str, list[SavedCell]] = {}
        for cell in self.cells:
            found.setdefault(cell.source.strip(), []).append(cell)
        return found


def saved_notebook(path: str | os.PathLike[str] | None) -> SavedNotebook | None:
    """The code cells of the notebook at ``path`` as saved now (cached until it changes);
    None when there is none or it cannot be read."""
    if not path:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return _load(str(path), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=4)
def _load(path: str, mtime_ns: int, size: int) -> SavedNotebook | None:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    cells = data.get("cells") if isinstance(data, dict) else None
    if not isinstance(cells, list):
        return None
    return SavedNotebook(path, mtime_ns / 1e9, tuple(code_cells(cells)))


def code_cells(cells: list[Any]) -> list[SavedCell]:
    found = []
    for number, cell in enumerate(cells, 1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        count = cell.get("execution_count")
        cell_id = cell.get("id")
        found.append(
            SavedCell(
                number,
                cell_id if isinstance(cell_id, str) else None,
                source,
                count if isinstance(count, int) and not isinstance(count, bool) else None,
            )
        )
    return found


def order_problems(cells: list[SavedCell]) -> list[str]:
    """The cells whose saved outputs came from a run after a cell below them: "cell 5 (In [9])
    ran after cell 7 (In [4])", one line per such cell, naming the cells below it."""
    run = [c for c in cells if c.count is not None]
    problems = []
    for i, cell in enumerate(run):
        count = cell.count or 0  # never None in ``run``
        earlier_below = [c for c in run[i + 1 :] if c.count is not None and c.count < count]
        if not earlier_below:
            continue
        below = ", ".join(f"cell {c.number} (In [{c.count}])" for c in earlier_below[:4])
        more = f" and {len(earlier_below) - 4} more" if len(earlier_below) > 4 else ""
        problems.append(f"cell {cell.number} (In [{cell.count}]) ran after {below}{more}")
    return problems


def out_of_order_note(cells: list[Any]) -> str:
    """Promote's warning when the saved outputs (of the notebook's ``cells``, as JSON) come
    from an out-of-order execution, else ""."""
    problems = order_problems(code_cells(cells))
    if not problems:
        return ""
    return (
        "warning: the notebook's saved outputs come from an out-of-order execution: "
        + "; ".join(problems)
        + ". The pipeline runs the cells top to bottom, so its results may differ from what "
        "the notebook shows: Restart & Run All in Jupyter, save, and promote again to compare"
    )
