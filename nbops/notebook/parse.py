"""Reading a tagged notebook into a :class:`~nbops.notebook.plan.Plan`: cells grouped into steps.

Variables flowing between steps are :mod:`nbops.notebook.dataflow`'s job. nbformat is imported
inside :func:`parse_notebook` (about a second to import with jupyter_server installed). Rules
(the vocabulary is :mod:`nbops.notebook.tags`):

* a ``step:NAME`` cell starts a step; untagged cells join the step above them (below Kale's
  ``imports``/``functions``/``pipeline-metrics`` cells they join that block, as in Kale);
* untagged code cells before the first step form an implicit step named ``prepare``, except
  cells that only import or define functions/classes: those are setup;
* markdown cells travel with the next code cell's step; they are kept, never run;
* with no ``step:`` tags, ``split="headings"`` starts a step at each ``## Heading``, otherwise
  the whole notebook is one step named after the notebook.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

from nbops.errors import NotebookError, UsageError
from nbops.notebook.order import out_of_order_note
from nbops.notebook.plan import Cell, CellKind, Plan
from nbops.notebook.split import Splitter, numbers
from nbops.notebook.tags import (
    classify,
    slugify,
)

SPLITS = ("tags", "headings")
_TRACK_MAGIC = re.compile(r"%%track(\s.*)?")
_CACHED = re.compile(r"%%track\b[^\n]*--cache(?:=on)?(?![=\w])")  # not --cache=force
_LOAD_EXT = re.compile(r"%(re)?load_ext\s+nbops\s*")
_LINES = re.compile(r"\r\n|\r|\n")


def parse_notebook(path: str | Path, split: str = "tags") -> Plan:
    """Read ``path`` and group its cells into steps; dataflow is left empty.

    ``split`` applies only when no cell has a ``step:`` tag: ``"headings"`` splits at H2
    headings, ``"tags"`` keeps the whole notebook as one step.
    """
    if split not in SPLITS:
        raise UsageError(
            f"unknown split {split!r}", fix=f"use one of: {', '.join(SPLITS)}", split=split
        )
    path = Path(path)
    plan = Plan(name=slugify(path.stem) or "pipeline", notebook=_shown(path))
    nb = _read(path)
    cells = _cells(nb, plan)
    order = out_of_order_note(nb.cells)  # the pipeline runs top to bottom: say if it differs
    if order:
        plan.notes.append(order)
    tagged = any(classify(tag).role == "step" for cell in cells for tag in cell.tags)
    if split == "headings" and tagged:
        plan.notes.append("the notebook has step: tags, so they split it (not its headings)")
    splitter = Splitter(plan, headings=split == "headings" and not tagged)
    for cell in cells:
        splitter.add(cell)
    splitter.finish()
    return plan


def _shown(path: Path) -> str:
    """The path as the user will recognise it: relative to the working directory if inside."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def _read(path: Path) -> Any:
    """The notebook as an nbformat v4 node, or a NotebookError saying why it is not one."""
    shown = _shown(path)
    fix = "pass a Jupyter notebook (.ipynb) saved by Jupyter, or repair it with `git checkout`"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
            raise ValueError("no list of cells")
        from nbops._lazy import without_slow_optional_imports

        with without_slow_optional_imports():
            import nbformat  # lazy: ~1 s to import with jupyter_server installed

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return nbformat.reads(json.dumps(data), as_version=4)
    except FileNotFoundError:
        problem, fix = "no such notebook", "check the path (run from the project folder)"
    except json.JSONDecodeError as exc:
        problem = f"not a notebook (invalid JSON: {exc})"
    except Exception as exc:  # nbformat raises many kinds for malformed notebooks
        problem = f"not a notebook ({exc})"
    raise NotebookError(f"{shown}: {problem}", fix=fix, path=shown)


