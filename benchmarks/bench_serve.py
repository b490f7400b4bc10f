"""S1, S1p99: prediction latency through ``nbops serve`` against ``mlflow models serve`` alone.

Both serve the champion of the promoted wine pipeline (bench_pipeline's: a random forest of
20 trees) from the same store: the anchor is ``mlflow models serve -m models:/NAME/1
--env-manager local`` started directly; nbops is ``nbops serve PIPELINE`` (its front, which logs
every request, in front of its own ``mlflow models serve``). One keep-alive client connection
to each, the same 5-row ``dataframe_split`` body, requests alternated one by one between the two
(so load on the machine hits both alike), after a warm-up; p50 and p99 of each.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_pipeline import BIN, NBOPS, _env, build
from common import row

MODEL = "wine_pipeline"


def _wait(port: int, process: subprocess.Popen[bytes], timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/ping")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"server on port {port} did not answer /ping")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(
    command: list[str], cwd: Path, port: int, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    _wait(port, process)
    return process


def _stop(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)


def _body(pipeline: Path) -> bytes:
    import pandas as pd

    frame = pd.read_csv(pipeline / "data" / "wine.csv").drop(columns="target").iloc[:5]
    split = frame.to_dict(orient="split", index=False)
    return json.dumps({"dataframe_split": split}).encode()


def _latencies(ports: list[int], body: bytes, repeat: int) -> list[list[float]]:
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=60) for port in ports]
    times: list[list[float]] = [[] for _ in ports]
    headers = {"Content-Type": "application/json"}
    pairs = list(zip(conns, times, strict=True))
    for i in range(repeat):
        for conn, out in pairs if i % 2 else pairs[::-1]:  # neither always goes first
            t0 = time.perf_counter()
            conn.request("POST", "/invocations", body, headers)
            response = conn.getresponse()
            response.read()
            out.append(time.perf_counter() - t0)
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}")
    return times


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rows(quick: bool = False) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp).resolve()
        pipeline = build(project)
        env = _env(MLFLOW_TRACKING_URI=f"sqlite:///{project / 'mlflow.db'}")
        direct_port, front_port = _free_port(), _free_port()
        mlflow = [str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{MODEL}/1"]
        mlflow += ["--env-manager", "local", "-p", str(direct_port), "-w", "1"]
        direct = _start(mlflow, project, direct_port, env)
        front = None
        try:
            front = _start(
                [NBOPS, "serve", str(pipeline), "-p", str(front_port)], project, front_port, env
            )
            body = _body(pipeline)
            _latencies([direct_port, front_port], body, 100)  # warm-up
            anchor, ours = _latencies([direct_port, front_port], body, 300 if quick else 2000)
        finally:
            _stop(direct)
            if front is not None:
                _stop(front)
    what = "prediction latency through nbops serve (front, request log)"
    anchor_what = "mlflow models serve alone, same model"
    return [
        row(
            "S1",
            f"{what}, p50",
            _quantile(ours, 0.5),
            f"{anchor_what}, p50",
            _quantile(anchor, 0.5),
            1.1,
        ),
        row(
            "S1p99",
            f"{what}, p99",
            _quantile(ours, 0.99),
            f"{anchor_what}, p99",
            _quantile(anchor, 0.99),
            1.1,
        ),
    ]


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    print(json.dumps(rows(quick="--quick" in sys.argv), indent=1))
