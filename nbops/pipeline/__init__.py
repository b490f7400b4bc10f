"""Running promoted pipelines: ``nbops run`` (DVC + a parent MLflow run), ``nbops step`` (one
step notebook through papermill) and :class:`StepRun` (inside a step's kernel).

Names are resolved lazily so ``import nbops.pipeline.runtime`` in a step's kernel stays light:
papermill, DVC and MLflow load only in the processes that use them.
"""

from __future__ import annotations

from nbops._lazy import lazy_getattr

_EXPORTS = {
    "StepRun": "nbops.pipeline.runtime",
    "run_step": "nbops.pipeline.step",
    "run_pipeline": "nbops.pipeline.run",
    "PipelineResult": "nbops.pipeline.run",
    "StepStatus": "nbops.pipeline.progress",
    "check_pipeline": "nbops.pipeline.check",
    "CheckReport": "nbops.pipeline.check",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
