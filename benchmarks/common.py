"""What every benchmark module shares: timing medians and the row format of benchmarks/run.py.

A row compares nbops with its anchor measured in the same run, in one of two directions:
:func:`row` (``ratio`` = nbops time / anchor time, met when <= the limit: "costs at most 0.25x
the time") or :func:`speedup_row` (``ratio`` = anchor time / nbops time, met when >= the bound:
"at least 20x as fast"). ``ratio_kind`` says which, so the table prints it unambiguously.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def median_times(
    fn: Callable[[], object], repeat: int, before: Callable[[], object] | None = None
) -> float:
    """Median wall time of ``fn``; ``before`` runs untimed ahead of each repetition."""
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _result(
    id_: str, what: str, nbops_s: float, anchor: str, anchor_s: float, kind: str, ratio: float
) -> dict[str, Any]:
    return {
        "id": id_,
        "what": what,
        "nbops_s": nbops_s,
        "anchor": anchor,
        "anchor_s": anchor_s,
        "ratio": ratio,
        "ratio_kind": kind,
    }


def row(id_: str, what: str, nbops_s: float, anchor: str, anchor_s: float, limit: float) -> dict:
    """One result; ``ratio`` is nbops time over anchor time, met when <= ``limit``."""
    ratio = nbops_s / anchor_s
    result = _result(id_, what, nbops_s, anchor, anchor_s, "time", ratio)
    return result | {"target": f"<= {limit:g}x", "met": ratio <= limit}


def speedup_row(
    id_: str, what: str, nbops_s: float, anchor: str, anchor_s: float, at_least: float | None
) -> dict[str, Any]:
    """One result; ``ratio`` is anchor time over nbops time (how many times as fast nbops is),
    met when >= ``at_least``; ``at_least=None`` makes an informative row without a target."""
    ratio = anchor_s / nbops_s
    result = _result(id_, what, nbops_s, anchor, anchor_s, "speedup", ratio)
    target = f">= {at_least:g}x" if at_least is not None else ""
    return result | {"target": target, "met": None if at_least is None else ratio >= at_least}
