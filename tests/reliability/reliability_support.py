"""Helpers shared by the reliability tests (R1-R7 of issue 7): reading the store back as MLflow
sees it, comparing values exactly (NaN equals NaN, types must match), and walking a process tree.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
NBOPS = [sys.executable, "-m", "nbops.cli"]  # `nbops` of this interpreter, whatever is on PATH


def all_runs(uri: str, experiment: str | None = None) -> list[Any]:
    """Every run in the store (or in one experiment), as MLflow itself returns them."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    if experiment is not None:
        found = client.get_experiment_by_name(experiment)
        ids = [found.experiment_id] if found else []
    else:
        ids = [e.experiment_id for e in client.search_experiments()]
    if not ids:
        return []
    return list(client.search_runs(ids, max_results=50_000))


def same(a: Any, b: Any) -> bool:
    """Equal and of the same type, recursively; NaN equals NaN and -0.0 differs from 0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        keys_a, keys_b = list(a), list(b)
        return len(keys_a) == len(keys_b) and all(
            same(ka, kb) and same(a[ka], b[kb]) for ka, kb in zip(keys_a, keys_b, strict=True)
        )
    return bool(a == b)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children first found, recursively)."""
    import psutil

    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def kill_tree(pid: int, sig: int = signal.SIGKILL) -> list[int]:
    """Signal ``pid`` and everything below it at once (what a job runner's kill does);
    returns the pids signalled."""
    pids = [pid, *descendants(pid)]
    for each in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(each, sig)
    return pids


def reap(pids: list[int], timeout: float = 30.0) -> None:
    """Wait until the processes are gone; SIGKILL what is left (never leave orphans behind)."""
    import psutil

    procs = []
    for pid in pids:
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=10)


def nbops_cli(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``nbops ARGS`` in a fresh process."""
    return subprocess.run(
        [*NBOPS, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MlflowServer:
    """A real ``mlflow server`` on a fixed localhost port (so it can come back on the same
    URI), backed by SQLite in ``folder``; a process group of its own."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.url = f"http://127.0.0.1:{port}"
        self.port = port
        self.log = folder / "mlflow-server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180.0) -> None:
        import time
        import urllib.request

        command = [
            *(sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1"),
            *("--port", str(self.port), "--workers", "1"),
            *("--backend-store-uri", f"sqlite:///{self.folder / 'server.db'}"),
            *("--artifacts-destination", str(self.folder / "artifacts")),
        ]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command,
                cwd=self.folder,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"mlflow server exited:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"mlflow server not up after {timeout} s:\n{self.log.read_text()}")

    def signal(self, sig: int) -> None:
        """Signal the server's whole process group (SIGSTOP freezes it, SIGCONT resumes it)."""
        assert self.process is not None
        os.killpg(self.process.pid, sig)

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGCONT)
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(wait)
                break
        self.process = None
