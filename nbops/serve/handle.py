"""``serve(PIPELINE)`` from a notebook: ``nbops serve`` in a background process, and a handle.

The server runs in its own process (the kernel stays free, and a cell that fails does not stop
it), started with ``--exit-with <kernel pid>`` so it stops with the kernel, and its output goes
to ``<home>/server.log``. The handle sends batches and labels, waits for a version, and stops
it; in Jupyter it displays the server's status.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbops.errors import ServingError
from nbops.serve import wire
from nbops.serve.target import SERVER_FILE, Target, read_json, resolve

READY_TIMEOUT = 300.0


@dataclass
class Answer:
    """One prediction request through the server."""

    request_id: str
    version: int
    predictions: list[Any]


class Server:
    """A running ``nbops serve``; see :func:`serve`."""

    def __init__(self, target: Target, process: subprocess.Popen[bytes], log: Path) -> None:
        self.target, self.process, self.log = target, process, log
        self.url = ""

    # ---- lifecycle --------------------------------------------------------------------------

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise self._failure(f"stopped (exit code {self.process.returncode})")
            state = read_json(self.target.home / SERVER_FILE)
            if state.get("pid") == self.process.pid and state.get("version") is not None:
                self.url = str(state["url"])
                return self
            time.sleep(0.2)
        self.stop()
        raise self._failure(f"was not serving after {timeout:.0f} s")

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the server (its MLflow server too) and wait for it: the log is complete."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def _failure(self, what: str) -> ServingError:
        try:
            tail = self.log.read_text(encoding="utf-8", errors="replace").strip()[-3000:]
        except OSError:
            tail = ""
        return ServingError(
            f"nbops serve {self.target.argument} {what}:\n{tail}",
            fix=f"run `nbops serve {self.target.argument}` in a terminal to see it start",
            model=self.target.model,
        )

    # ---- using it ---------------------------------------------------------------------------

    def send(self, frame: Any, request_id: str | None = None) -> Answer:
        """POST ``frame`` (a DataFrame) to ``/invocations``; the answer with its request id."""
        headers = {"X-Request-Id": request_id} if request_id else {}
        status, head, body = wire.post_json(
            self.url, "/invocations", wire.dataframe_split(frame), headers=headers
        )
        if status != 200:
            message = body.get("message", body) if isinstance(body, dict) else body
            text = " ".join(str(message).split())
            raise ServingError(
                f"the server answered HTTP {status}: "
                + (text if len(text) <= 600 else "..." + text[-600:]),  # the reason is last
                fix="send the columns the model was trained on (its MLflow signature)",
                model=self.target.model,
            )
        rid, version = head.get("X-Request-Id", ""), int(head.get("X-Model-Version", 0))
        return Answer(rid, version, list(body["predictions"]))

    def predict(self, frame: Any) -> list[Any]:
        return self.send(frame).predictions

    def feedback(self, request_id: str, labels: Any) -> int:
        """The true labels of the rows of request ``request_id``, in their order."""
        values = [_plain(v) for v in list(labels)]
        status, _, body = wire.post_json(
            self.url, "/nbops/feedback", {"request_id": request_id, "labels": values}
        )
        if status != 200:
            raise ServingError(f"feedback refused: HTTP {status}: {body}", fix="see the message")
        return int(body["recorded"])

    def status(self) -> dict[str, Any]:
        status, body = wire.get_json(self.url, "/nbops/status")
        return body if status == 200 and isinstance(body, dict) else {}

    def wait_for_version(self, version: int, timeout: float = 120.0) -> dict[str, Any]:
        """Block until ``version`` answers (after a promotion or a rollback)."""
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = self.status()
            if status.get("version") == version:
                return status
            if status.get("alias_version") == version and status.get("last_error"):
                break
            time.sleep(0.25)
        raise ServingError(
            f"version {version} of {self.target.model!r} is not being served "
            f"(serving v{status.get('version')}; {status.get('last_error') or 'no error'})",
            fix=f"see {self.log}",
            model=self.target.model,
            version=version,
        )

    def __repr__(self) -> str:
        if self.process.poll() is not None:
            return f"nbops serve {self.target.model}: stopped"
        status = self.status()
        return (
            f"nbops serve {self.target.model}@{self.target.alias}: v{status.get('version')} at "
            f"{self.url} ({status.get('requests', 0)} requests; log {self.target.log_dir})"
        )


def serve(
    target: str | Path = ".",
    *,
    port: int = 0,
    poll: float = 2.0,
    alias: str = "champion",
    log: bool = True,
    timeout: float = READY_TIMEOUT,
) -> Server:
    """Start ``nbops serve TARGET`` in the background; return once it answers."""
    resolved = resolve(target, alias)
    resolved.home.mkdir(parents=True, exist_ok=True)
    output = resolved.home / "server.log"
    command = [sys.executable, "-m", "nbops.cli", "serve", str(target), "--port", str(port)]
    command += ["--poll", str(poll), "--alias", alias, "--exit-with", str(os.getpid())]
    if not log:
        command.append("--no-log")
    with output.open("wb") as out:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in a terminal IPython must not stop it
        )  # fmt: skip
    return Server(resolved, process, output).wait_ready(timeout)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
