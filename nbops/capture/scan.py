"""Static reading of a cell: what it assigns, reads, fits and which files it names.

Only the AST is used here (no execution, no namespace), so the scan is cheap (well under a
millisecond for a typical cell) and can run before the cell does. What the names hold at run
time is looked at by :mod:`nbops.capture.namespace`.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from nbops.capture.vocab import FIT_METHODS, looks_like_path

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


@dataclass(frozen=True)
class Call:
    """A call in the cell: ``callee`` is dotted (``metrics.f1_score``), ``keywords`` its kwargs,
    ``args`` the plain names passed to it (positionally or by keyword)."""

    callee: str
    keywords: frozenset[str]
    line: int
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Statement:
    """A top-level statement: its lines and the names it binds (which of them a cell that
    raised had bound is decided by where it raised)."""

    start: int
    end: int
    binds: frozenset[str]


@dataclass
class CellScan:
    """What the cell's source says, before it runs."""

    literals: dict[str, Any] = field(default_factory=dict)  # top-level `name = <literal>`
    stored: set[str] = field(default_factory=set)  # names the cell binds at top level
    free: set[str] = field(default_factory=set)  # names read before the cell binds them
    loaded: set[str] = field(default_factory=set)  # every name read
    assigned_calls: dict[str, str] = field(default_factory=dict)  # name -> callee of its value
    fits: dict[str, list[str | None]] = field(default_factory=dict)  # var -> arg names of .fit()
    calls: list[Call] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)  # string literals that look like paths
    # var -> {keyword: the name passed (None: an expression)} of ``var = Estimator(kw=...)``
    # and ``var.set_params(kw=...)``: the settings the cell gave by name
    named_settings: dict[str, dict[str, str | None]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # name -> the path it was read from
    statements: list[Statement] = field(default_factory=list)
    syntax_error: str | None = None


def scan_cell(code: str) -> CellScan:
    """Scan ``code`` (already transformed from IPython syntax to Python)."""
    result = CellScan()
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        result.syntax_error = f"{exc.msg} (line {exc.lineno})"
        return result
    for stmt in tree.body:
        reads, binds = _names(stmt)
        result.free |= reads - result.stored
        result.loaded |= reads
        result.stored |= binds
        _literal_assignments(stmt, result.literals)
        _assigned_call(stmt, result.assigned_calls)
        _chained_fit(stmt, result.fits)
        _settings_and_source(stmt, result)
        end = getattr(stmt, "end_lineno", None) or stmt.lineno
        result.statements.append(Statement(stmt.lineno, end, frozenset(binds)))
    strings = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            _record_call(node, result)
        elif _is_path_literal(node):
            assert isinstance(node, ast.Constant)  # a string, as _is_path_literal checks
            strings.append((node.lineno, node.col_offset, str(node.value)))
    result.calls.sort(key=lambda call: call.line)
    result.paths = list(dict.fromkeys(text for *_, text in sorted(strings)))
    return result


def _is_path_literal(node: ast.AST) -> bool:
    is_text = isinstance(node, ast.Constant) and isinstance(node.value, str)
    return is_text and looks_like_path(node.value)  # type: ignore[attr-defined]


def _names(stmt: ast.stmt) -> tuple[set[str], set[str]]:
    """Names a top-level statement reads and binds (not descending into nested scopes' binds)."""
    reads: set[str] = set()
    binds: set[str] = set()
    stack: list[ast.AST] = [stmt]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Name):
            (reads if isinstance(node.ctx, ast.Load) else binds).add(node.id)
        elif isinstance(node, _SCOPES):
            if not isinstance(node, ast.Lambda):
                binds.add(node.name)
            names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            reads |= names - parameter_names(node)
            continue
        elif isinstance(node, ast.Import | ast.ImportFrom):
            binds |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name != "*"}
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            reads.add(node.target.id)
        stack.extend(ast.iter_child_nodes(node))
    return reads, binds


def parameter_names(node: ast.AST) -> set[str]:
    """The names a function (or lambda) binds as its parameters: they shadow outer names."""
    args = getattr(node, "args", None)
    if not isinstance(args, ast.arguments):
        return set()
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    return {a.arg for a in every if a is not None}


def _literal_assignments(stmt: ast.stmt, out: dict[str, Any]) -> None:
    if isinstance(stmt, ast.Assign):
        targets, value = stmt.targets, stmt.value
    elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
        targets, value = [stmt.target], stmt.value
    else:
        return
    for target in targets:
        if isinstance(target, ast.Name):
            ok, literal = _literal(value)
            if ok:
                out[target.id] = literal
        elif _same_length_sequences(target, value):
            for elt, val in zip(target.elts, value.elts, strict=True):  # type: ignore[attr-defined]
                ok, literal = _literal(val)
                if ok and isinstance(elt, ast.Name):
                    out[elt.id] = literal


