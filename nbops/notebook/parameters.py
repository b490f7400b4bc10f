"""The notebook's ``parameters`` cell: ``name = literal`` lines, checked to be what
``params.yaml`` can hold (papermill injects them into the step notebooks). Stdlib only."""

from __future__ import annotations

import ast
import keyword
import re
from typing import Any

from nbops.notebook.plan import Cell, cell_error

__all__ = ["parse_parameters", "statement_text"]

_PLAIN = (type(None), bool, int, float, str)
_LINES = re.compile(r"\r\n|\r|\n")
_PLAIN_HINT = "use None, a bool, number, string, list or dict (what params.yaml holds); "


def parse_parameters(notebook: str, cell: Cell) -> dict[str, Any]:
    """The parameters cell's values; anything but ``name = <literal>`` is a NotebookError.

    Papermill injects the values back as Python source and does not check the names, so names
    must be identifiers (not keywords) and values plain YAML-able literals.
    """
    fix = "move computed values out of the parameters cell (compute them in the first step)"
    try:
        tree = ast.parse(cell.source)
    except SyntaxError as exc:
        problem = f"line {exc.lineno} of the parameters cell is not Python ({exc.msg})"
        raise cell_error(notebook, cell, problem, fix) from None
    values: dict[str, Any] = {}
    for stmt in tree.body:
        target, value = _assignment(stmt)
        problem, hint, literal = _check_parameter(target, value)
        if problem or target is None:
            line = statement_text(cell.source, stmt)
            problem = problem.replace("{line}", line)
            raise cell_error(notebook, cell, problem, f"{hint}{fix}", line=line)
        if not _encodable(literal):
            problem = f"parameter {target!r} holds a lone surrogate (a \\ud800-style escape)"
            fix = (
                "write the character you meant (an emoji is one \\U0001F600-style escape, "
                "not two \\ud83d-style halves)"
            )
            line = statement_text(cell.source, stmt)
            raise cell_error(notebook, cell, problem, f"{fix}; no file can hold it", line=line)
        values[target] = literal
    return values


def statement_text(source: str, stmt: ast.stmt, limit: int = 120) -> str:
    """The statement's first line as written (cut at ``limit`` characters) for messages.

    Not ``ast.get_source_segment``: it splits lines one character at a time, which is
    quadratic in the length of a line (a 1 MB literal took 40 s).
    """
    lines = _LINES.split(source)  # where Python's tokenizer splits (not at U+2028, \f, ...)
    line = lines[stmt.lineno - 1] if 0 < stmt.lineno <= len(lines) else ast.unparse(stmt)
    line = line.strip()
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _check_parameter(target: str | None, value: ast.expr | None) -> tuple[str, str, Any]:
    """(problem, fix hint, value); the problem is "" for ``name = <plain literal>``; it may
    hold ``{line}``, filled in (only on failure) with the statement's text."""
    if target is None or value is None:
        return "`{line}` is not a literal assignment", "one `name = value` a line; ", None
    if not target.isidentifier() or keyword.iskeyword(target):
        return f"parameter name {target!r} is not a Python name", "rename it; ", None
    try:
        literal = ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return "`{line}` is not a literal value", "", None
    if not _plain(literal):
        return f"`{{line}}`: a {type(literal).__name__} cannot be a parameter", _PLAIN_HINT, None
    return "", "", literal


def _assignment(stmt: ast.stmt) -> tuple[str | None, ast.expr | None]:
    target: ast.expr
    value: ast.expr | None
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
        target, value = stmt.targets[0], stmt.value
    elif isinstance(stmt, ast.AnnAssign):
        target, value = stmt.target, stmt.value
    else:
        return None, None
    return (target.id, value) if isinstance(target, ast.Name) else (None, None)


def _encodable(value: Any) -> bool:
    """Whether every string in ``value`` can be written as UTF-8 (params.yaml, the steps)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, list):
        return all(_encodable(v) for v in value)
    if isinstance(value, dict):
        return all(_encodable(k) and _encodable(v) for k, v in value.items())
    return True


def _plain(value: Any) -> bool:
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False
