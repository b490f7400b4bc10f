"""Kernels forked and ready ahead of the steps that will use them.

Starting a kernel (fork, ``IPKernelApp`` set-up, the first ``kernel_info`` round trip) costs a
few tenths of a second; DVC's own work between two stages costs about as much. So while one
step runs, the next kernel is forked and brought up. When the step's request comes, the ready
kernel gets the step's environment and working folder (a silent ``exec`` in a namespace of
its own: nothing reaches the user's namespace or history) and papermill drives it. A kernel
that has run a step is never reused: each step still gets a kernel that ran nothing.

The kernel's own stdout/stderr (not its cells' output, which papermill records) go to a file;
what it wrote while a step ran is copied to that step's stderr, as a new kernel's would be.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nbops.executor.forks import Zygote
from nbops.executor.kernels import KERNEL_MODULES, ForkedKernelManager

HISTORY = "--HistoryManager.hist_file=:memory:"  # what nbclient passes to every kernel
READY_TIMEOUT = 120.0


class Ready:
    """A started kernel waiting for a step: its manager and where its stdio goes."""

    def __init__(self, km: ForkedKernelManager, kernel_name: str, log: Path) -> None:
        self.km = km
        self.kernel_name = kernel_name
        self.log = log

    def alive(self) -> bool:
        process = getattr(self.km.provisioner, "process", None)
        return process is not None and process.poll() is None


class KernelPool:
    """Up to :attr:`size` ready kernels, each started in the background by :meth:`prime`."""

    size = 2  # one for the next step, one more for when steps are shorter than a start-up

    def __init__(
        self, zygote: Zygote, folder: Path, logs: Path, needs: tuple[str, ...] = KERNEL_MODULES
    ) -> None:
        self.zygote = zygote
        self.needs = needs
        self.folder = folder
        self.logs = logs
        self._cond = threading.Condition()
        self._starting = 0
        self._ready: list[Ready] = []
        self._count = 0
        self._closed = False

    def prime(self, env: Mapping[str, str], kernel_name: str = "python3") -> None:
        """Start kernels in the background until :attr:`size` are ready or starting."""
        with self._cond:
            while not self._closed and self._starting + len(self._ready) < self.size:
                self._starting += 1
                self._count += 1
                log = self.logs / f"kernel-{self._count}.log"
                threading.Thread(
                    target=self._start, args=(dict(env), kernel_name, log), daemon=True
                ).start()

    def take(
        self, kernel_name: str, env: Mapping[str, str], cwd: str
    ) -> tuple[ForkedKernelManager, Path, int] | None:
        """A ready kernel, set up for this step: (manager, its log, the log's length now);
        None when there is none for this kernel (the caller forks one)."""
        with self._cond:
            self._cond.wait_for(lambda: self._ready or not self._starting, READY_TIMEOUT)
            ready = self._ready.pop(0) if self._ready else None
        if ready is None or ready.kernel_name != kernel_name or not ready.alive():
            if ready is not None:
                stop(ready.km)
            return None
        try:
            _apply(ready.km, env, cwd)
        except Exception:  # a kernel that does not answer: the caller forks a new one
            stop(ready.km)
            return None
        ready.km.set_fork_env(env, cwd)
        return ready.km, ready.log, ready.log.stat().st_size

    def close(self) -> None:
        """Stop the ready kernels (one still starting dies with the zygote)."""
        with self._cond:
            self._closed = True
            ready, self._ready = self._ready, []
        for kernel in ready:
            stop(kernel.km)

    def _start(self, env: dict[str, str], kernel_name: str, log: Path) -> None:
        ready = None
        try:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                km = ForkedKernelManager(
                    self.zygote, env, str(self.folder), [fd, fd], self.needs,
                    kernel_name=kernel_name, eager=False,
                )  # fmt: skip
                km.start_kernel(extra_arguments=[HISTORY])
            finally:
                os.close(fd)
            client = km.client()
            client.start_channels()
            try:
                client.wait_for_ready(timeout=READY_TIMEOUT)
            finally:
                client.stop_channels()
            ready = Ready(km, kernel_name, log)
        except Exception:  # no ready kernel: the step forks its own
            ready = None
        with self._cond:
            self._starting -= 1
            if ready is not None and self._closed:
                stop(ready.km)
            elif ready is not None:
                self._ready.append(ready)
            self._cond.notify_all()


def _apply(km: ForkedKernelManager, env: Mapping[str, str], cwd: str) -> None:
    """Give the kernel the step's environment and folder, outside the user's namespace."""
    setup = (
        "import json, os, sys\n"
        "os.environ.clear()\n"
        "os.environ.update(json.loads(ENV))\n"
        "os.chdir(CWD)\n"
        "sys.path[0] = CWD\n"
    )
    code = f"exec({setup!r}, {{'ENV': {json.dumps(dict(env))!r}, 'CWD': {cwd!r}}})"
    client = km.client()
    client.start_channels()
    try:
        reply = client.execute_interactive(
            code, silent=True, store_history=False, timeout=30, output_hook=lambda msg: None
        )
    finally:
        client.stop_channels()
    if reply["content"].get("status") != "ok":
        raise RuntimeError(f"the ready kernel refused its set-up: {reply['content']}")


def stop(km: Any) -> None:
    """Kill a forked kernel at once (its runs are spooled when its cells end) and clean up
    its connection file in the background."""
    process = getattr(getattr(km, "provisioner", None), "process", None)
    if process is not None:
        with contextlib.suppress(OSError):
            process.kill()
    stop_clients = getattr(km, "stop_clients", None)
    if stop_clients is not None:
        stop_clients()

    def cleanup() -> None:
        with contextlib.suppress(Exception):
            km.cleanup_resources()

    threading.Thread(target=cleanup, daemon=True).start()
