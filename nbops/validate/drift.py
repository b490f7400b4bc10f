"""Per-feature drift of current data against the reference profile: PSI and KS.

PSI (population stability index) compares bin shares: numeric columns on the profile's decile
bins (outer bins open-ended, so values beyond the training range count), categorical columns on
their value frequencies (a category never seen in training is a bin of its own). Missing values
are one more bin, so a column that starts arriving empty drifts too. Empty bins get a share of
``EPSILON`` so the logarithm stays finite.

KS (two-sample Kolmogorov-Smirnov, numeric only) compares the current values with the profile's
sample. Its p-value alone is not a drift signal: on thousands of rows it falls below 0.05 for
shifts far too small to matter, so a feature drifts on KS only when the p-value is low AND the
statistic (the largest gap between the two CDFs) is large. Thresholds come from ``params.yaml``
(``drift:``), with the usual cut-offs as defaults.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

from nbops.errors import ConfigError
from nbops.validate import profile as prof

if TYPE_CHECKING:
    import pandas as pd

EPSILON = 1e-4


@dataclass(frozen=True)
class DriftThresholds:
    """When a feature, and the dataset, count as drifted."""

    psi: float = 0.2  # PSI >= 0.2: a significant shift (0.1: "some")
    ks_pvalue: float = 0.05  # KS drift needs p < ks_pvalue ...
    ks_statistic: float = 0.1  # ... and a CDF gap >= ks_statistic
    share: float = 0.5  # dataset drift: this share of the features drifted

    @classmethod
    def from_params(cls, params: Mapping[str, Any], source: str = "params.yaml") -> DriftThresholds:
        """From the ``drift:`` mapping of ``params`` (missing keys keep their defaults)."""
        section = params.get("drift")
        if section is None:
            return cls()
        if not isinstance(section, Mapping):
            raise ConfigError(
                f"{source}: `drift` must be a mapping, got {section!r}",
                fix="write e.g. `drift: {psi: 0.2, ks_pvalue: 0.05, share: 0.5}`",
            )
        values = {}
        known = [f.name for f in fields(cls)]
        for key, value in section.items():
            if key not in known:
                raise ConfigError(
                    f"{source}: unknown key `drift.{key}`",
                    fix=f"use one of {', '.join(known)}",
                )
            values[key] = _threshold(key, value, source)
        return cls(**values)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def _threshold(key: str, value: Any, source: str) -> float:
    upper = math.inf if key == "psi" else 1.0
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not 0 <= value <= upper or math.isnan(value):
        bound = "a number >= 0" if upper == math.inf else "a number between 0 and 1"
        raise ConfigError(
            f"{source}: `drift.{key}` is {value!r}, which is not {bound}",
            fix=f"set `drift.{key}` in {source} to {bound}, or delete it for the default "
            f"{getattr(DriftThresholds, key)}",
        )
    return float(value)


@dataclass
class FeatureDrift:
    """One column's drift; ``ks_*`` are None for categorical columns."""

    file: str
    column: str
    kind: str
    psi: float
    ks_statistic: float | None
    ks_pvalue: float | None
    drifted: bool
    reference_mean: float | None
    current_mean: float | None
    reference_null_share: float
    current_null_share: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def frame_drift(
    df: pd.DataFrame,
    profiles: Mapping[str, Mapping[str, Any]],
    thresholds: DriftThresholds,
    file: str,
) -> list[FeatureDrift]:
    """Drift of every profiled column of ``df`` (columns the profile skips are left out)."""
    results = []
    for column, reference in profiles.items():
        if reference.get("kind") in ("numeric", "categorical") and column in df.columns:
            results.append(feature_drift(df[column], reference, thresholds, file, column))
    return results


def feature_drift(
    series: pd.Series,
    reference: Mapping[str, Any],
    thresholds: DriftThresholds,
    file: str,
    column: str,
) -> FeatureDrift:
    count = len(series)
    null_share = float(series.isna().mean()) if count else 0.0
    ref_null = float(reference.get("null_share") or 0.0)
    ks_stat = ks_p = mean = None
    if reference["kind"] == "numeric":
        values = prof.numeric_values(series)
        current = prof.bin_shares(values, reference["edges"])
        value = psi(
            _with_nulls(reference["proportions"], ref_null), _with_nulls(current, null_share)
        )
        ks_stat, ks_p = ks_test(values, reference["sample"])
        mean = float(values.mean()) if len(values) else None
    else:
        ref_freq = reference["frequencies"]
        cur_freq = prof.frequencies(series)
        keys = sorted(set(ref_freq) | set(cur_freq))
        value = psi(
            _with_nulls([ref_freq.get(k, 0.0) for k in keys], ref_null),
            _with_nulls([cur_freq.get(k, 0.0) for k in keys], null_share),
        )
    drifted = value >= thresholds.psi or (
        ks_p is not None
        and ks_stat is not None
        and ks_p < thresholds.ks_pvalue
        and ks_stat >= thresholds.ks_statistic
    )
    return FeatureDrift(
        file,
        column,
        reference["kind"],
        value,
        ks_stat,
        ks_p,
        drifted,
        reference.get("mean"),
        mean,
        ref_null,
        null_share,
    )


def _with_nulls(shares: list[float], null_share: float) -> list[float]:
    """Shares of the non-null values rescaled to all rows, plus the null bin."""
    return [s * (1.0 - null_share) for s in shares] + [null_share]


def psi(reference: list[float], current: list[float]) -> float:
    """``sum((cur - ref) * ln(cur / ref))`` over bins; empty bins count as ``EPSILON``."""
    total = 0.0
    for ref, cur in zip(reference, current, strict=True):
        ref, cur = max(ref, EPSILON), max(cur, EPSILON)
        total += (cur - ref) * math.log(cur / ref)
    return round(total, 6)  # the reference shares are rounded: below 1e-6 is noise


def ks_test(values: Any, sample: list[float]) -> tuple[float | None, float | None]:
    """(statistic, p-value) of ``scipy.stats.ks_2samp``; (None, None) without data."""
    if not len(values) or not sample:
        return None, None
    from scipy.stats import ks_2samp

    result = ks_2samp(sample, values)
    return float(result.statistic), float(result.pvalue)


def dataset_drift(features: list[FeatureDrift], thresholds: DriftThresholds) -> tuple[float, bool]:
    """(share of drifted features, whether that share reaches ``thresholds.share``)."""
    if not features:
        return 0.0, False
    share = sum(f.drifted for f in features) / len(features)
    return share, share >= thresholds.share
