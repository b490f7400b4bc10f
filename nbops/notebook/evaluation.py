"""Finding the notebook's model evaluation, so promote can generate the model gate.

The gate evaluates the candidate and the champion the same way the notebook evaluated its
model. Promote reads that from the code, the way a reviewer would, across cells and steps:

    accuracy = accuracy_score(y_test, model.predict(X_test))
    preds = model.predict(X_test)            # ...in one cell (or step)
    print(accuracy_score(y_test, preds))     # ...scored in a later one
    acc = round(model.score(X_test, y_test) * 100, 2)
    print(classification_report(y_test, preds))          # its macro-average F1
    scores = cross_val_score(model, X, y, cv=5); cv = scores.mean()
    for name, m in models.items(): ...score m...  then  best_model = models[best_name]

The expression patterns and their tables are :mod:`nbops.notebook.scoring`. The last score in
the notebook wins (the final evaluation is usually last), a printed Kale ``pipeline-metrics``
name first; the ``gate``, ``model:VAR`` and ``metric:NAME`` tags choose explicitly. When no
score can be repeated, :func:`analyse` says why (the cell, what it did not understand) and
which tag attaches the gate: promote prints it, never drops the gate in silence. Stdlib only.
"""

from __future__ import annotations

import ast
from typing import Any

from nbops.capture.vocab import FIT_METHODS, is_metric_name
from nbops.notebook import scoring as sc
from nbops.notebook.evaluated import Analysis, Assignment, Evaluation
from nbops.notebook.folding import assign, bound_names, iterated
from nbops.notebook.plan import Cell, Plan, Step
from nbops.notebook.scoring import METHODS as METHODS  # re-exported for the gate
from nbops.notebook.scoring import METRIC_FUNCTIONS as METRIC_FUNCTIONS
from nbops.notebook.scoring import SCORE as SCORE

__all__ = ["Analysis", "Evaluation", "analyse", "find_evaluation", "producer"]


def find_evaluation(plan: Plan) -> Evaluation | None:
    """The evaluation the model gate repeats, or None when there is none."""
    return analyse(plan).evaluation


def analyse(plan: Plan) -> Analysis:
    """Walk the steps' cells in order and choose the evaluation (see the module docstring)."""
    walker = _Walker(plan)
    walker.run()
    return _choose(plan, walker)


def producer(plan: Plan, step: Step, name: str) -> str:
    """The step whose saved artifact ``step`` reads ``name`` from (itself if it defines it)."""
    for artifact in step.inputs:
        if artifact.name == name:
            return artifact.producer
    return step.name


