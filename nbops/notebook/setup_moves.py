"""Untagged cells that only import (and configure what they import) move to setup when a later
step uses their names, instead of stopping promote with "imported in step A but used in step B".

Before the first step parse already makes such cells setup; this covers them anywhere else (under
the first ``##`` heading of ``--split headings``, in the middle of a tagged step). Copying an
import cell into every step changes nothing but what each step can use. Dataflow raises
:class:`MoveToSetup`, moves the cell and starts over.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

from nbops.notebook.plan import Cell, Plan, Step
from nbops.notebook.tags import PLACEMENT_ROLES, classify


class MoveToSetup(Exception):
    """An untagged import-only cell of one step is used by a later one: it belongs in setup."""

    def __init__(self, cell: Cell, step: Step) -> None:
        super().__init__(cell.where)
        self.cell, self.step = cell, step


def move_to_setup(plan: Plan, cell: Cell, step: Step) -> None:
    """Move ``cell`` from ``step`` to setup; a step left without code joins its neighbour."""
    step.cells.remove(cell)
    plan.setup = sorted([*plan.setup, cell], key=lambda c: c.index)
    plan.notes.append(
        f"{cell.where} only imports, and a later step uses what it imports: moved to setup "
        "(copied into every step)"
    )
    if any(c.kind == "code" for c in step.cells):
        return
    position = plan.steps.index(step)
    plan.steps.remove(step)
    if plan.steps:
        neighbour = plan.steps[min(position, len(plan.steps) - 1)]
        if position < len(plan.steps):
            neighbour.cells[:0] = step.cells
        else:
            neighbour.cells.extend(step.cells)
        plan.notes.append(
            f"step {step.name!r} had no other code; its cells join {neighbour.name!r}"
        )


def movable(cell: Cell, python: Callable[[str], str]) -> bool:
    """An untagged (or only modifier-tagged) cell that only imports and configures what it
    imports (``warnings.filterwarnings("ignore")``, ``pd.set_option(...)``, ``%matplotlib
    inline``): copying it into every step changes nothing but what each step can use."""
    if any(classify(tag).role in PLACEMENT_ROLES for tag in cell.tags):
        return False
    try:
        body = ast.parse(python(cell.source)).body
    except SyntaxError:
        return False
    imported = {"get_ipython"}
    for stmt in body:
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            imported |= {(a.asname or a.name).split(".")[0] for a in stmt.names}
        elif isinstance(stmt, ast.Expr | ast.Assign) and _configures(stmt, imported):
            continue
        else:
            return False
    return True


def _configures(stmt: ast.Expr | ast.Assign, imported: set[str]) -> bool:
    """A call or an attribute assignment touching only imported modules and constants."""
    if isinstance(stmt, ast.Assign) and not all(isinstance(t, ast.Attribute) for t in stmt.targets):
        return False
    names = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name)}
    return bool(names) and names <= imported
