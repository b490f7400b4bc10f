"""A run's description, from what the author already wrote: the cell's first comment line, or
the markdown heading of the section the cell is in.

MLflow shows the description (tag ``mlflow.note.content``) at the top of the run page and in
the runs table; a notebook already says what a cell is for, so nbops copies it. The comment
is read on the cell's thread (the source is at hand); the heading needs the notebook file and
is looked up on the writer thread, just before delivery (:func:`heading_above`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

MAX_LENGTH = 200
# Comments that are instructions to tools, not descriptions
_TOOL_COMMENT = re.compile(r"^(NBVAL_|noqa|type:|pragma|fmt:|pylint:|%%|In\[|!|-\*-)", re.I)
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(?P<text>\S.*?)\s*#*\s*$")


def first_comment(code: str) -> str:
    """The first comment line of ``code`` that says something ("" if none)."""
    for line in code.splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            continue
        text = stripped.lstrip("#").strip()
        if text and not _TOOL_COMMENT.match(text):
            return _clip(text)
    return ""


def heading_above(notebook: str | None, code: str) -> str:
    """The nearest markdown heading above the code cell of ``notebook`` whose source holds
    ``code`` ("" when the notebook is not a readable .ipynb or no cell matches: a notebook
    not saved since the cell was edited)."""
    if not notebook or not notebook.endswith(".ipynb") or not code.strip():
        return ""
    try:
        cells = json.loads(Path(notebook).read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError, AttributeError):
        return ""
    wanted = code.strip()
    heading = ""
    for cell in cells if isinstance(cells, list) else []:
        source = _source(cell)
        if cell.get("cell_type") == "markdown":
            heading = _last_heading(source) or heading
        elif cell.get("cell_type") == "code" and wanted in source:
            return _clip(heading)
    return ""


def _source(cell: object) -> str:
    source = cell.get("source", "") if isinstance(cell, dict) else ""
    return "".join(source) if isinstance(source, list) else str(source)


def _last_heading(markdown: str) -> str:
    found = ""
    for line in markdown.splitlines():
        match = _HEADING.match(line)
        if match:
            found = match["text"].strip("*_ ")
    return found


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_LENGTH else text[: MAX_LENGTH - 1] + "…"
