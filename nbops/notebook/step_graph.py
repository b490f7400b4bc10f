"""The steps as a graph: each step's upstream (the producers of what it loads, and its
``prev:`` tags), refused when they wait for each other in a cycle, and a run order in which
each step runs after its upstream. Stdlib only."""

from __future__ import annotations

from itertools import pairwise

from nbops.notebook.plan import Cell, Plan, Step, cell_error
from nbops.notebook.tags import classify

__all__ = ["link_upstream"]


def link_upstream(plan: Plan) -> None:
    """Upstream = producers of the inputs + prev: tags; refuse cycles, keep a run order."""
    order = {step.name: i for i, step in enumerate(plan.steps)}
    for step in plan.steps:
        for name in step.explicit_upstream:
            if name not in order:
                fix = f"use one of: {', '.join(order)}"
                cell = _prev_cell(step, name)
                raise cell_error(plan.notebook, cell, f"prev:{name} names no step", fix)
        wanted = {a.producer for a in step.inputs} | set(step.explicit_upstream)
        step.upstream = sorted(wanted, key=order.__getitem__)
    cycle = _find_cycle(plan)
    if cycle:
        # inferred edges always point back in the notebook; a forward prev: closes the cycle
        forward = [(a, b) for a, b in pairwise(cycle) if order[b] > order[a]] or [
            (cycle[0], cycle[1])
        ]
        needer, needed = forward[0]
        shown = " -> ".join(reversed(cycle))
        raise cell_error(
            plan.notebook,
            _prev_cell(plan.step(needer), needed),
            f"steps wait for each other in a cycle: {shown}",
            f"remove the prev:{needed} tag from step {needer!r}",
            cycle=shown,
        )
    _run_order(plan, order)


def _prev_cell(step: Step, name: str) -> Cell:
    """The cell carrying ``prev:name`` (for error messages), else the step's first code cell."""
    for cell in step.cells:
        if any(classify(t).role == "prev" and classify(t).arg.lower() == name for t in cell.tags):
            return cell
    return next(c for c in step.cells if c.kind == "code")


def _find_cycle(plan: Plan) -> list[str]:
    """A dependency cycle as [a, b, ..., a] (a needs b needs ... needs a), or []."""
    needs = {step.name: step.upstream for step in plan.steps}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> list[str]:
        state[name] = 1
        path.append(name)
        for dep in needs[name]:
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state and (found := visit(dep)):
                return found
        state[name] = 2
        path.pop()
        return []

    for name in needs:
        if name not in state and (found := visit(name)):
            return found
    return []


def _run_order(plan: Plan, order: dict[str, int]) -> None:
    """A prev: tag may point forward; then reorder the steps so each runs after its upstream."""
    if all(order[up] < order[s.name] for s in plan.steps for up in s.upstream):
        return
    done: list[Step] = []
    remaining = list(plan.steps)
    while remaining:
        names = {d.name for d in done}
        ready = next(s for s in remaining if all(up in names for up in s.upstream))
        done.append(ready)
        remaining.remove(ready)
    plan.steps = done
    plan.notes.append("prev: tags reorder the steps: " + " -> ".join(s.name for s in done))
