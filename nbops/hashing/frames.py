"""Content fingerprints of in-memory data: DataFrames, Series, Indexes and numpy arrays.

``"xxh128:<32 hex>"``: xxh3-128 over a canonical header (type, shape, names, dtypes, index) and
the raw value buffers read in place, so a 1 GB frame costs about one numpy pass over it. Full
content (the last row counts) and deterministic across processes and machines (no ``hash()``,
ids or pickles). Buffers are cut into fixed 16 MB leaves whose digests enter the stream, so the
result never depends on threading, Arrow chunking or memory layout. Floats are hashed as bytes
(``-0.0 != 0.0``, NaN payloads count: canonicalising NaNs would cost a second pass over every
float column, twice the time of the hash itself; ``df.fillna(np.nan)`` makes them canonical).
Index labels are content, not representation: a ``RangeIndex`` and an int64 ``Index`` holding
the same labels (``df.equals`` says equal) fingerprint alike, hashed as the range's header,
so neither is materialised (an int64 index is checked against a range only when its first,
second and last labels and its length fit one). This module walks frames and arrays;
the stream is :mod:`nbops.hashing.sink`'s, Arrow data :mod:`nbops.hashing.arrow`'s, plain Python
values :mod:`nbops.hashing.values`'.
"""

from __future__ import annotations

import sys
from typing import Any

from nbops.errors import FingerprintError
from nbops.hashing.arrow import hash_arrow, hash_objects
from nbops.hashing.sink import Sink
from nbops.hashing.values import canon, fingerprint_error, type_name

__all__ = ["describe", "fingerprint", "is_data"]

_BLOCK = 8 << 20  # bytes copied at a time when hashing a strided array
_TRANSPOSE_BLOCK = 256 << 10  # row blocks of row-major columns: transposed while in L2 cache


def is_data(obj: Any) -> bool:
    """True for pandas DataFrame/Series/Index and numpy ndarray; never imports either.

    An object can only be a pandas/numpy instance if that library is already in
    ``sys.modules``, so looking there keeps this free on the cell-magic hot path.
    """
    np = sys.modules.get("numpy")
    if np is not None and isinstance(obj, getattr(np, "ndarray", ())):
        return True
    pd = sys.modules.get("pandas")
    kinds = tuple(getattr(pd, n) for n in ("DataFrame", "Series", "Index") if hasattr(pd, n))
    return bool(kinds) and isinstance(obj, kinds)


def describe(obj: Any) -> tuple[str, list[int] | None, dict[str, str] | None]:
    """(kind, shape, {column: dtype}) for summaries; cheap, reads no values."""
    if not is_data(obj):
        return type(obj).__name__, None, None
    pd, shape = sys.modules.get("pandas"), [int(n) for n in obj.shape]
    if pd is not None and isinstance(obj, pd.DataFrame):
        return "DataFrame", shape, {str(c): str(t) for c, t in obj.dtypes.items()}
    if pd is not None and isinstance(obj, pd.Series):
        return "Series", shape, {"" if obj.name is None else str(obj.name): str(obj.dtype)}
    if pd is not None and isinstance(obj, pd.Index):
        name = ",".join("" if n is None else str(n) for n in obj.names)
        return "Index", shape, {name: str(obj.dtype)}
    return "ndarray", shape, None


def fingerprint(obj: Any) -> str:
    """``"xxh128:<32 hex>"`` of the full content of ``obj``.

    Data objects are hashed from their buffers; plain Python values (numbers, strings, lists,
    dicts, dates, numpy scalars) from a type-tagged encoding. Raises :class:`FingerprintError`
    for anything whose bytes are not a deterministic function of its content.
    """
    sink = Sink()
    try:
        _hash_any(obj, sink)
    except FingerprintError as exc:  # name the object the user passed, keep the detail
        if exc.obj_type == type_name(obj):
            raise
        raise fingerprint_error(obj, exc.reason) from exc
    except Exception as exc:  # a pandas/arrow corner we do not know: report, do not crash
        raise fingerprint_error(obj, f"{type(exc).__name__}: {exc}") from exc
    return sink.hexdigest()


# ---------------------------------------------------------------- pandas and numpy


