"""A jupyter_client kernel manager whose kernel is forked by the zygote instead of started.

Everything else is jupyter_client's own: the manager writes the connection file and builds the
command line from the kernel spec exactly as for a new process; only the launch differs (the
provisioner's ``launch_kernel``), and the "process" it keeps is the forked child. papermill and
nbclient drive it like any kernel (``km=`` of ``papermill.execute_notebook``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Mapping
from queue import Empty
from typing import Any

import zmq
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager
from jupyter_client.provisioning.local_provisioner import LocalProvisioner
from jupyter_core.utils import ensure_async, run_sync
from traitlets import DottedObjectName

from nbops.executor.forks import Child, Zygote

KERNEL_MODULES = ("ipykernel.kernelapp", "ipykernel.ipkernel", "IPython", "zmq")
READY_TIMEOUT = 120.0


class ForkedProcess:
    """What LocalProvisioner expects of a ``Popen``, for a child of the zygote."""

    stdin = stdout = stderr = None

    def __init__(self, child: Child) -> None:
        self.child = child
        self.pid = child.pid

    @property
    def returncode(self) -> int | None:
        return self.child.code

    def poll(self) -> int | None:
        return self.child.code

    def wait(self, timeout: float | None = None) -> int | None:
        return self.child.wait(timeout)

    def send_signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def kill(self) -> None:
        self.child.kill(signal.SIGKILL)

    def terminate(self) -> None:
        self.child.kill(signal.SIGTERM)


class ForkProvisioner(LocalProvisioner):  # type: ignore[misc]
    """Launches the kernel command line as a fork of the zygote (``-m ipykernel_launcher``
    and what follows become the child's argv)."""

    zygote: Zygote | None = None
    stdio: list[int] = []  # noqa: RUF012  (set per instance by the manager)
    needs: tuple[str, ...] = KERNEL_MODULES
    eager = True  # False: a kernel for later, whose modules need not be imported first

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
        assert self.zygote is not None
        argv = cmd[cmd.index("ipykernel_launcher") + 1 :]
        env = kwargs.get("env") or os.environ
        cwd = str(kwargs.get("cwd") or os.getcwd())
        child = self.zygote.fork("kernel", argv, env, cwd, self.stdio, self.needs, eager=self.eager)
        self.process = ForkedProcess(child)  # type: ignore[assignment]  # Popen's interface
        self.pid = child.pid
        self.pgid = child.pid  # the child called setsid()
        self.cwd = cwd
        return self.connection_info


class ReadyClient(BlockingKernelClient):  # type: ignore[misc]
    """A client whose ``wait_for_ready`` ends when the kernel has answered, instead of after
    0.2 s of IOPub silence (jupyter_client's flush): it reads IOPub up to the kernel's
    ``idle`` for its own ``kernel_info`` request. A forked kernel is ready in milliseconds,
    and those 0.2 s were most of a step's overhead."""

    async def _async_wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (READY_TIMEOUT if timeout is None else timeout)
        while True:
            request = self.kernel_info()
            try:
                reply = await ensure_async(self.shell_channel.get_msg(timeout=1))
            except Empty:
                reply = None
            answered = reply is not None and reply["msg_type"] == "kernel_info_reply"
            if answered and await self._idle_after(request, deadline):
                self._handle_kernel_info_reply(reply)
                return
            if not await ensure_async(self.is_alive()):
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError("Kernel didn't respond in time")

    async def _idle_after(self, request: str, deadline: float) -> bool:
        """IOPub is connected and quiet: the kernel's ``idle`` for ``request`` arrived."""
        while time.monotonic() < deadline:
            try:
                msg = await ensure_async(self.iopub_channel.get_msg(timeout=0.2))
            except Empty:
                return False  # IOPub not connected yet (ZeroMQ's slow joiner): ask again
            content, parent = msg.get("content", {}), msg.get("parent_header", {})
            if content.get("execution_state") == "idle" and parent.get("msg_id") == request:
                return True
        return False

    wait_for_ready = run_sync(_async_wait_for_ready)


class ForkedKernelManager(KernelManager):  # type: ignore[misc]
    """A KernelManager for one step: its kernel is a fork of ``zygote`` in ``cwd`` with the
    step's environment ``env`` and the thin client's stdout/stderr ``stdio``."""

    def __init__(
        self,
        zygote: Zygote,
        env: Mapping[str, str],
        cwd: str,
        stdio: list[int],
        needs: tuple[str, ...] = KERNEL_MODULES,
        eager: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._clients: list[Any] = []
        self.set_fork_env(env, cwd)
        provisioner = ForkProvisioner(
            kernel_id=self.kernel_id or "", kernel_spec=self.kernel_spec, parent=self
        )
        provisioner.zygote = zygote
        provisioner.stdio = stdio
        provisioner.needs = needs
        provisioner.eager = eager
        self.provisioner = provisioner

    client_class = DottedObjectName("nbops.executor.kernels.ReadyClient")

    def _context_default(self) -> zmq.Context:
        """One ZeroMQ context for every kernel of the run (each new context is an I/O thread
        and a few descriptors; a context per step ran ``nbops run`` out of them)."""
        self._created_context = False
        return zmq.Context.instance()

    def client(self, **kwargs: Any) -> Any:
        """A client, remembered: nbclient does not stop the channels of a kernel it does
        not own, and a client collected with running channels logs a warning."""
        kwargs.setdefault("context", self.context)
        client = super().client(**kwargs)
        self._clients.append(client)
        return client

    def stop_clients(self) -> None:
        for client in self._clients:
            with contextlib.suppress(Exception):
                client.stop_channels()
        self._clients.clear()

    def set_fork_env(self, env: Mapping[str, str], cwd: str) -> None:
        """The kernel's environment and working folder (the step's, as the cold path's)."""
        self._fork_env = dict(env)
        self._fork_cwd = cwd

    async def _async_pre_start_kernel(self, **kw: Any) -> Any:
        kw["env"] = {**self._fork_env, **(kw.get("env") or {})}
        kw["cwd"] = self._fork_cwd
        return await super()._async_pre_start_kernel(**kw)


def can_fork(kernel_name: str) -> bool:
    """The step's kernel is this Python's ipykernel (what the zygote can become)."""
    import sys

    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(kernel_name)
    except (NoSuchKernel, Exception):
        return False
    argv = list(spec.argv)
    if "ipykernel_launcher" not in argv or spec.language.lower() != "python":
        return False
    python = argv[0]
    return python in ("python", "python3", "{python}") or os.path.realpath(
        python
    ) == os.path.realpath(sys.executable)
