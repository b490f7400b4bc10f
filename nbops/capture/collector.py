"""Explicit logging from inside a tracked cell or block: ``nbops.log_param`` and friends.

The active collector lives in a :class:`contextvars.ContextVar`, set by the capture while the
tracked code runs, so explicit calls attach to the right run (threads and async tasks that copy
the context included). Outside a tracked cell a call warns and does nothing: logging must never
break the user's code, so a value that is not a number warns too instead of raising.

A metric logged with a step (``log_metric("loss", 0.3, step=7)``, or inside a loop wrapped in
:func:`steps`) keeps its history (stored as MLflow metric history) and is passed to the live
view of a running ``%%track`` cell, if there is one.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class LiveHook(Protocol):
    """What a live view of the running cell is told (see :mod:`nbops.live`)."""

    def metric(self, key: str, value: float, step: int) -> None: ...

    def progress(self, step: int, done: int, total: int | None) -> None: ...


@dataclass
class Collector:
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    history: dict[str, list[list[float]]] = field(default_factory=dict)  # [step, value, ms]
    step: int | None = None  # the current iteration of nbops.steps()
    live: LiveHook | None = None

    def add_metric(self, key: str, value: float, step: int | None) -> None:
        self.metrics[key] = value
        step = self.step if step is None else step
        if step is None:
            return
        self.history.setdefault(key, []).append([step, value, round(time.time() * 1000)])
        if self.live is not None:
            self.live.metric(key, value, step)


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


def log_metric(key: str, value: float, step: int | None = None) -> None:
    """Record a metric of the current tracked run (the last value logged is the run's value).

    With ``step`` (an epoch, an iteration) every value is kept as the metric's history and
    drawn live under a running ``%%track`` cell; inside ``for ... in nbops.steps(...)`` the
    loop's iteration is the step when none is given.
    """
    collector = _active("log_metric")
    if collector is None:
        return
    number, whole = _number(key, value), _step(key, step)
    if number is not None and whole is not False:
        collector.add_metric(str(key), number, whole)


def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    """Several metrics at once, all at the same ``step`` (see :func:`log_metric`)."""
    collector = _active("log_metrics")
    if collector is None:
        return
    whole = _step("log_metrics", step)
    for key, value in metrics.items():
        number = _number(key, value)
        if number is not None and whole is not False:
            collector.add_metric(str(key), number, whole)


def steps(iterable: Iterable[T], *, start: int = 0) -> Iterator[T]:
    """Iterate like ``iterable``; each iteration is a step of the current tracked run.

    >>> for epoch in nbops.steps(range(20)):
    ...     loss = train_one_epoch()
    ...     nbops.log_metric("loss", loss)      # step = epoch number
    ...     nbops.log_metric("accuracy", acc)   # the same step

    Under a running ``%%track`` cell the summary shows "step 7 of 20" and the metrics' curves
    while the loop runs. Outside a tracked cell it only iterates (with a warning).
    """
    collector = _active("steps")
    total = len(iterable) if hasattr(iterable, "__len__") else None  # type: ignore[arg-type]
    outer = collector.step if collector is not None else None
    try:
        for done, item in enumerate(iterable, 1):
            if collector is not None:
                collector.step = start + done - 1
                if collector.live is not None:
                    collector.live.progress(collector.step, done, total)
            yield item
    finally:
        if collector is not None:
            collector.step = outer


def set_tag(key: str, value: Any) -> None:
    collector = _active("set_tag")
    if collector is not None:
        collector.tags[str(key)] = str(value)


def _number(key: object, value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        warnings.warn(
            f"nbops.log_metric({key!r}, ...): {type(value).__name__} {value!r:.60} is not a "
            "number; not recorded. Pass a float, e.g. float(value).",
            stacklevel=4,
        )
        return None


def _step(key: object, step: Any) -> int | bool | None:
    """The step as an int; None for no step; False (after a warning) for a bad one."""
    if step is None:
        return None
    if isinstance(step, bool) or not isinstance(step, int | float) or not _whole(step):
        try:
            step = step.__index__()  # numpy integers
        except (AttributeError, TypeError):
            warnings.warn(
                f"nbops: step {step!r} for {key!r} is not a whole number; not recorded. "
                "Pass the epoch or iteration as an int.",
                stacklevel=4,
            )
            return False
    return int(step)


def _whole(number: float) -> bool:
    return math.isfinite(number) and float(number).is_integer()
