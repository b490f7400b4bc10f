"""Content fingerprints of in-memory data: DataFrames, Series, Indexes and numpy arrays.

``"xxh128:<32 hex>"``: xxh3-128 over a canonical header (type, shape, names, dtypes, index) and
the raw value buffers read in place, so a 1 GB frame costs about one numpy pass over it. Full
content (the last row counts) and deterministic across processes and machines (no ``hash()``,
ids or pickles). Buffers are cut into fixed 16 MB leaves whose digests enter the stream, so the
result never depends on threading, Arrow chunking or memory layout. Floats are hashed as bytes
(``-0.0 != 0.0``, NaN payloads count). Files: md5 in :mod:`nbops.filehash`, re-exported here.
"""

from __future__ import annotations

import os
import struct
import sys
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import xxhash

from nbops.errors import FingerprintError
from nbops.filehash import FileHashCache, fingerprint_file

__all__ = ["FileHashCache", "describe", "fingerprint", "fingerprint_file", "is_data"]

_VERSION = b"nbops-fingerprint-1"  # bump when the byte stream changes
_SEGMENT = 16 << 20  # leaf size of the tree hash: part of the definition, never tune it
_PARALLEL_BYTES = 64 << 20  # below this a thread pool costs more than it saves
_BLOCK = 8 << 20  # bytes copied at a time when hashing a strided array
_Job = tuple[memoryview, ...]  # the pieces of one leaf, hashed in the final pass


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
    shape = [int(n) for n in obj.shape]
    if hasattr(obj, "columns"):
        return "DataFrame", shape, {str(c): str(t) for c, t in obj.dtypes.items()}
    if hasattr(obj, "index"):
        return "Series", shape, {"" if obj.name is None else str(obj.name): str(obj.dtype)}
    if hasattr(obj, "names"):
        name = ",".join("" if n is None else str(n) for n in obj.names)
        return "Index", shape, {name: str(obj.dtype)}
    return "ndarray", shape, None


def fingerprint(obj: Any) -> str:
    """``"xxh128:<32 hex>"`` of the full content of ``obj``.

    Data objects are hashed from their buffers; plain Python values (numbers, strings, lists,
    dicts, dates, numpy scalars) from a type-tagged encoding. Raises :class:`FingerprintError`
    for anything whose bytes are not a deterministic function of its content.
    """
    sink = _Sink()
    try:
        _hash_any(obj, sink)
    except FingerprintError:
        raise
    except Exception as exc:  # a pandas/arrow corner we do not know: report, do not crash
        raise _error(obj, f"{type(exc).__name__}: {exc}") from exc
    return sink.hexdigest()


def _error(obj: Any, reason: str) -> FingerprintError:
    kind = type(obj)
    name = f"{kind.__module__}.{kind.__qualname__}".removeprefix("builtins.")
    return FingerprintError(
        f"cannot fingerprint {name}: {reason}",
        obj_type=name,
        reason=reason,
        fix="convert it to a DataFrame or ndarray of plain values, or leave it out of tracking",
    )


class _Sink:
    """The byte stream one fingerprint hashes: literals now, big buffers at the end.

    Deferring buffers lets :meth:`hexdigest` hash them on two threads (xxhash releases the GIL)
    once there is enough of them to pay for the pool.
    """

    def __init__(self) -> None:
        self.items: list[bytes | _Job] = []
        self.deferred = 0

    def lit(self, *values: Any) -> None:
        self.items.append(_canon(values))

    def stream(self, nbytes: int, *, eager: bool = False) -> _Stream:
        """A byte stream of known length; ``eager`` hashes now (for transient copies)."""
        self.lit("buf", nbytes)
        return _Stream(self, eager)

    def buffers(self, *arrays: Any) -> None:
        """One logical byte stream from uint8 arrays (e.g. Arrow chunks), read in place."""
        with self.stream(sum(len(a) for a in arrays)) as out:
            for a in arrays:
                out.update(memoryview(a))

    def hexdigest(self) -> str:
        jobs = [item for item in self.items if isinstance(item, tuple)]
        if self.deferred >= _PARALLEL_BYTES and len(jobs) > 1 and (os.cpu_count() or 1) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(2, thread_name_prefix="nbops-fp") as pool:
                digests = iter(list(pool.map(_hash_job, jobs)))
        else:
            digests = map(_hash_job, jobs)
        top = xxhash.xxh3_128(_VERSION)
        for item in self.items:
            top.update(next(digests) if isinstance(item, tuple) else item)
        return f"xxh128:{top.hexdigest()}"


