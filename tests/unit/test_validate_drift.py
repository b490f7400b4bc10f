"""The reference profile and per-feature drift (PSI, KS), and the thresholds from params.yaml."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine

from nbops.errors import ConfigError
from nbops.validate import drift, profile
from nbops.validate.drift import DriftThresholds

DEFAULTS = DriftThresholds()


@pytest.fixture(scope="module")
def wine() -> pd.DataFrame:
    return load_wine(as_frame=True).frame


def _drift(df: pd.DataFrame, reference: pd.DataFrame) -> dict[str, drift.FeatureDrift]:
    profiles = json.loads(json.dumps(profile.infer_profile(reference)))  # as stored
    return {f.column: f for f in drift.frame_drift(df, profiles, DEFAULTS, "data/x.csv")}


def test_profile_of_a_numeric_column() -> None:
    values = pd.Series(np.random.default_rng(0).normal(size=10_000))
    entry = profile.column_profile(values)
    assert entry["kind"] == "numeric" and len(entry["edges"]) == 9
    assert len(entry["proportions"]) == 10 and abs(sum(entry["proportions"]) - 1) < 1e-9
    sample = entry["sample"]
    assert len(sample) == profile.SAMPLE_SIZE and sample == sorted(sample)
    assert sample[0] == values.min() and sample[-1] == values.max()
    assert profile.column_profile(values) == entry  # deterministic


def test_profile_edges_are_unique_for_discrete_columns(wine: pd.DataFrame) -> None:
    entry = profile.column_profile(wine["target"])
    assert entry["edges"] == [0.0, 1.0, 2.0]  # bins (-inf, 0], (0, 1], (1, 2], (2, inf)
    assert entry["proportions"][-1] == 0.0
    assert round(entry["proportions"][0], 4) == round(59 / 178, 4)


def test_profile_of_categorical_and_text_columns() -> None:
    colors = pd.Series(["red", "red", "white", None])
    assert profile.column_profile(colors)["frequencies"] == pytest.approx(
        {"red": 2 / 3, "white": 1 / 3}
    )
    assert profile.column_profile(colors)["null_share"] == 0.25
    ids = pd.Series([f"id{i}" for i in range(100)])
    assert profile.column_profile(ids)["kind"] == "other"


def test_same_data_does_not_drift(wine: pd.DataFrame) -> None:
    result = _drift(wine, wine)
    assert all(f.psi == 0.0 and f.ks_statistic == 0.0 and not f.drifted for f in result.values())
    assert drift.dataset_drift(list(result.values()), DEFAULTS) == (0.0, False)


def test_a_shifted_column_drifts(wine: pd.DataFrame) -> None:
    shifted = wine.assign(alcohol=wine["alcohol"] + 2 * wine["alcohol"].std())
    result = _drift(shifted, wine)
    alcohol = result.pop("alcohol")
    assert alcohol.psi > 0.2 and alcohol.drifted
    assert alcohol.ks_statistic is not None and alcohol.ks_statistic > 0.5
    assert alcohol.current_mean == pytest.approx(shifted["alcohol"].mean())
    assert not any(f.drifted for f in result.values())
    assert drift.dataset_drift([alcohol, *result.values()], DEFAULTS) == (1 / 14, False)


def test_ks_alone_does_not_flag_a_tiny_shift_on_a_large_sample() -> None:
    rng = np.random.default_rng(1)
    reference = pd.DataFrame({"x": rng.normal(size=20_000)})
    current = pd.DataFrame({"x": rng.normal(loc=0.08, size=20_000)})
    x = _drift(current, reference)["x"]
    assert x.ks_pvalue is not None and x.ks_pvalue < 0.05  # "significant" ...
    assert x.ks_statistic is not None and x.ks_statistic < 0.1  # ... but tiny
    assert x.psi < 0.2 and not x.drifted
    strict = DriftThresholds(ks_statistic=0.0)
    profiles = profile.infer_profile(reference)
    assert drift.frame_drift(current, profiles, strict, "x.csv")[0].drifted


def test_ks_flags_a_moderate_shift_below_the_psi_threshold() -> None:
    rng = np.random.default_rng(2)
    reference = pd.DataFrame({"x": rng.normal(size=5_000)})
    shifted = pd.DataFrame({"x": rng.normal(loc=0.3, size=5_000)})
    x = _drift(shifted, reference)["x"]
    assert x.psi < 0.2 and x.ks_statistic is not None and x.ks_statistic >= 0.1
    assert x.drifted


def test_unseen_categories_and_nulls_count_as_drift() -> None:
    reference = pd.DataFrame({"color": ["red", "white"] * 50, "v": np.arange(100.0)})
    current = pd.DataFrame(
        {"color": ["rose"] * 40 + ["red", "white"] * 30, "v": [np.nan] * 50 + list(range(50))}
    )
    result = _drift(current, reference)
    assert result["color"].kind == "categorical" and result["color"].ks_statistic is None
    assert result["color"].psi > 0.2 and result["color"].drifted
    assert result["v"].current_null_share == 0.5 and result["v"].psi > 0.2


def test_psi_of_identical_and_disjoint_shares() -> None:
    assert drift.psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert drift.psi([1.0, 0.0], [0.0, 1.0]) == pytest.approx(2 * 0.9999 * np.log(1e4), 1e-6)


def test_thresholds_from_params() -> None:
    assert DriftThresholds.from_params({}) == DEFAULTS
    assert DriftThresholds.from_params({"drift": {"psi": 0.1}}) == DriftThresholds(psi=0.1)
    loaded = DriftThresholds.from_params({"drift": {"share": 1, "ks_pvalue": 0.01}})
    assert (loaded.share, loaded.ks_pvalue, loaded.psi) == (1.0, 0.01, 0.2)


@pytest.mark.parametrize(
    ("section", "needle"),
    [
        ({"psi": "high"}, "`drift.psi` is 'high'"),
        ({"share": 1.5}, "`drift.share` is 1.5, which is not a number between 0 and 1"),
        ({"ks_pvalue": True}, "`drift.ks_pvalue`"),
        ({"psi_threshold": 0.2}, "unknown key `drift.psi_threshold`"),
        ([0.2], "`drift` must be a mapping"),
    ],
)
def test_bad_thresholds_name_params_yaml_and_the_key(section: object, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        DriftThresholds.from_params({"drift": section})
    assert info.value.message.startswith("params.yaml: ") and needle in info.value.message
