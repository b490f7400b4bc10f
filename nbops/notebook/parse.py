"""Reading a tagged notebook into a :class:`~nbops.notebook.plan.Plan`: cells grouped into steps.

Variables flowing between steps are :mod:`nbops.notebook.dataflow`'s job. nbformat is imported
inside :func:`parse_notebook` (about a second to import with jupyter_server installed). Rules
(the vocabulary is :mod:`nbops.notebook.tags`):

* a ``step:NAME`` cell starts a step; untagged cells join the step above them (below Kale's
  ``imports``/``functions``/``pipeline-metrics`` cells they join that block, as in Kale);
* untagged code cells before the first step form an implicit step named ``prepare``, except
  cells that only import or define functions/classes: those are setup;
* markdown cells travel with the next code cell's step; they are kept, never run;
* with no ``step:`` tags, ``split="headings"`` starts a step at each ``## Heading``, otherwise
  the whole notebook is one step named after the notebook.
"""

from __future__ import annotations

import ast
import json
import keyword
import re
import warnings
from pathlib import Path
from typing import Any

from nbops.errors import NotebookError, UsageError
from nbops.notebook.order import out_of_order_note
from nbops.notebook.plan import Cell, Plan, Step
from nbops.notebook.tags import (
    MAX_NAME_LENGTH,
    PLACEMENT_ROLES,
    TagMatch,
    classify,
    ignored_reason,
    is_step_name,
    slugify,
)

