"""R3: whatever is killed mid-run, no run stays RUNNING after the next start.

Where nbops could leave a RUNNING run, and what closes it:

* ``%%track`` writes nothing before the cell ends, so a kernel killed mid-cell leaves no run
  (checked with a real kernel, SIGKILLed in a cell).
* A process killed while its writer thread is between MLflow's ``create_run`` and the run's
  end leaves a RUNNING run, and its record in the spool: the next command that reads the store
  (``nbops runs`` here; ``nbops sync``, ``nbops run``) delivers it and finishes the run. The
  kill at that exact point is the one injected fault: MLflow's ``log_text`` kills the process.
* ``nbops run`` writes its parent run RUNNING before the steps: when that process is killed,
  the next ``nbops run`` marks it KILLED (here directly; end to end in test_r7).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from reliability_support import all_runs

from nbops import cli
from nbops.config import Config
from nbops.pipeline.interrupted import OWNER_TAG, close_stale_runs, owner
from nbops.record import RunRecord
from nbops.session import Session

pytestmark = pytest.mark.reliability


def run_in(client: Any, code: str, timeout: float = 120) -> None:
    """Execute ``code`` in the kernel and fail on an error."""
    reply = client.execute_interactive(code, timeout=timeout, output_hook=lambda msg: None)
    assert reply["content"]["status"] == "ok", reply["content"]


@pytest.mark.kernel
def test_a_kernel_killed_mid_cell_leaves_no_running_run(project: Path, config: Config) -> None:
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3", cwd=str(project))
    try:
        run_in(client, "%load_ext nbops")
        run_in(client, "%%track --name done\nx = 1")
        run_in(client, "%nbops wait")
        started = project / "started"
        client.execute(
            f"%%track --name killed\nimport pathlib, time\n"
            f"pathlib.Path({str(started)!r}).touch()\ntime.sleep(300)"
        )
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists()
        os.kill(manager.provisioner.process.pid, signal.SIGKILL)  # type: ignore[union-attr]
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)

    manager, client = start_new_kernel(kernel_name="python3", cwd=str(project))
    try:
        run_in(client, "%load_ext nbops")
        run_in(client, "%%track --name after\ny = 2")
        run_in(client, "%nbops wait")
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    runs = all_runs(config.tracking_uri)
    assert sorted((r.info.run_name, r.info.status) for r in runs) == [
        ("after", "FINISHED"),
        ("done", "FINISHED"),
    ]


KILLED_WHILE_WRITING = """
import os, signal
from mlflow.tracking import MlflowClient
import nbops

def die(*args, **kwargs):  # after create_run and log_batch, before the run's end
    os.kill(os.getpid(), signal.SIGKILL)

MlflowClient.log_text = die
with nbops.track("half-written", experiment="r3"):
    lr = 0.1
nbops.default_session().flush()
"""


def test_a_run_half_written_by_a_killed_process_is_finished_by_the_next_command(
    project: Path, config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    script = project / "killed_while_writing.py"  # a file: track() reads the block's source
    script.write_text(KILLED_WHILE_WRITING)
    child = subprocess.run(
        [sys.executable, str(script)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    [run] = all_runs(config.tracking_uri, "r3")
    assert run.info.status == "RUNNING"

    assert cli.main(["runs"]) == 0  # reading the store delivers what the spool holds first
    assert "half-written" in capsys.readouterr().out
    [run] = all_runs(config.tracking_uri, "r3")
    assert run.info.status == "FINISHED"
    assert run.data.params == {"lr": "0.1"}
    assert not list((config.state_dir / "spool").glob("[!.]*"))


def test_a_parent_run_whose_nbops_run_is_gone_is_marked_killed(config: Config) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=config.tracking_uri)
    experiment = client.create_experiment("pipe")
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    host = socket.gethostname()
    owners = {
        "dead": f"{host}:{ended.pid}:{time.time() - 5:.2f}",
        "reused-pid": f"{host}:{os.getpid()}:12345.00",  # this pid, another start time
        "alive": owner(),
        "elsewhere": "another-host:1:1.00",
        "legacy": None,
    }
    ids = {}
    for name, who in owners.items():
        tags = {OWNER_TAG: who} if who else {}
        ids[name] = client.create_run(experiment, tags=tags, run_name=name).info.run_id
    finished = client.create_run(experiment, tags={OWNER_TAG: owners["dead"]}, run_name="done")
    client.set_terminated(finished.info.run_id, "FINISHED")

    lines: list[str] = []
    unwritten = RunRecord(experiment="pipe")  # the store was down when the new parent was written
    assert close_stale_runs(Session(config), unwritten, lines.append) == []
    new = client.create_run(experiment, run_name="new")  # the new parent, just written
    record = RunRecord(experiment="pipe", run_id=new.info.run_id)
    closed = close_stale_runs(Session(config), record, lines.append)

    assert sorted(closed) == sorted([ids["dead"], ids["reused-pid"]])
    assert record.tags[OWNER_TAG] == owner()
    assert client.get_run(new.info.run_id).data.tags[OWNER_TAG] == owner()
    status = {r.info.run_name: r.info.status for r in all_runs(config.tracking_uri, "pipe")}
    assert status == {
        "dead": "KILLED",
        "reused-pid": "KILLED",
        "alive": "RUNNING",
        "elsewhere": "RUNNING",
        "legacy": "RUNNING",
        "done": "FINISHED",
        "new": "RUNNING",
    }
    why = client.get_run(ids["dead"]).data.tags["nbops.error"]
    assert why.startswith(f"KILLED: its `nbops run` (pid {ended.pid} on {host})")
    assert len(lines) == 2 and all("marked KILLED" in line for line in lines)
