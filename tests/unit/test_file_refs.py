"""Files a tracked cell names: md5 on the cell's thread only up to ``hash_max_mb``; bigger ones
get a size+mtime identity with a note (and are hashed later, off the cell's thread); a file
that resolves outside the project is never read."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

from nbops.capture import Capture, CaptureOptions
from nbops.capture.namespace import complete_file_hashes
from nbops.config import load_config
from nbops.hashing.files import FileHashCache

CELL = "size = len(open({path!r}, 'rb').read(1))\n"


def track(code: str, root: Path, cache: FileHashCache, hash_max_mb: float) -> Any:
    ns: dict[str, Any] = {}
    capture = Capture(
        code, ns, CaptureOptions(), root=root, file_cache=cache, hash_max_mb=hash_max_mb
    )
    capture.begin()
    exec(code, ns)
    record, _ = capture.finish(None)
    return record


def cached_paths(cache: FileHashCache) -> list[str]:
    if not cache.db_path.exists():
        return []
    with sqlite3.connect(cache.db_path) as conn:
        return [row[0] for row in conn.execute("SELECT path FROM filehash")]


def old_file(path: Path, data: bytes) -> Path:
    """A file written a while ago (the hash cache skips files modified within 2 s)."""
    import os

    path.write_bytes(data)
    os.utime(path, (1_600_000_000, 1_600_000_000))
    return path


def test_a_file_above_the_cap_is_not_hashed_on_the_cells_thread(tmp_path: Path) -> None:
    data = b"x" * 300_000
    big = old_file(tmp_path / "big.bin", data)
    cache = FileHashCache(tmp_path / ".nbops" / "filehash.db")
    record = track(CELL.format(path=str(big)), tmp_path, cache, hash_max_mb=0.1)
    [ref] = record.data
    assert ref.name == "big.bin" and ref.size == len(data)
    assert ref.fingerprint == f"stat:{len(data)}-{big.stat().st_mtime_ns}"
    assert "hash_max_mb = 0.1" in ref.note and ref.short == "size+mtime"
    assert cached_paths(cache) == []  # nothing read

    assert complete_file_hashes(record, tmp_path, cache) == 1  # the writer's job, later
    assert ref.fingerprint == "md5:" + hashlib.md5(data).hexdigest()
    again = track(CELL.format(path=str(big)), tmp_path, cache, hash_max_mb=0.1)
    assert again.data[0].fingerprint == ref.fingerprint  # from the cache: no re-read


def test_a_file_that_changed_since_the_cell_keeps_its_identity(tmp_path: Path) -> None:
    big = old_file(tmp_path / "big.bin", b"x" * 300_000)
    cache = FileHashCache(tmp_path / "filehash.db")
    record = track(CELL.format(path=str(big)), tmp_path, cache, hash_max_mb=0.1)
    before = record.data[0].fingerprint
    big.write_bytes(b"y" * 300_001)
    assert complete_file_hashes(record, tmp_path, cache) == 0
    assert record.data[0].fingerprint == before


def test_a_small_file_is_hashed_at_once(tmp_path: Path) -> None:
    small = old_file(tmp_path / "small.csv", b"a\n1\n")
    cache = FileHashCache(tmp_path / "filehash.db")
    record = track(CELL.format(path=str(small)), tmp_path, cache, hash_max_mb=0.1)
    assert record.data[0].fingerprint == "md5:" + hashlib.md5(b"a\n1\n").hexdigest()


def test_a_symlink_out_of_the_project_is_named_and_never_read(tmp_path: Path) -> None:
    root, outside = tmp_path / "project", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    old_file(outside / "secret.txt", b"private\n")
    (root / "data").symlink_to(outside)
    cache = FileHashCache(root / "filehash.db")
    record = track(CELL.format(path=str(root / "data" / "secret.txt")), root, cache, 64.0)
    [ref] = record.data
    assert ref.fingerprint is None and ref.name == "data/secret.txt"
    assert "symlink" in ref.note and "copy the file into the project" in ref.note
    assert any("data/secret.txt: not fingerprinted" in w for w in record.warnings)
    assert cached_paths(cache) == []


def test_the_cap_is_a_setting(tmp_path: Path) -> None:
    assert load_config(tmp_path, env={}).hash_max_mb == 64.0
    (tmp_path / "pyproject.toml").write_text("[tool.nbops]\nhash_max_mb = 512\n")
    assert load_config(tmp_path, env={}).hash_max_mb == 512.0
    assert load_config(tmp_path, env={"NBOPS_HASH_MAX_MB": "1"}).hash_max_mb == 1.0


def test_the_session_hands_the_setting_to_every_capture(tmp_path: Path) -> None:
    from dataclasses import replace

    from nbops.session import Session

    config = replace(load_config(tmp_path, env={}), hash_max_mb=0.5)
    capture = Session(config).capture("x = 1\n", {}, CaptureOptions(), raw="x = 1\n")
    assert capture.hash_limit == 512 * 1024


def test_odd_settings_never_break_the_cell(tmp_path: Path) -> None:
    options = CaptureOptions()
    limits = {
        value: Capture("x = 1\n", {}, options, root=tmp_path, hash_max_mb=value).hash_limit
        for value in (float("inf"), float("nan"), -5.0, 0.0)
    }
    assert limits[float("inf")] is None  # no cap
    assert list(limits.values())[1:] == [64 * 2**20, 0, 0]  # NaN: the default; <= 0: never
