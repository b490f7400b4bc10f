"""Canonical bytes of Arrow arrays and of object arrays, for :mod:`nbops.hashing.frames`.

Arrow data is hashed from its buffers independently of chunking and slicing, with bytes under
nulls zeroed. pyarrow and numpy are imported inside the functions that need them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import xxhash

from nbops.errors import FingerprintError
from nbops.hashing.values import canon, fingerprint_error

if TYPE_CHECKING:
    from nbops.hashing.sink import Sink

__all__ = ["hash_arrow", "hash_objects"]


def hash_objects(a: Any, sink: Sink) -> None:
    """Object cells: through Arrow when it infers a flat type, else cell by cell."""
    flat = a.reshape(-1)
    if a.dtype.kind == "T":  # numpy StringDType
        flat = flat.astype(object)
    arrow = _to_flat_arrow(flat)
    if arrow is not None:
        sink.lit("objects:arrow")
        hash_arrow(arrow, sink)
        return
    sink.lit("objects:cells", len(flat))
    hasher = xxhash.xxh3_128()
    for i, cell in enumerate(flat):
        try:
            hasher.update(canon(cell))
        except FingerprintError as exc:
            raise fingerprint_error(a, f"element {i}: {exc.reason}") from exc
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
    """Offset-indexed types, hashed as value bytes plus lengths."""
    return str(t) in ("string", "large_string", "binary", "large_binary")


def hash_arrow(data: Any, sink: Sink) -> None:
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
    elif pa.types.is_null(t):
        pass  # the length and null count in the header are the content
    elif pa.types.is_primitive(t) or pa.types.is_decimal(t) or pa.types.is_fixed_size_binary(t):
        _arrow_fixed(chunks, masks, t.bit_width // 8, sink)
    else:  # lists, structs, maps: cell by cell
        hasher = xxhash.xxh3_128()
        for chunk in chunks:
            for cell in chunk.to_pylist():
                hasher.update(canon(cell))
        sink.items.append(hasher.digest())
    if masks is not None:
        sink.buffers(*[m.view(np.uint8) for m in masks])


def _arrow_fixed(chunks: list[Any], masks: list[Any] | None, width: int, sink: Sink) -> None:
    """Fixed-width values: the data buffers in place, copied only to zero slots under nulls."""
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


def _arrow_varwidth(chunks: list[Any], masks: list[Any] | None, sink: Sink) -> None:
    """Strings/binary: concatenated value bytes (in place) + int64 lengths."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    values, lengths = [], []
    for i, chunk in enumerate(chunks):
        offsets = _offsets(chunk)
        sizes = np.subtract(offsets[1:], offsets[:-1], dtype=np.int64)
        if masks is not None and sizes[masks[i]].any():  # garbage under nulls: blank it
            blank = b"" if "binary" in str(chunk.type) else ""
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
    """The chunk's value offsets (int32 or int64), sliced to its own window of a shared buffer."""
    import numpy as np

    buf = chunk.buffers()[1]
    if buf is None:
        return np.zeros(1, np.int64)
    wide = np.frombuffer(buf, np.int64 if str(chunk.type).startswith("large_") else np.int32)
    return wide[chunk.offset : chunk.offset + len(chunk) + 1]
