"""Issue 13: the warm executor runs every stage from a fresh interpreter and gives exactly the
cold path's results; stopping ``nbops run`` leaves no executor process behind.

Real DVC, real kernels (forked by the zygote, or started by papermill on the cold path), a
SQLite store in tmp_path. Each pipeline is the hand-built one of ``pipeline_fixture``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml
from pipeline_fixture import STEPS, build_pipeline

from nbops.config import load_config
from nbops.pipeline.run import PipelineResult, run_pipeline
from nbops.session import Session

pytestmark = pytest.mark.kernel
ZYGOTE = "nbops.executor.zygote"


def quiet(folder: Path, **options: object) -> tuple[PipelineResult, str]:
    lines: list[str] = []
    result = run_pipeline(folder, echo=lines.append, **options)  # type: ignore[arg-type]
    return result, "\n".join(lines)


def outs(folder: Path) -> dict[str, str]:
    """The md5 DVC recorded for each output of each stage."""
    lock = yaml.safe_load((folder / "dvc.lock").read_text())
    return {
        f"{stage}:{out['path']}": out["md5"]
        for stage, data in lock["stages"].items()
        for out in data.get("outs", [])
    }


def executor_processes(run_pid: int | None = None) -> list[psutil.Process]:
    """The zygote and its forks (of the `nbops run` with pid ``run_pid``, else of any run
    started by this test process: other tests may run beside this one)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if ZYGOTE not in " ".join(proc.info["cmdline"] or []):
                continue
            owner = proc.environ().get("NBOPS_RUN_PID")
        except psutil.Error:
            continue
        if owner == str(run_pid or os.getpid()):
            found.append(proc)
    return found


