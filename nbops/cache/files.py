"""The files a cell reads (their md5 is in its key) and writes (stored with its outputs, and
written back on a cache hit), found in its code the way promote finds them: path expressions
constant-folded (:mod:`nbops.notebook.folding`), here over the namespace's string values and
the cell's own assignments, statement by statement.

A data-reading or -writing call whose path does not fold (``pd.read_csv(pick_file())``) makes
the cell uncacheable: nbops cannot say which file its result depends on, and says so.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath, PurePosixPath
from typing import Any

from nbops.cache.hazards import Hazard
from nbops.capture.scan import dotted, parameter_names
from nbops.capture.vocab import looks_like_path
from nbops.notebook.folding import UNKNOWN, as_text, assign, fold
from nbops.notebook.paths import PATH_KEYWORDS, QUALIFIED_READERS, READERS

# Calls that write a file named by one of their first two arguments (or a PATH_KEYWORDS one).
WRITERS: frozenset[str] = frozenset(
    {
        "to_csv",
        "to_parquet",
        "to_json",
        "to_excel",
        "to_feather",
        "to_pickle",
        "to_hdf",
        "to_orc",
        "to_xml",
        "to_stata",
        "savefig",
        "save",
        "savez",
        "savez_compressed",
        "savetxt",
        "dump",
        "write_text",
        "write_bytes",
        "imwrite",
        "imsave",
    }
)
_HANDLE_MAKERS = ("open", "StringIO", "BytesIO", "TemporaryFile", "NamedTemporaryFile")
_WRITE_MODES = ("w", "a", "x", "+")
MAX_TREE_FILES = 2000  # a folder read as a whole: at most this many files are hashed


@dataclass
class Files:
    """What one piece of code names: ``reads`` (candidates: the path-like values it passes to
    calls, minus what it writes), ``writes``, and the reads/writes nbops cannot name."""

    reads: dict[str, int] = field(default_factory=dict)  # folded path -> line
    writes: dict[str, int] = field(default_factory=dict)
    unnamed: list[Hazard] = field(default_factory=list)

    def merge(self, other: Files) -> None:
        for path, line in other.reads.items():
            self.reads.setdefault(path, line)
        for path, line in other.writes.items():
            self.writes.setdefault(path, line)
        self.unnamed += [u for u in other.unnamed if str(u) not in map(str, self.unnamed)]


def constants(ns: Mapping[str, Any]) -> dict[str, Any]:
    """The namespace's plain values (strings, numbers, paths), as constants for folding."""
    env: dict[str, Any] = {}
    for key, value in ns.items():
        if key.startswith("_"):
            continue
        if isinstance(value, str | int | float):
            env[key] = value
        elif isinstance(value, PurePath):
            env[key] = PurePosixPath(Path(value).as_posix())
    return env


def code_files(tree: ast.Module, source: str, ns: Mapping[str, Any], where: str = "line") -> Files:
    """The files a parsed piece of code reads and writes."""
    walker = _Walker(source, where)
    walker.block(tree.body, constants(ns))
    for path in walker.files.writes:
        walker.files.reads.pop(path, None)
    return walker.files


class _Walker:
    def __init__(self, source: str, where: str) -> None:
        self.source = source
        self.where = where
        self.files = Files()
        self.handles: set[str] = set()

    def block(self, body: list[ast.stmt], env: dict[str, Any]) -> None:
        for stmt in body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                inner = {k: v for k, v in env.items() if k not in parameter_names(stmt)}
                self.block(stmt.body, inner)
                continue
            if isinstance(stmt, ast.With | ast.AsyncWith):
                for item in stmt.items:
                    self.expression(item.context_expr, env)
                    if isinstance(item.optional_vars, ast.Name):
                        self.handles.add(item.optional_vars.id)
                self.block(stmt.body, env)
                continue
            self.expression(stmt, env)
            self._note_handle(stmt)
            assign(stmt, env)

    def expression(self, node: ast.AST, env: dict[str, Any]) -> None:
        for child in ast.walk(node):
            if isinstance(child, ast.Call):
                self.call(child, env)

    def call(self, node: ast.Call, env: dict[str, Any]) -> None:
        callee = dotted(node.func)
        func = node.func
        short = func.attr if isinstance(func, ast.Attribute) else callee.rpartition(".")[2]
        line = getattr(node, "lineno", 0)
        writes = short in WRITERS or (callee == "open" and _for_writing(node, env))
        reads = not writes and (short in READERS or callee in QUALIFIED_READERS)
        targets = self._targets(node, short, writes)
        texts = [as_text(fold(t, env)) for t in targets]
        named = [t for t in texts if t is not None and "://" not in t and looks_like_path(t)]
        if writes or reads:
            if named:
                bucket = self.files.writes if writes else self.files.reads
                bucket.setdefault(named[0], line)
            elif not any(self._is_handle(t) for t in targets) and not _urls(texts):
                verb = "writes" if writes else "reads"
                shown = " ".join((ast.get_source_segment(self.source, node) or "").split())
                shown = shown if len(shown) <= 60 else shown[:57] + "..."
                reason = f"{verb} a file nbops cannot name"
                self.files.unnamed.append(Hazard(f"{self.where} {line}", shown, reason))
            return
        for part in [*node.args, *(k.value for k in node.keywords)]:
            text = as_text(fold(part, env))
            if text is not None and looks_like_path(text):
                self.files.reads.setdefault(text, line)

    def _targets(self, node: ast.Call, short: str, writes: bool) -> list[ast.AST]:
        if short in ("write_text", "write_bytes") and isinstance(node.func, ast.Attribute):
            return [node.func.value]  # Path("out.txt").write_text(...)
        keywords = [k.value for k in node.keywords if k.arg in PATH_KEYWORDS]
        first = node.args[: 2 if writes else 1]
        if not first and not keywords and isinstance(node.func, ast.Attribute) and not writes:
            return [node.func.value]  # Path("x.csv").read_text()
        return [*first, *keywords]

    def _is_handle(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            return node.id in self.handles
        return isinstance(node, ast.Call) and dotted(node.func).endswith(_HANDLE_MAKERS)

    def _note_handle(self, stmt: ast.stmt) -> None:
        """``f = open(...)`` / ``buf = io.BytesIO()``: ``f`` is a file object, not a path."""
        if isinstance(stmt, ast.Assign) and self._is_handle(stmt.value):
            self.handles |= {t.id for t in stmt.targets if isinstance(t, ast.Name)}


def resolve(path: str) -> Path:
    """A folded path as the cell's ``open`` would find it (relative to the working folder)."""
    return Path(os.path.abspath(os.path.expanduser(path)))


def _for_writing(node: ast.Call, env: dict[str, Any]) -> bool:
    mode: Any = node.args[1] if len(node.args) > 1 else None
    for keyword in node.keywords:
        if keyword.arg == "mode":
            mode = keyword.value
    text = fold(mode, env) if mode is not None else "r"
    return text is UNKNOWN or (isinstance(text, str) and any(m in text for m in _WRITE_MODES))


def _urls(texts: list[str | None]) -> bool:
    return any(t is not None and "://" in t for t in texts)
