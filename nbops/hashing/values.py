"""Canonical bytes of plain Python values, and the error for what has none.

Python values (headers, object cells) get a type-tagged, self-delimiting encoding, so equal
content gives equal bytes in any process and distinct values never collide by concatenation.
"""

from __future__ import annotations

import struct
import sys
from typing import Any

from nbops.errors import FingerprintError

__all__ = ["canon", "fingerprint_error", "type_name"]


def type_name(obj: Any) -> str:
    """Qualified type name for messages, without the ``builtins.`` noise."""
    kind = type(obj)
    return f"{kind.__module__}.{kind.__qualname__}".removeprefix("builtins.")


def fingerprint_error(obj: Any, reason: str) -> FingerprintError:
    """The error for an unhashable ``obj``, naming it and saying how to get past it."""
    name = type_name(obj)
    return FingerprintError(
        f"cannot fingerprint {name}: {reason}",
        obj_type=name,
        reason=reason,
        fix="convert it to a DataFrame or ndarray of plain values, or leave it out of tracking",
    )


def canon(value: Any) -> bytes:
    """The canonical bytes of a plain Python value (see :func:`_enc`)."""
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
        keys = sorted(canon(k) + (canon(v[k]) if t is dict else b"") for k in v)
        out += {dict: b"d", set: b"e", frozenset: b"z"}[t] + struct.pack("<Q", len(keys))
        out += b"".join(keys)
    else:
        _enc_other(v, out)


def _enc_other(v: Any, out: bytearray) -> None:
    """Encode numpy scalars, nested data objects, dates, decimals and pandas missing values."""
    from datetime import date, datetime, time, timedelta
    from decimal import Decimal

    # Imported here: a data object inside a cell recurses into the module that imports this one.
    from nbops.hashing.frames import fingerprint, is_data

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
        reason = "has no deterministic byte form (its repr or pickle may vary between runs)"
        raise fingerprint_error(v, f"{type_name(v)} {reason}")


def _blob(out: bytearray, tag: bytes, data: bytes) -> None:
    """Tag + length + bytes: the length prefix keeps concatenated values unambiguous."""
    out += tag + struct.pack("<Q", len(data)) + data
