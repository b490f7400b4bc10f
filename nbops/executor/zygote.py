"""The zygote: a process that imports a pipeline's heavy modules once, then forks a fresh child
for each stage (a Jupyter kernel for a step, an ``nbops`` command for a gate).

It never runs user code and never starts a thread, so a fork of it is what a new interpreter
would be after those imports: the child then becomes the kernel (``IPKernelApp``, with the
connection file the executor's kernel manager wrote), runs ``nbops.cli.main`` (a gate), or calls
a function of nbops (``kind: call``: the parent's deliveries to MLflow). Started by the
executor as ``python -m nbops.executor.zygote FD``: FD is its end of a socket pair.

Between imports it answers requests, so a stage never waits for modules it does not need: a
fork request moves the modules it needs to the front of the queue. It reaps its children and
reports their exit codes. It exits when the executor closes the socket (and, on Linux, when the
process that started it dies: ``PR_SET_PDEATHSIG``), killing the children it still has.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import os
import select
import signal
import socket
import sys
import threading
import traceback
from collections import deque
from typing import Any

from nbops.executor.wire import Channel

# The `nbops` console script ([project.scripts]): a gate's child runs it by name, as the script
# does, so the zygote (which imports only what stages need) never imports the CLI up front.
CONSOLE_SCRIPT = "nbops.cli:main"

_PR_SET_PDEATHSIG = 1


class Zygote:
    """The fork server's state: what is imported, what waits, which children live."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.queue: deque[str] = deque()
        self.imported: set[str] = set()
        self.failed: dict[str, str] = {}
        self.waiting: list[tuple[dict[str, Any], list[int]]] = []
        self.children: set[int] = set()
        self.unsafe = ""  # why forking is no longer safe (a module started a thread)
        self.exits: int | None = None  # readable when a child exited (see _child_exits)

    def serve(self) -> None:
        self.exits = _child_exits()
        while True:
            self._reap()
            if not self._read(block=not self.queue and not self.waiting):
                return
            self._fork_ready()
            if self.queue:
                self._import(self.queue.popleft())

    def _read(self, block: bool) -> bool:
        """Handle the messages that arrived; False when the executor is gone. Blocks until a
        message comes or a child exits (SIGCHLD wakes it: a stage's end is reported at once)."""
        timeout = 0.2 if block else 0
        watched = [self.channel.sock, *([self.exits] if self.exits is not None else [])]
        while self.channel.pending() or self.channel.sock in _ready(watched, timeout):
            timeout = 0
            message, fds = self.channel.receive()
            if message is None or message.get("op") == "exit":
                return False
            if message["op"] == "preload":
                self.queue.extend(m for m in message["modules"] if m not in self.imported)
            elif message["op"] == "settle":  # no more stages will start: import what waits
                self.queue = deque(self._needed())
            elif message["op"] == "fork":
                self.waiting.append((message, fds))
                needed = [m for m in message.get("needs", []) if m not in self.imported]
                if message.get("eager", True):  # a stage waits: its modules come first
                    self.queue.extendleft(reversed(needed))
                else:
                    self.queue.extend(m for m in needed if m not in self.queue)
        return True

    def _needed(self) -> list[str]:
        """What the waiting forks still need, in their order."""
        needs = (m for message, _ in self.waiting for m in message.get("needs", []))
        return list(dict.fromkeys(m for m in needs if m not in self.imported))

    def _fork_ready(self) -> None:
        for message, fds in list(self.waiting):
            needs = [m for m in message.get("needs", []) if m not in self.imported]
            if any(m not in self.failed for m in needs):
                continue  # still to import
            self.waiting.remove((message, fds))
            if self.unsafe:
                self.channel.send({"op": "refused", "id": message["id"], "why": self.unsafe})
            else:
                self._fork(message, fds)
            for fd in fds:
                os.close(fd)

    def _import(self, name: str) -> None:
        """Import ``module``, or import ``module:function`` and call it (a cache a library
        fills on first use, e.g. MLflow's map of installed packages)."""
        if name in self.imported or name in self.failed:
            return
        module, _, function = name.partition(":")
        try:
            loaded = importlib.import_module(module)
            if function:
                getattr(loaded, function)()
        except BaseException as exc:  # a module that does not import is the stage's problem
            self.failed[name] = f"{type(exc).__name__}: {exc}"
        else:
            self.imported.add(name)
        if threading.active_count() > 1 and not self.unsafe:
            self.unsafe = f"importing {name} started a thread: a fork could deadlock"
        self.channel.send({"op": "imported", "module": name, "error": self.failed.get(name)})

    def _fork(self, message: dict[str, Any], fds: list[int]) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            _become(message, fds, self.channel)
        self.children.add(pid)
        self.channel.send({"op": "forked", "id": message["id"], "pid": pid})

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if pid == 0:
                return
            self.children.discard(pid)
            code = os.waitstatus_to_exitcode(status)
            self.channel.send({"op": "exited", "pid": pid, "code": code})

    def kill_children(self) -> None:
        for pid in self.children:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)


