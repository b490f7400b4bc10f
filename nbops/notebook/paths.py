"""The files a cell reads, found the way Python would find them: path expressions constant-folded
(:mod:`nbops.notebook.folding`) over the constants of the cells run before it.

Every call argument (and method receiver) that folds to a path-like string is a candidate; the
outermost one counts (``os.path.join(DATA, "x.csv")`` is ``data/x.csv``, not also ``data/``).
Loops over literal collections are unrolled (``for name in ["a.csv", "b.csv"]``). Calls that
read data (``pd.read_csv``, ``open``, ``np.load``: :data:`READERS`) are also reported one by
one, resolved or not, so promote can say which read it could not follow instead of dropping
the data gate in silence.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from nbops.capture.scan import parameter_names
from nbops.capture.vocab import looks_like_path
from nbops.notebook.folding import (
    UNKNOWN,
    as_text,
    assign,
    bound_names,
    dotted,
    fold,
    loop_values,
)

# Calls whose first argument (or one of PATH_KEYWORDS) is a file the cell reads.
READERS: frozenset[str] = frozenset(
    {
        "read_csv",
        "read_table",
        "read_parquet",
        "read_excel",
        "read_json",
        "read_feather",
        "read_orc",
        "read_fwf",
        "read_pickle",
        "read_sas",
        "read_spss",
        "read_stata",
        "read_hdf",
        "read_xml",
        "loadtxt",
        "genfromtxt",
        "imread",
    }
)
QUALIFIED_READERS: frozenset[str] = frozenset({"open", "np.load", "numpy.load", "joblib.load"})
PATH_KEYWORDS = ("filepath_or_buffer", "path", "io", "fname", "file", "path_or_buf", "filename")
_IN_MEMORY = ("StringIO", "BytesIO")
_WRITE_MODES = ("w", "a", "x")
_LOOP_LIMIT = 50


@dataclass
class Read:
    """One data-reading call: what it reads when the path folds (``text``), else None."""

    call: str  # the call as written, shortened
    line: int
    text: str | None


@dataclass
class CellPaths:
    paths: list[str] = field(default_factory=list)  # path-like strings the cell uses
    reads: list[Read] = field(default_factory=list)


def cell_paths(tree: ast.Module, source: str, env: dict[str, Any]) -> CellPaths:
    """Paths and reads of one cell, given the constants before it; ``env`` is updated with
    what the cell binds (the next cell sees it)."""
    walker = _Walker(source)
    walker.block(tree.body, env)
    return CellPaths(list(dict.fromkeys(walker.paths)), walker.reads)


class _Walker:
    def __init__(self, source: str) -> None:
        self.source = source
        self.paths: list[str] = []
        self.reads: list[Read] = []
        self.handles: set[str] = set()  # names holding open files or buffers

    def block(self, body: list[ast.stmt], env: dict[str, Any]) -> None:
        for stmt in body:
            self.statement(stmt, env)

    def statement(self, stmt: ast.stmt, env: dict[str, Any]) -> None:
        if isinstance(stmt, ast.For | ast.AsyncFor):
            self.loop(stmt, env)
            return
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            inner = {k: v for k, v in env.items() if k not in parameter_names(stmt)}
            inner.update(_defaults(stmt.args, env))  # what a call without arguments reads
            self.block(stmt.body, inner)
            env.pop(stmt.name, None)
            return
        if isinstance(stmt, ast.With | ast.AsyncWith):
            for item in stmt.items:
                self.expression(item.context_expr, env)
                if isinstance(item.optional_vars, ast.Name):
                    self.handles.add(item.optional_vars.id)
                    env.pop(item.optional_vars.id, None)
            self.block(stmt.body, env)
            return
        bodies = [getattr(stmt, name, None) for name in ("body", "orelse", "finalbody")]
        nested = [b for b in bodies if isinstance(b, list) and b and isinstance(b[0], ast.stmt)]
        handlers = getattr(stmt, "handlers", None) or []
        if nested or handlers:
            for child in ast.iter_child_nodes(stmt):
                if isinstance(child, ast.expr):
                    self.expression(child, env)
            for body in nested:
                self.block(body, env)
            for handler in handlers:
                self.block(handler.body, env)
            return
        self.expression(stmt, env)
        self._note_handle(stmt)
        assign(stmt, env)

    def loop(self, stmt: ast.For | ast.AsyncFor, env: dict[str, Any]) -> None:
        self.expression(stmt.iter, env)
        values = loop_values(stmt, env) if isinstance(stmt, ast.For) else None
        bound = set(bound_names(stmt.target)) | {n for s in stmt.body for n in bound_names(s)}
        if values is None or len(values) > _LOOP_LIMIT:
            inner = {k: v for k, v in env.items() if k not in bound}
            self.block(stmt.body, inner)
        else:
            for value in values:
                inner = {k: v for k, v in env.items() if k not in bound}
                _bind_item(stmt.target, value, inner)
                self.block(stmt.body, inner)
        self.block(stmt.orelse, env)
        for name in bound:
            env.pop(name, None)

    def expression(self, node: ast.AST, env: dict[str, Any]) -> None:
        """Record path-like values of call arguments and receivers, outermost first."""
        if isinstance(node, ast.Call):
            self._reader(node, env)
            parts: list[ast.AST] = [*node.args, *(k.value for k in node.keywords)]
            if isinstance(node.func, ast.Attribute):
                parts.append(node.func.value)
            for part in parts:
                if not self._record(part, env):
                    self.expression(part, env)
            return
        if isinstance(node, ast.Lambda):
            return
        for child in ast.iter_child_nodes(node):
            self.expression(child, env)

    def _record(self, node: ast.AST, env: dict[str, Any]) -> bool:
        text = as_text(fold(node, env))
        if text is None or not (looks_like_path(text) or "://" in text):
            return False
        self.paths.append(text)
        return True

    def _reader(self, node: ast.Call, env: dict[str, Any]) -> None:
        callee = dotted(node.func)
        short = callee.rpartition(".")[2]
        if short not in READERS and callee not in QUALIFIED_READERS:
            return
        if callee == "open" and _writes(node, env):
            return
        target = node.args[0] if node.args else None
        for keyword in node.keywords:
            if target is None and keyword.arg in PATH_KEYWORDS:
                target = keyword.value
        if target is None or self._in_memory(target):
            return
        value = as_text(fold(target, env))
        call = ast.get_source_segment(self.source, node) or ast.unparse(node)
        call = " ".join(call.split())
        if len(call) > 70:
            call = call[:67] + "..."
        self.reads.append(Read(call, getattr(node, "lineno", 0), value))

    def _in_memory(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            return node.id in self.handles
        callee = dotted(node.func) if isinstance(node, ast.Call) else ""
        return callee.endswith(_IN_MEMORY) or callee == "open"

    def _note_handle(self, stmt: ast.stmt) -> None:
        """``f = open(...)`` / ``buf = io.StringIO(...)``: ``f`` is a file object, not a path."""
        if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Call):
            callee = dotted(stmt.value.func)
            if callee == "open" or callee.endswith(_IN_MEMORY):
                for target in stmt.targets:
                    if isinstance(target, ast.Name):
                        self.handles.add(target.id)


def _bind_item(target: ast.AST, value: Any, env: dict[str, Any]) -> None:
    if isinstance(target, ast.Name):
        env[target.id] = value
        return
    sequence = isinstance(target, ast.Tuple | ast.List) and isinstance(value, tuple | list)
    if sequence and len(value) == len(target.elts):  # type: ignore[attr-defined]
        for elt, item in zip(target.elts, value, strict=True):  # type: ignore[attr-defined]
            _bind_item(elt, item, env)


def _writes(node: ast.Call, env: dict[str, Any]) -> bool:
    mode: Any = node.args[1] if len(node.args) > 1 else None
    for keyword in node.keywords:
        if keyword.arg == "mode":
            mode = keyword.value
    text = fold(mode, env) if mode is not None else "r"
    return text is UNKNOWN or (isinstance(text, str) and any(m in text for m in _WRITE_MODES))


def _defaults(args: ast.arguments, env: dict[str, Any]) -> dict[str, Any]:
    """Parameters with a default that folds: ``def load(path=DATA_FILE)``."""
    positional = [*args.posonlyargs, *args.args]
    pairs = list(
        zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True)
    )
    pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d]
    folded = {a.arg: fold(d, env) for a, d in pairs}
    return {name: value for name, value in folded.items() if value is not UNKNOWN}
