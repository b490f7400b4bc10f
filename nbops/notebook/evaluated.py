"""What the evaluation walk (:mod:`nbops.notebook.evaluation`) finds and the choice
(:mod:`nbops.notebook.choice`) decides: plain data, shared by both. Stdlib only."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from nbops.notebook.plan import Cell
from nbops.notebook.scoring import METRIC_FUNCTIONS


@dataclass
class Evaluation:
    """One score found in the notebook: ``metric = post(function(y, model.method(X)))``."""

    metric: str  # the variable the score is assigned to, or a name derived from the function
    function: str  # a METRIC_FUNCTIONS key, "score" or "cross_val_score"
    model: str
    X: str
    y: str
    method: str = "predict"
    kwargs: dict[str, Any] = field(default_factory=dict)  # constant keyword arguments
    step: str = ""  # the step whose cell computes it
    where: str = ""  # the cell, for messages
    post: list[list[Any]] = field(default_factory=list)  # arithmetic around it, inner first
    flips: bool = False  # the arithmetic reverses the order (``1 - accuracy``)
    scopes: dict[str, str] = field(default_factory=dict)  # role -> step it is in scope in
    via: str = ""  # classification_report / cross_validate, when read through one
    cell: int = -1  # the cell's 0-based index
    loop: str = ""  # the collection a loop scores (model is the loop variable), if unpicked
    loop_names: frozenset[str] = frozenset()
    problem: str = ""  # why the gate cannot repeat it ("" when it can)
    hint_model: str = ""
    hint_X: str = ""
    hint_step: str = ""
    kind: str = ""  # what the problem is about: predictions | labels | kwargs | data
    order: int = 0

    @property
    def greater_is_better(self) -> bool:
        return METRIC_FUNCTIONS.get(self.function, True) != self.flips

    def scope(self, role: str) -> str:
        """The step in which variable ``role`` (model, X, y) holds what was scored."""
        return self.scopes.get(role) or self.step


@dataclass
class Analysis:
    """The evaluation the gate repeats, or why there is none and the fix; notes either way."""

    evaluation: Evaluation | None
    reason: str = ""
    fix: str = ""
    notes: list[str] = field(default_factory=list)
    candidates: list[Evaluation] = field(default_factory=list)


@dataclass
class Assignment:
    """An assignment the walk saw: a later cell may pick a model out of a scored loop."""

    order: int
    target: str
    value: ast.expr
    step: str
    cell: Cell