def _hash_job(pieces: _Job) -> bytes:
    hasher = xxhash.xxh3_128()
    for piece in pieces:
        hasher.update(piece)
    return hasher.digest()


class _Stream:
    """Cuts a byte stream into ``_SEGMENT``-byte leaves, whatever the pieces it is fed."""

    def __init__(self, sink: _Sink, eager: bool) -> None:
        self._sink, self._eager = sink, eager
        self._leaves: list[bytes | _Job] = []
        self._pieces: list[memoryview] = []
        self._hasher = xxhash.xxh3_128()
        self._fill = 0

    def update(self, view: memoryview) -> None:
        while len(view):
            take = min(_SEGMENT - self._fill, len(view))
            piece, view = view[:take], view[take:]
            self._fill += take
            if self._eager:
                self._hasher.update(piece)
            else:
                self._pieces.append(piece)
            if self._fill == _SEGMENT:
                self._flush()

    def _flush(self) -> None:
        if self._eager:
            self._leaves.append(self._hasher.digest())
            self._hasher = xxhash.xxh3_128()
        else:
            self._leaves.append(tuple(self._pieces))
            self._sink.deferred += self._fill
        self._pieces, self._fill = [], 0

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fill or not self._leaves:
            self._flush()
        self._sink.items.extend(self._leaves)  # grouped: interleaved streams stay independent


# ---------------------------------------------------------------- canonical encoding of values


def _canon(value: Any) -> bytes:
    out = bytearray()
    _enc(value, out)
    return bytes(out)


def _enc(v: Any, out: bytearray) -> None:
    """Append a type-tagged, self-delimiting encoding of ``v`` (headers and object cells)."""
    t = type(v)
    if v is None:
        out += b"N"
    elif t is bool:
        out += b"T" if v else b"F"
    elif t is int:
        _blob(out, b"i", str(v).encode())
    elif t is float:
        out += b"f" + struct.pack("<d", v if v == v else float("nan"))  # one NaN
    elif t is str:
        _blob(out, b"s", v.encode("utf-8", "surrogatepass"))
    elif t is bytes:
        _blob(out, b"b", v)
    elif t in (tuple, list):
        out += (b"t" if t is tuple else b"l") + struct.pack("<Q", len(v))
        for x in v:
            _enc(x, out)
    elif t in (dict, set, frozenset):
        keys = sorted(_canon(k) + (_canon(v[k]) if t is dict else b"") for k in v)
        out += {dict: b"d", set: b"e", frozenset: b"z"}[t] + struct.pack("<Q", len(keys))
        out += b"".join(keys)
    else:
        _enc_other(v, out)


def _enc_other(v: Any, out: bytearray) -> None:
    np = sys.modules.get("numpy")
    if np is not None and isinstance(v, np.generic):
        _blob(out, b"g", v.dtype.str.encode() + b":" + v.tobytes())
    elif is_data(v):
        _blob(out, b"D", fingerprint(v).encode())
    elif isinstance(v, datetime | date | time):
        tz = getattr(v, "tzinfo", None)
        _blob(out, b"c", f"{type(v).__qualname__}|{v.isoformat()}|{tz}".encode())
    elif isinstance(v, timedelta):
        ns = getattr(v, "nanoseconds", 0)
        _blob(
            out, b"c", f"{type(v).__qualname__}|{v.days}|{v.seconds}|{v.microseconds}|{ns}".encode()
        )
    elif isinstance(v, Decimal):
        _blob(out, b"m", str(v).encode())
    elif type(v).__name__ in ("NaTType", "NAType"):
        _blob(out, b"n", type(v).__name__.encode())
    else:
        raise _error(v, "no deterministic byte form (its repr or pickle may vary between runs)")


def _blob(out: bytearray, tag: bytes, data: bytes) -> None:
    out += tag + struct.pack("<Q", len(data)) + data


