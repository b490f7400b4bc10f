"""What ``nbops run`` shows while DVC runs: one line per stage event, from DVC's output.

A stage's wall time is measured here (from DVC's "Running stage" to the next event); the share
that was the step's own cells comes from the step's own line (``nbops: step 'train' took 1.20 s,
its cells 0.31 s``, printed by ``nbops step`` warm or cold), so the progress line says how much
of a step was nbops, DVC and the kernel, and how much was the user's code.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from nbops.pipeline import dvc_project as dvcp

StepState = Literal["ran", "unchanged", "restored", "failed", "not run"]
Echo = Callable[[str], None]
WORD_MARK, ERROR_MARK = "nbops: ", "nbops: error:"  # a stage's word for the user; its error
_TIMING = re.compile(r"^nbops: step '(?P<name>.+)' took [\d.]+ s, its cells (?P<cells>[\d.]+) s")


@dataclass
class StepStatus:
    """What happened to one stage in this run; times are epoch seconds (None if not run)."""

    name: str
    state: StepState = "not run"
    start: float | None = None
    end: float | None = None
    cells: float | None = None  # seconds its notebook's cells took (steps only)
    output: list[str] = field(default_factory=list)  # the stage's own lines (nbops step's)

    @property
    def duration(self) -> float | None:
        return None if self.start is None or self.end is None else self.end - self.start


def follow(
    lines: Iterable[str],
    steps: list[StepStatus],
    tail: list[str],
    echo: Echo,
    on_event: Callable[[StepStatus], None] = lambda step: None,
) -> None:
    """Turn DVC's output into per-step states and one progress line per event; ``on_event``
    is called after each stage event (started, skipped, ended, failed)."""
    by_name = {s.name: s for s in steps}
    current: StepStatus | None = None
    for raw in lines:
        event = dvcp.parse_line(raw)
        if event.kind == "other":
            if current is not None and not event.line.startswith("> "):
                current.output.append(event.line)
                _timing(current, event.line)
            if _for_the_user(event.line):  # a stage ran cold, a run was not written...
                echo(f"  {event.line}")
            tail[:] = [*tail[-40:], event.line]
            continue
        step = by_name.get(event.stage)
        if step is None:  # a stage dvc.yaml did not list (foreach/matrix expansions)
            step = by_name[event.stage] = StepStatus(event.stage)
            steps.append(step)
        if event.kind == "failed":
            step.state, step.end = "failed", step.end or time.time()
            echo(f"  FAILED     {step.name}")
            current = None
            on_event(step)
            continue
        _close(current, echo, on_event)
        current = step if event.kind == "start" else None
        step.state = "ran" if event.kind == "start" else event.kind
        if event.kind == "start":
            step.start = time.time()
        echo(f"  {'running' if event.kind == 'start' else event.kind:<10} {step.name}")
        on_event(step)
    _close(current, echo, on_event)


def _for_the_user(line: str) -> bool:
    """A stage's own word for the user (a note, a warning), shown even when the stage
    succeeds; its timing goes into the progress line and its error into the failure."""
    return line.startswith(WORD_MARK) and not (_TIMING.match(line) or line.startswith(ERROR_MARK))


def _timing(step: StepStatus, line: str) -> None:
    match = _TIMING.match(line)
    if match:
        step.cells = float(match.group("cells"))


def _close(step: StepStatus | None, echo: Echo, on_end: Callable[[StepStatus], None]) -> None:
    """A running stage ends where DVC moves on to the next one (or exits)."""
    if step is None or step.end is not None:
        return
    step.end = time.time()
    cells = f", its cells {step.cells:.2f} s" if step.cells is not None else ""
    echo(f"  done       {step.name} ({step.duration:.2f} s{cells})")
    on_end(step)
