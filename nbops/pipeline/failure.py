"""Where a step failed, told in the user's terms: the source notebook's cell number and first
line (promote records them in each step cell's metadata), the user's own lines from the
traceback (IPython's ``Cell In[N], line L`` frames; library frames are left to the report),
then the fix.

papermill's exception carries the traceback; the executed report maps IPython's execution
counts back to cells, so a frame in a setup cell's function is named too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbops.errors import NbopsError
from nbops.pipeline_folder import SOURCE_KEY

TRACEBACK_LINES = 8  # shown when the traceback has no frame of the user's cells
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_FRAME = re.compile(r"^Cell In\[(\d+)\], line (\d+)(?:, in (.+))?$")
_ARROW = re.compile(r"^-*>\s*(\d+)\s?(.*)$")


@dataclass
class Frame:
    """One frame of the traceback in a notebook cell."""

    count: int  # IPython's execution count (In[N])
    line: int
    function: str
    code: str


def user_frames(traceback: list[str]) -> list[Frame]:
    """The traceback's frames in notebook cells, outermost first."""
    frames = []
    for chunk in traceback or []:
        lines = _ANSI.sub("", str(chunk)).splitlines()
        head = _FRAME.match(lines[0].strip()) if lines else None
        if head is None:
            continue
        code = next((m.group(2) for ln in lines[1:] if (m := _ARROW.match(ln.strip()))), "")
        frames.append(Frame(int(head.group(1)), int(head.group(2)), head.group(3) or "", code))
    return frames


def describe(
    name: str, nb: dict[str, Any], exc: Any, report: str, executed: Path | None = None
) -> NbopsError:
    """The error for step ``name`` from papermill's PapermillExecutionError ``exc``."""
    by_count = _cells_by_count(executed)
    cell, number = _failing_cell(nb, exc, by_count)
    source = ((nb.get("metadata") or {}).get(SOURCE_KEY) or {}).get("source") or ""
    origin = _origin(cell)
    first = next((ln.strip() for ln in str(exc.source).splitlines() if ln.strip()), "")
    if origin:
        where = f"cell {origin['cell']} of {source or 'the source notebook'}"
    else:
        where = f"cell {number}" if number else f"cell [{exc.exec_count}]"
        tags = ((cell or {}).get("metadata") or {}).get("tags") or []
        where += f" [{', '.join(tags)}]" if tags else ""
    evalue = str(exc.evalue).strip().splitlines()[0][:300] if str(exc.evalue).strip() else ""
    message = f"step {name!r} failed in {where} ({first[:60]!r}): {exc.ename}: {evalue}"
    shown = _shown_frames(exc, by_count) or _tail(exc)
    where_fix = f"the source notebook ({source})" if source else "the source notebook"
    return NbopsError(
        f"{message}\n{shown}" if shown else message,
        fix=f"see {report}; fix the cause in {where_fix} then `nbops promote`, or in "
        "params.yaml; `nbops run` then resumes from this step",
        step=name,
        cell=origin["cell"] if origin else number,
        report=report,
    )


def _shown_frames(exc: Any, by_count: dict[int, dict[str, Any]]) -> str:
    lines = []
    for frame in user_frames(getattr(exc, "traceback", None) or []):
        origin = _origin(by_count.get(frame.count))
        if origin:
            label = f"cell {origin['cell']}, line {frame.line + int(origin.get('line_offset', 0))}"
        else:
            label = f"In[{frame.count}], line {frame.line}"
        if frame.function:
            label += f", in {frame.function.split('(')[0]}"
        lines.append(f"    {label}: {frame.code.strip()}")
    return "\n".join(lines)


def _tail(exc: Any) -> str:
    lines = _ANSI.sub("", "\n".join(getattr(exc, "traceback", None) or [])).splitlines()
    return "\n".join(f"    {ln}" for ln in lines[-TRACEBACK_LINES:] if ln.strip())


def _origin(cell: dict[str, Any] | None) -> dict[str, Any]:
    origin = ((cell or {}).get("metadata") or {}).get(SOURCE_KEY)
    return origin if isinstance(origin, dict) and isinstance(origin.get("cell"), int) else {}


def _failing_cell(
    nb: dict[str, Any], exc: Any, by_count: dict[int, dict[str, Any]]
) -> tuple[dict[str, Any] | None, int | None]:
    """The failing cell of the step notebook and its number there (1-based)."""
    cells = nb.get("cells", [])
    executed = by_count.get(getattr(exc, "exec_count", None) or -1)
    for number, cell in enumerate(cells, start=1):
        if cell.get("cell_type") != "code":
            continue
        same_id = executed is not None and cell.get("id") and cell.get("id") == executed.get("id")
        if same_id or _source(cell) == exc.source:
            return cell, number
    return executed, None


def _cells_by_count(executed: Path | None) -> dict[int, dict[str, Any]]:
    """The executed report's code cells by execution count (papermill keeps the counts)."""
    if executed is None:
        return {}
    try:
        nb = json.loads(executed.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {
        cell["execution_count"]: cell
        for cell in nb.get("cells", [])
        if cell.get("cell_type") == "code" and isinstance(cell.get("execution_count"), int)
    }


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)
