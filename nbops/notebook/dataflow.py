"""Which variables flow between steps: def-use over each cell's AST, in pipeline order.

A name a step reads before binding it comes, in this order, from a setup cell, the parameters,
the latest earlier step that binds it (an :class:`~nbops.notebook.plan.Artifact` that step
saves and this one loads) or builtins; anything else is a :class:`NotebookError`. Reads come
from :func:`nbops.capture.scan.scan_cell` per top-level statement, narrowed with
:mod:`symtable` so that function locals, comprehension variables and ``for``/``with``/``except``
targets are not taken for reads of globals.

Known limits (Kale has the same ones): aliasing (``b = a; b.append(1)``) and mutation through
method calls are not seen, except ``x[...] = ``, ``x.attr = ``, ``x.fit(...)`` and
``inplace=True`` calls, which count as the step redefining ``x``; names brought in by
``from m import *`` are unknown (undefined-name errors are then skipped); files are found only
from string literals, and only when they exist when you promote.
"""

from __future__ import annotations

import ast
import builtins
import os
import symtable
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

from nbops.capture.scan import scan_cell
from nbops.errors import NotebookError
from nbops.notebook.parse import cell_error
from nbops.notebook.plan import Artifact, Cell, Plan, Step
from nbops.notebook.tags import classify

# Names IPython puts in every kernel's namespace.
_IPYTHON_NAMES = frozenset({"get_ipython", "display", "In", "Out", "exit", "quit"}) | frozenset(
    {"_", "__", "___", "_i", "_ii", "_iii", "_ih", "_oh", "_dh"}
)
# Cell magics whose body is Python that runs in the kernel's namespace.
_PYTHON_BODY_MAGICS = frozenset({"time", "timeit", "capture", "prun", "track", "debug"})
_UNDEFINED_FIX = "define it in an earlier step or a setup cell"


@dataclass
class _Flow:
    """What one code cell reads from and binds in the global namespace."""

    cell: Cell
    reads: list[str] = field(default_factory=list)  # read before this cell binds them
    binds: dict[str, str] = field(default_factory=dict)  # name -> "value" | "import" | "def"
    paths: list[str] = field(default_factory=list)
    star: bool = False  # `from m import *`


@dataclass
class _Context:
    plan: Plan
    root: Path
    setup: set[str] = field(default_factory=set)
    builtins: frozenset[str] = frozenset()
    lenient: bool = False  # a setup cell star-imports: unknown names may come from it
    producers: dict[str, tuple[Step, _Flow]] = field(default_factory=dict)
    transform: Callable[[str], str] | None = None

    def python(self, source: str) -> str:
        """IPython syntax (``%magic``, ``!cmd``, ``x?``) as the Python IPython would run."""
        if not any(ch in source for ch in "%!?"):
            return source
        if self.transform is None:
            from IPython.core.inputtransformer2 import TransformerManager

            self.transform = TransformerManager().transform_cell
        return self.transform(source)


def infer_dataflow(plan: Plan) -> Plan:
    """Fill each step's inputs, outputs, params, files, upstream and metrics (in place)."""
    ctx = _Context(plan, Path(plan.notebook).parent, builtins=frozenset(dir(builtins)))
    ctx.builtins |= _IPYTHON_NAMES
    setup = [_analyse(cell, ctx) for cell in plan.setup if cell.kind == "code"]
    ctx.setup = {name for flow in setup for name in flow.binds}
    ctx.lenient = any(flow.star for flow in setup)
    setup_files = [p for flow in setup for p in flow.paths]
    flows = {
        step.name: [_analyse(c, ctx) for c in step.cells if c.kind == "code"] for step in plan.steps
    }
    for step in plan.steps:
        _resolve_step(step, flows, ctx)
        _collect_files(step, [p for f in flows[step.name] for p in f.paths] + setup_files, ctx)
        _collect_metrics(step, flows[step.name], plan)
    for cell in plan.metrics_cells:
        _printed_metrics(cell, flows, plan)
    _link_upstream(plan)
    return plan


