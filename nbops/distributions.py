"""Which installed distributions provide a module, kept on disk per environment.

``importlib.metadata.packages_distributions()`` stats every file of every distribution that has
no ``top_level.txt`` (about 20,000 files here): 0.15-0.3 s of CPU, and a headless kernel pays it
while MLflow is imported on the writer thread, so its first tracked cell waits for both. The
answer only changes when a distribution is installed, removed or upgraded, which changes the
``*.dist-info`` / ``*.egg-info`` entries of a folder on ``sys.path``: those names and their
modification times are the key, and a stale file is simply computed again. Folders with no such
entry (the working folder a kernel or a pipeline stage starts in, a script's folder) provide no
distribution and are left out of the key: a notebook's kernel and the pipeline's stages, each
started in its own folder, share one file instead of each replacing the other's. Versions are not
kept: they are read live (one small file per distribution a run uses), so a distribution
rewritten in place still reports its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from types import ModuleType

from nbops.config import user_cache_dir

_SUFFIXES = (".dist-info", ".egg-info")
FORMAT = 3


Modules = Mapping[str, tuple[str, ...]]  # top-level module -> the distributions providing it


def installed(cache_dir: Path | None = None) -> Modules:
    """The environment's map, from the cache file when the installed set did not change."""
    key = environment_key()
    path = (cache_dir or user_cache_dir()) / f"distributions-{_digest([sys.prefix])}.json"
    cached = _read(path, key)
    if cached is not None:
        return cached
    found = _scan()
    _write(path, key, found)
    return found


def environment_key() -> list[list[object]]:
    """Per ``sys.path`` folder that holds metadata entries, those entries and when each last
    changed."""
    key: list[list[object]] = []
    for entry in sys.path:
        folder = entry or os.getcwd()
        try:
            with os.scandir(folder) as items:
                infos = sorted(
                    (item.name, item.stat().st_mtime_ns)
                    for item in items
                    if item.name.endswith(_SUFFIXES)
                )
        except OSError:  # a zip file or a folder that does not exist
            continue
        if infos:
            key.append([folder, infos])
    return key


def _scan() -> Modules:
    """The ``importlib_metadata`` backport when installed (MLflow needs it): it also sees
    top-level modules that are only compiled files, and MLflow's map is this one."""
    found_by: ModuleType = metadata
    with contextlib.suppress(ImportError):
        import importlib_metadata

        found_by = importlib_metadata
    return {
        module: tuple(dict.fromkeys(dists))
        for module, dists in found_by.packages_distributions().items()
    }


def _read(path: Path, key: list[list[object]]) -> Modules | None:
    try:
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT or data.get("key") != _digest(key):
            return None
        return {name: tuple(dists) for name, dists in data["modules"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _write(path: Path, key: list[list[object]], found: Modules) -> None:
    """Atomically (another kernel may read it meanwhile); a cache that cannot be written is
    only slower."""
    data = {
        "format": FORMAT,
        "key": _digest(key),
        "modules": {name: list(dists) for name, dists in found.items()},
    }
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(json.dumps(data))
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value).encode()).hexdigest()[:32]