def _child_exits() -> int | None:
    """A pipe that SIGCHLD writes to (``signal.set_wakeup_fd``): select() on it wakes the zygote
    when a child exits, instead of at its next 0.2 s poll. None where that cannot be set up."""
    try:
        read, write = os.pipe()
        os.set_blocking(read, False)
        os.set_blocking(write, False)
        signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a Python handler: the fd is written
    except (OSError, ValueError):
        return None
    return read


def _ready(fds: list[Any], timeout: float) -> list[Any]:
    """The readable ones among ``fds``; drains the SIGCHLD pipe (its bytes mean "reap")."""
    ready = select.select(fds, [], [], timeout)[0]
    for fd in ready:
        if isinstance(fd, int):
            with contextlib.suppress(OSError):
                os.read(fd, 512)
    return ready


def _become(message: dict[str, Any], fds: list[int], channel: Channel) -> None:
    """In the forked child: take the stage's environment, folder and stdio, then run."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)  # the zygote's SIGCHLD pipe is closed below
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        channel.sock.close()
        os.setsid()  # its own process group, as jupyter_client starts kernels
        _die_with_parent()
        signal.signal(signal.SIGINT, signal.default_int_handler)  # the zygote ignores it
        for number, fd in zip((1, 2), fds[:2], strict=False):
            os.dup2(fd, number)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        # Nothing else the zygote holds may outlive the fork: another stage's stdout (a DVC
        # pipe that would then never close), the zygote's socket, a log file.
        os.closerange(3, _max_fd())
        os.environ.clear()
        os.environ.update(message["env"])
        os.chdir(message["cwd"])
        _reseed()
        code = _run(message)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _run(message: dict[str, Any]) -> int:
    argv = list(message["argv"])
    if message["kind"] == "kernel":  # as `python -m ipykernel_launcher -f FILE`
        sys.path[0] = message["cwd"]
        # ipykernel read JPY_PARENT_PID when the zygote imported it: say who the parent is
        argv.append(f"--IPKernelApp.parent_handle={os.getppid()}")
        sys.argv = ["ipykernel_launcher", *argv]
        from ipykernel.kernelapp import IPKernelApp

        IPKernelApp.launch_instance(argv=argv)
        return 0
    if message["kind"] == "call":  # a function of nbops' own, e.g. delivering the spool
        target = str(message["target"])
    else:  # a command: what the `nbops` console script runs, named as pyproject names it
        sys.argv, target = ["nbops", *argv], CONSOLE_SCRIPT
    module, _, function = target.partition(":")
    return int(getattr(importlib.import_module(module), function)(argv) or 0)


def _max_fd() -> int:
    try:
        return int(os.sysconf("SC_OPEN_MAX"))
    except (ValueError, OSError):
        return 65536


def _reseed() -> None:
    """Each child gets its own random state, as a new interpreter would (``random`` reseeds
    itself at fork; numpy's legacy global state does not)."""
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()


def _die_with_parent() -> None:
    """Linux: SIGKILL when the parent dies, so no child outlives the run that started it."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for `nbops run`; it closes us
    sock = socket.socket(fileno=int(args[0]))
    zygote = Zygote(Channel(sock))
    try:
        zygote.serve()
    finally:
        zygote.kill_children()
    return 0


if __name__ == "__main__":
    sys.exit(main())
