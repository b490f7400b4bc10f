"""Finding the notebook's model evaluation, so promote can generate the model gate.

The gate evaluates the candidate and the champion the same way the notebook evaluated its
model. Promote reads that from the code, the way a reviewer would: an assignment of a known
metric function called on the true labels and a model's predictions,

    accuracy = accuracy_score(y_test, model.predict(X_test))
    pred = model.predict(X_test); rmse = root_mean_squared_error(y_test, pred)
    auc = roc_auc_score(y_test, model.predict_proba(X_test)[:, 1])
    score = model.score(X_test, y_test)

The metric functions are a table (name -> whether greater is better), as the tag vocabulary is.
Stdlib only; the last evaluation in the notebook wins (the final score is usually last).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from nbops.notebook.plan import Cell, Plan, Step

# sklearn.metrics functions the gate can recompute: name -> greater_is_better.
METRIC_FUNCTIONS: dict[str, bool] = {
    "accuracy_score": True,
    "balanced_accuracy_score": True,
    "f1_score": True,
    "fbeta_score": True,
    "precision_score": True,
    "recall_score": True,
    "roc_auc_score": True,
    "average_precision_score": True,
    "matthews_corrcoef": True,
    "cohen_kappa_score": True,
    "r2_score": True,
    "explained_variance_score": True,
    "mean_squared_error": False,
    "root_mean_squared_error": False,
    "mean_absolute_error": False,
    "median_absolute_error": False,
    "mean_absolute_percentage_error": False,
    "log_loss": False,
    "brier_score_loss": False,
}
# How predictions are made from the model: the attribute call (and an optional [:, 1]).
METHODS = ("predict", "predict_proba", "predict_proba[:, 1]", "decision_function")
SCORE = "score"  # model.score(X, y): the estimator's own default metric, greater is better


@dataclass
class Evaluation:
    """One evaluation found in the notebook: ``metric = function(y, model.method(X))``."""

    metric: str  # the variable the score is assigned to (the recorded metric's name)
    function: str  # a METRIC_FUNCTIONS key, or "score"
    model: str
    X: str
    y: str
    method: str = "predict"
    kwargs: dict[str, Any] = field(default_factory=dict)  # literal keyword arguments
    step: str = ""  # the step whose cell computes it
    where: str = ""  # the cell, for messages

    @property
    def greater_is_better(self) -> bool:
        return METRIC_FUNCTIONS.get(self.function, True)


def find_evaluation(plan: Plan) -> Evaluation | None:
    """The last evaluation in the pipeline's steps, or None when there is none."""
    found: Evaluation | None = None
    for step in plan.steps:
        for cell in step.cells:
            if cell.kind != "code":
                continue
            for evaluation in _cell_evaluations(cell):
                evaluation.step, evaluation.where = step.name, cell.where
                found = evaluation
    return found


def producer(plan: Plan, step: Step, name: str) -> str:
    """The step whose saved artifact ``step`` reads ``name`` from (itself if it defines it)."""
    for artifact in step.inputs:
        if artifact.name == name:
            return artifact.producer
    return step.name


def _cell_evaluations(cell: Cell) -> list[Evaluation]:
    try:
        tree = ast.parse(_python(cell.source))
    except SyntaxError:
        return []  # the parser already reported it; a cell we cannot read has no gate
    predictions: dict[str, tuple[str, str, str]] = {}  # var -> (model, method, X)
    found = []
    for stmt in tree.body:
        if not isinstance(stmt, ast.Assign) or len(stmt.targets) != 1:
            continue
        target = stmt.targets[0]
        if not isinstance(target, ast.Name):
            continue
        prediction = _prediction(stmt.value)
        if prediction is not None:
            predictions[target.id] = prediction
            continue
        evaluation = _evaluation(target.id, stmt.value, predictions)
        if evaluation is not None:
            found.append(evaluation)
    return found


def _evaluation(
    metric: str, value: ast.expr, predictions: dict[str, tuple[str, str, str]]
) -> Evaluation | None:
    if not isinstance(value, ast.Call):
        return None
    func = value.func
    if (
        isinstance(func, ast.Attribute)
        and func.attr == SCORE
        and isinstance(func.value, ast.Name)
        and len(value.args) == 2
        and all(isinstance(a, ast.Name) for a in value.args)
    ):
        X, y = (a.id for a in value.args)  # type: ignore[attr-defined]
        return Evaluation(metric, SCORE, func.value.id, X, y)
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name not in METRIC_FUNCTIONS or len(value.args) != 2:
        return None
    truth, predicted = value.args
    if not isinstance(truth, ast.Name):
        return None
    prediction = _prediction(predicted)
    if prediction is None and isinstance(predicted, ast.Name):
        prediction = predictions.get(predicted.id)
    if prediction is None:
        return None
    kwargs = _literal_kwargs(value.keywords)
    if kwargs is None:
        return None
    model, method, X = prediction
    return Evaluation(metric, name, model, X, truth.id, method, kwargs)


def _prediction(node: ast.expr) -> tuple[str, str, str] | None:
    """``model.predict(X)`` (or predict_proba, [:, 1], decision_function): (model, method, X)."""
    column = False
    if (
        isinstance(node, ast.Subscript)
        and ast.unparse(node.slice).replace(" ", "").strip("()") == ":,1"
    ):
        node, column = node.value, True
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return None
    method = node.func.attr + ("[:, 1]" if column else "")
    model, args = node.func.value, node.args
    if method not in METHODS or not isinstance(model, ast.Name) or len(args) != 1:
        return None
    if not isinstance(args[0], ast.Name) or node.keywords:
        return None
    return model.id, method, args[0].id


def _literal_kwargs(keywords: list[ast.keyword]) -> dict[str, Any] | None:
    kwargs = {}
    for keyword in keywords:
        if keyword.arg is None:
            return None
        try:
            kwargs[keyword.arg] = ast.literal_eval(keyword.value)
        except ValueError:
            return None  # computed arguments: the gate could not repeat them faithfully
    return kwargs


def _python(source: str) -> str:
    """The cell as Python: a leading ``%%track``-like line dropped, line magics transformed."""
    lines = source.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        source = "\n".join(lines[1:])
    if not any(ch in source for ch in "%!"):
        return source
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)
