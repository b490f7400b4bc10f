"""P1, P1s, G1: how fast nbops fingerprints data, against the plain read and the hashes users know.

Rows are :func:`common.speedup_row`: ``ratio = anchor_s / nbops_s`` (bigger = nbops faster),
met when >= the target; rows without a target are informative. Times are medians of a few runs
of :func:`time.perf_counter` after a warm-up. MLflow's dataset digest (P1c) costs ~20 s per GB
(a ``df.map(type)`` over every cell, linear in the cells): it is timed on the frame's first
1/16 of rows and scaled by 16, or on the whole frame, once, with ``full=True`` (``run.py
--full``). Run ``python benchmarks/run.py --only bench_fingerprint [--quick]`` to print them.
"""

from __future__ import annotations

import hashlib
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
import xxhash
from common import speedup_row

from nbops.hashing import frames as fp
from nbops.hashing import sink

DIGEST_SLICE = 16  # P1c: MLflow's digest runs on 1/16 of the rows, scaled by 16


def rows(quick: bool = False, full: bool = False) -> list[dict[str, Any]]:
    """Benchmark rows: P1 (big float frame), P1s (string columns), G1 (GIL release)."""
    return [*_p1(quick, full), *_p1s(quick), _g1()]


def _median(fn: Callable[[], object], reps: int) -> float:
    fn()  # warm-up: imports, page faults, caches
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _float_frame(nbytes: int) -> pd.DataFrame:
    ncols = 16
    nrows = nbytes // 8 // ncols
    data = np.random.default_rng(0).random((nrows, ncols))
    return pd.DataFrame(data, columns=[f"c{i}" for i in range(ncols)])


def _numpy_read_s(columns: list[np.ndarray], reps: int) -> float:
    """The fastest honest single pass over the same memory, over a few plain reductions."""
    as_u64 = [c.view(np.uint64) for c in columns]
    candidates = [
        lambda: [c.sum() for c in columns],
        lambda: [np.add.reduce(c) for c in as_u64],
        lambda: [np.bitwise_xor.reduce(c) for c in as_u64],
    ]
    return min(_median(fn, reps) for fn in candidates)


def _md5_columns(columns: list[np.ndarray]) -> str:
    md5 = hashlib.md5(usedforsecurity=False)
    for col in columns:
        md5.update(memoryview(col).cast("B"))
    return md5.hexdigest()


def _p1(quick: bool, full: bool) -> list[dict[str, Any]]:
    size = (100 if quick else 1024) << 20
    label = "100 MB" if quick else "1 GB"
    reps = 11 if quick else 5
    df = _float_frame(size)
    columns = [df[c].to_numpy() for c in df.columns]
    assert all(c.flags.c_contiguous for c in columns)
    nbops_s = _median(lambda: fp.fingerprint(df), reps)
    with mock.patch.object(sink, "_PARALLEL_BYTES", 1 << 62):
        one_thread_s = _median(lambda: fp.fingerprint(df), reps)
    read_s = _numpy_read_s(columns, reps)
    md5_s = _median(lambda: _md5_columns(columns), 1 if not quick else 3)
    what = f"fingerprint {label} float64 frame"
    digest_s, digest_how = _mlflow_digest_s(df, full)
    return [
        speedup_row("P1a", what, nbops_s, "numpy read", read_s, 0.8),
        speedup_row(
            "P1a-1t", f"same, one thread ({label})", one_thread_s, "numpy read", read_s, None
        ),
        speedup_row("P1b", what, nbops_s, "hashlib.md5", md5_s, 20),
        speedup_row("P1c", what, nbops_s, f"mlflow dataset digest {digest_how}", digest_s, None),
    ]


def _mlflow_digest_s(df: pd.DataFrame, full: bool) -> tuple[float, str]:
    """``mlflow.data.from_pandas(df).digest``: once on the whole frame (``full``), else the
    median of 3 on its first 1/DIGEST_SLICE rows times DIGEST_SLICE (the cost is per cell)."""
    import mlflow.data

    _ = mlflow.data.from_pandas(df.head(1000)).digest  # warm-up: imports
    if full:
        start = time.perf_counter()
        _ = mlflow.data.from_pandas(df).digest
        return time.perf_counter() - start, "(whole frame)"
    part = df.iloc[: len(df) // DIGEST_SLICE]
    slice_s = _median(lambda: mlflow.data.from_pandas(part).digest, 3)
    return slice_s * len(df) / len(part), f"(1/{DIGEST_SLICE} of rows, scaled)"


def _p1s(quick: bool) -> list[dict[str, Any]]:
    """1M rows, unique strings (ids, text). hash_pandas_object factorizes object/str columns
    first, so low-cardinality strings make it much faster: that case is an informative row."""
    n = 1_000_000
    reps = 3 if quick else 5
    base = pd.DataFrame(
        {
            "id": np.arange(n),
            "x": np.random.default_rng(0).random(n),
            "s": pd.Series([f"user_{i:07d}" for i in range(n)], dtype="str"),
        }
    )
    cases = [
        ("P1s", "str", base, 20),
        ("P1s-obj", "object", base.astype({"s": object}), 20),
        ("P1s-lowcard", "str (10k distinct)", base.assign(s=base["s"].str.slice(0, 10)), None),
    ]
    out = []
    for tag, kind, df, target in cases:
        nbops_s = _median(lambda df=df: fp.fingerprint(df), reps)
        anchor_s = _median(lambda df=df: pd.util.hash_pandas_object(df), reps)
        what = f"fingerprint 1M rows, int+float+{kind} strings"
        out.append(speedup_row(tag, what, nbops_s, "hash_pandas_object", anchor_s, target))
    return out


def _g1() -> dict[str, Any]:
    """Does xxhash release the GIL? Two 64 MB buffers on two threads vs one after the other."""
    from concurrent.futures import ThreadPoolExecutor

    bufs = [np.random.default_rng(i).random(8 << 20) for i in range(2)]

    def digest(buf: np.ndarray) -> bytes:
        return xxhash.xxh3_128(memoryview(buf).cast("B")).digest()

    with ThreadPoolExecutor(2) as pool:
        threaded_s = _median(lambda: list(pool.map(digest, bufs)), 7)
    serial_s = _median(lambda: [digest(b) for b in bufs], 7)
    return speedup_row(
        "G1", "xxh3_128 of 2 x 64 MB on 2 threads", threaded_s, "1 thread", serial_s, 1.5
    )


if __name__ == "__main__":
    for row in rows(quick="--quick" in sys.argv, full="--full" in sys.argv):
        print(row)
