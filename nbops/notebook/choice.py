"""Choosing the score the model gate repeats among those :mod:`nbops.notebook.evaluation`
found, and saying why when none can be repeated (with the tag that attaches the gate).

Order of preference: the ``gate`` tag's cell, a ``metric:NAME`` tag, a ``model:VAR`` tag's
cell; then the scores Kale's ``pipeline-metrics`` cell prints; then the last score in the
notebook. A score made in a loop over models counts only once the notebook picks one of them
(``best_model = models[best_name]``, ``max(models, key=...)``); otherwise promote asks.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nbops.notebook import scoring as sc
from nbops.notebook.evaluated import Analysis, Assignment, Evaluation
from nbops.notebook.plan import Cell, Plan
from nbops.notebook.tags import classify

if TYPE_CHECKING:
    from nbops.notebook.evaluation import _Walker

_EXAMPLE = "`accuracy = accuracy_score(y_test, model.predict(X_test))`"


@dataclass
class _Tags:
    gate: list[Cell] = field(default_factory=list)
    model: tuple[Cell, str, str] | None = None  # cell, VAR, its step
    metric: tuple[Cell, str] | None = None

    @property
    def any(self) -> bool:
        return bool(self.gate or self.model or self.metric)


def choose(plan: Plan, walker: _Walker) -> Analysis:
    found, assignments, fitted = walker.found, walker.assignments, walker.fitted
    tags = _tags(plan)
    notes = _apply_picks(found, assignments)
    pool, reason, fix = _pool(plan, found, tags)
    if not pool:
        if not reason:
            reason, fix = _nothing(walker.unknown)
        return Analysis(None, reason, fix, notes, found)
    chosen: Evaluation | None
    if tags.model is not None:
        chosen = pool[-1]
        problem = _apply_model(chosen, tags.model, walker)
        if problem:
            return Analysis(None, problem[0], problem[1], notes, found)
    else:
        chosen, reason, fix = _last(pool, notes)
        if chosen is None:
            return Analysis(None, reason, fix, notes, found)
    if chosen.function == sc.CROSS_VAL and chosen.model not in fitted:
        reason = (
            f"{chosen.where} cross-validates `{chosen.model}`, but the notebook never fits it: "
            "there is no trained model to register"
        )
        fix = f"fit it after cross-validating (`{chosen.model}.fit({chosen.X}, {chosen.y})`)"
        return Analysis(None, reason, fix, notes, found)
    notes += _describe(chosen, pool, tags)
    return Analysis(chosen, notes=notes, candidates=found)


def _tags(plan: Plan) -> _Tags:
    tags = _Tags()
    for step in plan.steps:
        for cell in step.cells:
            for tag in cell.tags:
                match = classify(tag)
                if match.role == "gate":
                    tags.gate.append(cell)
                elif match.role == "gate_model" and match.arg:
                    tags.model = (cell, match.arg, step.name)
                elif match.role == "gate_metric" and match.arg:
                    tags.metric = (cell, match.arg)
    return tags


def _apply_picks(found: list[Evaluation], assignments: list[Assignment]) -> list[str]:
    """A loop's score judges the model a later statement picks from the loop's collection."""
    notes = []
    for evaluation in found:
        if not evaluation.loop:
            continue
        for a in assignments:
            if a.order > evaluation.order and _picks(a.value, evaluation.loop_names):
                notes.append(
                    f"the gate judges `{a.target}`, which {a.cell.where} picks from "
                    f"`{evaluation.loop}` (scored in a loop in {evaluation.where})"
                )
                evaluation.model, evaluation.loop = a.target, ""
                evaluation.scopes = {**evaluation.scopes, "model": a.step}
                break
    return notes


def _picks(value: ast.expr, collection: frozenset[str]) -> bool:
    """``models[best_name]`` or ``max(models, key=...)``/``min(...)``."""
    if isinstance(value, ast.Subscript) and isinstance(value.value, ast.Name):
        return value.value.id in collection
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.args:
        first = value.args[0]
        return (
            value.func.id in ("max", "min")
            and isinstance(first, ast.Name)
            and (first.id in collection)
        )
    return False


def _pool(plan: Plan, found: list[Evaluation], tags: _Tags) -> tuple[list[Evaluation], str, str]:
    if tags.gate:
        cells = {c.index for c in tags.gate}
        pool = [e for e in found if e.cell in cells]
        if pool:
            return pool, "", ""
        where = tags.gate[-1].where
        return (
            [],
            f"{where} is tagged `gate`, but nbops found no score in it",
            (f"tag the cell that scores the model `gate` instead, or score it there as {_EXAMPLE}"),
        )
    if tags.metric is not None:
        return _by_metric(found, *tags.metric)
    if tags.model is not None:
        in_cell = [e for e in found if e.cell == tags.model[0].index]
        return in_cell or found, "", ""
    printed = _printed(plan)
    return [e for e in found if e.metric in printed] or found, "", ""


def _by_metric(found: list[Evaluation], cell: Cell, name: str) -> tuple[list[Evaluation], str, str]:
    in_cell = [e for e in found if e.cell == cell.index] or found
    match = [e for e in in_cell if e.metric == name]
    reports = [e for e in in_cell if e.via == "classification_report"]
    if not match and reports and name in sc.REPORT_FIGURES:
        report = reports[-1]
        function, kwargs = sc.REPORT_FIGURES[name]
        zero = {k: v for k, v in report.kwargs.items() if k == "zero_division"}
        report.function, report.kwargs, report.metric = function, {**kwargs, **zero}, name
        match = [report]
    if match:
        return match, "", ""
    names = sorted({e.metric for e in in_cell} | (set(sc.REPORT_FIGURES) if reports else set()))
    reason = f"{cell.where} is tagged `metric:{name}`, but no score there is named {name!r}"
    fix = (
        f"use one of: {', '.join(f'metric:{n}' for n in names)}"
        if names
        else (f"tag the cell that computes the score, written as {_EXAMPLE}")
    )
    return [], reason, fix


def _printed(plan: Plan) -> set[str]:
    """Names Kale's ``pipeline-metrics`` cells print."""
    names: set[str] = set()
    for cell in plan.metrics_cells:
        try:
            body = ast.parse(cell.source).body
        except SyntaxError:
            continue
        for stmt in body:
            call = stmt.value if isinstance(stmt, ast.Expr) else None
            if isinstance(call, ast.Call) and call.args and isinstance(call.args[0], ast.Name):
                names.add(call.args[0].id)
    return names


