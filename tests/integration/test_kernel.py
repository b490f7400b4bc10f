"""The issue's acceptance, through a real Jupyter kernel: fixture notebooks executed by
papermill/nbclient against a SQLite MLflow store in tmp_path."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import papermill
import pytest
from mlflow.tracking import MlflowClient
from nbclient import NotebookClient

from nbops.config import Config

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"
pytestmark = pytest.mark.kernel


def all_runs(config: Config) -> list:
    client = MlflowClient(tracking_uri=config.tracking_uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids, order_by=["attributes.start_time ASC"]) if ids else []


def execute(project: Path, name: str, **parameters: object) -> nbformat.NotebookNode:
    source = project / name
    shutil.copyfile(NOTEBOOKS / name, source)
    out = project / f"out_{len(list(project.glob('out_*')))}_{name}"
    return papermill.execute_notebook(
        str(source),
        str(out),
        parameters=parameters,
        cwd=str(project),
        kernel_name="python3",
        progress_bar=False,
    )


def frame_digest(run: object) -> str:
    [frame] = [d.dataset for d in run.inputs.dataset_inputs if d.dataset.name == "frame"]  # type: ignore[attr-defined]
    return frame.digest


def test_wine_training_cell_through_a_kernel(project: Path, config: Config) -> None:
    execute(project, "track_wine_training.ipynb")
    [run] = all_runs(config)
    assert run.info.status == "FINISHED" and run.info.run_name == "wine-forest"
    assert run.data.params["n_estimators"] == "20"
    assert run.data.params["max_depth"] == "4" and "model.max_depth" not in run.data.params
    assert run.data.metrics["accuracy"] > 0.8
    frame_fp = frame_digest(run)

    execute(project, "track_wine_training.ipynb")
    execute(project, "track_wine_training.ipynb", edit_last_row=True)
    runs = all_runs(config)
    assert len(runs) == 3
    assert frame_digest(runs[1]) == frame_fp
    assert frame_digest(runs[2]) != frame_fp  # the last row edited
    assert not [r for r in runs if r.info.status == "RUNNING"]


def test_raising_cell_through_a_kernel(project: Path, config: Config) -> None:
    source = project / "raising.ipynb"
    shutil.copyfile(NOTEBOOKS / "track_raising_cell.ipynb", source)
    nb = nbformat.read(source, as_version=4)
    NotebookClient(
        nb, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(project)}}
    ).execute()
    errors = [o for o in nb.cells[1].outputs if o.output_type == "error"]
    assert [(e.ename, e.evalue) for e in errors] == [("ValueError", "column price is missing")]
    assert "the kernel is still usable" in nb.cells[2].outputs[0].text
    [run] = all_runs(config)
    assert run.info.status == "FAILED"
    assert run.data.tags["nbops.error"] == "ValueError: column price is missing"
    assert run.data.params["learning_rate"] == "0.1"
