"""The course (notebooks/NN_*.ipynb) passes nbval, as part of the test suite.

Each notebook runs top to bottom in a real kernel (``pytest --nbval-lax``: a cell that raises
fails; cells marked ``# NBVAL_CHECK_OUTPUT`` must print what the notebook shows). The course
folder is copied to tmp_path first, with its ``pyproject.toml``, so the runs go to a store of
the copy's own (``<copy>/mlflow.db``), never to the repository's. nbval runs in a subprocess:
collecting notebooks in this session would need ``--nbval-lax`` for every run of the suite and
would pick up the fixture notebooks under tests/. The tracking notebooks then run a second time,
as learners do, on a store that already holds their runs.

Notebooks 04 and 05 make the copy a git repository with a promoted pipeline (``weather.ipynb``,
which ships with the course) and drive it with ``!nbops`` shell commands, whose failures do not
fail a cell: so their outcome is checked here, in the store. Notebook 06 serves the champion,
monitors it, retrains on the triggers and rolls back (its last cell stops the server). Then 05
runs again on its own (it restarts from 04's data) and 04 again (promote over an existing
pipeline), and ``nbops level`` must still report Level 1 with every Level 1 item checked.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

COURSE = Path(__file__).resolve().parents[2] / "notebooks"
FIRST = ["01_level0_manual.ipynb", "02_track_experiments.ipynb", "03_compare_runs.ipynb"]
RERUN = [
    "02_track_experiments.ipynb",
    "03_compare_runs.ipynb",
    "05_continuous_training.ipynb",
    "04_promote_to_pipeline.ipynb",
]
LEFT_BEHIND = (
    *("mlflow.db", "mlartifacts", ".nbops", ".ipynb_checkpoints", ".*", "pipelines"),
    "data",  # 04 writes data/weather.csv
)
STORE_ENV = ("NBOPS_", "MLFLOW_")  # the course's store comes from its folder, not from these
pytestmark = pytest.mark.kernel


def nbval(course: Path, notebooks: list[str]) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("NBOPS_", "MLFLOW_", "PYTEST_", "JPY_"))
    }
    command = [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env"]
    command += ["-p", "no:cacheprovider", "-q", "-rf", *notebooks]
    return subprocess.run(
        command, cwd=course, env=env, capture_output=True, text=True, timeout=900, check=False
    )


def passes(course: Path, notebooks: list[str]) -> None:
    done = nbval(course, notebooks)
    assert done.returncode == 0, (
        f"nbval failed on {notebooks}:\n{done.stdout[-6000:]}\n{pipeline_runs(course)}"
    )
    assert " passed" in done.stdout and "failed" not in done.stdout


def pipeline_runs(course: Path) -> str:
    """The pipeline's runs as the store has them: what each `!nbops retrain` did (a shell
    command's output is not kept by nbval), to tell why a later cell found no new model."""
    from mlflow.tracking import MlflowClient

    from nbops.config import load_config

    try:
        client = MlflowClient(load_config(course).tracking_uri)
        experiment = client.get_experiment_by_name("weather")
        runs = client.search_runs([experiment.experiment_id], order_by=["start_time ASC"])
    except Exception as exc:
        return f"(no pipeline runs to show: {exc})"
    lines = ["the weather pipeline's runs, oldest first:"]
    with contextlib.suppress(Exception):  # newest first, as the notebooks read them
        from nbops import registry

        versions = registry.list_versions(load_config(course), "weather")
        lines[:0] = ["the registry's versions of weather, newest first:"] + [
            f"  v{v.version}: aliases {v.aliases}, champion before "
            f"{v.tags.get('nbops.champion.before')!r}, gate {v.tags.get('nbops.gate.decision')}"
            for v in versions
        ]
    for run in runs:
        tags = run.data.tags
        gate = tags.get("nbops.gate.decision", "")
        reasons = tags.get("nbops.gate.reasons", "")[:300]
        lines.append(
            f"  {run.info.run_name}: {run.info.status} gate={gate} "
            f"error={tags.get('nbops.error', '')[:300]}" + (f" reasons={reasons}" if gate else "")
        )
    return "\n".join(lines)


def level_1_items(course: Path) -> dict[str, tuple[bool, str]]:
    """``nbops level`` on the course folder: Level 1 item -> (checked, detail)."""
    from nbops.level import assess

    report = assess(course)
    assert report.level == 1, report.text()
    return {item.key: (item.ok, item.detail) for item in report.items if item.level == 1}


def test_the_course_notebooks_pass_nbval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nbops import registry
    from nbops.config import load_config

    for key in [k for k in os.environ if k.startswith(STORE_ENV)]:
        monkeypatch.delenv(key)  # read the course's store as its notebooks did
    course = tmp_path / "course"
    shutil.copytree(COURSE, course, ignore=shutil.ignore_patterns(*LEFT_BEHIND))
    notebooks = sorted(p.name for p in course.glob("[0-9][0-9]_*.ipynb"))
    assert notebooks[: len(FIRST)] == FIRST

    passes(course, notebooks)
    assert (course / "mlflow.db").is_file()  # the course's own store, in its folder
    assert (course / ".git").is_dir() and (course / ".github/workflows/weather.yml").is_file()
    # 04 registered v1; 05's renamed column stopped before training (nothing registered), its
    # summer batch drifted and passed the gate (v2), and the rollback made v1 champion again.
    # 06: the monitor's triggers retrained (v3, served), and the rollback made v1 champion again.
    versions = {v.version: v for v in registry.list_versions(load_config(course), "weather")}
    assert sorted(versions) == [1, 2, 3]
    assert versions[1].aliases == ["champion"] and versions[2].aliases == []
    assert versions[2].tags["nbops.validation.data"] == "drift"
    assert versions[2].tags["nbops.gate.decision"] == "passed"
    assert versions[3].tags["nbops.gate.decision"] == "passed"
    assert versions[1].tags["nbops.monitor.status"] == "drift, degraded"  # what 06's monitor saw
    assert not (course / ".nbops" / "serve" / "weather" / "server.json").exists()  # stopped
    assert all(ok for ok, _ in level_1_items(course).values())

    passes(course, RERUN)
    items = level_1_items(course)
    assert all(ok for ok, _ in items.values()), items
    assert items["pipeline"][1].endswith("course/weather.ipynb"), items["pipeline"]
