"""Which execution produced each variable in the kernel: the facts the hidden-state warning
(:mod:`nbops.capture.staleness`) is judged from.

``%load_ext nbops`` registers two IPython events (unless ``[tool.nbops] state_check = false``,
which registers nothing): before a cell runs, what it reads (:mod:`nbops.capture.effects`) and
which execution produced each of those values; after it, what it bound (assignments, ``del``,
in-place changes such as ``model.fit(...)``, and for a cell whose code hides what it binds,
any name whose object changed). Executions the
kernel ran before the extension was loaded are read back from IPython's history (by their
code only). The cell's identity is the front end's cell id when it sends one (JupyterLab,
Notebook 7), else its source. A cell that reads a value its own code produced on an earlier
run is checked after it runs: if the value changed, re-running that code changes it again.

Cost per cell: one parse of its code (already transformed by IPython); the namespace is scanned
only for cells whose code hides what they bind, values are fingerprinted only when a cell re-runs
on its own result (about 0.1 ms a cell: C4 in docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from types import CodeType, FunctionType, ModuleType
from typing import Any

from nbops.capture.effects import SKIP, effects, parse_cell, stores_globals

SHELL_ATTR = "_nbops_state"
_SKIP = SKIP


@dataclass
class Execution:
    """One run of one cell."""

    count: int  # In [count]
    raw: str  # the cell as the user wrote it
    cell_id: str | None
    reads: frozenset[str]
    assigns: frozenset[str]  # names the code binds with =, +=, for, import, def ...
    changes: frozenset[str]  # names it changes in place (model.fit, df["x"] = ...)
    deletes: frozenset[str]
    inputs: dict[str, int] = field(default_factory=dict)  # name -> count of its producer
    tokens: dict[str, str] = field(default_factory=dict)  # name -> version of what it read
    binds: frozenset[str] = frozenset()  # what it actually produced (known after the run)
    started: float = 0.0
    ended: float = 0.0
    replayed: bool = False  # read back from IPython's history (code only)
    repeated: dict[str, int] = field(default_factory=dict)  # name -> the run it re-derived
    failed: bool = False
    opaque: bool = False  # may bind names its code does not show (exec, magics, global ...)
    deps: dict[str, frozenset[str]] = field(default_factory=dict)  # name -> inputs it used

    def inputs_of(self, name: str) -> dict[str, int]:
        """The inputs the value of ``name`` was computed from (all, when unknown)."""
        used = self.deps.get(name)
        if used is None:
            return self.inputs
        return {k: v for k, v in self.inputs.items() if k in used}

    @property
    def first_line(self) -> str:
        for line in self.raw.splitlines():
            if line.strip() and not line.lstrip().startswith(("%%", "#")):
                text = line.strip()
                return text if len(text) <= 50 else text[:47] + "..."
        return self.raw.strip()[:50]


class StateLog:
    """Every execution of one shell and the execution that last bound each name."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.executions: list[Execution] = []
        self.bindings: dict[str, int] = {}  # name -> count of the execution that bound it
        self.tokens: dict[str, str] = {}  # name -> version of its value (see _token)
        self.history: dict[str, list[tuple[int, str]]] = {}  # name -> (count, token) bound
        self.deleted_cells: set[str] = set()
        self.current: Execution | None = None
        self.since = time.time()
        self._ids: dict[str, int] = {}
        self._before: dict[str, str] = {}  # re-run inputs: their identity before the run

    def rebound(self, name: str, after: int, before: float, token: str | None) -> int | None:
        """The first execution between ``after`` and ``before`` (exclusive) that bound
        ``name`` to another version than ``token``; None if none did."""
        for count, version in self.history.get(name, []):
            if after < count < before and version != token:
                return count
        return None

    def by_count(self, count: int) -> Execution | None:
        for ex in reversed(self.executions):
            if ex.count == count:
                return ex
        return None

    def replay_history(self) -> None:
        """Executions the kernel ran before the extension was loaded, by their code."""
        manager = getattr(self.shell, "history_manager", None)
        raw = getattr(manager, "input_hist_raw", None)
        if not isinstance(raw, list):
            return
        for count, source in enumerate(raw):
            if not source or not source.strip() or "load_ext" in source:
                continue  # the %load_ext nbops running now (or an earlier one) binds nothing
            ex = self._execution(count, source, None, None)
            ex.replayed = True
            for name in sorted(ex.reads & (ex.assigns | ex.changes)):
                earlier = self.bindings.get(name)
                producer = self.by_count(earlier) if earlier else None
                if producer is not None and _same_code(producer.raw, source):
                    ex.repeated[name] = producer.count
            self._bind(ex, ex.assigns | ex.changes, ex.deletes)

    def pre_run(self, info: Any) -> None:
        if getattr(info, "silent", False) or not getattr(info, "store_history", True):
            self.current = None
            return
        count = int(getattr(self.shell, "execution_count", 1)) - 1
        meta = getattr(info, "cell_meta", None) or {}
        deleted = meta.get("deletedCells") if isinstance(meta, dict) else None
        if isinstance(deleted, list):
            self.deleted_cells |= {str(d) for d in deleted}
        code = getattr(info, "transformed_cell", None)
        ex = self._execution(count, info.raw_cell, getattr(info, "cell_id", None), code)
        ex.started = time.time()
        ex.opaque = ex.opaque or self._calls_global_writer(ex)
        if ex.opaque:
            self._ids = self._snapshot()
        self.current = ex
        self._before = self._rerun_identities(ex)

    def post_run(self, result: Any) -> None:
        ex, self.current = self.current, None
        if ex is None:
            return
        ex.count = getattr(result, "execution_count", None) or ex.count
        ex.failed = getattr(result, "error_in_exec", None) is not None
        ex.ended = time.time()
        ns = getattr(self.shell, "user_ns", {})
        produced = {name for name in ex.assigns | ex.changes if name in ns}
        gone = {name for name in ex.deletes if name not in ns}
        if ex.opaque:  # what its code does not show: every name whose object changed
            now = self._snapshot()
            produced |= {k for k, v in now.items() if self._ids.get(k) != v}
            gone |= set(self._ids) - set(now)
            self._ids = {}
        self._bind(ex, produced, gone, same=self._check_rerun(ex))

    def _execution(self, count: int, raw: str, cell_id: str | None, code: str | None) -> Execution:
        fx = effects(parse_cell(self.shell, raw, code))
        inputs = {name: self.bindings[name] for name in fx.reads if name in self.bindings}
        tokens = {name: self.tokens[name] for name in inputs if name in self.tokens}
        ex = Execution(count, raw, cell_id, fx.reads, fx.assigns, fx.changes, fx.deletes)
        ex.inputs, ex.tokens, ex.opaque, ex.deps = inputs, tokens, fx.opaque, fx.deps
        return ex

    def _calls_global_writer(self, ex: Execution) -> bool:
        """Does the cell read a notebook function that assigns globals (``global x``)?"""
        ns = getattr(self.shell, "user_ns", {})
        for name in ex.reads:
            code = getattr(ns.get(name), "__code__", None)
            if isinstance(code, CodeType) and stores_globals(code):
                return True
        return False

    def _bind(
        self,
        ex: Execution,
        produced: set[str] | frozenset[str],
        gone: set[str] | frozenset[str],
        same: set[str] | None = None,
    ) -> None:
        ex.binds = frozenset(produced)
        ns = getattr(self.shell, "user_ns", {})
        for name in produced:
            self.bindings[name] = ex.count
            if name not in (same or ()) or name not in self.tokens:  # equal: same version
                self.tokens[name] = _token(ns[name], ex.count) if name in ns else f"#{ex.count}"
            self.history.setdefault(name, []).append((ex.count, self.tokens[name]))
        for name in gone:
            self.bindings.pop(name, None)
            self.tokens.pop(name, None)
        self.executions.append(ex)

    def _rerun_identities(self, ex: Execution) -> dict[str, str]:
        """Inputs this cell's own code produced on an earlier run: their identity now, to see
        after the run whether running the code again changed them."""
        ns = getattr(self.shell, "user_ns", {})
        names = [n for n in ex.inputs if n in ex.assigns | ex.changes and n in ns]
        names = [n for n in names if self._same_producer(ex, n)]
        return {n: identity for n in names if (identity := _identity(ns[n])) is not None}

    def _same_producer(self, ex: Execution, name: str) -> bool:
        producer = self.by_count(ex.inputs[name])
        return producer is not None and _same_code(producer.raw, ex.raw)

    def _check_rerun(self, ex: Execution) -> set[str]:
        """Mark the inputs a re-run changed (``repeated``); the names it left equal."""
        ns = getattr(self.shell, "user_ns", {})
        same = set()
        for name, before in self._before.items():
            if name in ns and _identity(ns[name]) != before:
                ex.repeated[name] = ex.inputs[name]
            elif name in ns:
                same.add(name)
        self._before = {}
        return same

    def _snapshot(self) -> dict[str, int]:
        ns = getattr(self.shell, "user_ns", {})
        return {k: id(v) for k, v in list(ns.items()) if not k.startswith("_") and k not in _SKIP}


