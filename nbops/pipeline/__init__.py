"""Running promoted pipelines: ``nbops run`` (DVC + a parent MLflow run), ``nbops step`` (one
step notebook through papermill) and :class:`StepRun` (inside a step's kernel).

Names are resolved lazily so ``import nbops.pipeline.runtime`` in a step's kernel stays light:
papermill, DVC and MLflow load only in the processes that use them.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "StepRun": "nbops.pipeline.runtime",
    "run_step": "nbops.pipeline.step",
    "run_pipeline": "nbops.pipeline.run",
    "PipelineResult": "nbops.pipeline.run",
    "StepStatus": "nbops.pipeline.run",
    "check_pipeline": "nbops.pipeline.check",
    "CheckReport": "nbops.pipeline.check",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nbops.pipeline' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
