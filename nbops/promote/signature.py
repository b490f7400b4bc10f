"""The evaluation promote inferred, checked against the installed scikit-learn at promote time.

A notebook written for an older scikit-learn (``mean_squared_error(..., squared=False)``, a
keyword removed in 1.8) would otherwise fail in the model gate when the pipeline runs. Promote
binds the inferred call's keyword arguments to the installed function's signature; a known
replacement (``squared=False`` -> ``root_mean_squared_error``) is used and said, anything else
keeps the gate out with the reason and the fix. scikit-learn is imported here, at promote only.
"""

from __future__ import annotations

import inspect
from typing import Any

from nbops.notebook.evaluation import Evaluation
from nbops.notebook.scoring import CROSS_VAL, SCORE, SPLITTERS

# (function, keyword, value) -> the function computing the same without that keyword.
REPLACEMENTS: dict[tuple[str, str, Any], str] = {
    ("mean_squared_error", "squared", False): "root_mean_squared_error",
    ("mean_squared_log_error", "squared", False): "root_mean_squared_log_error",
}


def check_evaluation(evaluation: Evaluation) -> tuple[list[str], str, str]:
    """(notes, problem, fix): ``evaluation`` may be changed to a known replacement; a problem
    means the gate cannot repeat it with this scikit-learn."""
    if evaluation.function == SCORE:  # `model.score(X, y)`: nothing to check
        return [], "", ""
    try:
        import sklearn
        import sklearn.metrics

        if evaluation.function == CROSS_VAL:  # ~0.5 s more: only when the gate needs it
            import sklearn.model_selection
    except ImportError:
        return (
            [
                "scikit-learn is not installed here: promote could not check the model gate's "
                f"{evaluation.function}(...) against it"
            ],
            "",
            "",
        )
    version = f"scikit-learn {sklearn.__version__}"
    if evaluation.function == CROSS_VAL:
        return _check_cross_val(evaluation, version)
    function = getattr(sklearn.metrics, evaluation.function, None)
    if function is None:
        problem = f"{evaluation.where}: {version} has no sklearn.metrics.{evaluation.function}"
        return [], problem, f"use a metric {version} has, then promote again"
    unknown = _unknown_keywords(function, evaluation.kwargs, positional=2)
    if not unknown:
        return [], "", ""
    return _replace(evaluation, unknown, function, version)


def _replace(
    evaluation: Evaluation, unknown: list[str], function: Any, version: str
) -> tuple[list[str], str, str]:
    name = evaluation.function
    keyword = unknown[0]
    value = evaluation.kwargs.get(keyword)
    replacement = REPLACEMENTS.get((name, keyword, value))
    import sklearn.metrics

    call = f"{name}(..., {keyword}={value!r})"
    if replacement and hasattr(sklearn.metrics, replacement) and len(unknown) == 1:
        evaluation.function = replacement
        evaluation.kwargs = {k: v for k, v in evaluation.kwargs.items() if k != keyword}
        note = (
            f"{evaluation.where} calls {call}, but {version} has no `{keyword}`: the model gate "
            f"computes {replacement}(...) instead. That line of the notebook fails on this "
            f"scikit-learn too: write `{replacement}(y_true, y_pred)` there and promote again"
        )
        return [note], "", ""
    accepted = ", ".join(p for p in list(inspect.signature(function).parameters)[2:])
    problem = f"{evaluation.where} calls {call}, but {version}'s {name} has no `{keyword}`"
    fix = f"call it with the parameters {version} accepts ({accepted}) in the notebook"
    return [], problem, fix


def _check_cross_val(evaluation: Evaluation, version: str) -> tuple[list[str], str, str]:
    from sklearn.metrics import get_scorer_names
    from sklearn.model_selection import cross_val_score

    where = evaluation.where
    unknown = _unknown_keywords(cross_val_score, evaluation.kwargs, positional=3)
    if unknown:
        problem = f"{where}: cross_val_score of {version} has no `{unknown[0]}`"
        return [], problem, "remove it from the call in the notebook"
    scoring = evaluation.kwargs.get("scoring")
    if isinstance(scoring, str) and scoring not in get_scorer_names():
        problem = f"{where}: {version} has no scorer named {scoring!r}"
        return [], problem, "use a name from sklearn.metrics.get_scorer_names()"
    cv = evaluation.kwargs.get("cv")
    if isinstance(cv, dict):
        import sklearn.model_selection

        name = str(cv.get("splitter"))
        splitter = getattr(sklearn.model_selection, name, None) if name in SPLITTERS else None
        args = {k: v for k, v in cv.items() if k != "splitter"}
        if splitter is None or _unknown_keywords(splitter, args, positional=0):
            problem = f"{where}: cv={name}(...) does not match {version}"
            return [], problem, "pass cv as an integer, or a splitter with valid arguments"
    return [], "", ""


def _unknown_keywords(function: Any, kwargs: dict[str, Any], positional: int) -> list[str]:
    """The keywords the function does not accept (bound after ``positional`` arguments)."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return []
    try:
        signature.bind(*([None] * positional), **kwargs)
    except TypeError:
        accepted = set(signature.parameters)
        takes_any = any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()
        )
        return [] if takes_any else [k for k in kwargs if k not in accepted] or list(kwargs)
    return []
