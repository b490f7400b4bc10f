"""Level 0 -> 1 end to end: a tracked notebook is promoted and run, and reproduces its metrics.

Real papermill kernels, real DVC, a SQLite MLflow store in tmp_path; CLI called in-process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest
import yaml
from mlflow.tracking import MlflowClient

from nbops.cli import main
from nbops.config import Config

pytestmark = pytest.mark.kernel

CELLS = [
    ([], "%load_ext nbops"),
    (["parameters"], "n_estimators = 20\nmax_depth = 4\ntest_size = 0.25"),
    (
        ["setup"],
        "import pandas as pd\nfrom sklearn.ensemble import RandomForestClassifier\n"
        "from sklearn.metrics import accuracy_score\n"
        "from sklearn.model_selection import train_test_split",
    ),
    (
        ["step:load"],
        'df = pd.read_csv("data/wine.csv")\nX = df.drop(columns="target")\ny = df["target"]',
    ),
    (
        ["step:train"],
        "X_train, X_test, y_train, y_test = train_test_split(\n"
        "    X, y, test_size=test_size, random_state=0)\n"
        "model = RandomForestClassifier(n_estimators=n_estimators, max_depth=max_depth, "
        "random_state=0)\nmodel.fit(X_train, y_train)",
    ),
    (
        ["step:evaluate"],
        "%%track --params n_estimators,max_depth,test_size\n"
        "accuracy = accuracy_score(y_test, model.predict(X_test))",
    ),
]


def write_project(project: Path) -> Path:
    from sklearn.datasets import load_wine

    (project / "data").mkdir()
    load_wine(as_frame=True).frame.to_csv(project / "data" / "wine.csv", index=False)
    nb = nbformat.v4.new_notebook()
    for tags, source in CELLS:
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path = project / "wine.ipynb"
    nbformat.write(nb, path)
    return path


def stage_states(out: str) -> dict[str, str]:
    return {
        line.split("'")[1]: ("unchanged" if "didn't change" in line else "ran")
        for line in out.splitlines()
        if line.startswith("Stage '") or "Running stage" in line
    }


def test_tracked_notebook_promotes_runs_and_reproduces(
    project: Path,
    config: Config,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    notebook = write_project(project)
    monkeypatch.setenv("NBOPS_NOTEBOOK", str(notebook))
    papermill.execute_notebook(
        str(notebook),
        str(project / "executed.ipynb"),
        cwd=str(project),
        kernel_name="python3",
        progress_bar=False,
    )
    monkeypatch.delenv("NBOPS_NOTEBOOK")

    assert main(["promote", "wine.ipynb", "--check"]) == 0
    out = capsys.readouterr().out
    pipeline = project / "pipelines" / "wine"
    assert "accuracy" in out and "match" in out.lower()
    assert (pipeline / "dvc.yaml").is_file() and (pipeline / "data" / "wine.csv.dvc").is_file()
    for path in pipeline.rglob("*"):  # generated files (executed reports are outputs)
        generated = path.suffix in {".yaml", ".ipynb", ".json", ".md", ".dvc"}
        if path.is_file() and generated and "reports" not in path.parts:
            assert str(project) not in path.read_text(), f"absolute path in {path}"

    client = MlflowClient(tracking_uri=config.tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("wine").experiment_id])
    steps = {
        r.data.tags.get("nbops.step") for r in runs if r.data.tags.get("nbops.source") == "step"
    }
    assert steps == {"load", "train", "evaluate"}
    parents = [r for r in runs if r.data.tags.get("nbops.source") == "pipeline"]
    children = [r for r in runs if r.data.tags.get("nbops.source") == "step"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}

    params = yaml.safe_load((pipeline / "params.yaml").read_text())
    params["max_depth"] = 3
    (pipeline / "params.yaml").write_text(yaml.safe_dump(params))
    assert main(["run", str(pipeline)]) == 0
    out = capsys.readouterr().out
    assert "2 ran, 1 unchanged" in out

    dag = subprocess.run(
        [sys.executable, "-m", "dvc", "dag"],
        cwd=pipeline,
        capture_output=True,
        text=True,
        env=os.environ | {"DVC_NO_ANALYTICS": "1"},
        check=True,
    )
    assert all(name in dag.stdout for name in ("load", "train", "evaluate"))

    elsewhere = project / "copy" / "wine"
    shutil.copytree(
        pipeline,
        elsewhere,
        ignore=shutil.ignore_patterns(".dvc", "artifacts", "reports", "metrics"),
    )
    assert main(["run", str(elsewhere)]) == 0
    assert "3 ran" in capsys.readouterr().out
    assert (elsewhere / "metrics" / "evaluate.json").is_file()
