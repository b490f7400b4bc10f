"""R7 (and R3 for pipelines): an ``nbops run`` interrupted mid-step, by Ctrl-C (SIGINT to its
process group, as a terminal sends it) or by SIGKILL of its whole process tree (DVC, ``nbops
step``, the kernel: what a cancelled job or the OOM killer of a container does), leaves nothing
that stops the next run: no stale-lock error, and no parent run left RUNNING.

Real ``nbops run`` processes on the hand-built 3-step pipeline of the integration tests; the
``features`` step waits at a gate file, so each interruption lands mid-step, deterministically.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from reliability_support import NBOPS, all_runs, descendants, kill_tree, reap

from nbops.config import load_config
from nbops.pipeline.interrupted import OWNER_TAG
from nbops.store.spool import Spool

sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))
from pipeline_fixture import build_pipeline

pytestmark = [pytest.mark.reliability, pytest.mark.kernel]

GATE = """\
import pathlib, time
pathlib.Path({started!r}).touch()
while not pathlib.Path({go!r}).exists():
    time.sleep(0.05)"""


def gated_pipeline(project: Path) -> tuple[Path, Path]:
    """The pipeline, with a cell in ``features`` that waits until ``gate/go`` exists."""
    folder = build_pipeline(project / "pipelines" / "demo", "nbops step")
    gate = project / "gate"
    gate.mkdir()
    path = folder / "steps" / "02_features.ipynb"
    nb = nbformat.read(path, as_version=4)
    source = GATE.format(started=str(gate / "started"), go=str(gate / "go"))
    load = next(i for i, c in enumerate(nb.cells) if "nbops-load" in c.metadata.get("tags", []))
    nb.cells.insert(load + 1, nbformat.v4.new_code_cell(source, metadata={"tags": ["nbops-step"]}))
    nbformat.write(nb, path)
    return folder, gate


def start_run(folder: Path, cwd: Path) -> subprocess.Popen[str]:
    """``nbops run`` in a process group of its own, like a job a terminal started."""
    return subprocess.Popen(
        [*NBOPS, "run", str(folder)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def at_gate(run: subprocess.Popen[str], gate: Path, timeout: float = 180) -> list[int]:
    """Wait until the run is inside the ``features`` step; return its process tree."""
    deadline = time.monotonic() + timeout
    while not (gate / "started").exists():
        if run.poll() is not None or time.monotonic() > deadline:
            out = run.communicate()[0] if run.poll() is not None else "(still running)"
            raise AssertionError(f"the run never reached the gate:\n{out}")
        time.sleep(0.05)
    (gate / "started").unlink()
    return [run.pid, *descendants(run.pid)]


def parent_runs(uri: str) -> dict[str, Any]:
    return {r.info.run_id: r for r in all_runs(uri, "demo") if r.data.tags.get(OWNER_TAG)}


def test_interrupted_runs_leave_no_stale_lock_and_no_running_parent(project: Path) -> None:
    folder, gate = gated_pipeline(project)
    uri = load_config(project).tracking_uri
    trees: list[int] = []
    try:
        # 1. Ctrl-C in the middle of `features`: the run ends as KILLED, DVC has stopped
        first = start_run(folder, project)
        trees += at_gate(first, gate)
        os.killpg(first.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        out = first.communicate(timeout=120)[0]
        assert first.returncode == 130, out
        assert "pipeline demo: KILLED" in out and "nbops: interrupted" in out
        [killed] = parent_runs(uri).values()
        assert killed.info.status == "KILLED"

        # 2. at once a new run: no stale-lock error, it gets into `features` again; then the
        # whole process tree is SIGKILLed there, so its parent run cannot be finished
        second = start_run(folder, project)
        tree = at_gate(second, gate)
        trees += tree
        kill_tree(second.pid)
        second.communicate(timeout=60)
        reap(tree)
        # its parent run is RUNNING in MLflow, or still in the spool (it is written while DVC
        # starts): either way the next run finds and closes it
        left = {
            r.data.tags["nbops.record_id"]
            for r in parent_runs(uri).values()
            if r.info.status == "RUNNING"
        }
        spooled = Spool(load_config(project).state_dir).pending()
        left |= {e.record_id for e in spooled if e.record.source == "pipeline"}
        assert len(left) == 1

        # 3. the next run marks that parent KILLED (its owner is gone), clears DVC's stale
        # lock and completes from the interrupted step
        (gate / "go").touch()
        third = subprocess.run(
            [*NBOPS, "run", str(folder)], cwd=project, capture_output=True, text=True, timeout=300
        )
        assert third.returncode == 0, third.stdout + third.stderr
        assert "was left RUNNING" in third.stdout and "marked KILLED" in third.stdout
        assert "unchanged  load" in third.stdout and "done       train" in third.stdout
        assert "another DVC process" not in third.stdout + third.stderr
        assert "removed stale DVC lock" in third.stdout  # the killed DVC's rwlock
        statuses = sorted(r.info.status for r in parent_runs(uri).values())
        assert statuses == ["FINISHED", "KILLED", "KILLED"]
        stale = all_runs(uri, "demo")
        [closed] = [r for r in stale if r.data.tags["nbops.record_id"] in left]
        assert closed.data.tags["nbops.error"].startswith("KILLED: its `nbops run` (pid")
        assert not [r for r in stale if r.info.status == "RUNNING"]
    finally:
        (gate / "go").touch()
        for pid in trees:
            kill_tree(pid)
        reap(trees)
