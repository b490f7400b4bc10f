"""Explicit logging from inside a tracked cell or block: ``nbops.log_param`` and friends.

The active collector lives in a :class:`contextvars.ContextVar`, set by the capture while the
tracked code runs, so explicit calls attach to the right run (threads and async tasks that copy
the context included). Outside a tracked cell a call warns and does nothing: logging must never
break the user's code.
"""

from __future__ import annotations

import warnings
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Collector:
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


ACTIVE: ContextVar[Collector | None] = ContextVar("nbops_active_collector", default=None)


def _active(what: str) -> Collector | None:
    collector = ACTIVE.get()
    if collector is None:
        warnings.warn(
            f"nbops.{what} called outside a tracked cell: nothing recorded. Put %%track on "
            "the cell, or wrap the code in `with nbops.track():`.",
            stacklevel=3,
        )
    return collector


def log_param(key: str, value: Any) -> None:
    """Record a parameter of the current tracked run."""
    collector = _active("log_param")
    if collector is not None:
        collector.params[str(key)] = value


def log_params(params: dict[str, Any]) -> None:
    collector = _active("log_params")
    if collector is not None:
        collector.params.update({str(k): v for k, v in params.items()})


def log_metric(key: str, value: float) -> None:
    """Record a metric of the current tracked run (the last value logged wins)."""
    collector = _active("log_metric")
    if collector is not None:
        collector.metrics[str(key)] = float(value)


def log_metrics(metrics: dict[str, float]) -> None:
    collector = _active("log_metrics")
    if collector is not None:
        collector.metrics.update({str(k): float(v) for k, v in metrics.items()})


def set_tag(key: str, value: Any) -> None:
    collector = _active("set_tag")
    if collector is not None:
        collector.tags[str(key)] = str(value)
