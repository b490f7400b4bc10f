"""The cache's entries on disk, beside the store (:attr:`nbops.config.Config.cache_dir`).

One folder per key, ``<cache>/<key[:2]>/<key>/``: ``manifest.json`` (the run that made it,
what to restore and how) and the stored values, texts and files. An entry is written in a
temporary folder and renamed into place, so a reader sees it whole or not at all; the first
writer of a key wins. The manifest's modification time is the entry's last use. The cache
keeps under ``cache_max_mb``: after each new entry the least recently used go.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
_TMP = ".tmp"


@dataclass
class Entry:
    """One stored execution: its key, folder and manifest."""

    key: str
    folder: Path
    manifest: dict[str, Any]

    @property
    def size(self) -> int:
        return int(self.manifest.get("size", 0))

    @property
    def last_used(self) -> float:
        try:
            return (self.folder / MANIFEST).stat().st_mtime
        except OSError:
            return 0.0

    @property
    def run(self) -> str:
        """The run that made it, as the summary names it: its name, and its record id when
        the name is not that id's prefix (``forest (1a2b3c4d)``)."""
        record = str(self.manifest.get("record_id", ""))[:8]
        name = str(self.manifest.get("run") or record)
        return name if name == record or not record else f"{name} ({record})"


class CacheStore:
    """Entries under ``folder``, at most ``max_bytes`` in all."""

    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes

    def path(self, key: str) -> Path:
        return self.folder / key[:2] / key

    def get(self, key: str) -> Entry | None:
        """The entry of ``key`` (marked as used now), or None."""
        folder = self.path(key)
        manifest = _read(folder / MANIFEST)
        if manifest is None or manifest.get("key") != key:
            return None
        with contextlib.suppress(OSError):
            os.utime(folder / MANIFEST)
        return Entry(key, folder, manifest)

    def new(self) -> Path:
        """A fresh temporary folder to write an entry into (then :meth:`commit` or
        :meth:`discard` it)."""
        tmp = self.folder / _TMP / uuid.uuid4().hex
        tmp.mkdir(parents=True)
        return tmp

    def commit(self, tmp: Path, manifest: dict[str, Any]) -> Entry | None:
        """Move a written entry into place; None if another process stored the key first
        (that entry stands) or it cannot be moved."""
        key = manifest["key"]
        manifest["size"] = _tree_size(tmp)
        manifest.setdefault("created", time.time())
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, default=str), "utf-8")
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(tmp, target)
        except OSError:  # exists already (another kernel), or another file system
            self.discard(tmp)
            return None
        self.evict(keep=key)
        return Entry(key, target, manifest)

    def discard(self, tmp: Path) -> None:
        shutil.rmtree(tmp, ignore_errors=True)

    def remove(self, key: str) -> int:
        """Delete one entry; the bytes freed."""
        entry = self.get(key)
        if entry is None:
            return 0
        _remove_tree(entry.folder)
        return entry.size

    def entries(self) -> list[Entry]:
        """Every entry, most recently used first."""
        found: list[Entry] = []
        if not self.folder.is_dir():
            return found
        for shard in self.folder.iterdir():
            if shard.name == _TMP or not shard.is_dir():
                continue
            for folder in shard.iterdir():
                manifest = _read(folder / MANIFEST)
                if manifest is not None and manifest.get("key") == folder.name:
                    found.append(Entry(folder.name, folder, manifest))
        return sorted(found, key=lambda e: e.last_used, reverse=True)

    def total(self) -> int:
        return sum(e.size for e in self.entries())

    def evict(self, keep: str = "") -> list[Entry]:
        """Remove least recently used entries until the cache fits ``max_bytes``."""
        entries = self.entries()
        total = sum(e.size for e in entries)
        removed = []
        for entry in reversed(entries):  # least recently used first
            if total <= self.max_bytes:
                break
            if entry.key == keep and total - entry.size <= self.max_bytes:
                continue
            _remove_tree(entry.folder)
            total -= entry.size
            removed.append(entry)
        self._sweep()
        return removed

    def clear(self, prefixes: list[str] | None = None) -> list[Entry]:
        """Remove every entry (or those whose key starts with one of ``prefixes``)."""
        removed = []
        for entry in self.entries():
            if prefixes and not any(entry.key.startswith(p) for p in prefixes):
                continue
            _remove_tree(entry.folder)
            removed.append(entry)
        if not prefixes:
            shutil.rmtree(self.folder / _TMP, ignore_errors=True)
        return removed

    def _sweep(self) -> None:
        """Temporary folders left by a kernel killed while storing (older than an hour)."""
        tmp = self.folder / _TMP
        if not tmp.is_dir():
            return
        cutoff = time.time() - 3600
        for folder in tmp.iterdir():
            with contextlib.suppress(OSError):
                if folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder, ignore_errors=True)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _tree_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _remove_tree(folder: Path) -> None:
    """Rename first, so a reader never sees a half-deleted entry, then delete."""
    doomed = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}.gone")
    try:
        os.rename(folder, doomed)
    except OSError:
        return
    shutil.rmtree(doomed, ignore_errors=True)
