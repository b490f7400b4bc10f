"""A cell's cache key: what its result can depend on, hashed.

The key covers the cell's code as run (after IPython's transforms; its syntax tree, so
comments and spacing do not count), the identity of every value it reads from the namespace
(:mod:`nbops.hashing.identity`; functions and classes of the notebook by their code, and the
globals that code reads in turn), the md5 of every file it or those functions read, the
versions of the packages behind everything it touches (and the md5 of local modules), and the
Python version. Two executions with equal keys compute the same thing, unless the code reads
something outside them: :mod:`nbops.cache.hazards` finds that, and then the key is not used
(unless ``--cache=force``).
"""

from __future__ import annotations

import ast
import hashlib
import platform
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbops.cache.files import MAX_TREE_FILES, Files, code_files, resolve
from nbops.cache.hazards import IPYTHON, Hazard, function_source, scan_code, scan_function
from nbops.capture.scan import CellScan, scan_cell
from nbops.hashing.files import FileHashCache, fingerprint_file
from nbops.hashing.identity import HISTORY_NAMES, Identities
from nbops.hashing.values import canon
from nbops.project_paths import escape, files_under

KEY_VERSION = "nbops-cache-1"  # bump when what the key covers changes
OUTSIDE = "reads a file outside the project"
WRITES_OUTSIDE = "writes a file outside the project"
_IPYTHON_NAMES = frozenset({"get_ipython", "exit", "quit"})


@dataclass
class CellKey:
    """The key of one execution, or why it has none (``problems``) or must not be served
    (``hazards``)."""

    digest: str | None = None
    inputs: dict[str, str] = field(default_factory=dict)  # name -> identity
    files: dict[str, str] = field(default_factory=dict)  # path as named -> md5
    writes: dict[str, Path] = field(default_factory=dict)  # path as named -> resolved path
    packages: dict[str, str] = field(default_factory=dict)
    functions: list[str] = field(default_factory=list)  # notebook functions the cell reaches
    hazards: list[Hazard] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def short(self) -> str:
        return (self.digest or "")[:12]


def compute_key(
    code: str,
    ns: Mapping[str, Any],
    *,
    root: Path,
    file_cache: FileHashCache | None = None,
    known: Mapping[str, str] | None = None,
    scan: CellScan | None = None,
) -> CellKey:
    """The key of running ``code`` (already transformed to Python) in ``ns`` now."""
    started = time.perf_counter()
    key = CellKey()
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        key.problems.append(f"the cell does not parse ({exc.msg}, line {exc.lineno})")
        return key
    scan = scan or scan_cell(code)
    ids = Identities(ns, known)
    _inputs(key, ids, sorted(scan.free - _IPYTHON_NAMES))
    key.hazards = scan_code(tree, code, ns)
    files = code_files(tree, code, ns)
    for name, fn in ids.functions.items():
        key.functions.append(name)
        key.hazards += scan_function(fn, name, ns)
        parsed = function_source(fn)
        if parsed is not None:
            files.merge(code_files(parsed[0], parsed[1], ns, where=f"{name}() line"))
    _files(key, files, root, file_cache)
    key.packages = _packages(ids, tree, file_cache)
    if not key.problems:
        key.digest = _digest(tree, key)
    key.seconds = time.perf_counter() - started
    return key


def _inputs(key: CellKey, ids: Identities, names: list[str]) -> None:
    """Identities of the names the cell reads, then of the globals notebook code reads."""
    pending = list(names)
    while pending:
        name = pending.pop(0)
        if name in key.inputs or name in key.problems:
            continue
        if name in HISTORY_NAMES:
            key.hazards.append(Hazard("the cell", name, f"{IPYTHON} (the kernel's history)"))
            continue
        identity = ids.of_name(name)
        if identity is None:
            key.problems.append(f"{name}: {ids.problems[name]}")
            continue
        key.inputs[name] = identity
        pending += [n for n in ids.reached if n not in key.inputs]


def _files(key: CellKey, files: Files, root: Path, cache: FileHashCache | None) -> None:
    """md5 of the files read (inside the project), the resolved files written."""
    key.hazards += files.unnamed
    for text, line in files.reads.items():
        path = resolve(text)
        if not path.exists():
            continue
        outside = escape(path, root)
        if outside is not None:
            key.hazards.append(Hazard(f"line {line}", repr(text), OUTSIDE))
            continue
        try:
            key.files[text] = _content(path, root, cache)
        except OSError as exc:
            key.problems.append(f"{text}: cannot be read ({exc.strerror or exc})")
    for text, line in files.writes.items():
        path = resolve(text)
        if escape(path, root) is not None:
            key.hazards.append(Hazard(f"line {line}", repr(text), WRITES_OUTSIDE))
        else:
            key.writes[text] = path


def _content(path: Path, root: Path, cache: FileHashCache | None) -> str:
    """The md5 of a file, or of a folder's files (names and md5s, up to MAX_TREE_FILES)."""
    if not path.is_dir():
        return fingerprint_file(path, cache)
    entries = []
    for item in files_under(path, root):
        if not isinstance(item, tuple):
            raise OSError(f"{item.describe()}")
        entries.append((item[0], fingerprint_file(item[1], cache)))
        if len(entries) > MAX_TREE_FILES:
            raise OSError(f"more than {MAX_TREE_FILES} files under it")
    return "tree:" + hashlib.sha256(canon(sorted(entries))).hexdigest()


def _packages(ids: Identities, tree: ast.Module, cache: FileHashCache | None) -> dict[str, str]:
    """Versions of the packages the cell and its inputs use; local modules by md5."""
    from nbops.capture.context import package_versions

    modules = set(ids.modules)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module.partition(".")[0])
    versions = package_versions(modules)
    for module, path in sorted(ids.local_modules.items()):
        try:
            versions[f"local:{module}"] = fingerprint_file(path, cache)
        except OSError:
            versions[f"local:{module}"] = "unreadable"
    return versions


def _digest(tree: ast.Module, key: CellKey) -> str:
    parts = (
        KEY_VERSION,
        platform.python_version(),
        ast.dump(tree),
        sorted(key.inputs.items()),
        sorted(key.files.items()),
        sorted(key.packages.items()),
    )
    return hashlib.sha256(canon(parts)).hexdigest()
