"""Fingerprints of in-memory data: what users rely on to tell "same data" from "changed data"."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from nbops.errors import FingerprintError, NbopsError
from nbops.hashing import sink as fp
from nbops.hashing.frames import describe, fingerprint, is_data

FRAME_CODE = """
import numpy as np, pandas as pd
n = 500
df = pd.DataFrame({
    "f": np.linspace(0, 1, n), "i": np.arange(n), "b": np.arange(n) % 2 == 0,
    "s": [f"user_{i}" for i in range(n)], "o": pd.Series([f"o{i}" for i in range(n)], dtype=object),
    "c": pd.Categorical(["x", "y"] * (n // 2)),
    "t": pd.date_range("2024-01-01", periods=n, freq="h", tz="Europe/Paris"),
    "d": pd.to_timedelta(np.arange(n), unit="s"), "n": pd.array(range(n), dtype="Int64"),
}, index=pd.Index([f"r{i}" for i in range(n)], name="row"))
df.loc[df.index[3], "f"] = np.nan
"""


def make_frame() -> pd.DataFrame:
    scope: dict[str, object] = {}
    exec(FRAME_CODE, scope)
    return scope["df"]  # type: ignore[return-value]


def test_format_is_prefixed_xxh128() -> None:
    value = fingerprint(make_frame())
    assert value.startswith("xxh128:") and len(value) == len("xxh128:") + 32


def test_same_frame_fingerprints_equal_in_another_process() -> None:
    code = FRAME_CODE + "\nfrom nbops.hashing.frames import fingerprint\nprint(fingerprint(df))"
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == fingerprint(make_frame())


@pytest.mark.parametrize("column", ["f", "i", "b", "s", "o", "c", "t", "d", "n"])
def test_editing_one_value_in_the_last_row_changes_it(column: str) -> None:
    df = make_frame()
    edited = df.copy()
    last = df.index[-1]
    replacement = {"f": 9.5, "i": -1, "b": not df.at[last, "b"], "s": "zzz", "o": "zzz", "c": "x"}
    replacement |= {"t": df.at[df.index[0], "t"], "d": pd.Timedelta(0), "n": pd.NA}
    edited.loc[last, column] = replacement[column]
    assert edited.at[last, column] is not df.at[last, column]
    assert fingerprint(edited) != fingerprint(df)


def test_dtype_change_changes_it() -> None:
    df = pd.DataFrame({"a": np.arange(10)})
    assert fingerprint(df) != fingerprint(df.astype("int32"))
    assert fingerprint(df) != fingerprint(df.astype("float64"))
    assert fingerprint(df) != fingerprint(df.astype("Int64"))
    assert fingerprint(df.astype("str")) != fingerprint(df.astype("str").astype(object))


def test_column_rename_and_order_change_it() -> None:
    df = pd.DataFrame({"a": [1, 2], "b": [3, 4]})
    assert fingerprint(df) != fingerprint(df.rename(columns={"a": "A"}))
    assert fingerprint(df) != fingerprint(df[["b", "a"]])
    assert fingerprint(pd.DataFrame({1: [1]})) != fingerprint(pd.DataFrame({"1": [1]}))


def test_index_changes_change_it() -> None:
    df = make_frame()
    assert fingerprint(df) != fingerprint(df.rename_axis("other"))
    assert fingerprint(df) != fingerprint(df.rename(index={df.index[-1]: "last"}))
    assert fingerprint(df) != fingerprint(df.reset_index(drop=True))
    plain = pd.DataFrame({"a": [1, 2, 3]})
    assert fingerprint(plain) != fingerprint(plain.set_axis(pd.RangeIndex(1, 4)))


def test_range_index_is_not_materialised_and_equal_ranges_agree() -> None:
    assert fingerprint(pd.RangeIndex(0, 10**12)) == fingerprint(pd.RangeIndex(0, 10**12))
    assert fingerprint(pd.RangeIndex(0, 10**12)) != fingerprint(pd.RangeIndex(0, 10**12, 2))


def test_multiindex_levels_and_names_count() -> None:
    mi = pd.MultiIndex.from_product([["a", "b"], [1, 2]], names=["k", "n"])
    df = pd.DataFrame({"v": range(4)}, index=mi)
    assert fingerprint(df) == fingerprint(df.copy())
    assert fingerprint(df) != fingerprint(df.rename_axis(["k", "m"]))
    assert fingerprint(df) != fingerprint(df.rename(index={2: 3}, level="n"))
    # Unused levels left behind by slicing do not count: only the values seen do.
    sliced = pd.concat([df, df.set_axis(mi.set_levels(["c", "d"], level=0))]).iloc[:4]
    assert fingerprint(sliced) == fingerprint(df)


def test_multiindex_columns_and_non_string_labels() -> None:
    cols = pd.MultiIndex.from_tuples([("a", 1), ("a", 2)])
    df = pd.DataFrame([[1, 2]], columns=cols)
    assert fingerprint(df) != fingerprint(
        df.set_axis(pd.MultiIndex.from_tuples([("a", 1), ("a", 3)]), axis=1)
    )
    stamp = pd.DataFrame({pd.Timestamp("2024-01-01"): [1], 2.5: [2], None: [3]})
    assert fingerprint(stamp) == fingerprint(stamp.copy())


def test_series_and_one_column_frame_differ() -> None:
    s = pd.Series([1.0, 2.0], name="x")
    assert fingerprint(s) != fingerprint(s.to_frame())
    assert fingerprint(s) != fingerprint(s.rename("y"))
    assert fingerprint(s) != fingerprint(s.to_numpy())
    assert fingerprint(s.index) != fingerprint(s.index.to_numpy())


def test_categorical_codes_categories_and_order_count() -> None:
    s = pd.Series(pd.Categorical(["a", "b", "a"]))
    assert fingerprint(s) != fingerprint(s.cat.rename_categories(["a", "c"]))
    assert fingerprint(s) != fingerprint(s.cat.reorder_categories(["b", "a"]))
    assert fingerprint(s) != fingerprint(s.cat.as_ordered())


def test_datetime_timezone_and_unit_are_in_the_header() -> None:
    t = pd.Series(pd.date_range("2024-01-01", periods=3, tz="UTC"))
    assert fingerprint(t) != fingerprint(t.dt.tz_convert("Europe/Paris"))  # same instants
    assert fingerprint(t) != fingerprint(t.dt.tz_localize(None))
    assert fingerprint(t) != fingerprint(t.dt.as_unit("ns"))
    period = pd.Series(pd.period_range("2024-01", periods=3, freq="M"))
    assert fingerprint(period) != fingerprint(
        pd.Series(pd.period_range("2024-01", periods=3, freq="D"))
    )


def test_nullable_values_ignore_the_bytes_under_missing_values() -> None:
    s = pd.Series(pd.array([1, None, 3], dtype="Int64"))
    garbage = s.copy()
    garbage.array._data[1] = 12345  # what pandas leaves under NA is arbitrary
    assert fingerprint(s) == fingerprint(garbage)
    assert fingerprint(s) != fingerprint(pd.Series(pd.array([1, 0, 3], dtype="Int64")))
    flags = pd.Series(pd.array([True, None, False], dtype="boolean"))
    assert fingerprint(flags) != fingerprint(
        pd.Series(pd.array([True, False, False], dtype="boolean"))
    )
    floats = pd.Series(pd.array([1.5, None], dtype="Float64"))
    assert fingerprint(floats) != fingerprint(pd.Series(pd.array([1.5, 2.0], dtype="Float64")))


def _as_str_series(chunks: list[pa.Array]) -> pd.Series:
    return pd.Series(pd.array(pa.chunked_array(chunks), dtype="str"))


def test_arrow_strings_do_not_depend_on_chunking_or_offsets() -> None:
    values = ["alpha", None, "", "βeta", "gamma" * 20, None, "z"] * 7
    whole = pa.array(values, pa.large_string())
    single = _as_str_series([whole])
    assert single.array.__arrow_array__().num_chunks == 1
    sliced = [whole.slice(i, 5) for i in range(0, len(values), 5)]  # chunk.offset != 0
    small = pa.array(values, pa.string())  # 32-bit offsets, same values
    regrouped = [small.slice(0, 3), small.slice(3, 30), small.slice(33)]
    expected = fingerprint(single)
    assert fingerprint(_as_str_series(sliced)) == expected
    assert fingerprint(_as_str_series(regrouped)) == expected
    moved = [*values[:-1], None]
    assert fingerprint(_as_str_series([pa.array(moved, pa.large_string())])) != expected


def test_string_boundaries_count() -> None:
    assert fingerprint(pd.Series(["ab", "c"])) != fingerprint(pd.Series(["a", "bc"]))
    assert fingerprint(pd.Series(["", None])) != fingerprint(pd.Series([None, ""]))


def test_object_strings_and_arrow_strings_detect_edits() -> None:
    obj = pd.Series(["a", "b", None], dtype=object)
    assert fingerprint(obj) == fingerprint(obj.copy())
    assert fingerprint(obj) != fingerprint(pd.Series(["a", "b", "c"], dtype=object))


def test_mixed_object_columns_are_fingerprinted_by_type_and_value() -> None:
    mixed = pd.Series([1, "1", 2.5, None, (1, 2), {"k": [1]}, Decimal("1.10")], dtype=object)
    assert fingerprint(mixed) == fingerprint(mixed.copy())
    changed = mixed.copy()
    changed.iloc[1] = 1  # same repr as "1" would be a collision; the type tag prevents it
    assert fingerprint(mixed) != fingerprint(changed)
    dicts = pd.Series([{"a": 1}, {"a": 1, "b": None}], dtype=object)
    assert fingerprint(dicts) != fingerprint(pd.Series([{"a": 1, "b": None}] * 2, dtype=object))


def test_unhashable_objects_raise_a_useful_error() -> None:
    class Opaque:
        pass

    df = pd.DataFrame({"ok": [1, 2], "bad": [Opaque(), Opaque()]})
    with pytest.raises(FingerprintError) as info:
        fingerprint(df)
    err = info.value
    assert isinstance(err, NbopsError) and err.exit_code == 6
    assert "'bad'" in err.reason and "Opaque" in err.reason
    assert err.obj_type == "pandas.DataFrame" and err.fix
    with pytest.raises(FingerprintError, match="Opaque"):
        fingerprint(np.array([Opaque()], dtype=object))
    with pytest.raises(FingerprintError, match=r"index: element 0: .*Opaque"):
        fingerprint(pd.DataFrame({"a": [1]}, index=pd.Index([Opaque()], dtype=object)))
    with pytest.raises(FingerprintError, match="Opaque"):
        fingerprint(Opaque())


@pytest.mark.parametrize(
    "make_view",
    [
        np.asfortranarray,
        lambda a: a[::2],
        lambda a: a[:, ::-1].copy()[:, ::-1],
        lambda a: a.T.copy().T,
        lambda a: np.pad(a, ((0, 0), (0, 1)))[:, :-1],
    ],
)
def test_strided_arrays_equal_their_contiguous_copy(make_view) -> None:  # type: ignore[no-untyped-def]
    base = np.random.default_rng(0).random((301, 7))
    view = make_view(base)
    assert fingerprint(view) == fingerprint(np.ascontiguousarray(view))


def test_row_major_frames_equal_their_column_major_copy() -> None:
    """Frames over a row-major block (sklearn as_frame=True, copy=False) are hashed by row block."""
    x = np.random.default_rng(2).random((5000, 6))
    row_major = pd.DataFrame(x, copy=False)
    column_major = pd.DataFrame(np.asfortranarray(x), copy=False)
    assert not row_major[0].to_numpy().flags.c_contiguous
    assert column_major[0].to_numpy().flags.c_contiguous
    for df in (row_major, column_major):
        df.insert(3, "s", "text")  # splits the side-by-side run in two
    assert fingerprint(row_major) == fingerprint(column_major)
    assert fingerprint(row_major.T) == fingerprint(row_major.T.copy())
    edited = row_major.copy()
    edited.iloc[-1, -1] = -1.0
    assert fingerprint(edited) != fingerprint(row_major)


def test_leaves_agree_across_layouts_threads_and_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny leaves and no parallel threshold exercise the multi-leaf and threaded paths."""
    a = np.random.default_rng(1).random((1000, 5))
    strings = ["x" * (i % 13) for i in range(2000)]
    one = _as_str_series([pa.array(strings)])
    many = _as_str_series([pa.array(strings[i : i + 37]) for i in range(0, 2000, 37)])
    sequential = [fingerprint(np.asfortranarray(a)), fingerprint(a), fingerprint(one)]
    monkeypatch.setattr(fp, "_SEGMENT", 1000)
    small = [fingerprint(np.asfortranarray(a)), fingerprint(a), fingerprint(one), fingerprint(many)]
    assert small[0] == small[1] and small[2] == small[3]
    assert small[:3] != sequential  # the leaf size is part of the definition
    monkeypatch.setattr(fp, "_PARALLEL_BYTES", 0)
    assert [fingerprint(a), fingerprint(many)] == [small[1], small[3]]


def test_zero_d_and_empty_arrays() -> None:
    assert fingerprint(np.array(3.0)) == fingerprint(np.array(3.0))
    assert fingerprint(np.array(3.0)) != fingerprint(np.array([3.0]))
    assert fingerprint(np.empty((0, 3))) != fingerprint(np.empty((3, 0)))
    assert fingerprint(np.array([], dtype="int64")) != fingerprint(np.array([], dtype="float64"))
    assert fingerprint(pd.DataFrame()) == fingerprint(pd.DataFrame())


def test_numpy_object_bytes_and_structured_arrays() -> None:
    strings = np.array(["a", None, "ccc"], dtype=object)
    assert fingerprint(strings) == fingerprint(strings.copy())
    assert fingerprint(strings) != fingerprint(np.array(["a", None, "cc"], dtype=object))
    fixed = np.array(["ab", "c"])
    assert fingerprint(fixed) != fingerprint(np.array(["ab", "d"]))
    rec = np.zeros(3, dtype=[("x", "i1"), ("y", "f8")])
    assert fingerprint(rec) != fingerprint(rec.astype([("x", "i1"), ("z", "f8")]))


def test_byte_order_does_not_matter() -> None:
    little = np.arange(5, dtype="<i4")
    assert fingerprint(little) == fingerprint(little.astype(">i4"))


def test_masked_arrays_include_the_mask() -> None:
    data = np.arange(3.0)
    assert fingerprint(np.ma.array(data, mask=[0, 1, 0])) != fingerprint(np.ma.array(data))


def test_plain_python_values() -> None:
    assert fingerprint({"a": 1, "b": [1.0, None]}) == fingerprint({"b": [1.0, None], "a": 1})
    assert fingerprint([1, 2]) != fingerprint((1, 2))
    assert fingerprint(1) != fingerprint(1.0) != fingerprint(True)
    assert fingerprint(np.float64(1.0)) != fingerprint(np.float32(1.0))
    assert fingerprint({"df": pd.DataFrame({"a": [1]})}) != fingerprint(
        {"df": pd.DataFrame({"a": [2]})}
    )


def test_is_data_and_describe() -> None:
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert all(is_data(x) for x in (df, df["a"], df.index, np.zeros(2), np.float64(1) * np.ones(1)))
    assert not any(is_data(x) for x in (1, "a", [1], {"a": 1}, np.float64(1.0), None))
    assert describe(df) == ("DataFrame", [2, 2], {"a": "int64", "b": "str"})
    assert describe(df["a"]) == ("Series", [2], {"a": "int64"})
    assert describe(np.zeros((2, 3))) == ("ndarray", [2, 3], None)
    assert describe(pd.Index([1, 2], name="k")) == ("Index", [2], {"k": "int64"})
    assert describe(42) == ("int", None, None)


def test_importing_and_is_data_never_import_pandas_or_numpy() -> None:
    code = (
        "import sys\nfrom nbops.hashing.frames import is_data, describe\n"
        "assert not is_data([1]) and describe(3)[0] == 'int'\n"
        "print(sorted(m for m in ('pandas', 'numpy', 'pyarrow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_range_index_and_an_equal_int64_index_fingerprint_alike() -> None:
    """The decision (README, Fingerprints): index labels are content, not representation.
    ``df.equals`` says these frames are equal, so they fingerprint alike; any other label
    change, and an int index of another width, still differ."""
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    materialised = frame.set_axis(pd.Index(np.array([0, 1, 2], dtype=np.int64)))
    assert type(materialised.index) is pd.Index and frame.equals(materialised)
    assert fingerprint(frame) == fingerprint(materialised)
    assert fingerprint(frame["a"]) == fingerprint(materialised["a"])
    steps = pd.Index(np.array([10, 8, 6], dtype=np.int64))
    assert fingerprint(steps) == fingerprint(pd.RangeIndex(10, 4, -2))
    assert fingerprint(pd.RangeIndex(0, 0)) == fingerprint(pd.RangeIndex(7, 7))  # both empty
    assert fingerprint(pd.RangeIndex(3, 4)) == fingerprint(pd.RangeIndex(3, 7, 5))  # both [3]
    gappy = frame.set_axis(pd.Index(np.array([0, 1, 3], dtype=np.int64)))
    assert fingerprint(frame) != fingerprint(gappy)
    wider_gap = pd.Index(np.array([0, 1, 4], dtype=np.int64))  # first/last/len fit 0, 2, 4
    assert fingerprint(wider_gap) != fingerprint(pd.RangeIndex(0, 6, 2))
    int32 = frame.set_axis(pd.Index(np.array([0, 1, 2], dtype=np.int32)))
    assert fingerprint(frame) != fingerprint(int32)
    assert fingerprint(frame) != fingerprint(frame.set_axis(pd.RangeIndex(1, 4)))


def test_nan_payloads_count_and_fillna_makes_them_canonical() -> None:
    """The decision: floats are hashed as bytes. A NaN computed by 0/0 (on x86 its sign bit
    is set) differs from ``np.nan`` in bytes, so such frames differ although ``df.equals``
    is True; canonicalising would cost a second pass over every float column.
    ``df.fillna(np.nan)`` gives the canonical NaN."""
    stored = pd.DataFrame({"x": [1.0, np.nan]})
    with np.errstate(invalid="ignore"):
        values = np.array([1.0, 0.0]) / np.array([1.0, 0.0])  # what arithmetic gives
    values.view(np.uint64)[1] |= np.uint64(1 << 63)  # the x86 "default NaN", on any machine
    computed = pd.DataFrame({"x": values})
    assert stored.equals(computed)
    assert stored["x"].to_numpy().view(np.uint64)[1] != computed["x"].to_numpy().view(np.uint64)[1]
    assert fingerprint(stored) != fingerprint(computed)
    assert fingerprint(stored) == fingerprint(computed.fillna(np.nan))