def _analyse(cell: Cell, ctx: _Context) -> _Flow:
    flow = _Flow(cell)
    source = cell.source.lstrip()
    if source.startswith("%%"):
        first, _, body = source.partition("\n")
        magic = (first[2:].split() or [""])[0]
        if magic not in _PYTHON_BODY_MAGICS:
            ctx.plan.notes.append(
                f"{cell.where} runs %%{magic}: nbops cannot see what it reads or writes"
            )
            return flow
        source = body
    code = ctx.python(source)
    scan = scan_cell(code)
    if scan.syntax_error:
        raise cell_error(
            ctx.plan.notebook,
            cell,
            f"not valid Python: {scan.syntax_error}",
            "fix it, or tag the cell `skip`",
        )
    tree = ast.parse(code)
    global_reads, flow.binds = _scopes(symtable.symtable(code, "<cell>", "exec"))
    for name in _mutated(tree, scan.fits, scan.calls):
        flow.binds.setdefault(name, "value")
    flow.reads = _ordered_reads(tree, global_reads)
    flow.paths = scan.paths
    flow.star = any(
        isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names)
        for node in ast.walk(tree)
    )
    if flow.star:
        ctx.plan.notes.append(
            f"{cell.where} uses `import *`: the names it brings in are not "
            "checked; import them by name"
        )
    return flow


def _scopes(table: symtable.SymbolTable) -> tuple[set[str], dict[str, str]]:
    """Names the cell reads from globals (at top level or in any nested scope) and binds."""
    reads: set[str] = set()
    binds: dict[str, str] = {}
    for sym in table.get_symbols():
        name = sym.get_name()
        if sym.is_referenced():
            reads.add(name)
        if sym.is_imported():
            binds[name] = "import"
        elif sym.is_namespace():
            binds[name] = "def"
        elif sym.is_assigned():
            binds[name] = "value"
    stack = list(table.get_children())
    while stack:
        child = stack.pop()
        stack.extend(child.get_children())
        for sym in child.get_symbols():
            if sym.is_global() and sym.is_referenced():
                reads.add(sym.get_name())
            if sym.is_declared_global() and sym.is_assigned():
                binds.setdefault(sym.get_name(), "value")
    return reads, binds


def _ordered_reads(tree: ast.Module, global_reads: set[str]) -> list[str]:
    """Globals read before the cell binds them, statement by statement (scan_cell per stmt)."""
    bound: set[str] = set()
    reads: list[str] = []
    for stmt in tree.body:
        scan = scan_cell(ast.unparse(stmt))
        fresh = (scan.free & global_reads) - bound - _bound_first(stmt)
        reads.extend(sorted(fresh - set(reads)))
        bound |= scan.stored
    return reads


def _bound_first(stmt: ast.stmt) -> set[str]:
    """Names a compound statement binds before its body reads them (loop/with/except targets)."""
    if isinstance(stmt, ast.For | ast.AsyncFor):
        return _names(stmt.target) - _names(stmt.iter)
    if isinstance(stmt, ast.With | ast.AsyncWith):
        targets = {
            n for item in stmt.items if item.optional_vars for n in _names(item.optional_vars)
        }
        return targets - {n for item in stmt.items for n in _names(item.context_expr)}
    if isinstance(stmt, ast.Try | ast.TryStar):
        return {handler.name for handler in stmt.handlers if handler.name}
    return set()


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _mutated(tree: ast.Module, fits: dict[str, object], calls: list) -> set[str]:
    """Globals changed in place at top level: ``x[k] = v``, ``x.a = v``, ``x.fit()``, inplace."""
    names = set(fits) | {
        call.callee.split(".")[0]
        for call in calls
        if "inplace" in call.keywords and "." in call.callee
    }
    for stmt in tree.body:
        targets = getattr(stmt, "targets", None) or [getattr(stmt, "target", None)]
        for target in targets:
            while isinstance(target, ast.Subscript | ast.Attribute):
                target = target.value
                if isinstance(target, ast.Name):
                    names.add(target.id)
    return names


