"""The executor inside ``nbops run``: a Unix socket the stages' thin clients hand their work to.

Each connection is one stage that DVC started (``nbops step NB`` or ``nbops validate ...``): the
client sends its argv, environment and working folder with its stdout and stderr (``SCM_RIGHTS``),
the executor runs the stage (a step: papermill here, on a kernel forked by the zygote; a gate:
``nbops validate`` forked by the zygote) writing to those descriptors, and answers the exit
code. What it cannot run warm it answers ``cold``: the client then runs the stage itself. A
client that goes away (Ctrl-C) takes its stage with it: the kernel or child is killed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from nbops import _cpus
from nbops.executor import preload
from nbops.executor.forks import Child, Zygote, ZygoteGone
from nbops.executor.pool import KernelPool, stop
from nbops.executor.wire import Channel

ENV = "NBOPS_EXECUTOR"
OWNER_ENV = "NBOPS_RUN_PID"
Reply = dict[str, Any]


class Executor:
    """The warm executor of one ``nbops run`` over the pipeline in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.tmp = Path(tempfile.mkdtemp(prefix="nbops-exec-"))
        self.address = str(self.tmp / "sock")
        self.zygote: Zygote | None = None
        self.pool: KernelPool | None = None
        self._listener: socket.socket | None = None
        self._closed = threading.Event()
        self.served: list[tuple[list[str], str]] = []  # (argv, "warm" | "cold: why")
        # Work ahead of the stages (imports, ready kernels) only pays with a core to spare: on
        # one CPU (Binder, `taskset`, a small container) it competes with DVC and the stage
        # that runs, and is wasted when DVC restores the stages it was for.
        self.ahead = _cpus.usable() > 1

    def start(self, env: Mapping[str, str]) -> dict[str, str]:
        """Start the zygote (from this, the main, thread) and listen; returns the variables
        that point the stages' thin clients here."""
        # the run's pid in the zygote's (and so its forks') initial environment: who owns them
        self.zygote = Zygote({**env, OWNER_ENV: str(os.getpid())})
        logs = self.tmp / "kernels"
        logs.mkdir()
        self.pool = KernelPool(self.zygote, self.folder, logs, preload.kernel_needs(self.folder))
        if self.ahead:
            self.zygote.preload(preload.modules(self.folder))
            self.pool.prime(env)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.address)
        listener.listen(8)
        self._listener = listener
        threading.Thread(target=self._accept, name="nbops-executor", daemon=True).start()
        if self.ahead:
            threading.Thread(target=preload.driver, name="nbops-papermill", daemon=True).start()
        return {ENV: self.address}

    def settle(self) -> None:
        """No stage will start any more (one failed, or DVC ended): stop working ahead, so the
        zygote imports next what the parent's last deliveries wait for."""
        if self.pool is not None:
            self.pool.close()
        if self.zygote is not None:
            with contextlib.suppress(ZygoteGone):
                self.zygote.settle()

    def close(self) -> None:
        """Stop listening, stop the zygote and every child, remove the socket's folder."""
        self._closed.set()
        if self.pool is not None:
            self.pool.close()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
        if self.zygote is not None:
            self.zygote.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        channel = Channel(conn)
        fds: list[int] = []
        try:
            request, fds = channel.receive()
            if request is None or len(fds) < 2:
                return
            reply = self._run(request, fds, channel)
            channel.send(reply)
        except (OSError, ValueError):
            pass  # the client went away: its stage was stopped with it
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
            channel.close()

    def _run(self, request: dict[str, Any], fds: list[int], channel: Channel) -> Reply:
        argv = [str(a) for a in request.get("argv", [])]
        handler = _HANDLERS.get(tuple(argv[:1])) or _HANDLERS.get(tuple(argv[:2]))
        if handler is None or self.zygote is None or not self.zygote.alive:
            return self._cold(argv, "not a stage the executor runs")
        env = dict(request.get("env") or {})
        env.pop(ENV, None)  # the stage itself runs here: it must not come back to us
        cwd = str(request.get("cwd") or self.folder)
        try:
            code = handler(self, argv, env, cwd, fds, channel)
        except ZygoteGone as exc:
            return self._cold(argv, str(exc))
        if code is None:
            return self._cold(argv, "its kernel is not this Python's ipykernel")
        self.served.append((argv, "warm"))
        return {"exit": code}

    def _cold(self, argv: list[str], why: str) -> Reply:
        self.served.append((argv, f"cold: {why}"))
        return {"cold": why}

    def run_command(
        self, argv: list[str], env: dict[str, str], cwd: str, fds: list[int], channel: Channel
    ) -> int:
        """An ``nbops`` command (a gate) in a child forked from the zygote."""
        assert self.zygote is not None
        child = self.zygote.fork("command", argv, env, cwd, fds[:2], preload.needs(argv))
        with _stopped_with_client(channel, child.kill):
            code = child.wait()
        return 1 if code is None else code

    def run_step(
        self, argv: list[str], env: dict[str, str], cwd: str, fds: list[int], channel: Channel
    ) -> int | None:
        """A step notebook through papermill, on a kernel forked from the zygote (the one the
        pool has ready, else a new fork)."""
        from nbops.pipeline.step import step_command

        kernels: list[tuple[Any, Path | None, int]] = []

        def kernel_manager(kernel_name: str, kernel_env: Mapping[str, str], folder: str) -> Any:
            from nbops.executor.kernels import ForkedKernelManager, can_fork

            if not can_fork(kernel_name):
                return None
            assert self.zygote is not None and self.pool is not None
            taken: tuple[Any, Path | None, int] | None = self.pool.take(
                kernel_name, kernel_env, folder
            )
            if taken is None:
                km = ForkedKernelManager(
                    self.zygote, kernel_env, folder, fds[:2], self.pool.needs,
                    kernel_name=kernel_name,
                )  # fmt: skip
                taken = (km, None, 0)
            kernels.append(taken)
            if self.ahead:  # the next step's kernel, while this one runs
                self.pool.prime(env, kernel_name)
            return taken[0]

        out = os.fdopen(os.dup(fds[0]), "w", buffering=1)
        err = os.fdopen(os.dup(fds[1]), "w", buffering=1)
        with out, err:
            try:
                with _stopped_with_client(channel, lambda: _kill(kernels)):
                    return step_command(Path(cwd) / argv[1], out, err, kernel_manager, env)
            finally:
                _kill(kernels)
                for _, log, offset in kernels:
                    _copy_tail(log, offset, err)


