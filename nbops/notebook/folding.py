"""Constant folding: the value an expression has when the notebook runs, when the source alone
decides it (``DATA + "train.csv"``, ``os.path.join(DATA, name)``, ``Path("data") / name``,
``f"{DATA}/x.csv"``, ``"{}/x.csv".format(DATA)``), over the literal assignments of the cells
run before it.

This is how promote finds the files a notebook reads and the keyword arguments of its
evaluation when they are not written as literals. Only plain values are folded (strings,
numbers, bools, None, pure paths and lists/tuples/dicts of them) and only through operations
that have no side effects and bounded cost; anything else is :data:`UNKNOWN`. The working
directory folds to ``.``: steps run in the pipeline folder, which holds the notebook's relative
layout. Stdlib only.
"""

from __future__ import annotations

import ast
import posixpath
import string
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath
from typing import Any

from nbops.capture.scan import dotted

UNKNOWN: Any = type("Unknown", (), {"__repr__": lambda self: "UNKNOWN"})()
MAX_TEXT = 4096  # a folded string longer than this is not a path anyone wrote
MAX_ITEMS = 100  # loops over longer literal collections are not unrolled

_PATH_TYPES = frozenset({"Path", "PurePath", "PurePosixPath", "PosixPath", "WindowsPath"})
_JOINS = frozenset({"os.path.join", "path.join", "osp.join", "posixpath.join"})
_IDENTITY = frozenset(
    {"str", "os.fspath", "os.path.abspath", "os.path.realpath", "os.path.normpath", "float", "int"}
)
_CWD = frozenset({"os.getcwd", "Path.cwd", "pathlib.Path.cwd", "os.curdir"})
_STR_METHODS = frozenset({"replace", "strip", "rstrip", "lstrip", "lower", "upper", "removesuffix"})
_PATH_METHODS = frozenset({"resolve", "absolute", "expanduser"})  # relative stays relative
_PATH_ATTRS = frozenset({"parent", "name", "stem", "suffix"})
_PLAIN = (str, int, float, bool, type(None), PurePosixPath)


def fold(node: ast.AST | None, env: dict[str, Any]) -> Any:
    """The value of expression ``node`` given the constants ``env``, or :data:`UNKNOWN`."""
    if node is None:
        return UNKNOWN
    try:
        value = _fold(node, env)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError):
        return UNKNOWN
    except (MemoryError, RecursionError):
        return UNKNOWN
    return value if _bounded(value) else UNKNOWN


def _bounded(value: Any) -> bool:
    if value is UNKNOWN:
        return True
    if isinstance(value, str | PurePosixPath):
        return len(str(value)) <= MAX_TEXT
    if isinstance(value, list | tuple):
        return len(value) <= MAX_ITEMS and all(_bounded(v) for v in value)
    if isinstance(value, dict):
        return len(value) <= MAX_ITEMS and all(_bounded(v) for v in value.values())
    return isinstance(value, _PLAIN)


def _fold(node: ast.AST, env: dict[str, Any]) -> Any:
    handler = _HANDLERS.get(type(node))
    return handler(node, env) if handler else UNKNOWN


def _constant(node: ast.Constant, env: dict[str, Any]) -> Any:
    return node.value if isinstance(node.value, _PLAIN) else UNKNOWN


def _name(node: ast.Name, env: dict[str, Any]) -> Any:
    return env.get(node.id, UNKNOWN)


def _fstring(node: ast.JoinedStr, env: dict[str, Any]) -> Any:
    parts = []
    for value in node.values:
        if isinstance(value, ast.Constant):
            parts.append(str(value.value))
            continue
        if not isinstance(value, ast.FormattedValue):
            return UNKNOWN
        inner = fold(value.value, env)
        spec = fold(value.format_spec, env) if value.format_spec else ""
        if inner is UNKNOWN or spec is UNKNOWN or not _safe_spec(str(spec)):
            return UNKNOWN
        inner = repr(inner) if value.conversion == ord("r") else inner
        parts.append(format(inner if not isinstance(inner, PurePosixPath) else str(inner), spec))
    return "".join(parts)


def _safe_spec(spec: str) -> bool:
    """Format specs that cannot blow up: no width beyond three digits."""
    digits = "".join(ch if ch.isdigit() else " " for ch in spec).split()
    return all(len(d) <= 3 for d in digits)


