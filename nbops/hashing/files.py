"""File fingerprints: the md5 of the raw bytes, cached on file metadata.

md5 is slow (~0.7 GB/s) but it is DVC 3's file identity, so nbops lineage and ``dvc.lock`` agree
on what a file is. The cost is paid once per file version: :class:`FileHashCache` remembers the
digest under (absolute path, size, mtime_ns, inode), the way DVC's state database does, so an
unchanged file is never read again and any write that touches size or mtime re-hashes it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite3

__all__ = ["DEFAULT_HASH_MAX_MB", "FileHashCache", "cached_fingerprint", "fingerprint_file"]

# Files above this many MB are not hashed on a cell's thread (config ``hash_max_mb``): md5 runs
# at ~0.7 GB/s, so this bounds what a cell can pay for a new file at ~0.1 s.
DEFAULT_HASH_MAX_MB = 64.0

_CHUNK = 1 << 20  # md5 is CPU bound: the read size does not matter above ~256 KB

_SCHEMA = """CREATE TABLE IF NOT EXISTS filehash (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL, md5 TEXT NOT NULL) WITHOUT ROWID"""


class FileHashCache:
    """md5 digests in a SQLite file keyed on (path, size, mtime_ns, inode).

    Safe for several processes (WAL, busy timeout). It is only a cache: a corrupt, locked or
    unwritable database is logged and then ignored, never raised. Files modified less than
    ``racy_window_s`` ago are hashed but not cached, because filesystem timestamps are coarse
    (ticks of a few ms, 2 s on FAT): a same-size rewrite within one tick would otherwise keep a
    stale digest ("racy git" problem).
    """

    timeout_s: float = 2.0
    racy_window_s: float = 2.0

    def __init__(self, db_path: str | os.PathLike[str]) -> None:
        self.db_path = Path(db_path)
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self.disabled: str | None = None  # why the cache is not used, once it failed

    def lookup(self, path: str, st: os.stat_result) -> str | None:
        """The cached md5 hex of ``path`` if its metadata still matches ``st``, else None."""
        row = self._run(
            "SELECT md5 FROM filehash WHERE path=? AND size=? AND mtime_ns=? AND inode=?",
            (path, st.st_size, st.st_mtime_ns, st.st_ino),
        )
        return str(row[0]) if row else None

    def store(self, path: str, st: os.stat_result, md5_hex: str) -> None:
        """Remember ``md5_hex`` for ``path`` as it was at ``st`` (skipped for racy mtimes)."""
        if time.time_ns() - st.st_mtime_ns < self.racy_window_s * 1e9:
            return
        self._run(
            "INSERT OR REPLACE INTO filehash VALUES (?, ?, ?, ?, ?)",
            (path, st.st_size, st.st_mtime_ns, st.st_ino, md5_hex),
        )

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def _run(self, sql: str, params: tuple[object, ...]) -> tuple[object, ...] | None:
        import sqlite3

        with self._lock:
            conn = self._connect()
            if conn is None:
                return None
            try:
                row: tuple[object, ...] | None = conn.execute(sql, params).fetchone()
                return row
            except sqlite3.Error as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    self._disable(exc)
                return None

    def _connect(self) -> sqlite3.Connection | None:
        """The connection of this process (a forked child must not reuse its parent's)."""
        import sqlite3

        if self.disabled is not None:
            return None
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        try:
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.db_path, timeout=self.timeout_s, isolation_level=None, check_same_thread=False
            )
            with contextlib.suppress(sqlite3.OperationalError):  # refused on network fs: fine
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            self._disable(exc)
            return None
        self._conn, self._pid = conn, os.getpid()
        return conn

    def _disable(self, exc: BaseException) -> None:
        self.disabled = f"{type(exc).__name__}: {exc}"
        if self._conn is not None and self._pid == os.getpid():
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None
        import logging

        logging.getLogger(__name__).warning(
            "nbops file hash cache %s is not usable (%s); hashing without it. "
            "Delete the file to rebuild it.",
            self.db_path,
            self.disabled,
        )


def fingerprint_file(path: str | os.PathLike[str], cache: FileHashCache | None = None) -> str:
    """``"md5:<32 hex>"`` of the file's bytes (DVC 3's identity), through ``cache`` if given.

    Raises ``OSError`` (e.g. ``FileNotFoundError``) when the path cannot be read or is not a
    regular file (a FIFO would block, a directory has no bytes).
    """
    abspath = os.path.abspath(os.fspath(path))
    before = os.stat(abspath)
    if not stat.S_ISREG(before.st_mode):
        code = errno.EISDIR if stat.S_ISDIR(before.st_mode) else errno.EINVAL
        raise OSError(code, "not a regular file", abspath)
    cached = cache.lookup(abspath, before) if cache is not None else None
    if cached is not None:
        return f"md5:{cached}"
    digest = _md5_file(abspath)
    if cache is not None and _same_file_state(before, os.stat(abspath)):
        cache.store(abspath, before, digest)  # a file changed while we read it is not cached
    return f"md5:{digest}"


def cached_fingerprint(path: str | os.PathLike[str], cache: FileHashCache | None) -> str | None:
    """``"md5:..."`` if ``cache`` knows this version of the file (no byte is read), else None."""
    if cache is None:
        return None
    abspath = os.path.abspath(os.fspath(path))
    cached = cache.lookup(abspath, os.stat(abspath))
    return f"md5:{cached}" if cached is not None else None


def _md5_file(path: str) -> str:
    """md5 hex of a file, read in 1 MB chunks into one reused buffer (no per-chunk allocs)."""
    import hashlib

    md5 = hashlib.md5(usedforsecurity=False)
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            md5.update(view[:n])
    return md5.hexdigest()


def _same_file_state(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_size, a.st_mtime_ns, a.st_ino) == (b.st_size, b.st_mtime_ns, b.st_ino)
