"""Grouping a notebook's cells into the parameters, setup, steps and skipped cells (the rules
are :mod:`nbops.notebook.parse`'s docstring; the tag vocabulary :mod:`nbops.notebook.tags`)."""

from __future__ import annotations

import ast
import re
from typing import Any

from nbops.errors import NotebookError
from nbops.notebook.parameters import parse_parameters
from nbops.notebook.plan import Cell, Plan, Step, cell_error
from nbops.notebook.tags import (
    MAX_NAME_LENGTH,
    PLACEMENT_ROLES,
    TagMatch,
    classify,
    ignored_reason,
    is_step_name,
    slugify,
)

__all__ = ["IMPLICIT_STEP", "Splitter", "defines_only", "numbers"]

IMPLICIT_STEP = "prepare"
_H2 = re.compile(r"^##[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
# tags that say something about the cell's step (the gate's are read by notebook/evaluation.py
# and the data tag by notebook/dataflow.py)
_MODIFIERS = ("prev", "metrics", "gate", "gate_model", "gate_metric", "data")
_NAME_RULE = (
    f"use lower-case letters, digits and _, starting with a letter, at most {MAX_NAME_LENGTH} "
    "characters"
)


def numbers(numbers: list[int]) -> str:
    return ", ".join(str(n) for n in numbers)


class Splitter:
    """Walks the cells in order and assigns each to the parameters, setup, a step or skip."""

    def __init__(self, plan: Plan, headings: bool) -> None:
        self.plan = plan
        self.headings = headings
        self.current: Step | None = None
        self.implicit: Step | None = None
        self.implicit_cells: list[int] = []
        self.sticky: str | None = None  # the Kale block untagged cells join, if any
        self.pending: list[Cell] = []  # markdown waiting for the next step's code
        self.starts: dict[str, Cell] = {}  # step name -> the cell that named it
        self.ignored: dict[str, list[int]] = {}  # tag -> cell numbers, for notes
        self.auto_setup: list[int] = []  # untagged import/def cells before the first step

    def _before_steps(self) -> bool:
        return self.current is None or self.current is self.implicit

    def _fail(self, cell: Cell, problem: str, fix: str, **fields: Any) -> NotebookError:
        return cell_error(self.plan.notebook, cell, problem, fix, **fields)

    def add(self, cell: Cell) -> None:
        matches = [classify(tag) for tag in cell.tags]
        placement = self._placement(cell, matches)
        if cell.kind != "code":
            self._add_text(cell, placement, matches)
            return
        role: str | None = placement.role if placement else None
        if role is None and self.sticky and not any(m.role in _MODIFIERS for m in matches):
            role = self.sticky
        if placement is not None and role != "skip":  # Kale: skip does not end a block
            self.sticky = role if placement.rule and placement.rule.sticky else None
        if role == "skip":
            self.plan.skipped.extend([*self.pending, cell])
            self.pending.clear()
        elif role == "parameters":
            self._set_parameters(cell)
        elif role == "setup" or (role is None and self._before_steps() and defines_only(cell)):
            self.auto_setup += [] if role else [cell.index + 1]
            self.plan.setup.append(cell)
        elif role == "metrics_print":
            self.plan.metrics_cells.append(cell)
        else:
            start = role == "step"  # a step: tag is the cell's placement
            step = self._start(cell, placement) if start else self._open_step(cell)  # type: ignore[arg-type]
            self._join(step, cell, matches)

    def _placement(self, cell: Cell, matches: list[TagMatch]) -> TagMatch | None:
        """The one tag that decides where the cell goes (None: untagged); notes the rest."""
        placing = [m for m in matches if m.role in PLACEMENT_ROLES]
        if len(placing) > 1:
            tags = ", ".join(repr(m.tag) for m in placing)
            problem = f"the cell has conflicting tags {tags}"
            raise self._fail(cell, problem, "keep one of them (split the cell if it does both)")
        placement = placing[0] if placing else None
        setup_data = placement is not None and placement.role == "setup"  # setup may read files
        modifiers = [
            m for m in matches if m.role in _MODIFIERS and not (setup_data and m.role == "data")
        ]
        if modifiers and placement and placement.role not in ("step", "skip"):
            tag = modifiers[0].tag
            problem = f"{tag!r} belongs on a step's cell, not with {placement.tag!r}"
            raise self._fail(cell, problem, f"remove {tag!r}, or move the code into a step")
        for match in matches:
            if match.role in ("resource", "unknown"):
                self.ignored.setdefault(match.tag, []).append(cell.index + 1)
        if cell.kind != "code" and placement and placement.role not in ("step", "skip"):
            self.ignored.setdefault(placement.tag, []).append(cell.index + 1)
            return None
        return placement

    def _add_text(self, cell: Cell, placement: TagMatch | None, matches: list[TagMatch]) -> None:
        if placement is not None and placement.role == "skip":
            self.plan.skipped.append(cell)
        elif placement is not None:
            self._join(self._start(cell, placement), cell, matches)
        elif self.headings and (heading := _H2.search(cell.source)):
            name = slugify(heading.group(1)) or f"step_{len(self.plan.steps) + 1}"
            self._join(self._new_step(name, cell), cell, [])
        elif self.headings and self.current is not None:
            self.current.cells.append(cell)
        else:
            self.pending.append(cell)

    def _start(self, cell: Cell, match: TagMatch) -> Step:
        name = match.arg.lower()
        if not is_step_name(name):
            problem = f"step name {match.arg!r} (tag {match.tag!r}) is not a plain name"
            fix = f"{_NAME_RULE}, e.g. step:{slugify(match.arg) or 'load_data'}"
            raise self._fail(cell, problem, fix, tag=match.tag)
        return self._new_step(name, cell)

    def _new_step(self, name: str, cell: Cell) -> Step:
        if name in self.starts:
            problem = f"step {name!r} is already started by {self.starts[name].where}"
            fix = "give each step its own name (rename the step: tag or the ## heading)"
            raise self._fail(cell, problem, fix, step=name)
        step = Step(name=name, cells=list(self.pending))
        self.pending.clear()
        self.starts[name] = cell
        self.plan.steps.append(step)
        self.current = step
        return step

    def _open_step(self, cell: Cell) -> Step:
        """The step an untagged cell joins; before any step, the implicit first step."""
        if self.current is None:
            self.implicit = Step(name="")
            self.plan.steps.append(self.implicit)
            self.current = self.implicit
        if self.current is self.implicit:
            self.implicit_cells.append(cell.index + 1)
        self.current.cells.extend(self.pending)
        self.pending.clear()
        return self.current

    def _join(self, step: Step, cell: Cell, matches: list[TagMatch]) -> None:
        step.cells.append(cell)
        for match in matches:
            if match.role == "prev":
                self._add_prev(step, cell, match)
            elif match.role == "resource" and match.tag not in step.ignored_tags:
                step.ignored_tags.append(match.tag)

    def _add_prev(self, step: Step, cell: Cell, match: TagMatch) -> None:
        name = match.arg.lower()
        if not is_step_name(name):
            raise self._fail(cell, f"{match.tag!r} does not name a step", _NAME_RULE, tag=match.tag)
        if name not in step.explicit_upstream:
            step.explicit_upstream.append(name)

    def _set_parameters(self, cell: Cell) -> None:
        first = self.plan.parameters_cell
        if first is not None:
            problem = f"a second parameters cell ({first.where} is the first)"
            raise self._fail(cell, problem, "merge the parameters into the first cell")
        self.plan.parameters_cell = cell
        self.plan.parameters = parse_parameters(self.plan.notebook, cell)

    def finish(self) -> None:
        """Place trailing markdown, drop empty heading sections, name the implicit step."""
        if self.pending and self.plan.steps:
            self.plan.steps[-1].cells.extend(self.pending)
        self._merge_empty_steps()
        self._name_implicit()
        if not self.plan.steps:
            raise NotebookError(
                f"{self.plan.notebook}: no code to run (every code cell is parameters, setup "
                "or skip)",
                fix="tag the cells that do the work with step:NAME",
                path=self.plan.notebook,
            )
        if self.auto_setup:
            self.plan.notes.append(
                f"cell(s) {numbers(self.auto_setup)} only import or define things and come "
                "before the first step: they are setup, copied into every step"
            )
        for tag, cells in self.ignored.items():
            self.plan.notes.append(
                f"ignored tag {tag!r} on cell(s) {numbers(cells)} ({ignored_reason(tag)})"
            )

    def _merge_empty_steps(self) -> None:
        """Heading sections without code (conclusions, plots tagged skip) join a neighbour."""
        kept: list[Step] = []
        carry: list[Cell] = []
        for step in self.plan.steps:
            if any(c.kind == "code" for c in step.cells):
                step.cells[:0] = carry
                carry = []
                kept.append(step)
            else:
                (kept[-1].cells if kept else carry).extend(step.cells)
                if not self.headings:
                    self.plan.notes.append(
                        f"step {step.name!r} has no code; its cells join the step next to it"
                    )
        self.plan.steps = kept
        if self.headings:
            names = ", ".join(s.name for s in kept if s is not self.implicit)
            self.plan.notes.append(f"split at ## headings into steps: {names or '(none)'}")

    def _name_implicit(self) -> None:
        if self.implicit is None or self.implicit not in self.plan.steps:
            return
        cells = numbers(self.implicit_cells)
        if len(self.plan.steps) == 1:
            self.implicit.name = self.plan.name[:MAX_NAME_LENGTH]
            self.plan.notes.append(
                f"no step:NAME tags: the whole notebook is one step, {self.implicit.name!r} "
                "(tag cells with step:NAME, or split at ## headings, to get several)"
            )
            return
        name, n = IMPLICIT_STEP, 1
        while name in self.starts:
            n += 1
            name = f"{IMPLICIT_STEP}_{n}"
        self.implicit.name = name
        self.plan.notes.append(
            f"cell(s) {cells} come before the first step and form a step named {name!r}"
        )


def defines_only(cell: Cell) -> bool:
    """Imports, defs and classes only: what Kale's ``imports``/``functions`` tags mark."""
    try:
        body = ast.parse(cell.source).body
    except SyntaxError:
        return False
    kinds = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return bool(body) and all(isinstance(stmt, kinds) for stmt in body)