@pytest.mark.parametrize("cores", [2, 1], ids=["ahead", "one-cpu"])
def test_warm_and_cold_give_the_same_results(
    project: Path, cores: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On one CPU the executor does nothing ahead (no preload, no ready kernel): the same."""
    from nbops import _cpus

    monkeypatch.setattr(_cpus, "usable", lambda: cores)
    warm_folder = build_pipeline(project / "pipelines" / "warm", "nbops step", name="warm")
    cold_folder = build_pipeline(project / "pipelines" / "cold", "nbops step", name="cold")
    warm, log = quiet(warm_folder)
    cold, _ = quiet(cold_folder, warm=False)
    assert warm.status == cold.status == "FINISHED", (warm.error, cold.error)
    assert warm.metrics == cold.metrics and warm.metrics.keys() == {"rows", "score"}
    assert outs(warm_folder) == outs(cold_folder)  # the artifacts' md5s, as DVC recorded them
    for name in ("load", "train"):
        a = json.loads((warm_folder / "metrics" / f"{name}.json").read_text())
        b = json.loads((cold_folder / "metrics" / f"{name}.json").read_text())
        assert a == b
    # the progress shows each step's time and its cells' share
    assert "done       train (" in log and "its cells" in log
    assert all(s.cells is not None for s in warm.steps)
    # the parent run and one child per step, linked, as on the cold path
    from mlflow.tracking import MlflowClient

    uri = load_config(project).tracking_uri
    client = MlflowClient(tracking_uri=uri)
    for result in (warm, cold):
        experiment = client.get_experiment_by_name(result.name)
        runs = client.search_runs([experiment.experiment_id])
        children = {
            r.data.tags["nbops.step"]: r
            for r in runs
            if r.data.tags.get("mlflow.parentRunId") == result.parent_run_id
        }
        assert sorted(children) == ["features", "load", "train"], result.name
        assert {r.info.status for r in runs} == {"FINISHED"}
        assert children["train"].data.metrics["score"] == result.metrics["score"]
    assert executor_processes() == []


LEAKY = {
    "first": ([], {}, ["a"], [], ["a = 1\nhidden = 41"], []),
    "second": ([], {"a": "first"}, ["b"], [], ["b = a + hidden"], []),
}


@pytest.mark.parametrize("warm", [True, False], ids=["warm", "cold"])
def test_a_variable_a_step_did_not_pass_is_not_there(project: Path, warm: bool) -> None:
    folder = build_pipeline(project / "pipelines" / "leak", "nbops step", "leak", LEAKY)
    result, _ = quiet(folder, warm=warm)
    assert result.status == "FAILED" and result.failed_step == "second"
    assert result.error is not None and "NameError" in result.error and "hidden" in result.error


MUTATING = {
    "first": (
        [],
        {},
        ["draw"],
        [],
        [
            "import json\nimport sklearn\njson.nbops_marker = 1\n"
            "pd.set_option('display.max_rows', 3)\nsklearn.set_config(assume_finite=True)\n"
            "draw = float(np.random.rand())"
        ],
        [],
    ),
    "second": (
        [],
        {"draw": "first"},
        ["checked"],
        [],
        [
            "import json\nimport sklearn\n"
            "assert not hasattr(json, 'nbops_marker'), 'a module mutation leaked'\n"
            "assert pd.get_option('display.max_rows') == 60, 'a pandas option leaked'\n"
            "assert not sklearn.get_config()['assume_finite'], 'sklearn config leaked'\n"
            "assert float(np.random.rand()) != draw, 'the same global random state'\n"
            "checked = True"
        ],
        [],
    ),
}


def test_module_mutations_and_random_state_stay_in_their_step(project: Path) -> None:
    folder = build_pipeline(project / "pipelines" / "mut", "nbops step", "mut", MUTATING)
    result, _ = quiet(folder)
    assert result.status == "FINISHED", result.error


SLOW = {**STEPS, "load": (*STEPS["load"][:4], ["import time\ntime.sleep(60)"], [])}


def start_run(project: Path, folder: Path) -> subprocess.Popen[str]:
    """`nbops run` as a user starts it, in its own process group (a terminal's job)."""
    return subprocess.Popen(
        [sys.executable, "-m", "nbops.cli", "run", str(folder)],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def wait_for_step(run: subprocess.Popen[str], step: str = "load") -> list[str]:
    """Read `nbops run`'s progress until ``step`` runs (its kernel is then busy in it)."""
    assert run.stdout is not None
    lines = []
    for line in run.stdout:
        lines.append(line)
        if line.strip() == f"running    {step}":
            time.sleep(3)  # the kernel is forked and in the step's cells
            return lines
    raise AssertionError("".join(lines))


def gone(run_pid: int, timeout: float = 30) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and executor_processes(run_pid):
        time.sleep(0.2)
    return executor_processes(run_pid)


def test_ctrl_c_leaves_no_executor_process(project: Path) -> None:
    folder = build_pipeline(project / "pipelines" / "slow", "nbops step", "slow", SLOW)
    run = start_run(project, folder)
    before = wait_for_step(run)
    assert any(p.ppid() == run.pid for p in executor_processes(run.pid))  # the zygote
    os.killpg(run.pid, signal.SIGINT)  # Ctrl-C: the whole foreground group
    out, _ = run.communicate(timeout=90)
    out = "".join(before) + out
    assert run.returncode != 0, out
    assert gone(run.pid) == [], out
    session = Session(load_config(project))
    records = session.reader().list_runs("slow")
    assert {r.status for r in records if r.source == "pipeline"} == {"KILLED"}


def test_a_killed_nbops_run_leaves_no_executor_process(project: Path) -> None:
    """SIGKILL of `nbops run` alone: the zygote and its kernels die with it (their parent
    is gone); DVC ends on its own (its output has no reader any more)."""
    folder = build_pipeline(project / "pipelines" / "killed", "nbops step", "killed", SLOW)
    run = start_run(project, folder)
    wait_for_step(run)
    dvc = [c for c in psutil.Process(run.pid).children() if "dvc" in " ".join(c.cmdline())]
    assert dvc and executor_processes(run.pid)
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert gone(run.pid) == []
    for proc in dvc:  # DVC and the stage it may have started cold meanwhile
        with contextlib.suppress(psutil.NoSuchProcess):
            for child in [*proc.children(recursive=True), proc]:
                child.kill()
