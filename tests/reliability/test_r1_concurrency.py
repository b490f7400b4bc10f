"""R1: four processes tracking 250 runs each into the same default SQLite store, started together
on a store that does not exist yet, end with exactly 1,000 runs and no error in any of them.

Each process is a plain Python script running ``with nbops.track(...)`` 250 times (the same
capture, spool and background writer as ``%%track``), so the cost is the store's, not kernels'.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from reliability_support import all_runs

from nbops.config import load_config

pytestmark = pytest.mark.reliability

PROCESSES = 4
RUNS_EACH = 250

WORKER = """
import json, sys
import nbops

worker, count = sys.argv[1], int(sys.argv[2])
errors = []
for i in range(count):
    try:
        with nbops.track(f"w{worker}-{i}", experiment="r1", params=["alpha"]) as run:
            alpha = i / 10
            accuracy = 1.0 / (i + 1)
    except Exception as exc:  # the block itself must never see nbops fail
        errors.append(repr(exc))
    if run.record is None or run.record.status != "FINISHED" or run.record.warnings:
        errors.append(f"run {i}: {run.record and (run.record.status, run.record.warnings)}")
failures = nbops.default_session().flush(timeout=240)
errors += [f"write failed: {exc}" for _, exc in failures]
print(json.dumps({"worker": worker, "errors": errors}))
"""


def test_four_processes_track_1000_runs_into_one_new_sqlite_store(project: Path) -> None:
    script = project / "worker.py"
    script.write_text(WORKER)
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), str(n), str(RUNS_EACH)],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(PROCESSES)
    ]
    try:
        for worker in workers:
            out, err = worker.communicate(timeout=600)
            assert worker.returncode == 0, err[-3000:]
            report = json.loads(out.strip().splitlines()[-1])
            assert report["errors"] == [], report
    finally:
        for worker in workers:
            worker.kill()  # only the ones still running after a failure
            worker.wait()

    config = load_config(project)
    assert config.is_default_store
    runs = all_runs(config.tracking_uri, "r1")
    assert len(runs) == PROCESSES * RUNS_EACH
    assert Counter(r.info.status for r in runs) == {"FINISHED": PROCESSES * RUNS_EACH}
    names = Counter(r.info.run_name for r in runs)
    assert len(names) == PROCESSES * RUNS_EACH  # each block once: no duplicate, none missing
    assert {r.data.params["alpha"] for r in runs if r.info.run_name == "w3-7"} == {"0.7"}
    assert not list((config.state_dir / "spool").glob("[!.]*"))  # nothing left undelivered


SAME_DATA = """
import json, sys, time
from pathlib import Path
from nbops.config import load_config
from nbops.record import DataRef, RunRecord
from nbops.store import Spool
from nbops.store.mlflow_store import MlflowTracker
from nbops.store.sync import deliver

worker, count, start = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
config = load_config(Path.cwd())
tracker, spool, errors = MlflowTracker(config), Spool(config.state_dir), []
tracker.write(spool.put(RunRecord(name=f"warm-{worker}", experiment="shared", status="FINISHED")))
for i in range(count):
    while time.time() < start + i * 0.25:  # both workers write run i at the same moment
        time.sleep(0.001)
    record = RunRecord(name=f"{worker}-{i}", experiment="shared", status="FINISHED")
    record.data = [DataRef(f"X{i}", "input", "DataFrame", fingerprint=f"xxh128:{i:032x}")]
    try:
        deliver(spool, spool.put(record), tracker)
    except Exception as exc:
        errors.append(f"run {i}: {exc}"[:300])
print(json.dumps({"worker": worker, "errors": errors}))
"""


def test_two_processes_logging_the_same_data_at_the_same_moment_both_write(project: Path) -> None:
    """A pipeline's train step and its model gate log the same holdout; with the gate's run
    written while the train step's is delivered, MLflow's check-then-insert of the dataset
    failed one of them (UNIQUE constraint failed: 6 of 120 writes before the fix), and the
    gate then registered nothing."""
    script, count = project / "same_data.py", 80
    script.write_text(SAME_DATA)
    start = time.time() + 8  # both have imported MLflow and opened the store by then
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), name, str(count), str(start)],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in "AB"
    ]
    try:
        for worker in workers:
            out, err = worker.communicate(timeout=300)
            assert worker.returncode == 0, err[-3000:]
            assert json.loads(out.strip().splitlines()[-1])["errors"] == []
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
    runs = all_runs(load_config(project).tracking_uri, "shared")
    named = {r.info.run_name: r for r in runs}
    assert len(named) == 2 * count + 2
    for i in (0, count - 1):  # each run lists the one dataset both logged
        inputs = [named[f"{w}-{i}"].inputs.dataset_inputs for w in "AB"]
        assert [[d.dataset.name for d in found] for found in inputs] == [[f"X{i}"]] * 2
        assert inputs[0][0].dataset.digest == inputs[1][0].dataset.digest
