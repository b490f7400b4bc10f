"""How a run used each piece of data, in MLflow's dataset vocabulary ("context").

MLflow's run page groups a run's datasets by context: ``training`` for what a model was fitted
on, ``evaluation`` for what it was scored on. The cell's calls tell them apart (the arguments
of ``.fit()``; of ``.predict()``/``.score()`` or a ``sklearn.metrics`` function); anything
else is an ``input`` or ``output`` of the run. Files keep their role.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nbops.capture.namespace import resolve
from nbops.capture.scan import CellScan
from nbops.capture.vocab import EVALUATION_METHODS
from nbops.record import DataRef

TRAINING, EVALUATION = "training", "evaluation"


def set_contexts(refs: list[DataRef], scan: CellScan, ns: Mapping[str, Any]) -> None:
    """Give every ref its context (training > evaluation > its role)."""
    training = {name for args in scan.fits.values() for name in args if name}
    evaluation = {name for call in scan.calls if _evaluates(call.callee, ns) for name in call.args}
    for ref in refs:
        if ref.kind != "file" and ref.name in training:
            ref.context = TRAINING
        elif ref.kind != "file" and ref.name in evaluation:
            ref.context = EVALUATION
        else:
            ref.context = ref.role


def _evaluates(callee: str, ns: Mapping[str, Any]) -> bool:
    owner, _, method = callee.rpartition(".")
    if owner and method in EVALUATION_METHODS:
        return True
    module = str(getattr(resolve(callee, ns), "__module__", "") or "")
    return module.startswith("sklearn.metrics")
