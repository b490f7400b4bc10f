"""Monitoring the served champion (``nbops monitor``, ``%nbops monitor``): drift of the served
inputs and predictions against the gate's holdout (the PSI/KS code of ``validate_data``), the
live metric where labels came back against the gate score, reports, MLflow metrics over time,
and the triggers ``nbops retrain`` fires on.

Modules: ``config`` (``monitor:`` in params.yaml), ``analysis`` (the check), ``result``,
``report`` (md, html, json), ``tracking`` (MLflow), ``state`` (checks and fired triggers),
``api`` (the entry points). Nothing heavy is imported until used.
"""

from __future__ import annotations

from nbops._lazy import lazy_getattr

_LAZY = {
    "monitor": "nbops.monitor.api",
    "retrain_triggers": "nbops.monitor.api",
    "MonitorResult": "nbops.monitor.result",
    "MonitorConfig": "nbops.monitor.config",
}
__all__ = list(_LAZY)
__getattr__ = lazy_getattr(__name__, _LAZY)
