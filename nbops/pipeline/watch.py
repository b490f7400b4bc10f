"""A watcher that closes the parent run of an ``nbops run`` killed while DVC goes on.

``nbops run`` starts it (``python -m nbops.pipeline.watch``, in a session of its own) with the
parent run's record on its stdin, and keeps the pipe open. A normal end writes ``done`` and
closes it: the watcher exits. A pipe closed without ``done`` means ``nbops run`` was killed
(SIGKILL, the OOM killer): the watcher waits until DVC (whose pid it was given) has ended, then
delivers what the stages spooled and finishes the parent run as KILLED, saying why and when
DVC's work ended, instead of leaving it RUNNING until some later run notices.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import IO

DONE = b"done\n"
POLL = 0.5


class Watcher:
    """The ``nbops run`` side: start the watcher, then tell it the run ended normally."""

    def __init__(self, record_json: str, dvc_pid: int, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "nbops.pipeline.watch", str(dvc_pid), str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **env},
            start_new_session=True,  # Ctrl-C is for `nbops run`; the watcher must outlive it
        )
        assert self.process.stdin is not None
        one_line = record_json.replace("\n", " ")  # JSON escapes newlines inside strings
        self.process.stdin.write(one_line.encode() + b"\n")
        self.process.stdin.flush()

    def done(self) -> None:
        stdin = self.process.stdin
        if stdin is None:
            return
        try:
            stdin.write(DONE)
            stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    dvc_pid, run_pid = int(args[0]), int(args[1])
    stream: IO[bytes] = sys.stdin.buffer
    record_json = stream.readline()
    rest = stream.read()  # blocks until `nbops run` closes the pipe (or dies)
    if rest.startswith(DONE):
        return 0
    started = time.time()
    while _alive(dvc_pid):
        time.sleep(POLL)
    _close_parent(json.loads(record_json), run_pid, started)
    return 0


def _close_parent(raw: dict[str, object], run_pid: int, killed_at: float) -> None:
    from nbops.config import load_config
    from nbops.record import RunRecord
    from nbops.session import Session, complete_context
    from nbops.store.sync import sync

    session = Session(load_config())
    sync(session.config, complete=complete_context)  # the stages' runs first
    record = RunRecord.from_dict(raw)
    when = time.strftime("%H:%M:%S", time.localtime(killed_at))
    record.status = "KILLED"
    record.end = time.time()
    record.error = (
        f"KILLED: its `nbops run` (pid {run_pid}) was killed at {when}; DVC went on until "
        f"{time.strftime('%H:%M:%S')}, and its finished stages' runs are recorded"
    )
    from nbops.pipeline.stage_run import write_now

    write_now(session, record)


def _alive(pid: int) -> bool:
    from nbops._pids import alive

    if not alive(pid):
        return False
    try:  # a zombie (its parent, `nbops run`, is gone and init has not reaped it yet)
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


if __name__ == "__main__":
    sys.exit(main())
