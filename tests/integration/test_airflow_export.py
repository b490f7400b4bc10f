"""The exported DAG in a real Airflow (its own virtualenv, ``.venv-airflow``): DagBag loads it
without import errors, with the tasks and edges of the pipeline, and ``airflow tasks test`` runs
a step: papermill executes the step notebook in the pipeline folder, in a kernel of nbops's
environment, with the parameter from params.yaml, and the step's run lands in the MLflow store
named by the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nbops.export.airflow import export_airflow

sys.path.insert(0, str(Path(__file__).parent))
from pipeline_fixture import build_pipeline, set_param
from services import airflow_python

pytestmark = [pytest.mark.airflow, pytest.mark.kernel]

KERNEL = "nbops-airflow-test"
INSPECT = """\
import json, sys
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # Airflow 2
    from airflow.models.dagbag import DagBag
from airflow.providers.papermill.operators.papermill import PapermillOperator

bag = DagBag(sys.argv[1])
tasks = {}
for dag in bag.dags.values():
    for task in dag.tasks:
        step = isinstance(task, PapermillOperator)
        tasks[task.task_id] = {
            "operator": "papermill" if step else type(task).__name__,
            "upstream": sorted(task.upstream_task_ids),
            "parameters": task.parameters if step else None,
            "kernel": task.kernel_name if step else None,
            "cwd": None if step else task.cwd,
        }
print(json.dumps({"errors": {str(k): str(v) for k, v in bag.import_errors.items()},
                  "dags": sorted(bag.dags), "tasks": tasks}))
"""


@pytest.fixture(scope="module")
def airflow() -> Path:
    return airflow_python()


def nbops_kernel(jupyter: Path) -> None:
    """A kernelspec for nbops's own interpreter, so the steps can import nbops."""
    spec = jupyter / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "nbops", "language": "python"})
    )


def run_airflow(python: Path, env: dict[str, str], *args: str) -> str:
    command = [str(python), *args]
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(args[:4])} failed:\n{output[-6000:]}"
    return output


def test_dag_loads_and_a_step_runs(airflow: Path, project: Path, tmp_path: Path) -> None:
    pipeline = build_pipeline(project / "pipelines" / "demo", "nbops step")
    stages = yaml.safe_load((pipeline / "dvc.yaml").read_text())
    check = {"cmd": "nbops validate model", "deps": ["artifacts/train"]}  # not a step: bash
    stages["stages"]["validate_model"] = check
    (pipeline / "dvc.yaml").write_text(yaml.safe_dump(stages, sort_keys=False))
    set_param(pipeline, "n_rows", 12)
    dags = tmp_path / "dags"
    export_airflow(pipeline, dags / "demo.py", kernel=KERNEL)

    nbops_kernel(tmp_path / "jupyter")
    store = f"sqlite:///{tmp_path / 'team.db'}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "NBOPS_"))},
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "JUPYTER_PATH": str(tmp_path / "jupyter"),
        "MLFLOW_TRACKING_URI": store,  # tracking through the workers' environment
    }
    shown = json.loads(run_airflow(airflow, env, "-c", INSPECT, str(dags)).strip().splitlines()[-1])
    assert shown["errors"] == {} and shown["dags"] == ["demo"]
    tasks = shown["tasks"]
    assert {t: v["operator"] for t, v in tasks.items()} == {
        "load": "papermill",
        "features": "papermill",
        "train": "papermill",
        "validate_model": "BashOperator",
    }
    assert {t: v["upstream"] for t, v in tasks.items()} == {
        "load": [],
        "features": ["load"],
        "train": ["features"],
        "validate_model": ["train"],
    }
    assert tasks["load"]["parameters"] == {"n_rows": 12} and tasks["load"]["kernel"] == KERNEL
    assert tasks["validate_model"]["cwd"] == str(pipeline)

    airflow_bin = str(airflow.parent / "airflow")
    run_airflow(airflow, env, airflow_bin, "db", "migrate")
    log = run_airflow(airflow, env, airflow_bin, "tasks", "test", "demo", "load")
    assert (pipeline / "artifacts" / "load" / "df.parquet").is_file(), log[-3000:]
    assert json.loads((pipeline / "metrics" / "load.json").read_text()) == {"rows": 12}
    assert (pipeline / "reports" / "01_load.ipynb").is_file()

    from mlflow.tracking import MlflowClient

    client = MlflowClient(store)
    [run] = client.search_runs([client.get_experiment_by_name("demo").experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["nbops.step"] == "load"
    assert run.data.params["n_rows"] == "12" and run.data.metrics["rows"] == 12
    [df] = [d for d in run.inputs.dataset_inputs if d.dataset.name == "df"]
    assert len(df.dataset.digest) == 32 and df.tags[0].value == "output"
    assert not (project / "mlflow.db").exists()
