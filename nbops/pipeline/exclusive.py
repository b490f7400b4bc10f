"""One ``nbops run`` of a pipeline at a time, and a clear word when another is running.

Two runs at once would collide on DVC's lock halfway (a raw DVC message and a FAILED run with no
reason). Each ``nbops run`` holds an ``flock`` on a file in the project's ``.nbops/runs/`` for
the pipeline folder; the file says who holds it. The lock dies with its process, so a killed
run never blocks the next.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from nbops.errors import BusyError


@contextlib.contextmanager
def one_run_at_a_time(state_dir: Path, folder: Path, name: str) -> Iterator[None]:
    """Hold the pipeline's run lock, or raise BusyError naming the process that holds it."""
    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    path = state_dir / "runs" / f"{key}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _busy(path, name) from None
        holder = {"pid": os.getpid(), "started": time.time(), "folder": str(folder)}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        yield
    finally:
        os.close(fd)


def _busy(path: Path, name: str) -> BusyError:
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
        pid, started = int(holder["pid"]), float(holder["started"])
    except (OSError, ValueError, KeyError, TypeError):
        pid, started = 0, 0.0
    when = time.strftime("%H:%M:%S", time.localtime(started)) if started else "a moment ago"
    who = f"pid {pid}" if pid else "another process"
    return BusyError(
        f"pipeline {name} is being run by {who} (started at {when}); nothing was run",
        fix=f"wait for it to finish, or stop it (kill {pid}) and run again"
        if pid
        else "wait for it to finish, then run again",
        pid=pid,
        started=started,
    )
