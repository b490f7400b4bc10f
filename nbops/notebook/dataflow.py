"""Which variables flow between steps: def-use over each cell's AST, in pipeline order.

A name a step reads before binding it comes, in this order, from a setup cell, the parameters,
the latest earlier step that binds it (an :class:`~nbops.notebook.plan.Artifact` that step
saves and this one loads) or builtins; anything else is a :class:`NotebookError`, because the
step would fail with a NameError when it runs on its own. Reads come from
:func:`nbops.capture.scan.scan_cell`, one top-level statement at a time, narrowed with
:mod:`symtable` so that function locals, comprehension variables and ``for``/``with``/``except``
targets are not taken for reads of globals.

Known limits (Kale has the same ones): aliasing (``b = a; b.append(1)``) and mutation through
method calls are not seen, except ``x[...] = ``, ``x.attr = ``, ``x.fit(...)`` and
``inplace=True`` calls and models fitted in a loop over a collection (``for m in models:
m.fit(...)``), which count as the step redefining ``x``; names brought in by ``from m import *``
are unknown (undefined-name errors are then skipped). Files are found by constant-folding path
expressions (:mod:`nbops.notebook.paths`) and by ``data:PATH`` tags, and only when they exist
when you promote. An untagged cell that only imports, used by a later step, moves to setup (as
it would before the first step) instead of stopping promote.
"""

from __future__ import annotations

import ast
import builtins
import os
import symtable
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbops.capture.scan import scan_cell
from nbops.errors import NotebookError
from nbops.notebook.cell_names import mutated, ordered_reads, scopes
from nbops.notebook.paths import CellPaths, Read, cell_paths
from nbops.notebook.plan import Artifact, Cell, DataRead, Plan, Step, cell_error
from nbops.notebook.setup_moves import MoveToSetup, movable, move_to_setup
from nbops.notebook.step_graph import link_upstream
from nbops.notebook.tags import classify

# Names IPython puts in every kernel's namespace.
_IPYTHON_NAMES = frozenset({"get_ipython", "display", "In", "Out", "exit", "quit"}) | frozenset(
    {"_", "__", "___", "_i", "_ii", "_iii", "_ih", "_oh", "_dh"}
)
# Cell magics whose body is Python run in the kernel's namespace (others are opaque).
_PYTHON_BODY_MAGICS = frozenset({"time", "timeit", "capture", "prun", "track", "debug"})
_UNDEFINED_FIX = "define it in an earlier step or a setup cell"


@dataclass
class _Flow:
    """What one code cell reads from and binds in the global namespace."""

    cell: Cell
    reads: list[str] = field(default_factory=list)  # read before this cell binds them
    binds: dict[str, str] = field(default_factory=dict)  # name -> "value" | "import" | "def"
    paths: list[str] = field(default_factory=list)
    data: list[Read] = field(default_factory=list)  # data-reading calls (for the data gate)
    star: bool = False  # `from m import *`


@dataclass
class _Context:
    plan: Plan
    root: Path  # the notebook's folder: file paths are relative to it
    known: frozenset[str] = frozenset()  # builtins and IPython's names
    setup: set[str] = field(default_factory=set)
    lenient: bool = False  # a setup cell star-imports: unknown names may come from it
    producers: dict[str, tuple[Step, _Flow]] = field(default_factory=dict)
    transform: Callable[[str], str] | None = None
    consts: dict[str, Any] = field(default_factory=dict)  # constants folded so far, in order

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
    notes = list(plan.notes)
    for _ in range(sum(len(s.cells) for s in plan.steps) + 1):
        try:
            return _infer(plan)
        except MoveToSetup as move:
            plan.notes[:] = notes
            move_to_setup(plan, move.cell, move.step)
            notes = list(plan.notes)
    raise AssertionError("unreachable: each retry moves one cell out of the steps")


