"""Where source code holds a secret: the spans :func:`~nbops.capture.redact.redact_code` blanks
out in recorded code and ``nbops promote`` refuses in a notebook.

Two kinds of finding. *Bound*: a string literal the code binds to a secret-looking name
(:func:`~nbops.capture.vocab.is_secret_name`) however it is written: assignment, annotated,
``+=``, walrus, tuple unpacking, ``for``, a keyword argument or default, a dict entry, an item or
attribute (``cfg["password"] = ...``, ``os.environ["API_KEY"] = ...``), a call that names the
secret (``set_tag("token", ...)``, ``os.environ.setdefault("API_KEY", ...)``), a comparison; the
literal may sit in parentheses, a list, ``str(...)``, a concatenation or an f-string. *Value*:
text matching :data:`~nbops.capture.vocab.SECRET_VALUES` (URL credentials, known key formats)
anywhere. A line ending in ``# nbops: not-secret`` has no bound findings (a column renamed from
``password``, say); value findings always count.

The AST gives exact spans. A cell with IPython syntax (``%time``, ``!cmd``) does not parse: its
Python translation (``python``) then says which literal values are secret, and those values are
found among the cell's string tokens; without one, ``NAME = "..."`` token patterns are used
(:mod:`nbops.capture.code_tokens`).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from typing import Any

from nbops.capture.code_tokens import by_tokens, by_value
from nbops.capture.findings import Finding, line_starts, merge_findings
from nbops.capture.vocab import (
    REDACTED,
    SECRET_HINT,
    SECRET_VALUES,
    is_secret_key,
    is_secret_name,
)

NOT_SECRET_PRAGMA = "nbops: not-secret"
# Calls whose first argument names what is looked up, not a value: os.environ.get("TOKEN", ...)
_LOOKUPS = frozenset({"get", "getenv", "get_secret", "get_password", "getpass", "pop", "input"})
_VALUES = [(what, needles, re.compile(pattern)) for what, needles, pattern in SECRET_VALUES]
_SCHEMES = re.compile(r"(?i)\b(?:bearer|basic|token)\b")
_PLACEHOLDER = re.compile(r"\{[^{}]*\}|\$\{?\w+\}?|%(?:\(\w+\))?s|<[^<>]*>|\*+|\.\.\.")
_ARG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")  # "token" in set_tag("token", ...); no files


def find_secrets(source: str, python: str | None = None) -> list[Finding]:
    """Every secret in ``source``, sorted, without overlaps (an outer literal wins)."""
    found = list(value_findings(source))
    if SECRET_HINT.search(source.lower()):  # most cells hold no such word: no AST walk
        found += _bound_findings(source, python)
    return merge_findings(found)


# ---------------------------------------------------------------- values (patterns)


def value_findings(text: str) -> Iterator[Finding]:
    """Text matching a secret value pattern (only its ``secret`` group, when it has one);
    a template placeholder there (``{password}``, ``$PW``, ``%s``, ``<password>``) is none."""
    lowered = text.lower()
    for what, needles, pattern in _VALUES:
        if not any(needle in lowered for needle in needles):
            continue
        for match in pattern.finditer(text):
            group = "secret" if "secret" in pattern.groupindex else 0
            start, end = match.span(group)
            if group and _PLACEHOLDER.fullmatch(text, start, end):
                continue
            yield Finding(start, end, text.count("\n", 0, start) + 1, what, literal=False)


# ---------------------------------------------------------------- bound literals


def _bound_findings(source: str, python: str | None) -> list[Finding]:
    tree = _parse(source)
    if tree is not None:
        starts = line_starts(source)
        visitor = _SecretLiterals()
        for stmt in tree.body:  # only statements whose text holds a secret-looking word
            end = stmt.end_lineno or stmt.lineno
            text = source[starts[stmt.lineno - 1] : starts[end] if end < len(starts) else None]
            if SECRET_HINT.search(text.lower()):
                visitor.visit_tree(stmt)
        found = [_span(source, starts, node, why) for node, why in visitor.found]
    else:  # IPython syntax: what the translation says is secret, and NAME = "..." patterns
        found = by_tokens(source)
        if python is not None and (translated := _parse(python)) is not None:
            found += by_value(
                source, _secret_values(_SecretLiterals().visit_tree(translated), python)
            )
    return [f for f in found if not _exempt(source, f)]


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, UnicodeError, MemoryError, RecursionError):
        return None


class _SecretLiterals:
    """Collects (literal node, why) for every literal bound to a secret-looking name."""

    def __init__(self) -> None:
        self.found: list[tuple[ast.expr, str]] = []

    def visit_tree(self, tree: ast.AST) -> list[tuple[ast.expr, str]]:
        for node in ast.walk(tree):
            handler = _HANDLERS.get(type(node))
            if handler is not None:
                handler(self, node)
        return self.found

    def collect(self, value: ast.expr | None, why: str) -> None:
        """The literals ``value`` is made of (not names it looks up: ``os.environ["X"]``)."""
        if value is None:
            return
        if _is_literal_text(value):
            if _holds_text(value):
                self.found.append((value, why))
        elif isinstance(value, ast.Tuple | ast.List | ast.Set):
            for item in value.elts:
                self.collect(item, why)
        elif isinstance(value, ast.Dict):
            for item in value.values:
                self.collect(item, why)
        elif isinstance(value, ast.BinOp):
            self.collect(value.left, why)
            self.collect(value.right, why)
        elif isinstance(value, ast.BoolOp):
            for item in value.values:
                self.collect(item, why)
        elif isinstance(value, ast.IfExp):
            self.collect(value.body, why)
            self.collect(value.orelse, why)
        elif isinstance(value, ast.NamedExpr | ast.Starred | ast.Await):
            self.collect(value.value, why)
        elif isinstance(value, ast.Subscript):
            self.collect(value.value, why)  # "literal"[1:], not the key of os.environ["X"]
        elif isinstance(value, ast.Call):
            if isinstance(value.func, ast.Attribute):
                self.collect(value.func.value, why)  # "text".upper()
            skip_first = _callee_name(value.func) in _LOOKUPS
            for i, arg in enumerate(value.args):
                if not (i == 0 and skip_first):
                    self.collect(arg, why)
            for keyword in value.keywords:
                self.collect(keyword.value, why)

    def bind(self, target: ast.expr, value: ast.expr | None) -> None:
        """``target = value`` in any of its forms (unpacking pairs names with values)."""
        if _same_shape(target, value):
            for item, part in zip(target.elts, value.elts, strict=True):  # type: ignore[attr-defined,union-attr]
                self.bind(item, part)
            return
        name = _secret_target(target)
        if name:
            self.collect(value, f"bound to {name!r}")

    def assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self.bind(target, node.value)

    def single(self, node: ast.AugAssign | ast.AnnAssign | ast.NamedExpr) -> None:
        self.bind(node.target, node.value)

    def loop(self, node: ast.For | ast.AsyncFor | ast.comprehension) -> None:
        self.bind(node.target, node.iter)

    def call(self, node: ast.Call) -> None:
        for keyword in node.keywords:
            if keyword.arg and is_secret_key(keyword.arg):
                self.collect(keyword.value, f"passed as {keyword.arg}=")
        named = [a.value for a in node.args if _names_secret(a)]  # type: ignore[attr-defined]
        if named and _callee_name(node.func) not in _LOOKUPS:
            for arg in node.args:
                if not (_is_text(arg) and arg.value in named):  # type: ignore[attr-defined]
                    self.collect(arg, f"passed with {named[0]!r}")
            for keyword in node.keywords:
                self.collect(keyword.value, f"passed with {named[0]!r}")

    def dict(self, node: ast.Dict) -> None:
        for key, value in zip(node.keys, node.values, strict=True):
            if key is not None and _is_text(key) and is_secret_key(key.value):  # type: ignore[attr-defined]
                self.collect(value, f"the value of {key.value!r}")  # type: ignore[attr-defined]

    def compare(self, node: ast.Compare) -> None:
        if not all(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
            return
        sides = [node.left, *node.comparators]
        names = [name for side in sides if (name := _secret_target(side))]
        if names:
            for side in sides:
                self.collect(side, f"compared with {names[0]!r}")

    def defaults(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        args = node.args
        positional = [*args.posonlyargs, *args.args]
        with_default = positional[len(positional) - len(args.defaults) :]
        pairs: list[tuple[ast.arg, ast.expr | None]] = list(
            zip(with_default, args.defaults, strict=True)
        )
        pairs += list(zip(args.kwonlyargs, args.kw_defaults, strict=True))
        for arg, default in pairs:
            if default is not None and is_secret_name(arg.arg):
                self.collect(default, f"the default of {arg.arg!r}")


_HANDLERS: dict[type[ast.AST], Callable[[_SecretLiterals, Any], None]] = {
    ast.Assign: _SecretLiterals.assign,
    ast.AugAssign: _SecretLiterals.single,
    ast.AnnAssign: _SecretLiterals.single,
    ast.NamedExpr: _SecretLiterals.single,
    ast.For: _SecretLiterals.loop,
    ast.AsyncFor: _SecretLiterals.loop,
    ast.comprehension: _SecretLiterals.loop,
    ast.Call: _SecretLiterals.call,
    ast.Dict: _SecretLiterals.dict,
    ast.Compare: _SecretLiterals.compare,
    ast.FunctionDef: _SecretLiterals.defaults,
    ast.AsyncFunctionDef: _SecretLiterals.defaults,
    ast.Lambda: _SecretLiterals.defaults,
}


def _is_literal_text(node: ast.AST) -> bool:
    """A str/bytes/number constant or an f-string: what a secret is written as."""
    if isinstance(node, ast.JoinedStr):
        return True
    value = getattr(node, "value", None) if isinstance(node, ast.Constant) else None
    return isinstance(value, str | bytes | int | float) and not isinstance(value, bool)


def _holds_text(node: ast.expr) -> bool:
    """Not a placeholder: ``""``, ``***redacted***``, or an f-string whose only literal text
    is an auth scheme (``f"Bearer {token}"`` holds no secret itself)."""
    if isinstance(node, ast.JoinedStr):
        parts = [v.value for v in node.values if isinstance(v, ast.Constant)]
        text = "".join(str(p) for p in parts)
        return bool(_SCHEMES.sub("", text).strip())
    value = node.value  # type: ignore[attr-defined]
    if isinstance(value, int | float):
        return True  # a numeric PIN or key
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return bool(text.strip()) and text != REDACTED


def _is_text(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _names_secret(node: ast.AST) -> bool:
    """A string argument that is a secret's name (``"API_KEY"``), not a file or a sentence."""
    text = node.value if _is_text(node) else ""  # type: ignore[attr-defined]
    return bool(_ARG_NAME.match(text)) and is_secret_key(text)


