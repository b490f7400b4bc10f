"""Paths that must stay inside the project, judged by where they resolve, not by their text.

``data/etc`` reads like a project folder, but if it is a symlink to ``/etc`` then copying it
(promote) or hashing it (``%%track``) reads files from anywhere. Every path is resolved
(symlinks followed) before anything is copied or hashed, and every file under a folder is
resolved on its own, since a link can sit anywhere in a tree. What leaves the project is
reported as an :class:`Escape` naming the link that leads out, so the caller can refuse with
that name and the fix. Symlinks that stay inside the project are fine (they are followed).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Escape", "escape", "files_under", "is_within"]


@dataclass(frozen=True)
class Escape:
    """``path`` resolves outside the project through ``link`` (which points at ``target``)."""

    path: Path
    link: Path
    target: Path

    def describe(self, shown: str | None = None) -> str:
        name = shown or str(self.path)
        if self.link == self.path:
            return f"{name} resolves to {self.target}, outside the project"
        link = f"the symlink {self.link} -> {self.target}"
        return f"{name} is reached through {link}, outside the project"


def is_within(path: Path, root: Path) -> bool:
    """Whether the resolved ``path`` is ``root`` or under it (both resolved)."""
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def escape(path: Path, root: Path) -> Escape | None:
    """None if ``path`` (absolute, or relative to the working directory) resolves inside
    ``root``; else the first symlink on the way that leads out (or the path itself)."""
    root = root.resolve()
    full = Path(os.path.abspath(path))
    walked = Path(full.anchor)
    for part in full.parts[1:]:
        walked = walked / part
        if walked.is_symlink():
            target = walked.resolve()
            if not is_within(target, root) and is_within(_parent_resolved(walked), root):
                return Escape(full, walked, target)
    resolved = full.resolve()
    return None if is_within(resolved, root) else Escape(full, full, resolved)


def files_under(folder: Path, root: Path) -> Iterator[tuple[str, Path] | Escape]:
    """Every file under ``folder`` as (posix path relative to ``folder``, resolved path; not
    always a regular file),
    following symlinks that stay inside ``root`` (each folder once: link cycles end), and an
    :class:`Escape` for each link that leads out (its files are not listed)."""
    root = root.resolve()
    seen: set[Path] = set()

    def walk(directory: Path, prefix: str) -> Iterator[tuple[str, Path] | Escape]:
        real = directory.resolve()
        if real in seen:
            return
        seen.add(real)
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            path, rel = Path(entry.path), f"{prefix}{entry.name}"
            target = path.resolve()
            if not is_within(target, root):
                yield Escape(path, path, target)
            elif target.is_dir():
                yield from walk(path, rel + "/")
            elif target.exists():  # a file (or a FIFO, socket, device: the caller decides)
                yield rel, target

    yield from walk(folder, "")


def _parent_resolved(path: Path) -> Path:
    return path.parent.resolve()