SPLITS = ("tags", "headings")
IMPLICIT_STEP = "prepare"
_TRACK_MAGIC = re.compile(r"%%track(\s.*)?")
_CACHED = re.compile(r"%%track\b[^\n]*--cache(?:=on)?(?![=\w])")  # not --cache=force
_LOAD_EXT = re.compile(r"%(re)?load_ext\s+nbops\s*")
_LINES = re.compile(r"\r\n|\r|\n")
_H2 = re.compile(r"^##[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
# tags that say something about the cell's step (the gate's are read by notebook/evaluation.py
# and the data tag by notebook/dataflow.py)
_MODIFIERS = ("prev", "metrics", "gate", "gate_model", "gate_metric", "data")
_PLAIN = (type(None), bool, int, float, str)
_PLAIN_HINT = "use None, a bool, number, string, list or dict (what params.yaml holds); "
_NAME_RULE = (
    f"use lower-case letters, digits and _, starting with a letter, at most {MAX_NAME_LENGTH} "
    "characters"
)


def cell_error(notebook: str, cell: Cell, problem: str, fix: str, **fields: Any) -> NotebookError:
    """A :class:`NotebookError` that names the notebook and the cell (number and first line)."""
    return NotebookError(
        f"{notebook}, {cell.where}: {problem}", fix=fix, path=notebook, cell=cell.where, **fields
    )


def parse_notebook(path: str | Path, split: str = "tags") -> Plan:
    """Read ``path`` and group its cells into steps; dataflow is left empty.

    ``split`` applies only when no cell has a ``step:`` tag: ``"headings"`` splits at H2
    headings, ``"tags"`` keeps the whole notebook as one step.
    """
    if split not in SPLITS:
        raise UsageError(
            f"unknown split {split!r}", fix=f"use one of: {', '.join(SPLITS)}", split=split
        )
    path = Path(path)
    plan = Plan(name=slugify(path.stem) or "pipeline", notebook=_shown(path))
    nb = _read(path)
    cells = _cells(nb, plan)
    order = out_of_order_note(nb.cells)  # the pipeline runs top to bottom: say if it differs
    if order:
        plan.notes.append(order)
    tagged = any(classify(tag).role == "step" for cell in cells for tag in cell.tags)
    if split == "headings" and tagged:
        plan.notes.append("the notebook has step: tags, so they split it (not its headings)")
    splitter = _Splitter(plan, headings=split == "headings" and not tagged)
    for cell in cells:
        splitter.add(cell)
    splitter.finish()
    return plan


def _shown(path: Path) -> str:
    """The path as the user will recognise it: relative to the working directory if inside."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def _read(path: Path) -> Any:
    """The notebook as an nbformat v4 node, or a NotebookError saying why it is not one."""
    shown = _shown(path)
    fix = "pass a Jupyter notebook (.ipynb) saved by Jupyter, or repair it with `git checkout`"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
            raise ValueError("no list of cells")
        from nbops._lazy import without_slow_optional_imports

        with without_slow_optional_imports():
            import nbformat  # lazy: ~1 s to import with jupyter_server installed

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return nbformat.reads(json.dumps(data), as_version=4)
    except FileNotFoundError:
        problem, fix = "no such notebook", "check the path (run from the project folder)"
    except json.JSONDecodeError as exc:
        problem = f"not a notebook (invalid JSON: {exc})"
    except Exception as exc:  # nbformat raises many kinds for malformed notebooks
        problem = f"not a notebook ({exc})"
    raise NotebookError(f"{shown}: {problem}", fix=fix, path=shown)


def _cells(nb: Any, plan: Plan) -> list[Cell]:
    """Cells as promote sees them: ``%%track`` lines and ``%load_ext nbops`` dropped."""
    cells: list[Cell] = []
    tracked: list[int] = []
    for index, node in enumerate(nb.cells):
        cell_type, source, tags = _parts(node, index, plan)
        offset, cached = 0, False
        if cell_type == "code":
            cached = _CACHED.match(source.lstrip()) is not None
            source, was_tracked, offset = _clean(source)
            if was_tracked:
                tracked.append(index + 1)
            if not source.strip() and not tags:
                continue
        kind = cell_type if cell_type in ("code", "markdown") else "raw"
        cell = Cell(index=index, kind=kind, source=source, tags=tags, line_offset=offset)
        cell.cache = cached
        cells.append(cell)
    if tracked:
        plan.notes.append(
            f"removed %%track from cell(s) {_numbers(tracked)}: the pipeline tracks each step"
        )
    return cells


def _parts(node: Any, index: int, plan: Plan) -> tuple[str, str, list[str]]:
    """A cell's (type, source, tags). nbformat only warns about a hand-edited cell that breaks
    its schema; a missing type, ``"tags": "step:x"`` or a non-text source is refused here
    rather than crashing later or being misread (a string of tags read letter by letter)."""
    metadata = node.get("metadata") if isinstance(node, dict) else None
    raw_tags = (metadata or {}).get("tags") if isinstance(metadata, dict | None) else None
    cell_type = node.get("cell_type") if isinstance(node, dict) else None
    source = node.get("source", "") if isinstance(node, dict) else None
    problem = ""
    if not isinstance(node, dict) or not isinstance(cell_type, str):
        problem = "it is not a cell (no cell_type)"
    elif not isinstance(metadata, dict | None) or not isinstance(raw_tags, list | None):
        problem = f"its metadata.tags is {raw_tags!r}, not a list of tags"
    elif not isinstance(source, str):
        problem = f"its source is {type(source).__name__}, not text"
    if not problem and isinstance(source, str) and (broken := _unencodable(source)):
        raise NotebookError(
            f"{plan.notebook}, cell {index + 1}: {broken}",
            fix="delete the character in Jupyter, or the \\udXXX escape in the notebook's JSON, "
            "then promote again",
            path=plan.notebook,
            cell=index + 1,
        )
    if problem:
        raise NotebookError(
            f"{plan.notebook}, cell {index + 1}: {problem}",
            fix="repair the cell in Jupyter (tags: View > Cell Toolbar > Tags), or in the JSON "
            'write "cell_type", "source" and "metadata": {"tags": ["step:NAME"]}',
            path=plan.notebook,
            cell=index + 1,
        )
    tags = list(dict.fromkeys(t for t in raw_tags or [] if isinstance(t, str)))
    return cell_type, source, tags


def _unencodable(source: str) -> str:
    """Why the text cannot be written as UTF-8 (a lone surrogate from a broken ``\\ud800``
    escape in the JSON), or ""."""
    try:
        source.encode("utf-8")
    except UnicodeEncodeError as exc:
        line = source.count("\n", 0, exc.start) + 1
        char = source[exc.start]
        return (
            f"line {line} of its source holds the lone surrogate {char!r}, which no file can "
            "hold (a broken escape in the notebook's JSON)"
        )
    return ""


def _clean(source: str) -> tuple[str, bool, int]:
    """Strip a leading ``%%track`` line and drop ``%load_ext nbops`` lines; also returns how
    many lines went from the top (so errors can give the line number in the source cell)."""
    lines = source.split("\n")
    removed = 0
    while lines and not lines[0].strip():
        lines.pop(0)
        removed += 1
    tracked = bool(lines) and _TRACK_MAGIC.fullmatch(lines[0].rstrip()) is not None
    if tracked:
        lines.pop(0)
        removed += 1
    kept = [line for line in lines if not _LOAD_EXT.fullmatch(line.rstrip())]
    text = "\n".join(kept)
    removed += len(lines) - len(kept) if kept and _LOAD_EXT.fullmatch(lines[0].rstrip()) else 0
    removed += len(text) - len(text.lstrip("\n")) if text.strip() else 0
    return text.strip("\n"), tracked, removed


def _numbers(numbers: list[int]) -> str:
    return ", ".join(str(n) for n in numbers)


def parse_parameters(notebook: str, cell: Cell) -> dict[str, Any]:
    """The parameters cell's values; anything but ``name = <literal>`` is a NotebookError.

    Papermill injects the values back as Python source and does not check the names, so names
    must be identifiers (not keywords) and values plain YAML-able literals.
    """
    fix = "move computed values out of the parameters cell (compute them in the first step)"
    try:
        tree = ast.parse(cell.source)
    except SyntaxError as exc:
        problem = f"line {exc.lineno} of the parameters cell is not Python ({exc.msg})"
        raise cell_error(notebook, cell, problem, fix) from None
    values: dict[str, Any] = {}
    for stmt in tree.body:
        target, value = _assignment(stmt)
        problem, hint, literal = _check_parameter(target, value)
        if problem or target is None:
            line = statement_text(cell.source, stmt)
            problem = problem.replace("{line}", line)
            raise cell_error(notebook, cell, problem, f"{hint}{fix}", line=line)
        if not _encodable(literal):
            problem = f"parameter {target!r} holds a lone surrogate (a \\ud800-style escape)"
            fix = "write the character you meant (a surrogate pair is one \\U0001XXXX escape)"
            line = statement_text(cell.source, stmt)
            raise cell_error(notebook, cell, problem, f"{fix}; no file can hold it", line=line)
        values[target] = literal
    return values


def statement_text(source: str, stmt: ast.stmt, limit: int = 120) -> str:
    """The statement's first line as written (cut at ``limit`` characters) for messages.

    Not ``ast.get_source_segment``: it splits lines one character at a time, which is
    quadratic in the length of a line (a 1 MB literal took 40 s).
    """
    lines = _LINES.split(source)  # where Python's tokenizer splits (not at U+2028, \f, ...)
    line = lines[stmt.lineno - 1] if 0 < stmt.lineno <= len(lines) else ast.unparse(stmt)
    line = line.strip()
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _check_parameter(target: str | None, value: ast.expr | None) -> tuple[str, str, Any]:
    """(problem, fix hint, value); the problem is "" for ``name = <plain literal>``; it may
    hold ``{line}``, filled in (only on failure) with the statement's text."""
    if target is None or value is None:
        return "`{line}` is not a literal assignment", "one `name = value` a line; ", None
    if not target.isidentifier() or keyword.iskeyword(target):
        return f"parameter name {target!r} is not a Python name", "rename it; ", None
    try:
        literal = ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return "`{line}` is not a literal value", "", None
    if not _plain(literal):
        return f"`{{line}}`: a {type(literal).__name__} cannot be a parameter", _PLAIN_HINT, None
    return "", "", literal


def _assignment(stmt: ast.stmt) -> tuple[str | None, ast.expr | None]:
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
        target, value = stmt.targets[0], stmt.value
    elif isinstance(stmt, ast.AnnAssign):
        target, value = stmt.target, stmt.value
    else:
        return None, None
    return (target.id, value) if isinstance(target, ast.Name) else (None, None)


def _encodable(value: Any) -> bool:
    """Whether every string in ``value`` can be written as UTF-8 (params.yaml, the steps)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, list):
        return all(_encodable(v) for v in value)
    if isinstance(value, dict):
        return all(_encodable(k) and _encodable(v) for k, v in value.items())
    return True


def _plain(value: Any) -> bool:
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


class _Splitter:
    """Walks the cells in order and assigns each to the parameters, setup, a step or skip."""

    def __init__(self, plan: Plan, headings: bool) -> None:
        self.plan = plan
        self.headings = headings
        self.current: Step | None = None
        self.implicit: Step | None = None
        self.implicit_cells: list[int] = []
        self.sticky: str | None = None  # the Kale block untagged cells join, if any
        self.pending: list[Cell] = []  # markdown waiting for the next step's code
        self.starts: dict[str, Cell] = {}  # step name -> the cell that named it
        self.ignored: dict[str, list[int]] = {}  # tag -> cell numbers, for notes
        self.auto_setup: list[int] = []  # untagged import/def cells before the first step

    def _before_steps(self) -> bool:
        return self.current is None or self.current is self.implicit

    def _fail(self, cell: Cell, problem: str, fix: str, **fields: Any) -> NotebookError:
        return cell_error(self.plan.notebook, cell, problem, fix, **fields)

    def add(self, cell: Cell) -> None:
        matches = [classify(tag) for tag in cell.tags]
        placement = self._placement(cell, matches)
        if cell.kind != "code":
            self._add_text(cell, placement, matches)
            return
        role = placement.role if placement else None
        if role is None and self.sticky and not any(m.role in _MODIFIERS for m in matches):
            role = self.sticky
        if placement is not None and role != "skip":  # Kale: skip does not end a block
            self.sticky = role if placement.rule and placement.rule.sticky else None
        if role == "skip":
            self.plan.skipped.extend([*self.pending, cell])
            self.pending.clear()
        elif role == "parameters":
            self._set_parameters(cell)
        elif role == "setup" or (role is None and self._before_steps() and defines_only(cell)):
            self.auto_setup += [] if role else [cell.index + 1]
            self.plan.setup.append(cell)
        elif role == "metrics_print":
            self.plan.metrics_cells.append(cell)
        else:
            step = self._start(cell, placement) if role == "step" else self._open_step(cell)
            self._join(step, cell, matches)

    def _placement(self, cell: Cell, matches: list[TagMatch]) -> TagMatch | None:
        """The one tag that decides where the cell goes (None: untagged); notes the rest."""
        placing = [m for m in matches if m.role in PLACEMENT_ROLES]
        if len(placing) > 1:
            tags = ", ".join(repr(m.tag) for m in placing)
            problem = f"the cell has conflicting tags {tags}"
            raise self._fail(cell, problem, "keep one of them (split the cell if it does both)")
        placement = placing[0] if placing else None
        setup_data = placement is not None and placement.role == "setup"  # setup may read files
        modifiers = [
            m for m in matches if m.role in _MODIFIERS and not (setup_data and m.role == "data")
        ]
        if modifiers and placement and placement.role not in ("step", "skip"):
            tag = modifiers[0].tag
            problem = f"{tag!r} belongs on a step's cell, not with {placement.tag!r}"
            raise self._fail(cell, problem, f"remove {tag!r}, or move the code into a step")
        for match in matches:
            if match.role in ("resource", "unknown"):
                self.ignored.setdefault(match.tag, []).append(cell.index + 1)
        if cell.kind != "code" and placement and placement.role not in ("step", "skip"):
            self.ignored.setdefault(placement.tag, []).append(cell.index + 1)
            return None
        return placement

    def _add_text(self, cell: Cell, placement: TagMatch | None, matches: list[TagMatch]) -> None:
        if placement is not None and placement.role == "skip":
            self.plan.skipped.append(cell)
        elif placement is not None:
            self._join(self._start(cell, placement), cell, matches)
        elif self.headings and (heading := _H2.search(cell.source)):
            name = slugify(heading.group(1)) or f"step_{len(self.plan.steps) + 1}"
            self._join(self._new_step(name, cell), cell, [])
        elif self.headings and self.current is not None:
            self.current.cells.append(cell)
        else:
            self.pending.append(cell)

    def _start(self, cell: Cell, match: TagMatch) -> Step:
        name = match.arg.lower()
        if not is_step_name(name):
            problem = f"step name {match.arg!r} (tag {match.tag!r}) is not a plain name"
            fix = f"{_NAME_RULE}, e.g. step:{slugify(match.arg) or 'load_data'}"
            raise self._fail(cell, problem, fix, tag=match.tag)
        return self._new_step(name, cell)

    def _new_step(self, name: str, cell: Cell) -> Step:
        if name in self.starts:
            problem = f"step {name!r} is already started by {self.starts[name].where}"
            fix = "give each step its own name (rename the step: tag or the ## heading)"
            raise self._fail(cell, problem, fix, step=name)
        step = Step(name=name, cells=list(self.pending))
        self.pending.clear()
        self.starts[name] = cell
        self.plan.steps.append(step)
        self.current = step
        return step

    def _open_step(self, cell: Cell) -> Step:
        """The step an untagged cell joins; before any step, the implicit first step."""
        if self.current is None:
            self.implicit = Step(name="")
            self.plan.steps.append(self.implicit)
            self.current = self.implicit
        if self.current is self.implicit:
            self.implicit_cells.append(cell.index + 1)
        self.current.cells.extend(self.pending)
        self.pending.clear()
        return self.current

    def _join(self, step: Step, cell: Cell, matches: list[TagMatch]) -> None:
        step.cells.append(cell)
        for match in matches:
            if match.role == "prev":
                self._add_prev(step, cell, match)
            elif match.role == "resource" and match.tag not in step.ignored_tags:
                step.ignored_tags.append(match.tag)

    def _add_prev(self, step: Step, cell: Cell, match: TagMatch) -> None:
        name = match.arg.lower()
        if not is_step_name(name):
            raise self._fail(cell, f"{match.tag!r} does not name a step", _NAME_RULE, tag=match.tag)
        if name not in step.explicit_upstream:
            step.explicit_upstream.append(name)

    def _set_parameters(self, cell: Cell) -> None:
        first = self.plan.parameters_cell
        if first is not None:
            problem = f"a second parameters cell ({first.where} is the first)"
            raise self._fail(cell, problem, "merge the parameters into the first cell")
        self.plan.parameters_cell = cell
        self.plan.parameters = parse_parameters(self.plan.notebook, cell)

    def finish(self) -> None:
        """Place trailing markdown, drop empty heading sections, name the implicit step."""
        if self.pending and self.plan.steps:
            self.plan.steps[-1].cells.extend(self.pending)
        self._merge_empty_steps()
        self._name_implicit()
        if not self.plan.steps:
            raise NotebookError(
                f"{self.plan.notebook}: no code to run (every code cell is parameters, setup "
                "or skip)",
                fix="tag the cells that do the work with step:NAME",
                path=self.plan.notebook,
            )
        if self.auto_setup:
            self.plan.notes.append(
                f"cell(s) {_numbers(self.auto_setup)} only import or define things and come "
                "before the first step: they are setup, copied into every step"
            )
        for tag, numbers in self.ignored.items():
            self.plan.notes.append(
                f"ignored tag {tag!r} on cell(s) {_numbers(numbers)} ({ignored_reason(tag)})"
            )

    def _merge_empty_steps(self) -> None:
        """Heading sections without code (conclusions, plots tagged skip) join a neighbour."""
        kept: list[Step] = []
        carry: list[Cell] = []
        for step in self.plan.steps:
            if any(c.kind == "code" for c in step.cells):
                step.cells[:0] = carry
                carry = []
                kept.append(step)
            else:
                (kept[-1].cells if kept else carry).extend(step.cells)
                if not self.headings:
                    self.plan.notes.append(
                        f"step {step.name!r} has no code; its cells join the step next to it"
                    )
        self.plan.steps = kept
        if self.headings:
            names = ", ".join(s.name for s in kept if s is not self.implicit)
            self.plan.notes.append(f"split at ## headings into steps: {names or '(none)'}")

    def _name_implicit(self) -> None:
        if self.implicit is None or self.implicit not in self.plan.steps:
            return
        cells = _numbers(self.implicit_cells)
        if len(self.plan.steps) == 1:
            self.implicit.name = self.plan.name[:MAX_NAME_LENGTH]
            self.plan.notes.append(
                f"no step:NAME tags: the whole notebook is one step, {self.implicit.name!r} "
                "(tag cells with step:NAME, or split at ## headings, to get several)"
            )
            return
        name, n = IMPLICIT_STEP, 1
        while name in self.starts:
            n += 1
            name = f"{IMPLICIT_STEP}_{n}"
        self.implicit.name = name
        self.plan.notes.append(
            f"cell(s) {cells} come before the first step and form a step named {name!r}"
        )


def defines_only(cell: Cell) -> bool:
    """Imports, defs and classes only: what Kale's ``imports``/``functions`` tags mark."""
    try:
        body = ast.parse(cell.source).body
    except SyntaxError:
        return False
    kinds = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return bool(body) and all(isinstance(stmt, kinds) for stmt in body)
