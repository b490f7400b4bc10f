"""Which parameters a run records for the estimators of a cell: the ones that mean something.

An estimator has dozens of settings (a random forest 18) and a cell usually sets two. Recording
all of them buries the two under defaults in MLflow's UI, the summary and the run browser's
menus. So a run's params for estimator ``model`` are ``model.<setting>`` for the settings that
differ from the estimator's defaults plus those the cell gave by name (``max_depth=3`` even
when 3 were the default); ``get_params()`` in full stays in ``record.json``
(``RunRecord.estimators``). A setting fed by a param the run already records
(``max_depth = 3`` then ``RandomForestClassifier(max_depth=max_depth)``) is that one param,
not two.

Runs on the cell's thread: one ``inspect.signature`` per estimator class (cached), no imports.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Collection, Mapping
from typing import Any

from nbops.capture.namespace import plain_value


def settings(est: Any) -> dict[str, Any]:
    """Every setting of ``est`` (``get_params(deep=False)``) as a JSON-friendly value."""
    try:
        params = est.get_params(deep=False)
    except Exception:
        return {}
    return {str(key): plain_value(value) for key, value in params.items()}


def lean_params(name: str, est: Any, named: Collection[str] = ()) -> dict[str, Any]:
    """``{"name.setting": value}`` for the settings of ``est`` that differ from its class's
    defaults, or that the cell set by name (``named``)."""
    try:
        params = est.get_params(deep=False)
    except Exception:
        return {}
    defaults = class_defaults(type(est))  # type: ignore[arg-type]  # classes are hashable
    kept = {}
    for key, value in params.items():
        if key in named or key not in defaults or not is_default(value, defaults[key]):
            kept[f"{name}.{key}"] = plain_value(value)
    return kept


def merge_fed(
    params: dict[str, Any], named: Mapping[str, Mapping[str, str | None]]
) -> dict[str, Any]:
    """``params`` without the estimator settings fed by a param recorded under its own name:
    ``model.max_depth`` goes when the cell passed ``max_depth=depth`` and ``depth`` is a param
    holding the same value."""
    out = dict(params)
    for var, keywords in named.items():
        for key, source in keywords.items():
            long = f"{var}.{key}"
            if source and source in out and long in out and _same(out[source], out[long]):
                del out[long]
    return out


@functools.lru_cache(maxsize=256)
def class_defaults(cls: type) -> dict[str, Any]:
    """The defaults of ``cls.__init__``'s parameters (scikit-learn keeps settings there)."""
    try:
        signature = inspect.signature(cls.__init__)  # type: ignore[misc]
    except (TypeError, ValueError):
        return {}
    empty = inspect.Parameter.empty
    return {n: p.default for n, p in signature.parameters.items() if p.default is not empty}


def is_default(value: Any, default: Any) -> bool:
    """``value`` is the default: the same object, or an equal value of the same type (so
    ``C=1`` given for a default of ``1.0`` counts as set); arrays and odd objects never are."""
    if value is default:
        return True
    if type(value) is not type(default):
        return False
    if isinstance(value, float) and math.isnan(value) and math.isnan(default):
        return True
    try:
        return bool(value == default)
    except Exception:  # an array's truth value, a broken __eq__
        return False


def _same(a: Any, b: Any) -> bool:
    try:
        return a == b and type(a) is type(b)
    except Exception:
        return False
