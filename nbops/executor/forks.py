"""The executor's handle on the zygote: start it, tell it what to import, ask it for children.

One reader thread takes the zygote's messages (a fork done, a child exited, a module imported)
and wakes whoever waits for them; any thread may ask for a fork.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nbops.executor.wire import Channel


class ZygoteGone(RuntimeError):
    """The zygote died or refused: the stage runs on the cold path instead."""


@dataclass
class Child:
    """A process the zygote forked; ``code`` is set when it exits."""

    pid: int
    done: threading.Event = field(default_factory=threading.Event)
    code: int | None = None

    def kill(self, signum: int = signal.SIGKILL) -> None:
        with contextlib.suppress(OSError):
            os.killpg(self.pid, signum)

    def wait(self, timeout: float | None = None) -> int | None:
        self.done.wait(timeout)
        return self.code


class Zygote:
    """A running zygote process (``nbops.executor.zygote``)."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.channel = Channel(mine)
        self.process = subprocess.Popen(  # from the caller's (main) thread: see _die_with_parent
            [sys.executable, "-m", "nbops.executor.zygote", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            env=dict(env or os.environ),
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the terminal is for `nbops run`, not for it
        )
        theirs.close()
        self._lock = threading.Lock()
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._forked: dict[int, Any] = {}
        self._children: dict[int, Child] = {}
        self.imported: dict[str, str | None] = {}
        self.alive = True
        threading.Thread(target=self._read, name="nbops-zygote", daemon=True).start()

    def preload(self, modules: Iterable[str]) -> None:
        self._send({"op": "preload", "modules": list(modules)})

    def settle(self) -> None:
        """Drop the preloads no waiting fork needs (no stage will start any more)."""
        self._send({"op": "settle"})

    def fork(
        self,
        kind: str,
        argv: list[str],
        env: Mapping[str, str],
        cwd: str,
        fds: list[int],
        needs: Iterable[str] = (),
        timeout: float = 120.0,
        eager: bool = True,
        target: str = "",
    ) -> Child:
        """A forked child running ``kind`` ("kernel", "command", or "call": ``target`` is a
        ``module:function`` taking the argv) with this environment,
        working folder and stdout/stderr; raises ZygoteGone if it cannot. ``eager``: import
        its modules before any other (a stage waits for it); else in the zygote's order."""
        request = next(self._ids)
        message = {
            "op": "fork",
            "id": request,
            "kind": kind,
            "argv": argv,
            "env": dict(env),
            "cwd": cwd,
            "needs": list(needs),
            "eager": eager,
            "target": target,
        }
        self._send(message, fds)
        with self._cond:
            if not self._cond.wait_for(lambda: request in self._forked or not self.alive, timeout):
                raise ZygoteGone(f"the zygote did not fork within {timeout:.0f} s")
            if request not in self._forked:
                raise ZygoteGone("the zygote is gone")
            answer = self._forked.pop(request)
        if isinstance(answer, str):
            raise ZygoteGone(answer)
        return self._children[answer]

    def close(self) -> None:
        """Stop the zygote and every child it still has."""
        self.alive = False
        for child in list(self._children.values()):
            if child.code is None:
                child.kill()
        with contextlib.suppress(OSError):  # it may be busy importing: no need to ask
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.channel.close()

    def _send(self, message: dict[str, Any], fds: list[int] | None = None) -> None:
        if not self.alive:
            raise ZygoteGone("the zygote is gone")
        try:
            with self._lock:
                self.channel.send(message, fds)
        except OSError as exc:
            raise ZygoteGone(f"the zygote is gone ({exc})") from None

    def _read(self) -> None:
        try:
            while True:
                message, fds = self.channel.receive()
                for fd in fds:
                    os.close(fd)
                if message is None:
                    break
                self._handle(message)
        except OSError:
            pass
        with self._cond:
            self.alive = False
            for child in self._children.values():
                child.done.set()
            self._cond.notify_all()

    def _handle(self, message: dict[str, Any]) -> None:
        op = message["op"]
        with self._cond:
            if op == "forked":
                child = Child(message["pid"])
                self._children[child.pid] = child
                self._forked[message["id"]] = child.pid
            elif op == "refused":
                self._forked[message["id"]] = message["why"]
            elif op == "exited" and message["pid"] in self._children:
                child = self._children[message["pid"]]
                child.code = message["code"]
                child.done.set()
            elif op == "imported":
                self.imported[message["module"]] = message.get("error")
            self._cond.notify_all()
