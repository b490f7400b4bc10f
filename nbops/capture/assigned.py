"""What a cell that raised had assigned: only that may be recorded as its params and metrics.

A name the cell's source binds may still hold an earlier cell's value when the cell raised
before reaching it (``accuracy`` from the previous run): recording it would pass a stale score
off as this run's. Where it raised is read from the traceback (the frame running the cell's
code, by file name); the top-level statements that ended before that line ran, those after it
did not. In the statement that raised, and when the line is unknown, a name counts as assigned
only if it now holds another object than before the cell.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

from nbops.capture.scan import CellScan


def failing_line(error: BaseException, filename: str, first_line: int = 1) -> int | None:
    """The line of the cell's code (1-based, counted from ``first_line`` of ``filename``) at
    which ``error`` left it: the outermost traceback entry in ``filename`` (a function the cell
    defines and calls raises inside it; the cell's own frame is at the call)."""
    tb: TracebackType | None = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            return tb.tb_lineno - first_line + 1
        tb = tb.tb_next
    return None


def assigned_names(
    scan: CellScan,
    ns: Mapping[str, Any],
    before_ids: Mapping[str, int],
    line: int | None,
) -> set[str]:
    """Names the cell bound before it raised at ``line`` (None: not known)."""
    rebound = {n for n in scan.stored if n in ns and before_ids.get(n) != id(ns[n])}
    if line is None:
        return rebound
    done: set[str] = set()
    for statement in scan.statements:
        if statement.end < line:
            done |= statement.binds
        elif statement.start <= line:
            done |= statement.binds & rebound
    return done & set(ns)
