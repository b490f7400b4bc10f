"""One MLflow scoring server for one model version: ``mlflow models serve -m models:/NAME/V
--env-manager local`` on a free local port, in its own process group.

This is MLflow's own server (FastAPI under uvicorn: ``/invocations``, ``/ping``, ``/version``),
started from the same model URI a team's Docker image (``mlflow models build-docker``),
Kubernetes or cloud deployment would use; nbops only starts it, checks it, counts the requests
in flight through it, and stops it when no request needs it any more.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from nbops.errors import ServingError
from nbops.serve import wire

STARTUP_TIMEOUT = 180.0  # s: import mlflow, download the model, start uvicorn; slow when loaded
REQUEST_TIMEOUT = 60  # s: MLflow's own default for one request


class Backend:
    """A running ``mlflow models serve`` process and the requests in flight through it."""

    def __init__(self, model: str, version: int, tracking_uri: str, log_file: Path) -> None:
        self.model, self.version = model, version
        self.uri = f"models:/{model}/{version}"
        self.tracking_uri = tracking_uri
        self.log_file = log_file
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.inflight = 0
        self.retired = False
        self.idle = threading.Condition()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Start the server and wait until ``/ping`` answers; a ServingError with the end of
        its log if it exits or stays unhealthy."""
        self.port = wire.free_port()
        command = [*_mlflow(), "models", "serve", "-m", self.uri, "--env-manager", "local"]
        command += ["-h", "127.0.0.1", "-p", str(self.port), "-w", "1"]
        command += ["-t", str(REQUEST_TIMEOUT)]
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                env=_env(self.tracking_uri),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its uvicorn child goes with it when the group stops
            )
        self.started = time.time()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise self._failure(f"exited with code {self.process.returncode}")
            if wire.healthy(self.url):
                return
            time.sleep(0.25)
        self.stop()
        raise self._failure(f"did not answer /ping within {timeout:.0f} s")

    def _failure(self, what: str) -> ServingError:
        return ServingError(
            f"mlflow models serve for {self.uri} {what}; the end of its log "
            f"({self.log_file}):\n{_tail(self.log_file)}",
            fix="check that the model loads (`mlflow models predict -m URI --env-manager local "
            "-i INPUT`) and that its requirements are installed in this environment",
            model=self.model,
            version=self.version,
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # ---- requests in flight: a retired backend stops only when none needs it -------------

    def enter(self) -> None:
        with self.idle:
            self.inflight += 1

    def leave(self) -> None:
        with self.idle:
            self.inflight -= 1
            if self.inflight == 0:
                self.idle.notify_all()

    def drain_and_stop(self, timeout: float = 2.0 * REQUEST_TIMEOUT) -> None:
        """After a switch: wait for the requests already sent here, then stop."""
        with self.idle:
            self.retired = True
            self.idle.wait_for(lambda: self.inflight == 0, timeout=timeout)
        self.stop()

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to uvicorn, whose exit ends the ``mlflow models serve`` process that waits
        for it (so each is reaped by its parent: no zombie is left to an init that does not
        reap); SIGKILL to the whole group after ``grace``."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        for pid in _children(process.pid) or [process.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10.0)


def _mlflow() -> list[str]:
    """The ``mlflow`` command of this environment (next to its Python), else on the PATH."""
    local = Path(sys.executable).with_name("mlflow")
    if local.is_file():
        return [str(local)]
    found = shutil.which("mlflow")
    if found:
        return [found]
    raise ServingError(
        "the mlflow command is not installed in this environment",
        fix="pip install mlflow (nbops depends on it: reinstall nbops)",
    )


def _env(tracking_uri: str) -> dict[str, str]:
    """The server's environment: this store (for ``models:/``), and this environment's
    ``bin`` first on the PATH: ``mlflow models serve`` starts ``uvicorn`` by name."""
    env = dict(os.environ)
    env["MLFLOW_TRACKING_URI"] = env["MLFLOW_REGISTRY_URI"] = tracking_uri
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    return env


def _children(pid: int) -> list[int]:
    import psutil

    try:
        return [child.pid for child in psutil.Process(pid).children()]
    except psutil.Error:
        return []


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text.splitlines()[-lines:])
