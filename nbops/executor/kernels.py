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
from collections.abc import Mapping
from typing import Any

from jupyter_client.manager import KernelManager
from jupyter_client.provisioning.local_provisioner import LocalProvisioner

from nbops.executor.forks import Child, Zygote

KERNEL_MODULES = ("ipykernel.kernelapp", "ipykernel.ipkernel", "IPython", "zmq")


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

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
        assert self.zygote is not None
        argv = cmd[cmd.index("ipykernel_launcher") + 1 :]
        env = kwargs.get("env") or os.environ
        cwd = str(kwargs.get("cwd") or os.getcwd())
        child = self.zygote.fork("kernel", argv, env, cwd, self.stdio, self.needs)
        self.process = ForkedProcess(child)
        self.pid = child.pid
        self.pgid = child.pid  # the child called setsid()
        self.cwd = cwd
        return self.connection_info


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
        self.provisioner = provisioner

    def client(self, **kwargs: Any) -> Any:
        """A client, remembered: nbclient does not stop the channels of a kernel it does
        not own, and a client collected with running channels logs a warning."""
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
