"""R1: four processes tracking 250 runs each into the same default SQLite store, started together
on a store that does not exist yet, end with exactly 1,000 runs and no error in any of them.

Each process is a plain Python script running ``with nbops.track(...)`` 250 times (the same
capture, spool and background writer as ``%%track``), so the cost is the store's, not kernels'.
"""

from __future__ import annotations

import json
import subprocess
import sys
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
