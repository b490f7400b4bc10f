"""Recognizing, in one expression, how a notebook scores a model: the tables and the patterns.

:mod:`nbops.notebook.evaluation` walks the notebook and keeps the state (which variable holds
whose predictions, which holds cross-validation scores); this module answers, for one call, "is
this a score the gate can repeat, and which one": a metric function on the labels and a model's
predictions, ``model.score(X, y)``, a ``classification_report``, ``cross_val_score`` /
``cross_validate``, and the arithmetic around them (``round(... * 100, 2)``, ``np.sqrt(mse)``,
``1 - acc``). Stdlib only.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from nbops.capture.scan import dotted
from nbops.notebook.folding import UNKNOWN, fold

# sklearn.metrics functions the gate can recompute: name -> greater_is_better.
METRIC_FUNCTIONS: dict[str, bool] = {
    "accuracy_score": True,
    "balanced_accuracy_score": True,
    "f1_score": True,
    "fbeta_score": True,
    "precision_score": True,
    "recall_score": True,
    "jaccard_score": True,
    "roc_auc_score": True,
    "average_precision_score": True,
    "top_k_accuracy_score": True,
    "matthews_corrcoef": True,
    "cohen_kappa_score": True,
    "r2_score": True,
    "explained_variance_score": True,
    "d2_absolute_error_score": True,
    "mean_squared_error": False,
    "root_mean_squared_error": False,
    "mean_squared_log_error": False,
    "root_mean_squared_log_error": False,
    "mean_absolute_error": False,
    "median_absolute_error": False,
    "mean_absolute_percentage_error": False,
    "max_error": False,
    "log_loss": False,
    "hinge_loss": False,
    "brier_score_loss": False,
    "hamming_loss": False,
    "zero_one_loss": False,
}
# How predictions are made from the model: the attribute call (and an optional [:, 1]).
METHODS = ("predict", "predict_proba", "predict_proba[:, 1]", "decision_function")
SCORE = "score"  # model.score(X, y): the estimator's own default metric, greater is better
CROSS_VAL = "cross_val_score"  # the mean of cross_val_score(model, X, y, **kwargs)
FUNCTIONS = (*METRIC_FUNCTIONS, SCORE, CROSS_VAL)
# The figures of a classification_report the gate can compute: name -> (function, kwargs).
REPORT_FIGURES: dict[str, tuple[str, dict[str, Any]]] = {
    "f1_macro": ("f1_score", {"average": "macro"}),
    "f1_weighted": ("f1_score", {"average": "weighted"}),
    "accuracy": ("accuracy_score", {}),
    "precision_macro": ("precision_score", {"average": "macro"}),
    "precision_weighted": ("precision_score", {"average": "weighted"}),
    "recall_macro": ("recall_score", {"average": "macro"}),
    "recall_weighted": ("recall_score", {"average": "weighted"}),
}
REPORT_DEFAULT = "f1_macro"  # the report's summary row for a per-class report
SHORT_NAMES = {
    "mean_squared_error": "mse",
    "root_mean_squared_error": "rmse",
    "mean_absolute_error": "mae",
    "mean_absolute_percentage_error": "mape",
    "median_absolute_error": "medae",
    "matthews_corrcoef": "mcc",
}
SPLITTERS = frozenset(
    {
        "KFold",
        "StratifiedKFold",
        "RepeatedKFold",
        "RepeatedStratifiedKFold",
        "ShuffleSplit",
        "StratifiedShuffleSplit",
        "GroupKFold",
        "TimeSeriesSplit",
    }
)
_CV_ONLY = frozenset({"return_train_score", "return_estimator", "return_indices", "verbose"})
_PREDICTS = ("predict", "decision_function")
_SQRT = frozenset({"np.sqrt", "numpy.sqrt", "math.sqrt", "sqrt"})
_MEAN = frozenset({"np.mean", "numpy.mean", "statistics.mean", "mean", "np.nanmean"})
# Post-operations the gate can repeat on the metric, applied in order: op -> arity.
POST_OPS = {"mul": 1, "div": 1, "add": 1, "rsub": 1, "neg": 0, "sqrt": 0, "pow": 1}


@dataclass
class Prediction:
    """``var = model.method(X)``, where it was made."""

    model: str
    method: str
    X: str
    step: str


@dataclass
class Found:
    """A score in one expression: enough to build an Evaluation, or why it cannot be one."""

    function: str
    metric: str  # derived from the function; the evaluation renames it after its variable
    model: str = ""
    X: str = ""
    y: str = ""
    method: str = "predict"
    kwargs: dict[str, Any] = field(default_factory=dict)
    model_step: str = ""  # the step where model and X are in scope ("" = the scoring step)
    via: str = ""  # "classification_report", "cross_validate": shown in notes
    problem: str = ""  # why the gate cannot repeat it ("" when it can)
    hint_model: str = ""  # for a `model:VAR` fix: the model the problem's expression uses
    hint_X: str = ""
    hint_step: str = ""  # where hint_X is in scope ("" = the scoring step)
    kind: str = ""  # what the problem is about: predictions | labels | kwargs | data


def shorten(text: str, width: int = 50) -> str:
    """Code shown in a message: one line, at most ``width`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def derived_name(function: str, scoring: str = "") -> str:
    """A metric name for a score no variable holds: ``accuracy_score`` -> ``accuracy``."""
    if function == CROSS_VAL:
        return f"cv_{scoring or 'score'}"
    if function in SHORT_NAMES:
        return SHORT_NAMES[function]
    return function.removesuffix("_score")


def short(call: ast.Call) -> str:
    return dotted(call.func).rpartition(".")[2]


def prediction(node: ast.AST) -> tuple[str, str, str] | None:
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
    X = data_name(args[0])
    if X is None or node.keywords:
        return None
    return model.id, method, X


def data_name(node: ast.AST) -> str | None:
    """The variable holding the data: ``X``, ``X.values``, ``X.to_numpy()`` (the gate passes
    the variable itself; estimators take both)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and node.attr == "values":
        return data_name(node.value)
    func = node.func if isinstance(node, ast.Call) else None
    if isinstance(func, ast.Attribute) and func.attr == "to_numpy":
        return data_name(func.value) if not (node.args or node.keywords) else None  # type: ignore[attr-defined]
    return None


def model_calls(node: ast.AST) -> list[tuple[str, str]]:
    """(model, X) of every ``model.predict*(X)`` inside ``node`` (for hints)."""
    found = []
    for sub in ast.walk(node):
        func = sub.func if isinstance(sub, ast.Call) else None
        if not isinstance(func, ast.Attribute) or not func.attr.startswith(_PREDICTS):
            continue
        args = sub.args  # type: ignore[attr-defined]
        X = data_name(args[0]) if len(args) == 1 else None
        if isinstance(func.value, ast.Name) and X:
            found.append((func.value.id, X))
    return found


def literal_kwargs(
    keywords: list[ast.keyword], env: dict[str, Any], splitters: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """Keyword arguments as constants (folded, or a cross-validation splitter spec), or the
    problem with the first one that is not."""
    kwargs: dict[str, Any] = {}
    for keyword in keywords:
        text = ast.unparse(keyword.value)
        if keyword.arg is None:
            return {}, f"`**{text}` is unpacked at run time"
        value = fold(keyword.value, env)
        if value is UNKNOWN:
            value = splitter_spec(keyword.value, env, splitters)
        if value is UNKNOWN:
            return {}, f"`{keyword.arg}={text}` is computed when the notebook runs"
        kwargs[keyword.arg] = value
    return kwargs, ""


def splitter_spec(node: ast.AST, env: dict[str, Any], splitters: dict[str, Any]) -> Any:
    """``KFold(5, shuffle=True, random_state=0)`` (or a variable holding one) as a mapping the
    gate turns back into the splitter; UNKNOWN for anything else."""
    if isinstance(node, ast.Name):
        return splitters.get(node.id, UNKNOWN)
    if not isinstance(node, ast.Call) or short(node) not in SPLITTERS:
        return UNKNOWN
    if len(node.args) > 1:
        return UNKNOWN
    spec: dict[str, Any] = {"splitter": short(node)}
    if node.args:
        spec["n_splits"] = fold(node.args[0], env)
    for keyword in node.keywords:
        if keyword.arg is None:
            return UNKNOWN
        spec[keyword.arg] = fold(keyword.value, env)
    return UNKNOWN if any(v is UNKNOWN for v in spec.values()) else spec


def unwrap(node: ast.AST, env: dict[str, Any]) -> tuple[ast.AST, list[list[Any]], bool]:
    """Peel the arithmetic around a score: (the score expression, post-operations inner first,
    whether they reverse the order). ``round`` and ``float`` are dropped: the gate compares
    exact values."""
    ops: list[list[Any]] = []
    flips = False
    while True:
        step = _peel(node, env)
        if step is None:
            return node, ops, flips
        node, op, flip = step
        if op:
            ops.insert(0, op)
        flips ^= flip


def _peel(node: ast.AST, env: dict[str, Any]) -> tuple[ast.AST, list[Any], bool] | None:
    if isinstance(node, ast.Call) and not node.keywords and node.args:
        callee = dotted(node.func)
        if callee in ("round", "float") and len(node.args) <= 2:
            return node.args[0], [], False
        if callee in _SQRT and len(node.args) == 1:
            return node.args[0], ["sqrt"], False
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return node.operand, ["neg"], True
    if not isinstance(node, ast.BinOp):
        return None
    left, right = _number(node.left, env), _number(node.right, env)
    if isinstance(node.op, ast.Mult) and (left is None) != (right is None):
        c = left if left is not None else right
        assert c is not None  # exactly one side is a number
        return (node.right if left is not None else node.left), ["mul", c], c < 0
    if isinstance(node.op, ast.Div) and right is not None and left is None and right != 0:
        return node.left, ["div", right], right < 0
    if isinstance(node.op, ast.Add) and (left is None) != (right is None):
        c = left if left is not None else right
        return (node.right if left is not None else node.left), ["add", c], False
    if isinstance(node.op, ast.Sub) and right is not None and left is None:
        return node.left, ["add", -right], False
    if isinstance(node.op, ast.Sub) and left is not None and right is None:
        return node.right, ["rsub", left], True
    if isinstance(node.op, ast.Pow) and right is not None and left is None and right != 0:
        return node.left, ["pow", right], right < 0  # ** 0.5: an RMSE from an MSE
    return None


def _number(node: ast.AST, env: dict[str, Any]) -> float | None:
    value = fold(node, env)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def mean_of(node: ast.AST) -> tuple[ast.AST, str] | None:
    """``X.mean()`` / ``np.mean(X)`` / ``X["test_f1"].mean()``: (X, result key or "")."""
    inner: ast.AST | None = None
    if isinstance(node, ast.Call) and not node.keywords:
        if isinstance(node.func, ast.Attribute) and node.func.attr == "mean" and not node.args:
            inner = node.func.value
        elif dotted(node.func) in _MEAN and len(node.args) == 1:
            inner = node.args[0]
    if inner is None:
        return None
    if isinstance(inner, ast.Subscript):
        key = inner.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            return inner.value, key.value
        return None
    return inner, ""


def cross_val_found(
    call: ast.Call, env: dict[str, Any], splitters: dict[str, Any], key: str = ""
) -> Found:
    """``cross_val_score(model, X, y, ...)`` or ``cross_validate(...)`` as the gate's
    ``cross_val_score`` (a cross_validate result key names one scorer)."""
    via = short(call)
    args = [data_name(a) for a in call.args[:3]]
    keywords = [k for k in call.keywords if k.arg not in _CV_ONLY]
    named = {k.arg: k for k in keywords}
    for position, role in enumerate(("estimator", "X", "y")):
        if len(call.args) <= position and role in named:
            args.append(data_name(named.pop(role).value))
    keywords = [k for k in keywords if k.arg not in ("estimator", "X", "y")]
    found = Found(CROSS_VAL, "", via=via if via != CROSS_VAL else "")
    if len(args) != 3 or any(a is None for a in args):
        found.problem = f"`{shorten(ast.unparse(call))}`: model, X and y must be variables"
        found.kind = "data"
        return found
    found.model, found.X, found.y = (str(a) for a in args)
    found.kwargs, found.problem = literal_kwargs(keywords, env, splitters)
    found.kind = "kwargs" if found.problem else ""
    scoring = found.kwargs.get("scoring")
    if isinstance(scoring, list | tuple | dict):
        names = list(scoring)
        wanted = key.removeprefix("test_") if key.startswith("test_") else ""
        chosen = wanted if wanted in names else (names[0] if names else "")
        pick = scoring[chosen] if isinstance(scoring, dict) else chosen
        found.kwargs["scoring"] = pick if isinstance(pick, str) else UNKNOWN
        if not isinstance(pick, str):
            found.problem, found.kind = f"scoring {chosen!r} is not a scorer name", "kwargs"
    elif scoring is not None and not isinstance(scoring, str):
        found.problem, found.kind = "`scoring` is not a scorer name", "kwargs"
    found.metric = derived_name(CROSS_VAL, str(found.kwargs.get("scoring") or ""))
    return found
