"""Unseeded randomness in a cell: what makes its result irreproducible, said with the fix.

The vocabularies (seeded functions, global generators and their seed calls) are data in
:mod:`nbops.capture.vocab`; this module reads the cell's calls and values against them.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from nbops.capture.namespace import resolve
from nbops.capture.scan import CellScan
from nbops.capture.vocab import (
    GLOBAL_DRAWS,
    RANDOM_ONLY_WHEN,
    SEED_CALLS,
    SEEDED_FUNCTIONS,
    UNSEEDED_GENERATORS,
)

__all__ = ["seed_warnings"]


def seed_warnings(
    ns: Mapping[str, Any], scan: CellScan, estimators: list[str], code: str = ""
) -> list[str]:
    """Unseeded randomness that makes a result irreproducible, said with the fix: splits and
    samples without random_state, draws from an unseeded global generator (numpy's legacy
    ``np.random.*``, ``random.*``; seeded when this cell or an earlier input calls its
    ``seed``), generators made without a seed, estimators whose settings draw numbers."""
    warnings = []
    for call in scan.calls:
        short = call.callee.rpartition(".")[2]
        if short in SEEDED_FUNCTIONS and "random_state" not in call.keywords:
            warnings.append(
                f"line {call.line}: {short}() without random_state: the split changes on "
                "every run; pass random_state=<int>"
            )
        elif problem := _unseeded_call(call.callee, call.keywords, ns, code):
            warnings.append(f"line {call.line}: {problem}")
    for name in estimators:
        try:
            params = ns[name].get_params(deep=False)
        except Exception:
            continue
        if "random_state" in params and params["random_state"] is None and _random(params):
            warnings.append(
                f"{name} ({type(ns[name]).__name__}) has random_state=None: results are not "
                "reproducible; pass random_state=<int>"
            )
    return warnings


def _unseeded_call(callee: str, keywords: frozenset[str], ns: Mapping[str, Any], code: str) -> str:
    """Why a call draws unreproducible numbers ("" when it does not)."""
    owner, _, short = callee.rpartition(".")
    module = _module_name(resolve(owner, ns)) if owner else ""
    if not owner:
        module = str(getattr(ns.get(short), "__module__", "") or "").removeprefix("numpy.random.")
        module = "numpy.random" if module.startswith(("mtrand", "numpy.random")) else module
    if module in GLOBAL_DRAWS and short in GLOBAL_DRAWS[module][0]:
        if _seeded(module, ns, code):
            return ""
        name = "np.random" if module == "numpy.random" else module
        return (
            f"{callee}() draws from {name}'s global generator, which nothing seeds: the "
            f"values change on every run; call {GLOBAL_DRAWS[module][1]}"
        )
    if short in UNSEEDED_GENERATORS and module == "numpy.random" and not keywords:
        return _generator_without_seed(callee, code)
    if short == "sample" and "random_state" not in keywords and _is_pandas(resolve(owner, ns)):
        return (
            f"{callee}() without random_state: the rows it picks change on every run (no "
            "seed); pass random_state=<int>"
        )
    return ""


def _generator_without_seed(callee: str, code: str) -> str:
    """``np.random.default_rng()`` with no argument: a fresh random seed on every run."""
    import re

    if re.search(re.escape(callee) + r"\(\s*\)", code) is None:
        return ""
    return (
        f"{callee}() without a seed: a new random stream on every run; pass a seed "
        f"({callee}(<int>))"
    )


def _module_name(obj: Any) -> str:
    return obj.__name__ if inspect.ismodule(obj) else ""


def _is_pandas(obj: Any) -> bool:
    return type(obj).__module__.startswith("pandas") and hasattr(obj, "sample")


def _seeded(module: str, ns: Mapping[str, Any], code: str) -> bool:
    """Whether this cell or an input run before it seeds ``module``'s global generator."""
    history = ns.get("In")
    inputs = [code, *(history if isinstance(history, list) else [])]
    pattern = SEED_CALLS[module]
    return any(isinstance(text, str) and pattern.search(text) for text in inputs)


def _random(params: Mapping[str, Any]) -> bool:
    """Whether the estimator's settings draw random numbers (see ``RANDOM_ONLY_WHEN``)."""
    for param, random_values in RANDOM_ONLY_WHEN.items():
        if param in params and str(params[param]) not in random_values:
            return False
    return True
