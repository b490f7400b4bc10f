"""The reference profile: what the training data looked like, per column, as JSON.

Drift is measured against it (``reference/profile.json``), so it must be small and stable: a
numeric column keeps the unique deciles of the reference as bin edges with the share of values
in each bin (bins are right-closed and the outer ones open-ended), summary numbers, and a sorted
sample of at most 2,000 values (evenly spaced order statistics: deterministic, and a faithful
stand-in for the full column in a KS test). A categorical column keeps its value frequencies.
Identical data gives byte-identical files (floats rounded to 12 significant digits).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

SAMPLE_SIZE = 2000
QUANTILES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
MAX_CATEGORIES = 50  # more distinct values: an identifier or free text, not profiled
DIGITS = 12


def infer_profile(df: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """``{column: profile}`` of a reference frame, in column order."""
    return {str(name): column_profile(df[name]) for name in df.columns}


def column_kind(series: pd.Series) -> str:
    """ "numeric", "categorical" (strings, categories, booleans) or "other" (dates, ...)."""
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "categorical"
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dtype):
        return "categorical"
    return "other"


def column_profile(series: pd.Series) -> dict[str, Any]:
    count = len(series)
    nulls = int(series.isna().sum())
    base: dict[str, Any] = {"count": count, "null_share": _round(nulls / count if count else 0.0)}
    kind = column_kind(series)
    if kind == "numeric":
        return {"kind": kind, **base, **_numeric(numeric_values(series))}
    if kind == "categorical":
        shares = frequencies(series)
        if len(shares) <= MAX_CATEGORIES:
            return {"kind": kind, **base, "frequencies": shares}
        base["note"] = f"{len(shares)} distinct values: not compared for drift"
    return {"kind": "other", **base}


def numeric_values(series: pd.Series) -> np.ndarray:
    """The non-null values as float64 (nullable Int64 and friends included)."""
    return series.dropna().to_numpy(dtype="float64")


def _numeric(values: np.ndarray) -> dict[str, Any]:
    import numpy as np

    if not len(values):
        return {
            "mean": None,
            "std": None,
            "min": None,
            "max": None,
            "edges": [],
            "proportions": [1.0],
            "sample": [],
        }
    ordered = np.sort(values)
    edges = np.unique(np.quantile(ordered, QUANTILES))
    if len(ordered) > SAMPLE_SIZE:
        ordered = ordered[np.linspace(0, len(ordered) - 1, SAMPLE_SIZE).round().astype(int)]
    return {
        "mean": _round(float(values.mean())),
        "std": _round(float(values.std())),
        "min": _round(float(values.min())),
        "max": _round(float(values.max())),
        "edges": [_round(e) for e in edges.tolist()],
        "proportions": [_round(p) for p in bin_shares(values, edges.tolist())],
        "sample": ordered.tolist(),
    }


def bin_shares(values: np.ndarray, edges: list[float]) -> list[float]:
    """Share of ``values`` per bin: ``(-inf, e0], (e0, e1], ..., (e_last, inf)``."""
    import numpy as np

    if not len(values):
        return [0.0] * (len(edges) + 1)
    index = np.searchsorted(np.asarray(edges, dtype="float64"), values, side="left")
    counts = np.bincount(index, minlength=len(edges) + 1)
    return (counts / len(values)).tolist()


def frequencies(series: pd.Series) -> dict[str, float]:
    """Share of each non-null value among the non-null values, keyed by ``str(value)``,
    sorted by key (booleans as ``"True"``/``"False"``)."""
    values = series.dropna()
    if not len(values):
        return {}
    counts = values.astype(object).map(str).value_counts()
    return {str(k): _round(int(v) / len(values)) for k, v in sorted(counts.items())}


def _round(value: float) -> float:
    return float(f"{value:.{DIGITS}g}")