def _hash_any(obj: Any, sink: Sink) -> None:
    """Dispatch on the kind of ``obj``; the kind goes first so equal bytes of kinds differ."""
    if not is_data(obj):
        sink.lit("python")
        sink.items.append(canon(obj))
        return
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(obj, pd.DataFrame):
        _hash_frame(obj, sink)
    elif pd is not None and isinstance(obj, pd.Series):
        sink.lit("Series", obj.name, len(obj))
        _hash_index(obj.index, sink)
        _hash_values(obj, sink)
    elif pd is not None and isinstance(obj, pd.Index):
        sink.lit("Index")
        _hash_index(obj, sink)
    else:
        sink.lit("ndarray")
        _hash_array(obj, sink)


def _hash_frame(df: Any, sink: Sink) -> None:
    """Header, labels, then columns in order; row-major runs are hashed together for speed."""
    sink.lit("DataFrame", list(df.shape))
    _hash_index(df.columns, sink, "column labels")
    _hash_index(df.index, sink)
    columns = list(df.items())  # items() is ~3x cheaper per column than iloc
    arrays = [_numeric_values(column) for _, column in columns]
    start = 0
    while start < len(columns):
        stop = _row_major_run(arrays, start)
        try:
            if stop - start > 1:
                _hash_row_major(arrays[start:stop], sink)
            else:
                _hash_values(columns[start][1], sink)
        except FingerprintError as exc:
            raise fingerprint_error(df, f"column {columns[start][0]!r}: {exc.reason}") from exc
        start = stop


def _numeric_values(column: Any) -> Any:
    """The numpy array behind a fixed-width numpy-dtype column (a view), else None."""
    import numpy as np

    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biufcmM" and dtype.byteorder != ">":
        return column.to_numpy(copy=False)
    return None


def _row_major_run(arrays: list[Any], start: int) -> int:
    """End of the run of columns from ``start`` that are side by side in one row-major block.

    Such columns (``pd.DataFrame(x, copy=False)``, sklearn ``as_frame=True``, ``df.T``) are
    strided: gathering them one by one reads every cache line once per column (~20x slower).
    """
    first = arrays[start]
    if first is None or first.flags.c_contiguous or sys.byteorder != "little":
        return start + 1
    base = first.__array_interface__["data"][0]
    stop = start + 1
    while stop < len(arrays):
        other = arrays[stop]
        if other is None or other.dtype != first.dtype or other.strides != first.strides:
            break
        if other.__array_interface__["data"][0] != base + (stop - start) * first.itemsize:
            break
        stop += 1
    return stop