def _cells(nb: Any, plan: Plan) -> list[Cell]:
    """Cells as promote sees them: ``%%track`` lines and ``%load_ext nbops`` dropped."""
    cells: list[Cell] = []
    tracked: list[int] = []
    for index, node in enumerate(nb.cells):
        cell_type, source, tags = _parts(node, index, plan)
        offset, cached = 0, False
        if cell_type == "code":
            cached = _CACHED.match(source.lstrip()) is not None
            source, was_tracked, offset = _clean(source)
            if was_tracked:
                tracked.append(index + 1)
            if not source.strip() and not tags:
                continue
        kind: CellKind = (
            "code" if cell_type == "code" else "markdown" if cell_type == "markdown" else "raw"
        )
        cell = Cell(index=index, kind=kind, source=source, tags=tags, line_offset=offset)
        cell.cache = cached
        cells.append(cell)
    if tracked:
        plan.notes.append(
            f"removed %%track from cell(s) {numbers(tracked)}: the pipeline tracks each step"
        )
    return cells


def _parts(node: Any, index: int, plan: Plan) -> tuple[str, str, list[str]]:
    """A cell's (type, source, tags). nbformat only warns about a hand-edited cell that breaks
    its schema; a missing type, ``"tags": "step:x"`` or a non-text source is refused here
    rather than crashing later or being misread (a string of tags read letter by letter)."""
    metadata = node.get("metadata") if isinstance(node, dict) else None
    raw_tags = (metadata or {}).get("tags") if isinstance(metadata, dict | None) else None
    cell_type = node.get("cell_type") if isinstance(node, dict) else None
    source = node.get("source", "") if isinstance(node, dict) else None
    problem = ""
    if not isinstance(node, dict) or not isinstance(cell_type, str):
        problem = "it is not a cell (no cell_type)"
    elif not isinstance(metadata, dict | None) or not isinstance(raw_tags, list | None):
        problem = f"its metadata.tags is {raw_tags!r}, not a list of tags"
    elif not isinstance(source, str):
        problem = f"its source is {type(source).__name__}, not text"
    if not problem and isinstance(source, str) and (broken := _unencodable(source)):
        why, escape = broken
        raise NotebookError(
            f"{plan.notebook}, cell {index + 1}: {why}",
            fix=f"delete the character in Jupyter, or the {escape} escape in the notebook's JSON, "
            "then promote again",
            path=plan.notebook,
            cell=index + 1,
        )
    if problem:
        raise NotebookError(
            f"{plan.notebook}, cell {index + 1}: {problem}",
            fix="repair the cell in Jupyter (tags: View > Cell Toolbar > Tags), or in the JSON "
            'write "cell_type", "source" and "metadata": {"tags": ["step:NAME"]}',
            path=plan.notebook,
            cell=index + 1,
        )
    tags = list(dict.fromkeys(t for t in raw_tags or [] if isinstance(t, str)))
    assert isinstance(cell_type, str) and isinstance(source, str)  # else refused above
    return cell_type, source, tags


def _unencodable(source: str) -> tuple[str, str] | None:
    """Why the text cannot be written as UTF-8 (a lone surrogate from a broken ``\\ud800``
    escape in the JSON) and that escape as the JSON spells it; None when it can."""
    try:
        source.encode("utf-8")
    except UnicodeEncodeError as exc:
        line = source.count("\n", 0, exc.start) + 1
        char = source[exc.start]
        why = (
            f"line {line} of its source holds the lone surrogate {char!r}, which no file can "
            "hold (a broken escape in the notebook's JSON)"
        )
        return why, surrogate_escape(char)
    return None


def surrogate_escape(char: str) -> str:
    """How the notebook's JSON spells a lone surrogate (``\\ud83d``): what to search for."""
    return f"\\u{ord(char):04x}"


def _clean(source: str) -> tuple[str, bool, int]:
    """Strip a leading ``%%track`` line and drop ``%load_ext nbops`` lines; also returns how
    many lines went from the top (so errors can give the line number in the source cell)."""
    lines = source.split("\n")
    removed = 0
    while lines and not lines[0].strip():
        lines.pop(0)
        removed += 1
    tracked = bool(lines) and _TRACK_MAGIC.fullmatch(lines[0].rstrip()) is not None
    if tracked:
        lines.pop(0)
        removed += 1
    kept = [line for line in lines if not _LOAD_EXT.fullmatch(line.rstrip())]
    text = "\n".join(kept)
    removed += len(lines) - len(kept) if kept and _LOAD_EXT.fullmatch(lines[0].rstrip()) else 0
    removed += len(text) - len(text.lstrip("\n")) if text.strip() else 0
    return text.strip("\n"), tracked, removed