def _resolve_step(step: Step, flows: dict[str, list[_Flow]], ctx: _Context) -> None:
    """Sort each name the step reads into params, inputs (artifacts) or an error."""
    own = flows[step.name]
    binds_anywhere = {name for flow in own for name in flow.binds}
    lenient = ctx.lenient or any(flow.star for flow in own)
    bound: set[str] = set()
    for flow in own:
        for name in flow.reads:
            if name in bound or name in ctx.setup:
                continue
            if name in ctx.plan.parameters:
                _append(step.params, name)
            elif name in ctx.producers:
                _load(step, name, flow, ctx)
            elif name not in ctx.builtins and name not in binds_anywhere and not lenient:
                raise _undefined(name, step, flow.cell, flows, ctx.plan)
        bound |= flow.binds.keys()
    for flow in own:
        for name in flow.binds:
            if name in ctx.setup or name in ctx.plan.parameters:
                what = "a setup cell's" if name in ctx.setup else "the parameter"
                ctx.plan.notes.append(
                    f"step {step.name!r} ({flow.cell.where}) reassigns "
                    f"{what} `{name}`; other steps still see the original"
                )
            else:
                ctx.producers[name] = (step, flow)


def _load(step: Step, name: str, flow: _Flow, ctx: _Context) -> None:
    producer, source = ctx.producers[name]
    kind = source.binds[name]
    if kind != "value":
        what = "imported" if kind == "import" else "defined (def/class)"
        raise cell_error(
            ctx.plan.notebook,
            flow.cell,
            f"`{name}` is {what} in step {producer.name!r} ({source.cell.where}) but used in "
            f"step {step.name!r}; steps do not share modules or functions",
            f"move it to a cell tagged `setup`, or {kind} it again in step {step.name!r}",
            name=name,
            step=step.name,
        )
    if all(artifact.name != name for artifact in step.inputs):
        step.inputs.append(Artifact(name=name, producer=producer.name))
    _append(producer.outputs, name)


def _undefined(
    name: str, step: Step, cell: Cell, flows: dict[str, list[_Flow]], plan: Plan
) -> NotebookError:
    """The error for a name nothing defines, saying where it is defined if anywhere."""
    hint = ""
    later = [
        s
        for s in plan.steps[plan.steps.index(step) + 1 :]
        for f in flows[s.name]
        if name in f.binds
    ]
    if later:
        hint = f" (it is defined later, in step {later[0].name!r})"
    else:
        for skipped in plan.skipped:
            if skipped.kind == "code" and name in scan_cell(skipped.source).stored:
                hint = f" (it is defined only in {skipped.where}, which is tagged skip)"
                break
    return cell_error(
        plan.notebook,
        cell,
        f"`{name}` is used in step {step.name!r} but no earlier step, setup cell or "
        f"parameter defines it{hint}",
        f"{_UNDEFINED_FIX}" + (" (or remove the skip tag)" if "skip" in hint else ""),
        name=name,
        step=step.name,
    )


def _append(items: list[str], name: str) -> None:
    if name not in items:
        items.append(name)


def _collect_files(step: Step, paths: list[str], ctx: _Context) -> None:
    """Path literals that exist next to the notebook become the step's DVC dependencies."""
    for text in paths:
        dep = _dependency(text, ctx.root)
        if dep:
            _append(step.files, dep)


def _dependency(text: str, root: Path) -> str | None:
    path = Path(text).expanduser()
    full = path if path.is_absolute() else root / path
    try:
        if not full.exists():
            return None
        relative = Path(os.path.relpath(full, root))
    except (OSError, ValueError):  # unreadable, or on another drive
        return None
    if full.is_dir() and (relative == Path(".") or relative.parts[0] == ".."):
        return None  # the project itself or a folder outside it: not a useful dependency
    return relative.as_posix()


def _collect_metrics(step: Step, flows: list[_Flow], plan: Plan) -> None:
    """Names assigned in cells tagged ``metrics`` are the step's (and pipeline's) metrics."""
    for flow in flows:
        if any(classify(tag).role == "metrics" for tag in flow.cell.tags):
            for name, kind in flow.binds.items():
                if kind == "value" and not name.startswith("_"):
                    _append(step.metrics, name)
                    _append(plan.metrics, name)


