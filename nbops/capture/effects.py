"""What a cell's code reads and binds, read from its syntax tree (no execution): the facts the
state log (:mod:`nbops.capture.state`) records for each execution.

Statement by statement, as :mod:`nbops.capture.scan` reads a cell: the names read before the
cell binds them, the names it binds, those it changes in place (``model.fit(...)``,
``df["x"] = ...``, ``inplace=True``) or deletes, what each bound name was computed from, and
whether the code may bind names it does not show (a magic, ``exec``, ``global``,
``import *``: then the log compares the namespace's objects before and after).
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass, field
from types import CodeType
from typing import Any

from nbops.capture.scan import _names
from nbops.capture.vocab import FIT_METHODS

# Methods that change their receiver in place (besides any call with inplace=True).
MUTATORS = FIT_METHODS | {
    "append",
    "extend",
    "insert",
    "update",
    "pop",
    "popitem",
    "remove",
    "clear",
    "sort",
    "reverse",
    "add",
    "discard",
    "setdefault",
    "set_params",
}
# Cell magics whose body is Python run in the namespace (the cell stands for its body).
_BODY_MAGICS = frozenset({"track", "time", "capture", "nbops_cache"})
SKIP = frozenset({"In", "Out", "exit", "quit", "get_ipython"})


def parse_cell(shell: Any, raw: str, code: str | None) -> ast.Module | None:
    """The cell as parsed Python; a cell magic that runs Python (``%%track``) stands for its
    body. None when it does not parse."""
    if code is None:
        try:
            code = shell.transform_cell(raw) if shell is not None else raw
        except Exception:
            return None
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    body = tree.body
    magic = ".run_cell_magic(" in code[:200]
    if magic and len(body) == 1 and isinstance(body[0], ast.Expr):
        call = body[0].value
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute):
            args = [a.value if isinstance(a, ast.Constant) else None for a in call.args]
            is_body = call.func.attr == "run_cell_magic" and len(args) == 3
            if is_body and args[0] in _BODY_MAGICS and isinstance(args[2], str):
                return parse_cell(shell, args[2], None)
    return tree


_NONE: frozenset[str] = frozenset()
# Calls that may bind names the cell's code does not show.
_OPAQUE_CALLS = frozenset(
    {"get_ipython", "exec", "eval", "globals", "vars", "setattr", "__import__"}
)


@dataclass
class Effects:
    """What a cell's top-level code reads and binds, and what each bound name was computed
    from (``deps``: the names read from outside the cell, through the cell's own variables)."""

    reads: frozenset[str] = _NONE
    assigns: frozenset[str] = _NONE
    changes: frozenset[str] = _NONE  # changed in place (model.fit, df["x"] = ...)
    deletes: frozenset[str] = _NONE
    opaque: bool = True  # it may bind names its code does not show
    deps: dict[str, frozenset[str]] = field(default_factory=dict)


def effects(tree: ast.Module | None) -> Effects:
    """The effects of a cell's code, statement by statement (as nbops.capture.scan reads a
    cell: names read before the cell binds them are its reads)."""
    if tree is None:
        return Effects()
    reads: set[str] = set()
    stored: set[str] = set()
    changes: set[str] = set()
    deletes: set[str] = set()
    deps: dict[str, set[str]] = {}
    opaque = False
    for stmt in tree.body:
        read, bound = _names(stmt)
        reads |= read - stored
        outside = set().union(*(deps.get(n, {n}) if n in stored else {n} for n in read))
        changed, deleted, hidden = _statement_changes(stmt)
        opaque = opaque or hidden
        for name in bound:
            deps[name] = set(outside)
        for name in changed:
            deps.setdefault(name, {name}).update(outside)
        stored |= bound
        changes |= changed
        deletes |= deleted
    return Effects(
        frozenset(reads - SKIP),
        frozenset(stored),
        frozenset(changes - stored),
        frozenset(deletes),
        opaque,
        {name: frozenset(d - SKIP) for name, d in deps.items()},
    )


def _statement_changes(stmt: ast.stmt) -> tuple[set[str], set[str], bool]:
    """(names changed in place, names deleted, whether it may bind names it does not show)."""
    changes: set[str] = set()
    deletes: set[str] = set()
    opaque = False
    for node in ast.walk(stmt):
        opaque = opaque or _is_opaque(node)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            receiver = node.func.value
            inplace = any(k.arg == "inplace" for k in node.keywords)
            if isinstance(receiver, ast.Name) and (node.func.attr in MUTATORS or inplace):
                changes.add(receiver.id)
        elif isinstance(node, ast.Attribute | ast.Subscript) and not isinstance(node.ctx, ast.Load):
            base = node.value
            while isinstance(base, ast.Attribute | ast.Subscript):
                base = base.value
            if isinstance(base, ast.Name):
                changes.add(base.id)
        elif isinstance(node, ast.Delete):
            deletes |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return changes, deletes, opaque


def _is_opaque(node: ast.AST) -> bool:
    """A statement or call that may bind names the code does not show."""
    if isinstance(node, ast.Global):
        return True
    if isinstance(node, ast.ImportFrom):
        return any(alias.name == "*" for alias in node.names)
    if isinstance(node, ast.Call):
        func = node.func
        while isinstance(func, ast.Attribute | ast.Call):  # get_ipython().run_line_magic(...)
            func = func.value if isinstance(func, ast.Attribute) else func.func
        return isinstance(func, ast.Name) and func.id in _OPAQUE_CALLS
    return False


@functools.lru_cache(maxsize=1024)
def stores_globals(code: CodeType) -> bool:
    """Whether a function (or code nested in it) assigns a global (``global x; x = ...``)."""
    import dis

    if any(i.opname in ("STORE_GLOBAL", "DELETE_GLOBAL") for i in dis.get_instructions(code)):
        return True
    return any(isinstance(c, CodeType) and stores_globals(c) for c in code.co_consts)