# ---------------------------------------------------------------- pandas and numpy


def _hash_any(obj: Any, sink: _Sink) -> None:
    if not is_data(obj):
        sink.lit("python")
        sink.items.append(_canon(obj))
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


def _hash_frame(df: Any, sink: _Sink) -> None:
    sink.lit("DataFrame", list(df.shape))
    _hash_index(df.columns, sink)
    _hash_index(df.index, sink)
    for label, column in df.items():  # items() is ~3x cheaper per column than iloc
        try:
            _hash_values(column, sink)
        except FingerprintError as exc:
            raise _error(df, f"column {label!r}: {exc.reason}") from exc


def _hash_index(idx: Any, sink: _Sink) -> None:
    import pandas as pd

    names = list(idx.names)
    if isinstance(idx, pd.RangeIndex):  # header only: never materialise a RangeIndex
        sink.lit("RangeIndex", names, idx.start, idx.stop, idx.step)
    elif isinstance(idx, pd.MultiIndex):  # level values, not codes: unused levels don't count
        sink.lit("MultiIndex", names, len(idx))
        for level in range(idx.nlevels):
            _hash_values(idx.get_level_values(level), sink)
    else:
        sink.lit("Index", names, len(idx))
        _hash_values(idx, sink)


def _hash_values(values: Any, sink: _Sink) -> None:
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
        _hash_index(dtype.categories, sink)
        _hash_array(np.asarray(arr.codes), sink)
    elif isinstance(dtype, pd.DatetimeTZDtype | pd.PeriodDtype):
        _hash_array(arr.asi8, sink)  # int64 view, no copy; tz/freq/unit are in str(dtype)
    elif hasattr(arr, "__arrow_array__"):  # Arrow str, Int64/boolean/Float64, ArrowDtype
        _hash_arrow(arr.__arrow_array__(), sink)
    else:  # sparse and others: their dense numpy form (object arrays go cell by cell)
        _hash_array(np.asarray(arr), sink)


def _hash_array(a: Any, sink: _Sink) -> None:
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
        _hash_objects(a, sink)
    else:
        _hash_raw(a, sink)


def _dtype_str(dtype: Any) -> str:
    text = dtype.str
    return "<" + text[1:] if text[0] == ">" else text  # big-endian data is byte-swapped


def _hash_raw(a: Any, sink: _Sink) -> None:
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
        with sink.stream(a.nbytes, eager=True) as out:
            for start in range(0, a.shape[0], rows):
                block = np.ascontiguousarray(a[start : start + rows])
                out.update(memoryview(block.reshape(-1).view(np.uint8)))


def _hash_objects(a: Any, sink: _Sink) -> None:
    """Object cells: through Arrow when it infers a flat type, else cell by cell."""
    flat = a.reshape(-1)
    if a.dtype.kind == "T":  # numpy StringDType
        flat = flat.astype(object)
    arrow = _to_flat_arrow(flat)
    if arrow is not None:
        sink.lit("objects:arrow")
        _hash_arrow(arrow, sink)
        return
    sink.lit("objects:cells", len(flat))
    hasher = xxhash.xxh3_128()
    for i, cell in enumerate(flat):
        try:
            hasher.update(_canon(cell))
        except FingerprintError as exc:
            raise _error(a, f"element {i} is {exc.obj_type}: {exc.reason}") from exc
    sink.items.append(hasher.digest())


# ---------------------------------------------------------------- Arrow (str, nullable, objects)