def _infer(plan: Plan) -> Plan:
    known = frozenset(dir(builtins)) | _IPYTHON_NAMES
    ctx = _Context(plan, Path(plan.notebook).parent, known, consts=dict(plan.parameters))
    for step in plan.steps:
        step.inputs, step.outputs, step.params, step.files, step.metrics = [], [], [], [], []
    plan.metrics, plan.data_reads = [], []
    setup = [_analyse(cell, ctx) for cell in plan.setup if cell.kind == "code"]
    ctx.setup = {name for flow in setup for name in flow.binds}
    ctx.lenient = any(flow.star for flow in setup)
    setup_files = [path for flow in setup for path in flow.paths]
    flows = {s.name: [_analyse(c, ctx) for c in s.cells if c.kind == "code"] for s in plan.steps}
    for step in plan.steps:
        _resolve_step(step, flows, ctx)
        _collect_files(step, [p for f in flows[step.name] for p in f.paths] + setup_files, ctx)
        _collect_metrics(step, flows[step.name], plan)
        _collect_reads(step.name, flows[step.name], ctx)
    _collect_reads("", setup, ctx)
    for cell in plan.metrics_cells:
        _printed_metrics(cell, flows, plan)
    link_upstream(plan)
    return plan


def _analyse(cell: Cell, ctx: _Context) -> _Flow:
    flow = _Flow(cell)
    source = cell.source.lstrip()
    if source.startswith("%%"):
        first, _, source = source.partition("\n")
        magic = (first[2:].split() or [""])[0]
        if magic not in _PYTHON_BODY_MAGICS:
            note = f"{cell.where} runs %%{magic}: nbops cannot see what it reads or writes"
            ctx.plan.notes.append(note)
            return flow
    code = ctx.python(source)
    scan = scan_cell(code)
    try:
        if scan.syntax_error:
            raise SyntaxError(scan.syntax_error)
        table = symtable.symtable(code, "<cell>", "exec")
    except SyntaxError as exc:
        problem = f"not valid Python: {scan.syntax_error or exc}"
        raise cell_error(
            ctx.plan.notebook, cell, problem, "fix it, or tag the cell `skip`"
        ) from None
    tree = ast.parse(code)
    global_reads, flow.binds = scopes(table)
    for name in mutated(tree, scan.fits, scan.calls):
        flow.binds.setdefault(name, "value")
    flow.reads = ordered_reads(tree, global_reads)
    try:
        found = cell_paths(tree, code, ctx.consts)
    except RecursionError:  # absurdly deep expressions: only the literals count
        found = CellPaths()
    flow.paths = list(dict.fromkeys([*scan.paths, *found.paths, *_tagged_paths(cell, ctx)]))
    flow.data = found.reads
    flow.star = any(
        isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names)
        for node in tree.body
    )
    if flow.star:
        note = f"{cell.where} uses `import *`: its names are not checked; import them by name"
        ctx.plan.notes.append(note)
    return flow


def _resolve_step(step: Step, flows: dict[str, list[_Flow]], ctx: _Context) -> None:
    """Sort each name the step reads into setup, params, inputs (artifacts) or an error."""
    own = flows[step.name]
    binds_anywhere = {name for flow in own for name in flow.binds}  # e.g. a def reading a
    lenient = ctx.lenient or any(flow.star for flow in own)  # global bound further down
    bound: set[str] = set()
    for flow in own:
        for name in flow.reads:
            if name in bound or name in ctx.setup:
                continue
            if name in ctx.plan.parameters:
                _append(step.params, name)
            elif name in ctx.producers:
                _load(step, name, flow, ctx)
            elif name not in ctx.known and name not in binds_anywhere and not lenient:
                raise _undefined(name, step, flow.cell, flows, ctx.plan)
        bound |= flow.binds.keys()
    for flow in own:
        for name, kind in flow.binds.items():
            if name not in ctx.setup and name not in ctx.plan.parameters:
                ctx.producers[name] = (step, flow)
            elif kind == "value":
                what = "a setup cell's" if name in ctx.setup else "the parameter"
                ctx.plan.notes.append(
                    f"step {step.name!r} ({flow.cell.where}) reassigns {what} `{name}`; "
                    "other steps still see the original"
                )