def _binop(node: ast.BinOp, env: dict[str, Any]) -> Any:
    left, right = fold(node.left, env), fold(node.right, env)
    if left is UNKNOWN or right is UNKNOWN:
        return UNKNOWN
    if isinstance(node.op, ast.Div) and (
        isinstance(left, PurePosixPath) or isinstance(right, PurePosixPath)
    ):
        return _join(left, right)
    if isinstance(node.op, ast.Add) and type(left) is type(right) and not _is_path(left):
        return left + right
    if isinstance(node.op, ast.Add) and _number(left) and _number(right):
        return left + right
    if isinstance(node.op, ast.Mod) and isinstance(left, str):
        return left % (tuple(right) if isinstance(right, list) else right)
    arithmetic = {ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b}
    op = arithmetic.get(type(node.op))
    if op and _number(left) and _number(right):
        return op(left, right)
    return UNKNOWN


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_path(value: Any) -> bool:
    return isinstance(value, PurePosixPath)


def _join(*parts: Any) -> PurePosixPath:
    texts = [str(p) for p in parts]
    if not all(isinstance(p, str | PurePosixPath) for p in parts):
        raise TypeError("not a path part")
    return PurePosixPath(posixpath.join(*texts)) if texts else PurePosixPath(".")


def _unary(node: ast.UnaryOp, env: dict[str, Any]) -> Any:
    value = fold(node.operand, env)
    if isinstance(node.op, ast.USub) and _number(value):
        return -value
    return UNKNOWN


def _sequence(node: ast.List | ast.Tuple, env: dict[str, Any]) -> Any:
    items = [fold(elt, env) for elt in node.elts]
    if any(item is UNKNOWN for item in items) or any(isinstance(e, ast.Starred) for e in node.elts):
        return UNKNOWN
    return items if isinstance(node, ast.List) else tuple(items)


def _dict(node: ast.Dict, env: dict[str, Any]) -> Any:
    keys = [fold(k, env) for k in node.keys]
    values = [fold(v, env) for v in node.values]
    if any(v is UNKNOWN for v in [*keys, *values]):
        return UNKNOWN
    return dict(zip(keys, values, strict=True))


def _subscript(node: ast.Subscript, env: dict[str, Any]) -> Any:
    container, key = fold(node.value, env), fold(node.slice, env)
    if container is UNKNOWN or key is UNKNOWN or isinstance(key, bool):
        return UNKNOWN
    if isinstance(container, dict) or (
        isinstance(container, list | tuple) and isinstance(key, int)
    ):
        return container[key]
    return UNKNOWN


def _attribute(node: ast.Attribute, env: dict[str, Any]) -> Any:
    if dotted(node) in _CWD:
        return PurePosixPath(".")
    value = fold(node.value, env)
    if isinstance(value, PurePosixPath) and node.attr in _PATH_ATTRS:
        if node.attr == "parent":
            return PurePosixPath(posixpath.normpath(posixpath.join(str(value), "..")))
        return getattr(value, node.attr)
    return UNKNOWN


def _call(node: ast.Call, env: dict[str, Any]) -> Any:
    if any(isinstance(a, ast.Starred) for a in node.args) or any(
        k.arg is None for k in node.keywords
    ):
        return UNKNOWN
    callee = dotted(node.func)
    if callee in _CWD:
        return PurePosixPath(".")
    args = [fold(a, env) for a in node.args]
    if any(a is UNKNOWN for a in args):
        return UNKNOWN
    short = callee.rpartition(".")[2]
    if callee in _JOINS:
        return str(_join(*args)) if args else UNKNOWN
    if short in _PATH_TYPES and not node.keywords:
        return _join(*args) if args else PurePosixPath(".")
    if callee in _IDENTITY and len(args) == 1 and not node.keywords:
        return _convert(callee, args[0])
    if isinstance(node.func, ast.Attribute):
        return _method(node, env, args)
    return UNKNOWN


def _convert(callee: str, value: Any) -> Any:
    if callee == "str" or callee == "os.fspath":
        return str(value)
    if callee in ("float", "int"):
        return {"float": float, "int": int}[callee](value) if _number(value) else UNKNOWN
    return str(PurePosixPath(posixpath.normpath(str(value))))


def _method(node: ast.Call, env: dict[str, Any], args: list[Any]) -> Any:
    func = node.func
    assert isinstance(func, ast.Attribute)
    receiver, method = fold(func.value, env), func.attr
    if receiver is UNKNOWN:
        return UNKNOWN
    kwargs = {k.arg: fold(k.value, env) for k in node.keywords if k.arg}
    if any(v is UNKNOWN for v in kwargs.values()):
        return UNKNOWN
    if isinstance(receiver, PurePosixPath):
        if method == "joinpath":
            return _join(receiver, *args)
        if method in _PATH_METHODS and not args:
            return receiver
        if method in ("with_suffix", "with_name") and len(args) == 1:
            return getattr(receiver, method)(args[0])
        return UNKNOWN
    if isinstance(receiver, str) and method == "format":
        return _format(receiver, args, kwargs)
    plain = all(isinstance(a, str) for a in args) and not kwargs
    if isinstance(receiver, str) and method in _STR_METHODS and plain:
        return getattr(receiver, method)(*args)
    return UNKNOWN


