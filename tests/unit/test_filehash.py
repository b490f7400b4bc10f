"""File fingerprints: DVC-compatible md5, cached on (path, size, mtime_ns, inode)."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nbops.hashing import files as filehash
from nbops.hashing.files import FileHashCache, fingerprint_file

OLD = 1_600_000_000  # an mtime well outside the racy window


def write(path: Path, data: bytes, mtime: int | None = OLD) -> Path:
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every path whose bytes were actually read and hashed."""
    seen: list[str] = []
    real = filehash._md5_file

    def counting(path: str) -> str:
        seen.append(path)
        return real(path)

    monkeypatch.setattr(filehash, "_md5_file", counting)
    return seen


def test_md5_of_the_raw_bytes(tmp_path: Path) -> None:
    data = os.urandom(3 << 20) + b"line\r\nend"  # several read chunks, CRLF kept as is
    path = write(tmp_path / "data.bin", data)
    assert fingerprint_file(path) == "md5:" + hashlib.md5(data).hexdigest()
    assert fingerprint_file(write(tmp_path / "empty", b"")) == "md5:" + hashlib.md5().hexdigest()


def test_equals_dvc_file_identity(tmp_path: Path) -> None:
    dvc_hash = pytest.importorskip("dvc_data.hashfile.hash")
    path = write(tmp_path / "data.csv", b"a,b\r\n1,2\r\n" * 1000)
    assert fingerprint_file(path) == "md5:" + dvc_hash.file_md5(str(path))


def test_unchanged_file_is_not_read_again(tmp_path: Path, reads: list[str]) -> None:
    cache = FileHashCache(tmp_path / ".nbops" / "filehash.db")
    path = write(tmp_path / "data.bin", b"x" * 1000)
    first = fingerprint_file(path, cache)
    assert fingerprint_file(path, cache) == first
    assert fingerprint_file(str(path), FileHashCache(cache.db_path)) == first  # another session
    assert len(reads) == 1


def test_cache_trusts_metadata_like_dvc(tmp_path: Path) -> None:
    """Same size and mtime (restored with os.utime) => the cached digest is returned, unread."""
    cache = FileHashCache(tmp_path / "filehash.db")
    path = write(tmp_path / "data.bin", b"aaaa")
    before = fingerprint_file(path, cache)
    write(path, b"bbbb")  # same size, same mtime, same inode
    assert fingerprint_file(path, cache) == before
    assert fingerprint_file(path) != before  # without the cache the bytes are read


def test_modification_invalidates(tmp_path: Path, reads: list[str]) -> None:
    cache = FileHashCache(tmp_path / "filehash.db")
    path = write(tmp_path / "data.bin", b"v1")
    assert fingerprint_file(path, cache) == "md5:" + hashlib.md5(b"v1").hexdigest()
    write(path, b"v2-longer")  # size changes
    assert fingerprint_file(path, cache) == "md5:" + hashlib.md5(b"v2-longer").hexdigest()
    write(path, b"v3-longer", mtime=OLD + 1)  # same size, mtime changes
    assert fingerprint_file(path, cache) == "md5:" + hashlib.md5(b"v3-longer").hexdigest()
    assert len(reads) == 3


def test_freshly_written_files_are_hashed_but_not_cached(tmp_path: Path, reads: list[str]) -> None:
    """A same-size rewrite within one timestamp tick must not hit a stale digest."""
    cache = FileHashCache(tmp_path / "filehash.db")
    path = write(tmp_path / "fresh.bin", b"new", mtime=None)
    fingerprint_file(path, cache)
    fingerprint_file(path, cache)
    assert len(reads) == 2


def test_corrupt_cache_degrades_to_no_cache(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "filehash.db"
    db.write_bytes(b"this is not a sqlite database" * 100)
    cache = FileHashCache(db)
    path = write(tmp_path / "data.bin", b"payload")
    with caplog.at_level(logging.WARNING, logger="nbops.hashing.files"):
        assert fingerprint_file(path, cache) == "md5:" + hashlib.md5(b"payload").hexdigest()
        assert fingerprint_file(path, cache) == "md5:" + hashlib.md5(b"payload").hexdigest()
    assert cache.disabled is not None
    assert "Delete the file" in caplog.text
    assert len([r for r in caplog.records if r.name == "nbops.hashing.files"]) == 1


def test_unwritable_cache_location_degrades(tmp_path: Path) -> None:
    blocker = write(tmp_path / "not-a-dir", b"")
    cache = FileHashCache(blocker / "filehash.db")
    path = write(tmp_path / "data.bin", b"payload")
    assert fingerprint_file(path, cache) == "md5:" + hashlib.md5(b"payload").hexdigest()
    assert cache.disabled is not None


def test_cache_is_shared_between_processes(tmp_path: Path, reads: list[str]) -> None:
    db = tmp_path / "filehash.db"
    path = write(tmp_path / "data.bin", b"shared")
    code = (
        "import sys\nfrom nbops.hashing.files import FileHashCache, fingerprint_file\n"
        "print(fingerprint_file(sys.argv[2], FileHashCache(sys.argv[1])))"
    )
    args = [sys.executable, "-c", code, str(db), str(path)]
    child = subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip()
    assert fingerprint_file(path, FileHashCache(db)) == child
    assert reads == []  # the child's digest was reused


def test_unreadable_paths_raise_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        fingerprint_file(tmp_path / "missing.csv")
    with pytest.raises(OSError, match="not a regular file"):
        fingerprint_file(tmp_path)
