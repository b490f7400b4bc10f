"""Short parameter names: ``max_depth`` for ``model.max_depth`` when nothing else could be meant.

A run records an estimator's settings as ``<variable>.<setting>`` and a literal under its own
name, so the same knob is ``max_depth`` in one run and ``model.max_depth`` in another (a loop
over ``nbops.track()``). People type the short name; the run browser's filter and sort,
``nbops diff`` and ``nbops run --check`` accept it: a name matches itself, or the long names
that end in ``.<name>``. It is ambiguous only when one run holds two such long names
(``rf.max_depth`` and ``gb.max_depth``); then the error lists them. Stdlib only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from nbops.errors import UsageError


def short(name: str) -> str:
    """The part after the last dot: ``model.max_depth`` -> ``max_depth``."""
    return name.rpartition(".")[2]


def matches(names: Iterable[str], name: str) -> list[str]:
    """The names ``name`` refers to: itself when present, else those ending in ``.name``."""
    present = list(names)
    if name in present:
        return [name]
    return sorted(n for n in present if n.endswith("." + name))


def lookup(params: Mapping[str, Any], name: str) -> Any:
    """The value of ``name`` in one run's params (None when absent or ambiguous)."""
    found = matches(params, name)
    return params[found[0]] if len(found) == 1 else None


def check_unambiguous(runs: Iterable[Mapping[str, Any]], name: str, fix: str) -> list[str]:
    """Every long name ``name`` refers to across ``runs``; a UsageError naming them when one
    run holds several (which one is meant cannot be told)."""
    everywhere: set[str] = set()
    for params in runs:
        found = matches(params, name)
        if len(found) > 1:
            raise UsageError(
                f"{name!r} is ambiguous: it matches {', '.join(found)} in the same run",
                fix=f"write the long name (params.{found[0]}); {fix}",
                name=name,
            )
        everywhere.update(found)
    return sorted(everywhere)