def watch(shell: Any) -> StateLog:
    """Start watching ``shell``'s executions (once per shell); the log is on the shell."""
    log = getattr(shell, SHELL_ATTR, None)
    if isinstance(log, StateLog):
        return log
    log = StateLog(shell)
    log.replay_history()
    shell.events.register("pre_run_cell", log.pre_run)
    shell.events.register("post_run_cell", log.post_run)
    setattr(shell, SHELL_ATTR, log)
    return log


def unwatch(shell: Any) -> None:
    """Stop watching (``%unload_ext nbops``; tests)."""
    log = log_of(shell)
    if log is None:
        return
    for event, hook in (("pre_run_cell", log.pre_run), ("post_run_cell", log.post_run)):
        with contextlib.suppress(ValueError):
            shell.events.unregister(event, hook)
    delattr(shell, SHELL_ATTR)


def log_of(shell: Any) -> StateLog | None:
    log = getattr(shell, SHELL_ATTR, None)
    return log if isinstance(log, StateLog) else None


def _token(value: Any, count: int) -> str:
    """A version of a value that stays the same when a cell re-creates an equal one cheaply
    recognised (a module, a function or class with the same code, a short plain value);
    anything else is versioned by the execution that bound it."""
    if isinstance(value, ModuleType):
        return f"module:{value.__name__}"
    if isinstance(value, bool | int | float | type(None)) or (
        isinstance(value, str) and len(value) <= 200
    ):
        return f"value:{type(value).__name__}:{value!r}"
    if isinstance(value, FunctionType | type) and getattr(value, "__module__", "") == "__main__":
        identity = _identity(value)
        if identity is not None:
            return identity
    return f"#{count}"


def _same_code(a: str, b: str) -> bool:
    return bool(a) and a.strip() == b.strip()


def _identity(value: Any) -> str | None:
    """The content identity of a value (the cache's); None when it has none."""
    try:
        from nbops.hashing.identity import Identities

        return Identities({"v": value}).of_name("v")
    except Exception:
        return None
