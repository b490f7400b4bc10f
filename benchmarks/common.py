"""What every benchmark module shares: timing medians and the row format of benchmarks/run.py."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


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


def row(id_: str, what: str, nbops_s: float, anchor: str, anchor_s: float, limit: float) -> dict:
    """One result; ``ratio`` is nbops time over anchor time, met when <= ``limit``."""
    ratio = nbops_s / anchor_s
    return {
        "id": id_,
        "what": what,
        "nbops_s": nbops_s,
        "anchor": anchor,
        "anchor_s": anchor_s,
        "ratio": ratio,
        "target": f"<= {limit}x",
        "met": ratio <= limit,
    }
