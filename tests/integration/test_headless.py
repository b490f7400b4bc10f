"""Headless runs are complete (issue 12): when papermill or nbclient returns, MLflow holds every
tracked run, FINISHED, in the notebook's experiment, with the notebook's path.

Each test starts in a fresh folder and reads the store with ``MlflowClient`` only: no nbops call
between the execution and the assertions (nbops' readers would deliver what was left behind).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
from mlflow.tracking import MlflowClient
from nbclient import NotebookClient

from nbops.config import Config

NOTEBOOK = Path(__file__).parent.parent / "notebooks" / "headless_three_tracked_cells.ipynb"
EXPERIMENT = NOTEBOOK.stem
pytestmark = pytest.mark.kernel


def tracked_runs(config: Config) -> list:
    client = MlflowClient(tracking_uri=config.tracking_uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None, [e.name for e in client.search_experiments()]
    return client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])


def papermill_cli(project: Path, out: str) -> None:
    """``papermill nb.ipynb out.ipynb`` as a user types it, in the project folder."""
    papermill = Path(sys.executable).with_name("papermill")
    subprocess.run(
        [str(papermill), NOTEBOOK.name, out, "--kernel", "python3", "--no-progress-bar"],
        cwd=project,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1"},
    )


def assert_complete(config: Config, project: Path, expected: int) -> None:
    runs = tracked_runs(config)
    assert len(runs) == expected
    assert {r.info.status for r in runs} == {"FINISHED"}
    notebook = str(project / NOTEBOOK.name)
    assert {r.data.tags["mlflow.source.name"] for r in runs} == {notebook}
    last = runs[-1]
    assert last.data.params["max_iter"] == "500" and last.data.metrics["accuracy"] > 0.9
    client = MlflowClient(tracking_uri=config.tracking_uri)
    assert client.get_run(last.info.run_id).outputs.model_outputs  # a LoggedModel


def assert_no_leftovers(project: Path, notebooks: set[str]) -> None:
    allowed = {"mlflow.db", "mlartifacts", ".nbops", "pyproject.toml", *notebooks}
    assert {p.name for p in project.iterdir()} - allowed == set()
    assert not list((project / ".nbops").glob("spool/*")), "a record was left undelivered"


def test_papermill_cli_records_every_run_before_it_returns(project: Path, config: Config) -> None:
    shutil.copyfile(NOTEBOOK, project / NOTEBOOK.name)
    papermill_cli(project, "out.ipynb")
    assert_complete(config, project, 3)
    assert_no_leftovers(project, {NOTEBOOK.name, "out.ipynb"})

    papermill_cli(project, "again.ipynb")  # an existing store: the same, three more
    assert_complete(config, project, 6)
    assert_no_leftovers(project, {NOTEBOOK.name, "out.ipynb", "again.ipynb"})


def test_nbclient_records_every_run_before_it_returns(project: Path, config: Config) -> None:
    shutil.copyfile(NOTEBOOK, project / NOTEBOOK.name)
    nb = nbformat.read(project / NOTEBOOK.name, as_version=4)
    NotebookClient(
        nb, kernel_name="python3", resources={"metadata": {"path": str(project)}}
    ).execute()
    assert_complete(config, project, 3)
    assert_no_leftovers(project, {NOTEBOOK.name})


def test_a_spooled_record_keeps_its_identity_when_another_process_delivers_it(
    project: Path, config: Config
) -> None:
    """A process that dies before delivering leaves its record in the spool; `nbops sync`,
    run later from another working directory, writes it where it was made for."""
    (project / "analysis").mkdir()
    (project / "elsewhere").mkdir()
    script = textwrap.dedent(
        """
        import os, nbops
        from nbops.session import default_session
        default_session().writer.submit = lambda entry, *args, **kwargs: None  # never delivered
        with nbops.track("spooled", notebook="churn.ipynb", experiment="churn-study"):
            depth = 7
        with nbops.track("by-notebook", notebook="churn.ipynb"):
            depth = 8
        os._exit(0)  # no exit hook: the records stay in the spool
        """
    )
    (project / "analysis" / "train.py").write_text(script)
    subprocess.run([sys.executable, "train.py"], cwd=project / "analysis", check=True)
    assert len(list((project / ".nbops" / "spool").iterdir())) == 2

    nbops_cli = Path(sys.executable).with_name("nbops")
    done = subprocess.run(
        [str(nbops_cli), "sync"], cwd=project / "elsewhere", capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    client = MlflowClient(tracking_uri=config.tracking_uri)
    notebook = str(project / "analysis" / "churn.ipynb")
    for experiment, name, depth in (("churn-study", "spooled", "7"), ("churn", "by-notebook", "8")):
        found = client.get_experiment_by_name(experiment)
        assert found is not None, f"no experiment {experiment!r}: {done.stdout}"
        [run] = client.search_runs([found.experiment_id])
        assert run.info.run_name == name and run.data.params["depth"] == depth
        assert run.data.tags["mlflow.source.name"] == notebook


def test_a_record_spooled_by_an_older_nbops_still_delivers(project: Path, config: Config) -> None:
    """Records spooled before the run's identity was fixed at capture have no ``store``: the
    deliverer completes them from its own configuration, as before."""
    entry = project / ".nbops" / "spool" / "0123456789abcdef0123456789abcdef"
    entry.mkdir(parents=True)
    old = {
        "record_id": entry.name,
        "name": "old",
        "status": "FINISHED",
        "start": 1.7e9,
        "end": 1.7e9 + 1,
        "params": {"depth": 3},
        "context": {"notebook": None, "project_root": str(project)},
        "schema": 1,
    }
    (entry / "record.json").write_text(json.dumps(old))
    nbops_cli = Path(sys.executable).with_name("nbops")
    done = subprocess.run([str(nbops_cli), "sync"], cwd=project, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    client = MlflowClient(tracking_uri=config.tracking_uri)
    experiment = client.get_experiment_by_name(project.name)  # the project folder's name
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "old" and run.data.params["depth"] == "3"
