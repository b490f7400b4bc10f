"""Content fingerprints: in-memory data (``frames``: DataFrames, Series, Indexes, arrays, by
xxh3-128 over their buffers; ``arrow`` and ``values`` encode Arrow data and plain Python values
for it, ``sink`` is the byte stream) and files (``files``: md5, DVC's identity, cached on file
metadata).

``nbops.fingerprint(df)`` and ``nbops.fingerprint_file(path)`` are these functions. Names are
resolved on first use, so importing the package costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nbops._lazy import lazy_getattr

if TYPE_CHECKING:
    from nbops.hashing.files import (
        DEFAULT_HASH_MAX_MB,
        FileHashCache,
        cached_fingerprint,
        fingerprint_file,
    )
    from nbops.hashing.frames import describe, fingerprint, is_data

_EXPORTS = {
    "fingerprint": "nbops.hashing.frames",
    "describe": "nbops.hashing.frames",
    "is_data": "nbops.hashing.frames",
    "fingerprint_file": "nbops.hashing.files",
    "cached_fingerprint": "nbops.hashing.files",
    "FileHashCache": "nbops.hashing.files",
    "DEFAULT_HASH_MAX_MB": "nbops.hashing.files",
}

__all__ = [
    "DEFAULT_HASH_MAX_MB",
    "FileHashCache",
    "cached_fingerprint",
    "describe",
    "fingerprint",
    "fingerprint_file",
    "is_data",
]

__getattr__ = lazy_getattr(__name__, _EXPORTS)