class _Walker:
    """The notebook's state as far as scoring goes, statement by statement."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.env: dict[str, Any] = dict(plan.parameters)
        self.predictions: dict[str, sc.Prediction] = {}
        self.untraced: dict[str, tuple[str, str, str, str, str]] = {}  # var -> expr, model, X,
        # the cell and the step that computed it
        self.cv: dict[str, tuple[ast.Call, Evaluation]] = {}
        self.splitters: dict[str, Any] = {}
        self.fitted: set[str] = set()
        self.found: list[Evaluation] = []
        self.unknown: list[str] = []  # metric-like calls the gate does not know
        self.assignments: list[Assignment] = []
        self.bound: dict[str, str] = {}  # every name a step binds -> the last step binding it
        self.order = 0
        self.loop: tuple[frozenset[str], str, frozenset[str]] | None = None

    def run(self) -> None:
        for cell in self.plan.setup:
            for stmt in _statements(cell):
                assign(stmt, self.env)
        for step in self.plan.steps:
            for cell in step.cells:
                for stmt in _statements(cell):
                    self.statement(stmt, step.name, cell)

    def statement(self, stmt: ast.stmt, step: str, cell: Cell) -> None:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            return  # a function scores when called, with arguments we cannot see
        if isinstance(stmt, ast.For):
            self._loop(stmt, step, cell)
            return
        bodies = [getattr(stmt, n, None) for n in ("body", "orelse", "finalbody")]
        if any(isinstance(b, list) and b and isinstance(b[0], ast.stmt) for b in bodies):
            for body in bodies:
                for inner in body or []:
                    self.statement(inner, step, cell)
            for handler in getattr(stmt, "handlers", None) or []:
                for inner in handler.body:
                    self.statement(inner, step, cell)
            return
        self.order += 1
        self._fits(stmt, step)
        self._scores(stmt, step, cell)
        self._bind(stmt, step, cell)

    def _loop(self, stmt: ast.For, step: str, cell: Cell) -> None:
        saved = self.loop
        targets = frozenset(bound_names(stmt.target))
        names = frozenset(iterated(stmt.iter))
        self.loop = (targets, ast.unparse(stmt.iter), names)
        self.bound.update(dict.fromkeys(targets, step))
        for inner in stmt.body:
            self.statement(inner, step, cell)
        self.loop = saved
        for name in bound_names(stmt):
            self._forget(name)

    def _fits(self, stmt: ast.stmt, step: str) -> None:
        """Names fitted here (a fit changes the model in place: the step holds the new one)."""
        for node in ast.walk(stmt):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in FIT_METHODS
                and isinstance(node.func.value, ast.Name)
            ):
                self.fitted.add(node.func.value.id)
                self.bound[node.func.value.id] = step
                if self.loop and node.func.value.id in self.loop[0]:
                    self.fitted |= self.loop[2]
        value = getattr(stmt, "value", None)
        chained = isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
        if isinstance(stmt, ast.Assign) and chained and value.func.attr in FIT_METHODS:  # type: ignore[union-attr]
            self.fitted |= {t.id for t in stmt.targets if isinstance(t, ast.Name)}

    def _scores(self, stmt: ast.stmt, step: str, cell: Cell) -> None:
        target = _target(stmt)
        core: ast.AST | None = None
        ops: list[list[Any]] = []
        flips = False
        if target is not None:
            core, ops, flips = sc.unwrap(stmt.value, self.env)  # type: ignore[attr-defined]
        for node in _calls(stmt):
            found = self._recognize(node, step, cell, target if node is core else None)
            if found is None:
                continue
            if node is core and target is not None and found.function != sc.CROSS_VAL:
                found.metric, found.post, found.flips = target, ops, flips
            self.found.append(found)
        if isinstance(core, ast.Call) and target is not None:
            self._cv_mean(core, target, ops, flips)

    def _recognize(
        self, node: ast.Call, step: str, cell: Cell, target: str | None
    ) -> Evaluation | None:
        name = sc.short(node)
        found: sc.Found | None = None
        if name in ("cross_val_score", "cross_validate"):
            found = sc.cross_val_found(node, self.env, self.splitters)
        elif isinstance(node.func, ast.Attribute) and name == SCORE:
            found = self._method_score(node)
        elif name in METRIC_FUNCTIONS or name == "classification_report":
            found = self._metric_call(node, name)
        elif (name.endswith(("_score", "_error", "_loss")) or is_metric_name(name)) and len(
            node.args
        ) >= 2:
            pred = node.args[1]
            traced = isinstance(pred, ast.Name) and pred.id in self.predictions
            if traced or sc.prediction(pred) is not None:
                self.unknown.append(f"{cell.where}: `{name}` is not a metric the gate knows")
        if found is None:
            return None
        evaluation = self._evaluation(found, step, cell)
        if found.function == sc.CROSS_VAL and target is not None:
            self.cv[target] = (node, evaluation)
        return evaluation

    def _method_score(self, node: ast.Call) -> sc.Found | None:
        receiver = node.func.value  # type: ignore[attr-defined]
        data = [sc.data_name(a) for a in node.args]
        if not isinstance(receiver, ast.Name) or len(data) != 2 or None in data or node.keywords:
            return None
        return sc.Found(SCORE, "score", receiver.id, str(data[0]), str(data[1]))

    def _metric_call(self, node: ast.Call, name: str) -> sc.Found | None:
        if len(node.args) < 2:
            return None
        report = name == "classification_report"
        function, kwargs = sc.REPORT_FIGURES[sc.REPORT_DEFAULT] if report else (name, {})
        found = sc.Found(function, sc.REPORT_DEFAULT if report else sc.derived_name(name))
        found.via, found.kwargs = ("classification_report" if report else ""), dict(kwargs)
        truth, predicted = node.args[0], node.args[1]
        self._predicted(found, predicted)
        y = sc.data_name(truth)
        if y is None and not found.problem:
            found.problem = f"the labels `{sc.shorten(ast.unparse(truth))}` are not one variable"
            found.kind = "labels"
        found.y = y or ""
        keywords = [k for k in node.keywords if not report or k.arg == "zero_division"]
        extra, problem = sc.literal_kwargs(keywords, self.env, self.splitters)
        found.kwargs.update(extra)
        if problem and not found.problem:
            found.problem, found.kind = problem, "kwargs"
        return found

    def _predicted(self, found: sc.Found, node: ast.AST) -> None:
        """Fill model, method and X from the predictions argument, or say why not."""
        direct = sc.prediction(node)
        if direct is not None:
            found.model, found.method, found.X = direct
            return
        text = sc.shorten(ast.unparse(node))
        if isinstance(node, ast.Name) and node.id in self.predictions:
            p = self.predictions[node.id]
            found.model, found.method, found.X, found.model_step = p.model, p.method, p.X, p.step
        elif isinstance(node, ast.Name) and node.id in self.untraced:
            expr, model, X, where, step = self.untraced[node.id]
            found.problem = f"`{node.id}` comes from `{expr}` ({where}), not `model.predict(X)`"
            found.kind = "predictions"
            found.hint_model, found.hint_X, found.hint_step = model, X, step
        elif isinstance(node, ast.Name):
            found.problem = f"nbops cannot tell which model made `{node.id}`"
            found.kind = "predictions"
        else:
            found.problem = f"the predictions `{text}` are not `model.predict(X)`"
            found.hint_model, found.hint_X = self._hints(node)
            found.kind = "predictions"

    def _hints(self, node: ast.AST) -> tuple[str, str]:
        calls = list(dict.fromkeys(sc.model_calls(node)))
        if len(calls) == 1:
            return calls[0]
        if isinstance(node, ast.Call):
            names = [a.id for a in node.args if isinstance(a, ast.Name)]
            models = [n for n in names if n in self.fitted]
            others = [n for n in names if n not in self.fitted]
            if len(models) == 1 and len(others) == 1:
                return models[0], others[0]
        return "", ""

    def _evaluation(self, found: sc.Found, step: str, cell: Cell) -> Evaluation:
        evaluation = Evaluation(
            metric=found.metric,
            function=found.function,
            model=found.model,
            X=found.X,
            y=found.y,
            method=found.method,
            kwargs=found.kwargs,
            step=step,
            where=cell.where,
            via=found.via,
            cell=cell.index,
            problem=found.problem,
            hint_model=found.hint_model,
            hint_X=found.hint_X,
            hint_step=found.hint_step,
            kind=found.kind,
            order=self.order,
        )
        if found.model_step:
            evaluation.scopes = {"model": found.model_step, "X": found.model_step}
        if self.loop and found.model in self.loop[0]:
            evaluation.loop, evaluation.loop_names = self.loop[1], self.loop[2]
        return evaluation

    def _cv_mean(self, core: ast.Call, target: str, ops: list[list[Any]], flips: bool) -> None:
        """``cv_acc = scores.mean()``: the cross-validation score gets the variable's name."""
        mean = sc.mean_of(core)
        if mean is None:
            return
        inner, key = mean
        if isinstance(inner, ast.Name) and inner.id in self.cv:
            call, evaluation = self.cv[inner.id]
        elif isinstance(inner, ast.Call) and sc.short(inner) in (
            "cross_val_score",
            "cross_validate",
        ):
            found = next((e for e in reversed(self.found) if e.order == self.order), None)
            if found is None:
                return
            call, evaluation = inner, found
        else:
            return
        if key:
            again = sc.cross_val_found(call, self.env, self.splitters, key)
            evaluation.kwargs, evaluation.problem = again.kwargs, again.problem
        evaluation.metric, evaluation.post, evaluation.flips = target, ops, flips

    def _bind(self, stmt: ast.stmt, step: str, cell: Cell) -> None:
        target = _target(stmt)
        value = getattr(stmt, "value", None)
        for name in bound_names(stmt):
            self.bound[name] = step
            if name != target:
                self._forget(name)
        if target is not None and isinstance(value, ast.expr):
            self._forget(target)
            predicted = sc.prediction(value)
            spec = sc.splitter_spec(value, self.env, self.splitters)
            if predicted is not None:
                self.predictions[target] = sc.Prediction(*predicted, step=step)
            elif spec is not sc.UNKNOWN:
                self.splitters[target] = spec
            elif sc.model_calls(value) or self._calls_model(value):
                model, X = self._hints(value)
                shown = sc.shorten(ast.unparse(value))
                self.untraced[target] = (shown, model, X, cell.where, step)
            self.assignments.append(Assignment(self.order, target, value, step, cell))
        assign(stmt, self.env)

    def _calls_model(self, node: ast.AST) -> bool:
        return isinstance(node, ast.Call) and any(
            isinstance(a, ast.Name) and a.id in self.fitted for a in node.args
        )

    def _forget(self, name: str) -> None:
        self.predictions.pop(name, None)
        self.untraced.pop(name, None)
        self.splitters.pop(name, None)


def _statements(cell: Cell) -> list[ast.stmt]:
    if cell.kind != "code":
        return []
    try:
        return ast.parse(_python(cell.source)).body
    except SyntaxError:
        return []  # the parser already reported it; a cell we cannot read has no gate


def _target(stmt: ast.stmt) -> str | None:
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
        target = stmt.targets[0]
    elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
        target = stmt.target
    else:
        return None
    return target.id if isinstance(target, ast.Name) else None


def _calls(stmt: ast.stmt) -> list[ast.Call]:
    """The calls in a statement, outer before inner, not inside lambdas or comprehensions'
    own functions."""
    found: list[ast.Call] = []
    stack: list[ast.AST] = [stmt]
    while stack:
        node = stack.pop(0)
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, ast.Call):
            found.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return found


def _python(source: str) -> str:
    """The cell as Python: a leading ``%%track``-like line dropped, line magics transformed."""
    lines = source.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        source = "\n".join(lines[1:])
    if not any(ch in source for ch in "%!"):
        return source
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


# ---- choosing ---------------------------------------------------------------------------


def _choose(plan: Plan, walker: _Walker) -> Analysis:
    from nbops.notebook.choice import choose

    return choose(plan, walker)
