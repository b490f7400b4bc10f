"""``nbops export airflow`` without Airflow: the tasks, edges and parameters read from a pipeline
folder, the DAG file's text, and the errors. (tests/integration/test_airflow_export.py loads and
runs the DAG in Airflow.)"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
import yaml

from nbops.cli import main
from nbops.errors import NbopsError, UsageError
from nbops.export.airflow import export_airflow, read_tasks, step_notebook

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from pipeline_fixture import build_pipeline, set_param


def add_stage(folder: Path, name: str, stage: dict[str, object]) -> None:
    path = folder / "dvc.yaml"
    data = yaml.safe_load(path.read_text())
    data["stages"][name] = stage
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture
def pipeline(tmp_path: Path) -> Path:
    """load -> features -> train (steps), then a validation stage that is a plain command."""
    folder = build_pipeline(tmp_path / "demo", "nbops step")
    add_stage(
        folder,
        "validate_model",
        {
            "cmd": "nbops validate model",
            "deps": ["artifacts/train/model.joblib", "metrics/train.json"],
            "metrics": [{"metrics/validate_model.json": {"cache": False}}],
        },
    )
    return folder


def test_tasks_edges_and_parameters_come_from_the_pipeline(pipeline: Path) -> None:
    set_param(pipeline, "alpha", 0.25)
    tasks = {t.task_id: t for t in read_tasks(pipeline)}
    assert list(tasks) == ["load", "features", "train", "validate_model"]
    assert {t: task.upstream for t, task in tasks.items()} == {
        "load": (),
        "features": ("load",),
        "train": ("features",),
        "validate_model": ("train",),  # a file inside train's out, and train's metrics
    }
    train = tasks["train"]
    assert train.notebook == "steps/03_train.ipynb" and train.report == "reports/03_train.ipynb"
    assert train.parameters == {"alpha": 0.25}  # only the step's own, from params.yaml
    assert train.kernel == "python3"  # the step notebook's kernelspec
    assert tasks["load"].parameters == {"n_rows": 20}
    check = tasks["validate_model"]
    assert check.notebook is None and check.command == "nbops validate model"


def test_the_dag_file_is_python_with_one_operator_per_stage(pipeline: Path) -> None:
    result = export_airflow(pipeline, kernel="nbops-env", schedule="@daily")
    assert result.out == pipeline / "airflow_dag.py" and result.dag_id == "demo"
    text = result.out.read_text()
    tree = ast.parse(text)
    calls = [
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    ]
    assert calls.count("NbopsStepOperator") == 3 and calls.count("BashOperator") == 1
    assert "class NbopsStepOperator(PapermillOperator)" in text
    assert f"PIPELINE_DIR = Path({str(pipeline)!r})" in text
    assert "schedule='@daily'" in text and "kernel_name='nbops-env'" in text
    assert "parameters={'alpha': 1.0}" in text
    assert "tasks['train'] >> tasks['validate_model']" in text
    imported = {
        name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in (
            [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else [alias.name for alias in node.names]
        )
    }
    assert imported == {"__future__", "os", "datetime", "pathlib", "airflow"}  # not nbops
    edges = [("load", "features"), ("features", "train"), ("train", "validate_model")]
    assert result.edges == edges


def test_workers_path_ids_and_odd_values(pipeline: Path, tmp_path: Path) -> None:
    set_param(pipeline, "scale", float("nan"))  # repr() would write a bare `nan`
    add_stage(pipeline, "report card", {"cmd": ["python make.py", "bash publish.sh"]})
    out = tmp_path / "dags" / "demo.py"
    result = export_airflow(pipeline, out, dag_id="wine-v2", pipeline_dir="/mnt/shared/demo")
    text = out.read_text()
    compile(text, str(out), "exec")
    assert "parameters={'scale': float('nan')}" in text
    assert "PIPELINE_DIR = Path('/mnt/shared/demo')" in text and "dag_id='wine-v2'" in text
    card = result.tasks[-1]
    assert (card.task_id, card.upstream) == ("report_card", ())
    assert card.bash_command == "python make.py && bash publish.sh "  # not a template file


def test_step_commands() -> None:
    assert step_notebook("nbops step steps/01_load.ipynb") == "steps/01_load.ipynb"
    assert step_notebook("python -m nbops.pipeline.step steps/02_a.ipynb") == "steps/02_a.ipynb"
    assert step_notebook("nbops validate data") is None
    assert step_notebook("nbops step a.ipynb && echo done") is None
    assert step_notebook("echo 'unbalanced") is None


def test_refuses_what_it_cannot_export(pipeline: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a promoted pipeline"):
        export_airflow(tmp_path / "nowhere")
    with pytest.raises(UsageError, match="cannot be a DAG id"):
        export_airflow(pipeline, dag_id="wine v2")
    add_stage(pipeline, "many", {"foreach": [1, 2], "do": {"cmd": "echo ${item}"}})
    with pytest.raises(UsageError, match="foreach/matrix") as info:
        export_airflow(pipeline)
    assert info.value.fix and not (pipeline / "airflow_dag.py").exists()


def test_cli(pipeline: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "dag.py"
    assert main(["export", "airflow", str(pipeline), "--out", str(out), "--kernel", "k"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "train (papermill)" in printed
    assert "validate_model (bash)" in printed and "features >> train" in printed
    assert "kernel_name='k'" in out.read_text()
    assert main(["export", "airflow", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "not a promoted pipeline" in err and "fix:" in err and "Traceback" not in err


def test_a_secret_in_params_yaml_is_refused_not_written_into_the_dag(pipeline: Path) -> None:
    set_param(pipeline, "alpha", {"token": "dag-canary-value"})
    with pytest.raises(NbopsError) as info:
        export_airflow(pipeline)
    assert "dag-canary-value" not in str(info.value) and "os.environ" in info.value.fix
    assert not (pipeline / "airflow_dag.py").exists()
