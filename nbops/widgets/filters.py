"""The run browser's filter language: ``accuracy >= 0.9, max_depth = 3, status = FAILED``.

One text box is enough for the three filters people ask for (a parameter value, a metric
threshold, a status) and reads the same in the widget, the text fallback and the tests.
Conditions are joined by ``,`` or ``and``; all must hold. Stdlib only.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nbops.errors import UsageError

FILTER_HELP = (
    "write conditions like `accuracy >= 0.9, max_depth = 3, status = FINISHED` "
    "(operators = != < <= > >= ~ for 'contains'; params.X / metrics.X when a name is both)"
)
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "!=": operator.ne,
    "==": operator.eq,
    "=": operator.eq,
    ">": operator.gt,
    "<": operator.lt,
    "~": lambda value, wanted: str(wanted).lower() in str(value).lower(),
}
_CONDITION = re.compile(
    r"^\s*(?P<key>[^<>=!~]+?)\s*(?P<op>>=|<=|!=|==|=|>|<|~)\s*(?P<value>.*?)\s*$"
)
_SPLIT = re.compile(r",|\s+and\s+", re.IGNORECASE)
_OPERATOR_CHARS = "<>=!~"
ORDERING = frozenset({">", ">=", "<", "<="})


@dataclass(frozen=True)
class Condition:
    """``key op value``; ``key`` is a column key of the run table (see ``RunTable.value``)."""

    key: str
    op: str
    value: str

    def holds(self, actual: Any) -> bool:
        """Numbers compare as numbers, everything else as text; a missing value never holds
        (except for ``!=``), so ``accuracy > 0.9`` hides runs without an accuracy."""
        if actual is None or actual == "":
            return self.op == "!="
        if self.op == "~":
            return _OPS["~"](actual, self.value)
        left: Any
        right: Any
        left, right = as_number(actual), as_number(self.value)
        if left is None or right is None:
            left, right = str(actual).lower(), self.value.lower()
        return bool(_OPS[self.op](left, right))

    def __str__(self) -> str:
        return f"{self.key} {self.op} {self.value}"


def parse_filter(text: str) -> list[Condition]:
    """The conditions in ``text`` (empty: none); a UsageError naming the part it cannot read,
    e.g. a doubled operator (``accuracy >> 2``), which would otherwise compare as text and
    silently match nothing."""
    conditions = []
    for part in _SPLIT.split(text or ""):
        if not part.strip():
            continue
        match = _CONDITION.match(part)
        if match is None or not match["value"]:
            raise UsageError(f"cannot read the filter condition {part.strip()!r}", fix=FILTER_HELP)
        value = match["value"].strip().strip("'\"")
        if value and value[0] in _OPERATOR_CHARS:
            key, op, rest = match["key"].strip(), match["op"], value.lstrip(_OPERATOR_CHARS)
            raise UsageError(
                f"cannot read the filter condition {part.strip()!r}: an operator follows "
                f"{op!r} ({value[:1]!r})",
                fix=f"write one operator, e.g. `{key} {op} {rest.strip()}`; " + FILTER_HELP,
            )
        conditions.append(Condition(match["key"].strip(), match["op"], value))
    return conditions


def as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None
