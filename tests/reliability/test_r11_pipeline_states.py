"""R11: no pipeline run is left in a false state.

- A FAILED run carries only the metrics its own steps produced, never a stale
  ``metrics/*.json`` of an earlier run.
- ``nbops run`` killed alone (SIGKILL, DVC still running): its parent run does not stay
  RUNNING; once DVC's work is over it is KILLED, with the reason.
- A second ``nbops run`` of the same pipeline while one runs is refused with who runs it and
  since when; it runs and records nothing.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reliability_support import NBOPS, all_runs

from nbops.config import load_config
from nbops.pipeline.run import run_pipeline

sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))
from pipeline_fixture import STEPS, build_pipeline, set_param

pytestmark = pytest.mark.reliability
LOAD = STEPS["load"]
SLOW = {**STEPS, "load": (*LOAD[:4], ["import time\ntime.sleep(15)", *LOAD[4]], LOAD[5])}


def parents(uri: str, experiment: str) -> list:
    return [r for r in all_runs(uri, experiment) if r.data.tags.get("nbops.source") == "pipeline"]


def test_a_failed_run_carries_only_its_own_metrics(project: Path) -> None:
    folder = build_pipeline(project / "pipelines" / "demo", "nbops step")
    first = run_pipeline(folder, echo=lambda line: None)
    assert first.status == "FINISHED" and first.metrics.keys() == {"rows", "score"}
    set_param(folder, "scale", 0)  # features fails: train's metrics/train.json is stale
    second = run_pipeline(folder, echo=lambda line: None)
    assert second.status == "FAILED" and second.metrics == {}
    uri = load_config(project).tracking_uri
    failed = next(r for r in parents(uri, "demo") if r.info.run_id == second.parent_run_id)
    assert failed.info.status == "FAILED" and failed.data.metrics == {}


def start(project: Path, folder: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*NBOPS, "run", str(folder)],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def until_running(run: subprocess.Popen[str], step: str = "load") -> None:
    assert run.stdout is not None
    for line in run.stdout:
        if line.strip() == f"running    {step}":
            time.sleep(2)
            return
    raise AssertionError("the step never ran")


def test_a_killed_nbops_run_is_closed_once_dvc_is_done(project: Path) -> None:
    folder = build_pipeline(project / "pipelines" / "orphan", "nbops step", "orphan", SLOW)
    run = start(project, folder)
    until_running(run)
    run.send_signal(signal.SIGKILL)  # only `nbops run`: DVC and the step carry on
    run.wait()
    uri = load_config(project).tracking_uri
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:  # (reading a missing store would create it: wait)
        runs = parents(uri, "orphan") if (project / "mlflow.db").exists() else []
        if runs and runs[0].info.status != "RUNNING":
            break
        time.sleep(1)
    [parent] = parents(uri, "orphan")
    assert parent.info.status == "KILLED"
    reason = parent.data.tags["nbops.error"]
    assert "was killed at" in reason and "DVC went on until" in reason


def test_a_second_run_of_the_same_pipeline_is_refused_and_records_nothing(
    project: Path,
) -> None:
    folder = build_pipeline(project / "pipelines" / "busy", "nbops step", "busy", SLOW)
    first = start(project, folder)
    until_running(first)
    second = subprocess.run(
        [*NBOPS, "run", str(folder)], cwd=project, capture_output=True, text=True, timeout=60
    )
    assert second.returncode == 9, second.stdout + second.stderr
    assert f"pipeline busy is being run by pid {first.pid} (started at" in second.stderr
    assert "kill" in second.stderr and "Traceback" not in second.stderr
    out, _ = first.communicate(timeout=240)
    assert first.returncode == 0, out
    uri = load_config(project).tracking_uri
    assert len(parents(uri, "busy")) == 1  # the first run's only