def _hash_row_major(arrays: list[Any], sink: Sink) -> None:
    """Hash side-by-side columns as if each were contiguous, transposing a row block at a time."""
    import numpy as np

    first, width = arrays[0], len(arrays)
    block = np.lib.stride_tricks.as_strided(
        first, (len(first), width), (first.strides[0], first.itemsize), writeable=False
    )
    head = ("nd", [len(first)], _dtype_str(first.dtype))  # what _hash_array writes per column
    outs = [sink.stream(a.nbytes, eager=True, head=head) for a in arrays]
    rows = max(1024, _TRANSPOSE_BLOCK // (width * first.itemsize))
    for start in range(0, len(first), rows):
        part = np.ascontiguousarray(block[start : start + rows].T)
        for out, values in zip(outs, part, strict=True):
            out.update(memoryview(values.view(np.uint8)))
    for out in outs:
        out.close()


def _hash_index(idx: Any, sink: Sink, what: str = "index") -> None:
    """Hash index labels and names; ``what`` names the part in errors."""
    import pandas as pd

    names = list(idx.names)
    try:
        labels = _as_range(idx, pd)
        if labels is not None:  # header only: never materialise a RangeIndex
            sink.lit("RangeIndex", names, *labels)
        elif isinstance(idx, pd.MultiIndex):  # level values, not codes: unused levels don't count
            sink.lit("MultiIndex", names, len(idx))
            for level in range(idx.nlevels):
                _hash_values(idx.get_level_values(level), sink)
        else:
            sink.lit("Index", names, len(idx))
            _hash_values(idx, sink)
    except FingerprintError as exc:
        raise fingerprint_error(idx, f"{what}: {exc.reason}") from exc


def _as_range(idx: Any, pd: Any) -> tuple[int, int, int] | None:
    """(first, step, length) when the index's labels are an arithmetic run of ints (a
    RangeIndex, or an int64 Index equal to one), canonical for 0 and 1 labels; else None."""
    import numpy as np

    n = len(idx)
    if isinstance(idx, pd.RangeIndex):
        first, step = int(idx.start), int(idx.step)
    elif type(idx) is pd.Index and idx.dtype == np.dtype("int64"):
        values = idx.to_numpy(copy=False)
        first = int(values[0]) if n else 0
        step = int(values[1]) - first if n > 1 else 1
        if n > 1 and (step == 0 or int(values[-1]) != first + step * (n - 1)):
            return None  # O(1) for almost every index that is not a range
        if n > 2 and not _is_arithmetic(values, first, step):
            return None
    else:
        return None
    if n <= 1:
        first, step = (first if n else 0), 1
    return first, step, n


def _is_arithmetic(values: Any, first: int, step: int) -> bool:
    """``values == first + step * arange(n)``, compared in blocks (no n-sized temporary)."""
    import numpy as np

    block = _BLOCK // 8
    for start in range(0, len(values), block):
        stop = min(start + block, len(values))
        expected = np.arange(first + step * start, first + step * stop, step, dtype=np.int64)
        if not np.array_equal(values[start:stop], expected):
            return False
    return True


def _hash_values(values: Any, sink: Sink) -> None:
    """Hash the values of a Series or Index (not its labels) according to its dtype."""
    import numpy as np
    import pandas as pd

    dtype = values.dtype
    if isinstance(dtype, np.dtype):
        _hash_array(values.to_numpy(copy=False), sink)
        return
    sink.lit("ext", str(dtype))
    arr = values.array
    if isinstance(dtype, pd.CategoricalDtype):
        sink.lit(bool(dtype.ordered))
        _hash_index(dtype.categories, sink, "categories")
        _hash_array(np.asarray(arr.codes), sink)
    elif isinstance(dtype, pd.DatetimeTZDtype | pd.PeriodDtype):
        _hash_array(arr.asi8, sink)  # int64 view, no copy; tz/freq/unit are in str(dtype)
    elif hasattr(arr, "__arrow_array__"):  # Arrow str, Int64/boolean/Float64, ArrowDtype
        hash_arrow(arr.__arrow_array__(), sink)
    else:  # sparse and others: their dense numpy form (object arrays go cell by cell)
        _hash_array(np.asarray(arr), sink)


def _hash_array(a: Any, sink: Sink) -> None:
    """Hash an ndarray's shape, dtype and values, choosing the path its dtype needs."""
    import numpy as np

    if isinstance(a, np.ma.MaskedArray):
        sink.lit("masked")
        _hash_array(np.ma.getdata(a), sink)
        _hash_array(np.ma.getmaskarray(a), sink)
        return
    sink.lit("nd", list(a.shape), _dtype_str(a.dtype))
    if a.dtype.names:  # structured: field by field, so padding bytes never count
        for field in a.dtype.names:
            sink.lit(field)
            _hash_array(a[field], sink)
    elif a.dtype.kind in "OT":
        hash_objects(a, sink)
    else:
        _hash_raw(a, sink)


def _dtype_str(dtype: Any) -> str:
    """The dtype as hashed: always little-endian, since values are hashed byte-swapped."""
    text = str(dtype.str)
    return "<" + text[1:] if text[0] == ">" else text  # big-endian data is byte-swapped


def _hash_raw(a: Any, sink: Sink) -> None:
    """Fixed-width values as bytes: in place when C-contiguous, else copied in small blocks."""
    import numpy as np

    order = a.dtype.byteorder
    if order == ">" or (order == "=" and sys.byteorder == "big"):
        a = a.astype(a.dtype.newbyteorder("<"))
    if a.size == 0 or a.dtype.itemsize == 0:
        sink.buffers(b"")
    elif a.flags.c_contiguous:
        sink.buffers(a.reshape(-1).view(np.uint8))
    else:
        rows = max(1, _BLOCK // max(1, a.nbytes // a.shape[0]))
        out = sink.stream(a.nbytes, eager=True)
        for start in range(0, a.shape[0], rows):
            block = np.ascontiguousarray(a[start : start + rows])
            out.update(memoryview(block.reshape(-1).view(np.uint8)))  # type: ignore[arg-type]
        out.close()