def _to_flat_arrow(flat: Any) -> Any:
    """``pyarrow.array`` of object cells if Arrow infers a flat type (None: cell by cell).

    Nested inferences are refused: Arrow unifies struct keys, so ``{"a": 1}`` would become
    ``{"a": 1, "b": None}`` and two different cells would hash alike.
    """
    import pyarrow as pa

    try:
        arr = pa.array(flat, from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return None
    t = arr.type
    flat_type = pa.types.is_primitive(t) or pa.types.is_decimal(t) or pa.types.is_null(t)
    return arr if flat_type or _is_varwidth(t) else None


def _is_varwidth(t: Any) -> bool:
    return str(t) in ("string", "large_string", "binary", "large_binary")


def _hash_arrow(data: Any, sink: _Sink) -> None:
    """Hash Arrow data independently of its chunking: the same values, the same stream.

    Value bytes, lengths and the null mask are three streams fed chunk by chunk (honouring
    ``chunk.offset`` of sliced arrays); bytes under nulls are zeroed so they never count.
    """
    import numpy as np
    import pyarrow as pa

    chunks = list(data.chunks) if isinstance(data, pa.ChunkedArray) else [data]
    t = data.type
    if isinstance(t, pa.ExtensionType):
        chunks, t = [c.storage for c in chunks], t.storage_type
    if pa.types.is_dictionary(t):
        chunks, t = [c.dictionary_decode() for c in chunks], t.value_type
    if pa.types.is_string_view(t) or pa.types.is_binary_view(t):
        t = pa.large_string() if pa.types.is_string_view(t) else pa.large_binary()
        chunks = [c.cast(t) for c in chunks]
    nulls = sum(c.null_count for c in chunks)
    name = "utf8" if pa.types.is_string(t) or pa.types.is_large_string(t) else str(t)
    sink.lit("arrow", name.replace("large_binary", "binary"), sum(map(len, chunks)), nulls)
    masks = [c.is_null().to_numpy(zero_copy_only=False) for c in chunks] if nulls else None
    if _is_varwidth(t):
        _arrow_varwidth(chunks, masks, sink)
    elif pa.types.is_boolean(t):
        import pyarrow.compute as pc

        bools = [pc.fill_null(c, False).to_numpy(zero_copy_only=False) for c in chunks]
        sink.buffers(*[b.view(np.uint8) for b in bools])
    elif pa.types.is_primitive(t) or pa.types.is_decimal(t) or pa.types.is_fixed_size_binary(t):
        _arrow_fixed(chunks, masks, t.bit_width // 8, sink)
    elif not pa.types.is_null(t):  # lists, structs, maps: cell by cell
        hasher = xxhash.xxh3_128()
        for chunk in chunks:
            for cell in chunk.to_pylist():
                hasher.update(_canon(cell))
        sink.items.append(hasher.digest())
    if masks is not None:
        sink.buffers(*[m.view(np.uint8) for m in masks])


def _arrow_fixed(chunks: list[Any], masks: list[Any] | None, width: int, sink: _Sink) -> None:
    import numpy as np

    parts = []
    for i, chunk in enumerate(chunks):
        buf = chunk.buffers()[1]
        if buf is None or not len(chunk):
            continue
        raw = np.frombuffer(buf, np.uint8)[
            chunk.offset * width : (chunk.offset + len(chunk)) * width
        ]
        if masks is not None and chunk.null_count:
            raw = raw.reshape(len(chunk), width).copy()
            raw[masks[i]] = 0
            raw = raw.reshape(-1)
        parts.append(raw)
    sink.buffers(*parts)


def _arrow_varwidth(chunks: list[Any], masks: list[Any] | None, sink: _Sink) -> None:
    """Strings/binary: concatenated value bytes (in place) + int64 lengths."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    values, lengths = [], []
    for i, chunk in enumerate(chunks):
        offsets = _offsets(chunk)
        sizes = np.subtract(offsets[1:], offsets[:-1], dtype=np.int64)
        if masks is not None and sizes[masks[i]].any():  # garbage under nulls: blank it
            blank = (
                ""
                if pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)
                else b""
            )
            chunk = pc.fill_null(chunk, pa.scalar(blank, chunk.type))
            offsets = _offsets(chunk)
            sizes = np.subtract(offsets[1:], offsets[:-1], dtype=np.int64)
        lo, hi = int(offsets[0]), int(offsets[-1])
        if hi > lo:
            values.append(np.frombuffer(chunk.buffers()[2], np.uint8)[lo:hi])
        lengths.append(sizes.view(np.uint8))
    sink.buffers(*values)
    sink.buffers(*lengths)


def _offsets(chunk: Any) -> Any:
    import numpy as np

    buf = chunk.buffers()[1]
    if buf is None:
        return np.zeros(1, np.int64)
    wide = np.frombuffer(buf, np.int64 if str(chunk.type).startswith("large_") else np.int32)
    return wide[chunk.offset : chunk.offset + len(chunk) + 1]
