"""Typed serializers for step outputs: each type round-trips in its own format, the table falls
back to pickle when a format cannot hold an object, and failures name the variable and step."""

from __future__ import annotations

import sys
import threading
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from nbops.errors import NotebookError
from nbops.pipeline import serializers


def _round_trip(obj: object, tmp_path: Path, var: str = "v") -> tuple[object, str]:
    folder = tmp_path / "artifacts" / "prod"
    path, row = serializers.save(obj, var, "prod", folder)
    assert path.parent == folder and path.name == f"{var}.{row.ext}"
    return serializers.load(var, "prod", "cons", tmp_path), row.name


def test_dataframe_as_parquet_keeps_dtypes_and_index(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {"a": [1, 2, 3], "b": [0.5, None, 2.5], "c": ["x", "y", None]},
        index=pd.Index([10, 20, 30], name="id"),
    )
    df["d"] = pd.Categorical(["u", "v", "u"])
    back, fmt = _round_trip(df, tmp_path)
    assert fmt == "parquet"
    pd.testing.assert_frame_equal(back, df)


@pytest.mark.parametrize("name", ["target", None, ("a", 1)])
def test_series_as_parquet_keeps_name(tmp_path: Path, name: object) -> None:
    s = pd.Series([1.0, 2.0, 3.0], name=name, index=[3, 1, 2])
    back, fmt = _round_trip(s, tmp_path)
    assert fmt == "parquet"
    pd.testing.assert_series_equal(back, s)


def test_ndarray_as_npy(tmp_path: Path) -> None:
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    back, fmt = _round_trip(arr, tmp_path)
    assert fmt == "npy"
    assert isinstance(back, np.ndarray) and back.dtype == np.float32
    np.testing.assert_array_equal(back, arr)


def test_estimator_as_joblib(tmp_path: Path) -> None:
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    model = LogisticRegression(random_state=0).fit(X, [0, 0, 1, 1])
    back, fmt = _round_trip(model, tmp_path)
    assert fmt == "joblib"
    assert back.get_params() == model.get_params()
    np.testing.assert_array_equal(back.predict(X), model.predict(X))


def test_plain_objects_as_pickle(tmp_path: Path) -> None:
    value = {"a": [1, 2], "b": (3, "x")}
    back, fmt = _round_trip(value, tmp_path)
    assert (back, fmt) == (value, "pickle")


def test_formats_that_cannot_hold_an_object_fall_back_to_pickle(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1, "x"]}, dtype=object)  # Arrow needs one type per column
    back, fmt = _round_trip(frame, tmp_path, "frame")
    assert fmt == "pickle"
    pd.testing.assert_frame_equal(back, frame)
    objects = np.array([{"a": 1}, None], dtype=object)  # np.save without pickle refuses
    back, fmt = _round_trip(objects, tmp_path, "objects")
    assert fmt == "pickle" and list(back) == list(objects)


def test_resaving_replaces_the_other_format(tmp_path: Path) -> None:
    folder = tmp_path / "artifacts" / "prod"
    serializers.save({"x": 1}, "v", "prod", folder)
    serializers.save(np.zeros(2), "v", "prod", folder)
    assert [p.name for p in folder.iterdir()] == ["v.npy"]


def test_unserializable_object_names_variable_and_step(tmp_path: Path) -> None:
    with pytest.raises(NotebookError) as info:
        serializers.save(threading.Lock(), "lock", "train", tmp_path / "artifacts" / "train")
    err = info.value
    assert (err.variable, err.step) == ("lock", "train")
    assert "'lock'" in err.message and "'train'" in err.message and "lock" in err.obj_type
    assert "pickle" in err.message  # each format's reason
    assert err.fix
    assert not list((tmp_path / "artifacts" / "train").iterdir())  # no partial file


def test_missing_artifact_names_producer_and_fix(tmp_path: Path) -> None:
    with pytest.raises(NotebookError) as info:
        serializers.load("X", "features", "train", tmp_path)
    err = info.value
    assert (err.variable, err.producer, err.step) == ("X", "features", "train")
    assert "nbops run" in err.fix


def test_unloadable_pickle_says_to_define_it_in_setup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A class defined in the producing kernel only (pickled by reference) cannot be loaded."""
    module = types.ModuleType("nbops_vanished")
    exec("class Point:\n    pass", module.__dict__)
    module.Point.__module__ = "nbops_vanished"
    monkeypatch.setitem(sys.modules, "nbops_vanished", module)
    serializers.save(module.Point(), "p", "prod", tmp_path / "artifacts" / "prod")
    monkeypatch.delitem(sys.modules, "nbops_vanished")
    with pytest.raises(NotebookError) as info:
        serializers.load("p", "prod", "cons", tmp_path)
    assert (info.value.variable, info.value.step) == ("p", "cons")
    assert "setup" in info.value.fix


def test_type_checks_do_not_import_libraries() -> None:
    assert [row.name for row in serializers.candidates(3)] == ["pickle"]
    assert serializers.candidates(LogisticRegression)[0].name == "pickle"  # a class, not a model