def _last(pool: list[Evaluation], notes: list[str]) -> tuple[Evaluation | None, str, str]:
    """The last score that can be repeated; a trailing unpicked loop asks instead."""
    last = pool[-1]
    if last.loop:
        number = last.cell + 1
        reason = (
            f"{last.where} scores each model of `{last.loop}` in a loop, and no later cell picks "
            f"the one to keep (like `best_model = {_first(last.loop_names)}[best_name]`)"
        )
        fix = (
            f"tag cell {number} `model:{last.model}` to gate the model the loop ends with, or "
            f"add a cell that picks the model you keep (`best_model = "
            f"{_first(last.loop_names)}[...]`)"
        )
        return None, reason, fix
    usable = [e for e in pool if not e.problem and not e.loop]
    if not usable:
        return None, f"{last.where}: {last.problem}", _problem_fix(last)
    chosen = usable[-1]
    for later in pool[pool.index(chosen) + 1 :]:
        notes.append(
            f"{later.where} also scores a model, but {later.problem or 'in an unpicked loop'}: "
            f"the gate repeats {chosen.where} (fix: {_problem_fix(later)})"
        )
    return chosen, "", ""


def _first(names: frozenset[str]) -> str:
    return sorted(names)[0] if names else "models"


def _problem_fix(e: Evaluation) -> str:
    number = e.cell + 1
    if e.kind == "kwargs":
        return f"pass constants in cell {number} (literals, or names assigned a literal earlier)"
    if e.kind == "labels":
        return f"assign the labels to a variable first in cell {number} (`y_test = ...`)"
    if e.kind == "data":
        return f"pass the model and the data as variables in cell {number}"
    if e.hint_model and e.hint_X:
        call = f"{e.function}({e.y or 'y'}, {e.hint_model}.predict({e.hint_X}))"
        return (
            f"tag cell {number} `model:{e.hint_model}`: the gate then scores {call} (your own "
            "processing of the predictions is not repeated)"
        )
    example = f"{e.metric or 'score'} = {e.function}({e.y or 'y_test'}, model.predict(X_test))"
    return f"score the model's predictions directly in cell {number} (e.g. `{example}`)"


def _apply_model(
    e: Evaluation, tag: tuple[Cell, str, str], walker: _Walker
) -> tuple[str, str] | None:
    """``model:VAR``: the gate judges VAR; (reason, fix) when that cannot work."""
    cell, var, step = tag
    if var not in walker.bound and var not in walker.fitted:
        fitted = sorted(walker.fitted & set(walker.bound))
        hint = f" (the notebook fits {', '.join(fitted)})" if fitted else ""
        return (
            f"{cell.where} is tagged `model:{var}`, but no step assigns `{var}`{hint}",
            "name a variable that holds the trained model",
        )
    e.model, e.loop = var, ""
    e.scopes = {**e.scopes, "model": walker.bound.get(var, step)}
    if e.problem and e.hint_X:
        e.X, e.method, e.problem = e.hint_X, "predict", ""
        e.scopes["X"] = e.hint_step or e.step
    if e.problem:
        return f"{e.where}: {e.problem}", _problem_fix(e)
    return None


def _nothing(unknown: list[str]) -> tuple[str, str]:
    functions = ", ".join(list(sc.METRIC_FUNCTIONS)[:6])
    if unknown:
        return "; ".join(unknown), (
            f"also compute a score the gate knows there ({functions}, ... or model.score)"
        )
    return (
        "no cell in the steps scores a model the way the gate can repeat (e.g. "
        f"{_EXAMPLE}, `model.score(X_test, y_test)` or `cross_val_score(model, X, y)`)",
        "add such a line where the notebook evaluates its model",
    )


def _describe(chosen: Evaluation, pool: list[Evaluation], tags: _Tags) -> list[str]:
    notes = []
    if chosen.via == "classification_report" and not tags.metric:
        notes.append(
            f"the gate compares classification_report's {chosen.metric} ({chosen.where}); tag "
            "that cell `metric:accuracy` (or f1_weighted, ...) to compare another figure"
        )
    models = list(dict.fromkeys(e.model for e in pool if not e.problem and not e.loop))
    if len(models) > 1 and not tags.any:
        others = ", ".join(f"`{m}`" for m in models if m != chosen.model)
        notes.append(
            f"the notebook scores several models; the gate judges `{chosen.model}` "
            f"({chosen.where}, the last), not {others}: tag the cell that scores the one you "
            "keep `gate` to change that"
        )
    return notes


def describe_post(post: list[list[Any]]) -> str:
    """``[["mul", 100.0]]`` -> ``* 100``: how params.yaml's comment shows the arithmetic."""
    shown = {"mul": "* {}", "div": "/ {}", "add": "+ {}", "rsub": "{} - x", "neg": "-x"}
    shown |= {"pow": "** {}"}
    parts = [shown.get(op[0], op[0]).format(*op[1:]) for op in post]
    return ", then ".join(parts)