def _same_length_sequences(target: ast.expr, value: ast.expr) -> bool:
    sequences = ast.Tuple | ast.List
    if not (isinstance(target, sequences) and isinstance(value, sequences)):
        return False
    return len(target.elts) == len(value.elts)


def _literal(node: ast.expr) -> tuple[bool, Any]:
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None
    return (True, value) if _plain(value) else (False, None)


def _plain(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(_plain(k) and _plain(v) for k, v in value.items())
    return False


def _assigned_call(stmt: ast.stmt, out: dict[str, str]) -> None:
    value = getattr(stmt, "value", None)
    if not isinstance(stmt, ast.Assign | ast.AnnAssign) or not isinstance(value, ast.Call):
        return
    callee = dotted(value.func)
    if not callee:
        return
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
    for target in targets:
        if isinstance(target, ast.Name):
            out[target.id] = callee


def _chained_fit(stmt: ast.stmt, fits: dict[str, list[str | None]]) -> None:
    """``model = Ridge(alpha=1).fit(X, y)``: ``model`` is fitted on ``X``."""
    if not (isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Call)):
        return
    func = stmt.value.func
    if isinstance(func, ast.Attribute) and func.attr in FIT_METHODS:
        args = [a.id if isinstance(a, ast.Name) else None for a in stmt.value.args]
        for target in stmt.targets:
            if isinstance(target, ast.Name):
                fits.setdefault(target.id, args)


def _settings_and_source(stmt: ast.stmt, result: CellScan) -> None:
    """``model = RandomForestClassifier(max_depth=depth)`` (or ``...(...).fit(X, y)``) and
    ``model.set_params(max_depth=depth)``: the settings given by name, and the name each one
    came from; ``df = pd.read_csv("data/wine.csv")``: the path ``df`` was read from."""
    value = getattr(stmt, "value", None)
    if isinstance(stmt, ast.Expr) and isinstance(value, ast.Call):
        func = value.func
        if isinstance(func, ast.Attribute) and func.attr == "set_params":
            owner = func.value
            if isinstance(owner, ast.Name):
                result.named_settings.setdefault(owner.id, {}).update(_keyword_names(value))
        return
    if not isinstance(stmt, ast.Assign | ast.AnnAssign) or not isinstance(value, ast.Call):
        return
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
    names = [t.id for t in targets if isinstance(t, ast.Name)]
    call = value
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr in FIT_METHODS:
        inner = func.value
        if isinstance(inner, ast.Call):
            call = inner
    path = _path_argument(value, result.literals)
    for name in names:
        result.named_settings.setdefault(name, {}).update(_keyword_names(call))
        if path:
            result.sources[name] = path


def _keyword_names(call: ast.Call) -> dict[str, str | None]:
    return {
        k.arg: k.value.id if isinstance(k.value, ast.Name) else None for k in call.keywords if k.arg
    }


def _path_argument(call: ast.Call, literals: dict[str, Any]) -> str:
    """The first argument of ``call`` that is a path: a literal, or a name bound to one."""
    for arg in [*call.args, *(k.value for k in call.keywords)]:
        if _is_path_literal(arg):
            return arg.value  # type: ignore[attr-defined]
        if isinstance(arg, ast.Name):
            text = literals.get(arg.id)
            if isinstance(text, str) and looks_like_path(text):
                return text
    return ""


def _record_call(node: ast.Call, result: CellScan) -> None:
    callee = dotted(node.func)
    if not callee:
        return
    keywords = frozenset(k.arg for k in node.keywords if k.arg)
    passed = [*node.args, *(k.value for k in node.keywords)]
    args = tuple(a.id for a in passed if isinstance(a, ast.Name))
    result.calls.append(Call(callee, keywords, getattr(node, "lineno", 0), args))
    owner, _, method = callee.rpartition(".")
    if method in FIT_METHODS and owner and "." not in owner:
        fit_args = [a.id if isinstance(a, ast.Name) else None for a in node.args]
        result.fits.setdefault(owner, fit_args)


def dotted(node: ast.AST) -> str:
    """``a.b.c`` for a chain of attribute accesses on a name; "" otherwise."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return ""
    parts.append(node.id)
    return ".".join(reversed(parts))