def _copy_tail(log: Path | None, offset: int, err: Any) -> None:
    """What a ready kernel wrote to its own stderr while the step ran, for the step's stderr."""
    if log is None:
        return
    with contextlib.suppress(OSError), log.open("rb") as handle:
        handle.seek(offset)
        text = handle.read().decode(errors="replace")
        if text:
            err.write(text)
            err.flush()


def _kill(kernels: list[tuple[Any, Path | None, int]]) -> None:
    for km, _, _ in kernels:
        stop(km)


@contextlib.contextmanager
def _stopped_with_client(channel: Channel, stop: Callable[[], None]) -> Any:
    """Run the block; if the client hangs up meanwhile (Ctrl-C, killed), call ``stop``."""
    done = threading.Event()

    def watch() -> None:
        try:
            data = channel.sock.recv(1)
        except OSError:
            data = b""
        if not data and not done.is_set():
            stop()

    threading.Thread(target=watch, name="nbops-client-watch", daemon=True).start()
    try:
        yield
    finally:
        done.set()


_HANDLERS: dict[tuple[str, ...], Callable[..., int | None]] = {
    ("step",): Executor.run_step,
    ("validate", "data"): Executor.run_command,
    ("validate", "model"): Executor.run_command,
}


__all__ = ["ENV", "Child", "Executor"]
