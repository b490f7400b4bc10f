"""Live tracking through a real kernel: while a ``%%track`` cell runs a loop that logs a metric
per step, the frontend receives the summary and updates of it (elapsed time, step, the curve
growing) before the cell ends; the steps are stored as MLflow metric history."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from jupyter_client.manager import start_new_kernel
from mlflow.tracking import MlflowClient

from nbops.config import Config

pytestmark = pytest.mark.kernel

CELL = """%%track --name live-loop
import time
import nbops
for epoch in nbops.steps(range(8)):
    time.sleep(0.4)
    nbops.log_metric("loss", 1 / (epoch + 1))
print("done")
"""


RAISING = """%%track --name diverged
import time
import nbops
for epoch in nbops.steps(range(10)):
    time.sleep(0.3)
    nbops.log_metric("loss", 2.0 ** epoch)
    if epoch == 4:
        raise FloatingPointError("loss diverged")
"""


def _run(client, code: str, timeout: float = 120) -> list[tuple[float, dict]]:
    """Execute ``code``; every IOPub message of it, with the time it arrived."""
    msg_id = client.execute(code)
    messages = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = client.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append((time.monotonic(), msg))
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return messages
    raise AssertionError(f"the cell did not finish in {timeout} s")


def _points(msg: dict) -> int:
    found = re.search(r'data-points="(\d+)"', msg["content"]["data"].get("text/html", ""))
    return int(found.group(1)) if found else 0


def test_the_summary_updates_while_the_loop_runs(project: Path, config: Config) -> None:
    manager, client = start_new_kernel(kernel_name="python3", cwd=str(project))
    try:
        _run(client, "%load_ext nbops")
        messages = _run(client, CELL)
        raising = _run(client, RAISING)
        _run(client, "%nbops wait")
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)

    streams = [(t, m) for t, m in messages if m["msg_type"] == "stream"]
    printed = [t for t, m in streams if "done" in m["content"]["text"]]
    kinds = ("display_data", "update_display_data")
    shown = [(t, m) for t, m in messages if m["msg_type"] in kinds]
    live = [(t, m) for t, m in shown if "RUNNING" in m["content"]["data"]["text/plain"]]
    assert printed and len(live) >= 3, [m["content"]["data"]["text/plain"] for _, m in shown]
    assert all(t < printed[0] for t, _ in live)  # shown while the loop ran, not after
    assert live[0][1]["msg_type"] == "display_data"  # one output, then updated in place
    ids = {m["content"]["transient"]["display_id"] for _, m in shown}
    assert len(ids) == 1
    counts = [_points(m) for _, m in live]
    assert counts == sorted(counts) and counts[-1] >= 5  # the curve grows (from 2 points)
    assert re.search(r"step \d \(\d of 8\)", live[-1][1]["content"]["data"]["text/plain"])
    final = shown[-1][1]["content"]["data"]
    assert "FINISHED" in final["text/plain"] and "loss 1 → 0.125 (8 steps)" in final["text/plain"]

    # a cell that raises in the loop: the error reaches the user, the summary is final
    [error] = [m for _, m in raising if m["msg_type"] == "error"]
    assert error["content"]["ename"] == "FloatingPointError"
    updates = [m for _, m in raising if m["msg_type"] in kinds]
    assert any("RUNNING" in m["content"]["data"]["text/plain"] for m in updates)
    last = updates[-1]["content"]["data"]["text/plain"]
    assert "FAILED: FloatingPointError: loss diverged" in last and "(5 steps)" in last

    client_ = MlflowClient(tracking_uri=config.tracking_uri)
    ids = [e.experiment_id for e in client_.search_experiments()]
    [failed] = client_.search_runs(ids, filter_string="attributes.run_name = 'diverged'")
    assert failed.info.status == "FAILED"
    assert len(client_.get_metric_history(failed.info.run_id, "loss")) == 5
    [run] = client_.search_runs(ids, filter_string="attributes.run_name = 'live-loop'")
    history = client_.get_metric_history(run.info.run_id, "loss")
    assert [(m.step, round(m.value, 4)) for m in history] == [
        (i, round(1 / (i + 1), 4)) for i in range(8)
    ]
    assert run.data.metrics["loss"] == pytest.approx(0.125)
