"""The thin client: ``nbops step`` / ``nbops validate`` started by DVC inside ``nbops run``.

It imports nothing heavy (no papermill, pandas or MLflow): it connects to the executor named by
``NBOPS_EXECUTOR``, sends its argv, environment and working folder with its own stdout and stderr
(which are DVC's pipes, so the stage's output reaches DVC exactly as if it ran here), and exits
with the stage's status. No executor there, or one that cannot run this stage: the caller runs
the stage itself (the cold path).
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Sequence

from nbops.executor.wire import Channel

ENV = "NBOPS_EXECUTOR"
STAGES = (("step",), ("validate", "data"), ("validate", "model"))
NOTE_MARK = "nbops: note:"


def delegate(argv: Sequence[str]) -> int | None:
    """The stage's exit code when the warm executor ran it; None: run it here instead."""
    address = os.environ.get(ENV)
    if not address or not any(tuple(argv[: len(s)]) == s for s in STAGES):
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(address)
    except OSError:  # the `nbops run` that started DVC is gone: run cold
        sock.close()
        _note("the warm executor of `nbops run` is gone: this stage runs in a new process")
        return None
    channel = Channel(sock)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        request = {"argv": list(argv), "env": dict(os.environ), "cwd": os.getcwd()}
        channel.send(request, [sys.stdout.fileno(), sys.stderr.fileno()])
        reply, _ = channel.receive()
    except OSError:
        return None
    finally:
        channel.close()
    if reply is None:
        _note("the warm executor stopped: this stage runs again in a new process")
        return None
    if "cold" in reply:
        _note(f"this stage runs in a new process: {reply['cold']}")
        return None
    return int(reply.get("exit", 1))


def _note(text: str) -> None:
    """A line ``nbops run`` shows among its progress lines (see pipeline/progress.py)."""
    print(f"{NOTE_MARK} {text}", file=sys.stderr, flush=True)
