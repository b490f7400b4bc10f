"""The DVC side of ``nbops run``: finding or creating the DVC project, clearing stale locks,
and reading ``dvc repro``'s output as per-stage events.

DVC runs as a subprocess (``python -m dvc``), never imported: its import is slow and its
global state (logging, signal handlers) is not ours to change.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from nbops.dvc import DVC_DIR
from nbops.errors import NbopsError

EventKind = Literal["start", "unchanged", "restored", "failed", "other"]

_EVENTS: tuple[tuple[EventKind, re.Pattern[str]], ...] = (
    ("start", re.compile(r"^Running stage '(?P<stage>[^']+)':")),
    ("unchanged", re.compile(r"^Stage '(?P<stage>[^']+)' didn't change, skipping")),
    ("restored", re.compile(r"^Stage '(?P<stage>[^']+)' is cached - skipping run")),
    ("failed", re.compile(r"^ERROR: failed to reproduce '(?P<stage>[^']+)'")),
)


@dataclass(frozen=True)
class Event:
    """One line of ``dvc repro`` output, classified."""

    kind: EventKind
    stage: str
    line: str


def parse_line(line: str) -> Event:
    text = line.rstrip("\n")
    for kind, pattern in _EVENTS:
        match = pattern.match(text)
        if match:
            return Event(kind, match.group("stage"), text)
    return Event("other", "", text)


def clear_stale_locks(root: Path) -> list[str]:
    """Remove DVC locks left by an interrupted run; raise if a live DVC process holds them.

    ``.dvc/tmp/rwlock`` lists the pid of each DVC process using a path: DVC itself drops dead
    pids, but a pid reused by another process blocks every later run. ``.dvc/tmp/lock`` is an
    flock (released when its holder dies) unless ``core.hardlink_lock`` makes it a file whose
    existence is the lock. Returns what was removed.
    """
    tmp = root / DVC_DIR / "tmp"
    cleared = []
    rwlock = tmp / "rwlock"
    holders = _rwlock_pids(rwlock)
    if holders is None or holders:
        live = [pid for pid in holders or [] if _is_dvc(pid)]
        if live:
            raise _busy(root, live)
        rwlock.unlink(missing_ok=True)
        cleared.append(str(rwlock))
    lock = tmp / "lock"
    if _flock_held(lock):
        raise _busy(root, [])
    if lock.is_file() and lock.stat().st_nlink > 1:  # a hardlink lock nobody releases
        live = _dvc_processes(root)
        if live:
            raise _busy(root, live)
        lock.unlink()
        cleared.append(str(lock))
    return cleared


def _rwlock_pids(path: Path) -> list[int] | None:
    """Pids in the rwlock ([] if none or no file); None if the file is unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
    except FileNotFoundError:
        return []
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    infos: list[dict] = []
    for value in (data.get("write") or {}).values():
        infos.append(value)
    for value in (data.get("read") or {}).values():
        infos.extend(value if isinstance(value, list) else [value])
    try:
        return sorted({int(info["pid"]) for info in infos})
    except (KeyError, TypeError, ValueError):
        return None


def _flock_held(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        return exc.errno in (errno.EAGAIN, errno.EACCES)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _is_dvc(pid: int) -> bool:
    import psutil

    if pid == os.getpid():
        return False
    try:
        return _is_dvc_cmdline(psutil.Process(pid).cmdline())
    except psutil.Error:
        return False


def _is_dvc_cmdline(argv: list[str]) -> bool:
    names = [os.path.basename(arg) for arg in argv]
    return "dvc" in names[:2] or any(pair == ("-m", "dvc") for pair in itertools.pairwise(argv))


def _dvc_processes(root: Path) -> list[int]:
    """Live DVC processes working in ``root`` (or whose folder cannot be read)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if proc.info["pid"] == os.getpid() or not _is_dvc_cmdline(proc.info["cmdline"] or []):
            continue
        cwd = None
        with contextlib.suppress(psutil.Error):
            cwd = Path(proc.cwd())
        if cwd is None or cwd == root or root in cwd.parents:
            found.append(proc.info["pid"])
    return found


def _busy(root: Path, pids: list[int]) -> NbopsError:
    who = f" (pid {', '.join(map(str, pids))})" if pids else ""
    return NbopsError(
        f"another DVC process{who} is working in {root}",
        fix="wait for it to finish, or stop it if it is stuck, then run again",
        folder=str(root),
        pids=pids,
    )


def up_to_date(folder: Path) -> bool:
    """``dvc status`` lists nothing but ``always_changed`` stages (the model gate, whose
    champion lives in MLflow where DVC cannot see it): ``nbops run`` then has nothing to run
    and records nothing, at the cost of DVC's own check (~0.45 s)."""
    import subprocess

    from nbops import dvc

    done = subprocess.run(
        dvc.dvc_command("status", "--json"),
        cwd=folder,
        env=dvc.dvc_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return False
    try:
        changes = json.loads(done.stdout or "{}")
    except ValueError:
        return False
    return isinstance(changes, dict) and all(
        value == ["always changed"] for value in changes.values()
    )