def _printed_metrics(cell: Cell, flows: dict[str, list[_Flow]], plan: Plan) -> None:
    """Kale's pipeline-metrics: ``print(name)`` lines, each name from the latest step before."""
    fix = "keep only `print(name)` lines in a pipeline-metrics cell"
    try:
        tree = ast.parse(cell.source)
    except SyntaxError as exc:
        raise cell_error(plan.notebook, cell, f"not valid Python ({exc.msg})", fix) from None
    for stmt in tree.body:
        name = _printed_name(stmt)
        if name is None:
            line = ast.get_source_segment(cell.source, stmt) or ast.unparse(stmt)
            raise cell_error(plan.notebook, cell, f"`{line}` is not print(name)", fix, line=line)
        producers = [
            s
            for s in plan.steps
            for f in flows[s.name]
            if name in f.binds and f.cell.index < cell.index
        ]
        if not producers:
            raise cell_error(
                plan.notebook,
                cell,
                f"metric `{name}` is not computed by any step above this cell",
                _UNDEFINED_FIX,
                name=name,
            )
        _append(producers[-1].metrics, name)
        _append(plan.metrics, name)


def _printed_name(stmt: ast.stmt) -> str | None:
    call = stmt.value if isinstance(stmt, ast.Expr) else None
    if (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Name)
        and call.func.id == "print"
        and len(call.args) == 1
        and isinstance(call.args[0], ast.Name)
        and not call.keywords
    ):
        return call.args[0].id
    return None


def _link_upstream(plan: Plan) -> None:
    """Upstream = producers of the inputs + prev: tags; check for cycles, keep a run order."""
    order = {step.name: i for i, step in enumerate(plan.steps)}
    for step in plan.steps:
        for name in step.explicit_upstream:
            if name not in order:
                cell = _prev_cell(step, name)
                known = ", ".join(order)
                raise cell_error(
                    plan.notebook,
                    cell,
                    f"prev:{name} names no step",
                    f"use one of: {known}",
                    step=step.name,
                )
        wanted = {a.producer for a in step.inputs} | set(step.explicit_upstream)
        step.upstream = sorted(wanted, key=order.__getitem__)
    cycle = _find_cycle(plan)
    if cycle:
        forward = [(a, b) for a, b in pairwise(cycle) if order[b] > order[a]]
        a, b = forward[0] if forward else (cycle[0], cycle[1])
        raise cell_error(
            plan.notebook,
            _prev_cell(plan.step(a), b),
            "steps wait for each other in a cycle: " + " -> ".join(reversed(cycle)),
            f"remove the prev:{b} tag from step {a!r}",
            cycle=list(reversed(cycle)),
        )
    _run_order(plan, order)


def _prev_cell(step: Step, name: str) -> Cell:
    for cell in step.cells:
        if any(classify(t).role == "prev" and classify(t).arg.lower() == name for t in cell.tags):
            return cell
    return next(c for c in step.cells if c.kind == "code")


def _find_cycle(plan: Plan) -> list[str]:
    """A dependency cycle as [a, b, ..., a] (a needs b needs ... needs a), or []."""
    needs = {step.name: step.upstream for step in plan.steps}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> list[str]:
        state[name] = 1
        path.append(name)
        for dep in needs[name]:
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state and (found := visit(dep)):
                return found
        state[name] = 2
        path.pop()
        return []

    for name in needs:
        if name not in state and (found := visit(name)):
            return found
    return []


def _run_order(plan: Plan, order: dict[str, int]) -> None:
    """A prev: tag may point forward; then reorder steps so each runs after its upstream."""
    if all(order[up] < order[s.name] for s in plan.steps for up in s.upstream):
        return
    done: list[Step] = []
    remaining = list(plan.steps)
    while remaining:
        ready = next(s for s in remaining if all(u in {d.name for d in done} for u in s.upstream))
        done.append(ready)
        remaining.remove(ready)
    plan.steps = done
    plan.notes.append("prev: tags reorder the steps: " + " -> ".join(s.name for s in done))