def _same_shape(target: ast.expr, value: ast.expr | None) -> bool:
    sequences = ast.Tuple | ast.List
    if not (isinstance(target, sequences) and isinstance(value, sequences)):
        return False
    plain = not any(isinstance(e, ast.Starred) for e in (*target.elts, *value.elts))
    return plain and len(target.elts) == len(value.elts)


def _secret_target(node: ast.expr) -> str:
    """The secret-looking name a target (or compared value) stands for, or ""."""
    if isinstance(node, ast.Name):
        name = node.id
    elif isinstance(node, ast.Attribute):
        name = node.attr
    elif isinstance(node, ast.Subscript) and _is_text(node.slice):
        name = node.slice.value  # type: ignore[attr-defined]
        return name if is_secret_key(name) else ""
    elif isinstance(node, ast.Starred):
        return _secret_target(node.value)
    elif isinstance(node, ast.Tuple | ast.List):
        return next((n for e in node.elts if (n := _secret_target(e))), "")
    else:
        return ""
    return name if is_secret_name(name) else ""


def _callee_name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _char(source: str, starts: list[int], line: int, col: int) -> int:
    """AST offsets are UTF-8 bytes within the line: count the characters they cover."""
    start = starts[line - 1]
    text = source[start : start + col]  # at least ``col`` characters cover ``col`` bytes
    if text.isascii():
        return start + col
    return start + len(text.encode("utf-8", "surrogatepass")[:col].decode("utf-8", "ignore"))


def _secret_values(nodes: list[tuple[ast.expr, str]], python: str) -> dict[object, str]:
    """Literal value (an f-string: its text) -> why it is secret."""
    starts = line_starts(python)
    found: dict[object, str] = {}
    for node, why in nodes:
        if isinstance(node, ast.Constant):
            found[node.value] = why
        else:
            span = _span(python, starts, node, why)
            found[python[span.start : span.end]] = why
    return found


def _span(source: str, starts: list[int], node: ast.expr, why: str) -> Finding:
    start = _char(source, starts, node.lineno, node.col_offset)
    end = _char(source, starts, node.end_lineno or node.lineno, node.end_col_offset or 0)
    number = isinstance(node, ast.Constant) and isinstance(node.value, int | float)
    return Finding(start, end, node.lineno, why, number=number)


def _exempt(source: str, finding: Finding) -> bool:
    """A bound finding on a line marked ``# nbops: not-secret``."""
    end = source.find("\n", finding.start)
    line = source[source.rfind("\n", 0, finding.start) + 1 : len(source) if end < 0 else end]
    return NOT_SECRET_PRAGMA in line