def _load(step: Step, name: str, flow: _Flow, ctx: _Context) -> None:
    """``step`` loads ``name`` from its latest producer, which saves it."""
    producer, source = ctx.producers[name]
    kind = source.binds[name]
    if kind == "import" and movable(source.cell, ctx.python):
        raise MoveToSetup(source.cell, producer)
    if kind != "value":
        what = "imported" if kind == "import" else "defined (def/class)"
        problem = (
            f"`{name}` is {what} in step {producer.name!r} ({source.cell.where}) but used in "
            f"step {step.name!r}; steps do not pass modules or functions on"
        )
        again = "import" if kind == "import" else "define"
        fix = f"move it to a cell tagged `setup`, or {again} it again in step {step.name!r}"
        raise cell_error(ctx.plan.notebook, flow.cell, problem, fix, name=name, step=step.name)
    if all(artifact.name != name for artifact in step.inputs):
        step.inputs.append(Artifact(name=name, producer=producer.name))
    _append(producer.outputs, name)


def _undefined(
    name: str, step: Step, cell: Cell, flows: dict[str, list[_Flow]], plan: Plan
) -> NotebookError:
    """The error for a name nothing defines, saying where it is defined if anywhere."""
    later = [s for s in plan.steps if any(name in f.binds for f in flows[s.name])]
    skipped = [c for c in plan.skipped if c.kind == "code" and name in scan_cell(c.source).stored]
    hint, fix = "", _UNDEFINED_FIX
    if later:
        hint = f" (it is defined later, in step {later[0].name!r})"
    elif skipped:
        hint = f" (it is defined only in {skipped[0].where}, which is tagged skip)"
        fix += " (or remove the skip tag)"
    problem = (
        f"`{name}` is used in step {step.name!r} but no earlier step, setup cell or parameter "
        f"defines it{hint}"
    )
    return cell_error(plan.notebook, cell, problem, fix, name=name, step=step.name)


def _append(items: list[str], name: str) -> None:
    if name not in items:
        items.append(name)


def _tagged_paths(cell: Cell, ctx: _Context) -> list[str]:
    """``data:PATH`` tags: files the user says the cell reads; each must exist."""
    paths = []
    for tag in cell.tags:
        match = classify(tag)
        if match.role != "data":
            continue
        if not match.arg or _dependency(match.arg, ctx.root) is None:
            problem = f"tag {tag!r} names no file or folder next to the notebook"
            fix = "give the path relative to the notebook's folder, e.g. data:data/train.csv"
            raise cell_error(ctx.plan.notebook, cell, problem, fix, tag=tag)
        paths.append(match.arg)
    return paths


def _collect_reads(step: str, flows: list[_Flow], ctx: _Context) -> None:
    """The data-reading calls, with the dependency each became (for the data gate's notes)."""
    for flow in flows:
        for read in flow.data:
            file = _dependency(read.text, ctx.root) if read.text else None
            ctx.plan.data_reads.append(DataRead(flow.cell, step, read.call, read.text, file))


def _collect_files(step: Step, paths: list[str], ctx: _Context) -> None:
    """Path literals that exist next to the notebook become the step's DVC dependencies."""
    for text in paths:
        dep = _dependency(text, ctx.root)
        if dep:
            _append(step.files, dep)


def _dependency(text: str, root: Path) -> str | None:
    """``text`` relative to ``root`` (posix) if it names an existing file or folder in it."""
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
    """Kale's pipeline-metrics: ``print(name)`` lines, each name from the latest step above."""
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
            if any(name in f.binds and f.cell.index < cell.index for f in flows[s.name])
        ]
        if not producers:
            problem = f"metric `{name}` is not computed by any step above this cell"
            raise cell_error(plan.notebook, cell, problem, _UNDEFINED_FIX, name=name)
        _append(producers[-1].metrics, name)
        _append(plan.metrics, name)


def _printed_name(stmt: ast.stmt) -> str | None:
    call = stmt.value if isinstance(stmt, ast.Expr) else None
    if not isinstance(call, ast.Call) or call.keywords or len(call.args) != 1:
        return None
    arg = call.args[0]
    is_print = isinstance(call.func, ast.Name) and call.func.id == "print"
    return arg.id if is_print and isinstance(arg, ast.Name) else None
