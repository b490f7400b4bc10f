"""What ``nbops cache ls`` and ``nbops cache clear`` show: the entries and what was removed."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

from nbops.cache.store import CacheStore, Entry


@dataclass
class CacheListing:
    """The entries, most recently used first, and the cache's size."""

    store: CacheStore
    entries: list[Entry]

    def to_json(self) -> str:
        rows = [
            {"key": e.key, "size": e.size, "last_used": e.last_used, **e.manifest}
            for e in self.entries
        ]
        return json.dumps(rows, indent=1, default=str)

    def text(self) -> str:
        entries, store = self.entries, self.store
        total = sum(e.size for e in entries)
        head = (
            f"cache {store.folder}: {len(entries)} entr{'y' if len(entries) == 1 else 'ies'}, "
            f"{_mb(total)} of {_mb(store.max_bytes)} ([tool.nbops] cache_max_mb)"
        )
        if not entries:
            return head + "\nnothing cached yet: put %%track --cache on a cell"
        rows = [["key", "run", "made", "last used", "size", "run took", "restores"]]
        for e in entries:
            names = [n for spec in e.manifest.get("outputs", []) for n in spec.get("names", [])]
            rows.append(
                [
                    e.key[:12],
                    e.run,
                    _when(e.manifest.get("created")),
                    _when(e.last_used),
                    _mb(e.size),
                    f"{float(e.manifest.get('seconds', 0)):.1f} s",
                    _short(", ".join(names) or "-"),
                ]
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
        return "\n".join([head, *(line.rstrip() for line in lines)])


@dataclass
class Cleared:
    """What ``clear`` removed (every entry, or those whose key starts with one of ``keys``)."""

    store: CacheStore
    keys: Sequence[str]
    removed: list[Entry]

    def text(self) -> str:
        freed = sum(e.size for e in self.removed)
        what = f"{len(self.removed)} entr{'y' if len(self.removed) == 1 else 'ies'}"
        if self.keys and not self.removed:
            keys = ", ".join(self.keys)
            return f"no cache entry has a key starting with {keys} (see `nbops cache ls`)"
        return f"removed {what} ({_mb(freed)}) from {self.store.folder}"


def _mb(size: float) -> str:
    return f"{size / 2**20:.1f} MB"


def _when(stamp: object) -> str:
    if not isinstance(stamp, int | float) or not stamp:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))


def _short(value: object) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= 18 else text[:17] + "…"