def _format(template: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """``str.format`` for plain fields only (no ``{0.attr}`` or ``{x[k]}`` lookups)."""
    for _, field, spec, _ in string.Formatter().parse(template):
        if field and not (field.isidentifier() or field.isdigit()):
            return UNKNOWN
        if spec and not _safe_spec(spec):
            return UNKNOWN
    plain = [str(a) if isinstance(a, PurePosixPath) else a for a in args]
    named = {k: str(v) if isinstance(v, PurePosixPath) else v for k, v in kwargs.items()}
    return template.format(*plain, **named)


_HANDLERS: dict[type, Callable[[Any, dict[str, Any]], Any]] = {
    ast.Constant: _constant,
    ast.Name: _name,
    ast.JoinedStr: _fstring,
    ast.BinOp: _binop,
    ast.UnaryOp: _unary,
    ast.List: _sequence,
    ast.Tuple: _sequence,
    ast.Dict: _dict,
    ast.Subscript: _subscript,
    ast.Attribute: _attribute,
    ast.Call: _call,
}


def as_text(value: Any) -> str | None:
    """A folded value as a path string (``str`` or a pure path), else None."""
    if isinstance(value, PurePosixPath):
        return str(value)
    return value if isinstance(value, str) else None


def assign(stmt: ast.stmt, env: dict[str, Any]) -> None:
    """Update ``env`` with what one top-level statement binds (unknown values are forgotten)."""
    if isinstance(stmt, ast.Assign):
        value = fold(stmt.value, env)
        for target in stmt.targets:
            _bind(target, value, stmt.value, env)
    elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
        _bind(stmt.target, fold(stmt.value, env), stmt.value, env)
    elif isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
        combined = ast.BinOp(
            left=ast.Name(stmt.target.id, ast.Load()), op=stmt.op, right=stmt.value
        )
        _bind(stmt.target, fold(combined, env), None, env)
    else:
        for name in bound_names(stmt):
            env.pop(name, None)


def _bind(target: ast.AST, value: Any, node: ast.AST | None, env: dict[str, Any]) -> None:
    if isinstance(target, ast.Name):
        if value is UNKNOWN:
            env.pop(target.id, None)
        else:
            env[target.id] = value
    elif isinstance(target, ast.Tuple | ast.List):
        values: Any = value
        if isinstance(node, ast.Tuple | ast.List) and len(node.elts) == len(target.elts):
            values = [fold(elt, env) for elt in node.elts]
        if not isinstance(values, list | tuple) or len(values) != len(target.elts):
            values = [UNKNOWN] * len(target.elts)
        for elt, item in zip(target.elts, values, strict=True):
            _bind(elt, item, None, env)


def bound_names(node: ast.AST) -> Iterator[str]:
    """Names a statement binds in its own scope (not inside nested functions or classes)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, ast.Name) and isinstance(current.ctx, ast.Store):
            yield current.id
        elif isinstance(current, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield current.name
            continue
        elif isinstance(current, ast.Import | ast.ImportFrom):
            yield from ((a.asname or a.name).split(".")[0] for a in current.names)
        stack.extend(ast.iter_child_nodes(current))


def loop_values(loop: ast.For, env: dict[str, Any]) -> list[Any] | None:
    """The items a ``for`` loop iterates when they fold (a literal list, a constant, a dict's
    ``keys()``/``values()``/``items()``), else None."""
    iterable = loop.iter
    view = ""
    if (
        isinstance(iterable, ast.Call)
        and isinstance(iterable.func, ast.Attribute)
        and iterable.func.attr in ("keys", "values", "items")
        and not iterable.args
    ):
        view, iterable = iterable.func.attr, iterable.func.value
    value = fold(iterable, env)
    if isinstance(value, dict):
        items = {"values": list(value.values()), "items": list(value.items())}
        return items.get(view, list(value))
    if view or not isinstance(value, list | tuple):
        return None
    return list(value)


def iterated(node: ast.expr) -> list[str]:
    """The collections a loop iterates: ``models``, ``models.items()``, ``[a, b]``,
    ``zip(names, models)``, ``enumerate(models)``."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.List | ast.Tuple):
        return [e.id for e in node.elts if isinstance(e, ast.Name)]
    if not isinstance(node, ast.Call):
        return []
    func = node.func
    if isinstance(func, ast.Attribute) and func.attr in ("items", "values"):
        return [func.value.id] if isinstance(func.value, ast.Name) else []
    if isinstance(func, ast.Name) and func.id in ("zip", "enumerate"):
        return [n for arg in node.args for n in iterated(arg)]
    return []
