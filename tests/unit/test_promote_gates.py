"""Promote adds the gates: validate_data before the steps that read data, validate_model after
the evaluation, the holdout and the model saved by the step that makes them."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_notebook

from nbops.errors import NotebookError
from nbops.promote import promote

ONE_STEP = """\
import pandas as pd
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_absolute_error
df = pd.read_csv("data/d.csv")
X_train, X_test, y_train, y_test = df[["a"]][:6], df[["a"]][6:], df["y"][:6], df["y"][6:]
reg = LinearRegression().fit(X_train, y_train)
pred = reg.predict(X_test)
mae = mean_absolute_error(y_test, pred)
"""


def _notebook(folder: Path, *cells: tuple[str, str]) -> Path:
    (folder / "data").mkdir(parents=True, exist_ok=True)
    rows = "\n".join(f"{i},{2 * i + 1}" for i in range(10))
    (folder / "data/d.csv").write_text("a,y\n" + rows + "\n")
    nb = new_notebook(cells=[new_code_cell(src, metadata={"tags": [tag]}) for src, tag in cells])
    path = folder / "model.ipynb"
    nbformat.write(nb, path)
    return path


def test_a_single_step_saves_what_the_gate_loads(tmp_path: Path) -> None:
    out = promote(_notebook(tmp_path, (ONE_STEP, "step:fit"))).out_dir
    stages = yaml.safe_load((out / "dvc.yaml").read_text())["stages"]
    assert list(stages) == ["validate_data", "fit", "validate_model"]
    assert stages["fit"]["outs"] == ["artifacts/fit"]  # the gate reads the model and holdout
    assert "metrics/validate_data.json" in stages["fit"]["deps"]
    gate_stage = stages["validate_model"]
    assert gate_stage["cmd"] == "nbops validate model" and gate_stage["always_changed"] is True
    assert gate_stage["deps"] == ["artifacts/fit", "metrics/fit.json"]
    gate = yaml.safe_load((out / "params.yaml").read_text())["gate"]
    assert gate["metric"] == "mae" and gate["greater_is_better"] is False
    assert gate["evaluate"] == {
        "function": "mean_absolute_error",
        "model": "fit/reg",
        "X": "fit/X_test",
        "y": "fit/y_test",
        "method": "predict",
    }
    load_cell = (out / "steps/01_fit.ipynb").read_text()
    for var in ("reg", "X_test", "y_test"):
        assert var in load_cell


def test_no_evaluation_means_no_model_gate_and_a_note(tmp_path: Path) -> None:
    source = 'import pandas as pd\ndf = pd.read_csv("data/d.csv")\nn = len(df)'
    result = promote(_notebook(tmp_path, (source, "step:count")))
    stages = yaml.safe_load((result.out_dir / "dvc.yaml").read_text())["stages"]
    assert list(stages) == ["validate_data", "count"]
    assert any("no model gate" in note for note in result.notes)


def test_a_step_named_like_a_gate_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NotebookError, match="validate_model") as refused:
        promote(_notebook(tmp_path, ("x = 1", "step:validate_model")))
    assert "rename" in (refused.value.fix or "")


def test_the_workflow_is_written_once_and_a_hand_edit_is_kept(tmp_path: Path) -> None:
    notebook = _notebook(tmp_path, (ONE_STEP, "step:fit"))
    promote(notebook)
    workflow = tmp_path / ".github/workflows/model.yml"
    assert "nbops retrain" in workflow.read_text()
    workflow.write_text(workflow.read_text() + "# mine\n")
    again = promote(notebook)
    assert workflow.read_text().endswith("# mine\n")
    assert any("kept" in note and "model.yml" in note for note in again.notes)


def test_monitor_thresholds_are_written_with_the_gate(tmp_path: Path) -> None:
    from nbops.monitor.config import MonitorConfig

    out = promote(_notebook(tmp_path, (ONE_STEP, "step:fit"))).out_dir
    params = yaml.safe_load((out / "params.yaml").read_text())
    assert MonitorConfig.from_params(params) == MonitorConfig()  # the defaults, spelled out
    assert "deploy" not in params and "deploy" not in (out / "dvc.yaml").read_text()


def test_deploy_adds_a_stage_after_the_gate_and_promoting_again_keeps_it(tmp_path: Path) -> None:
    notebook = _notebook(tmp_path, (ONE_STEP, "step:fit"))
    out = promote(notebook, deploy=True).out_dir
    stages = yaml.safe_load((out / "dvc.yaml").read_text())["stages"]
    assert list(stages) == ["validate_data", "fit", "validate_model", "deploy"]
    assert stages["deploy"] == {
        "cmd": "nbops deploy",
        "deps": ["metrics/validate_model.json"],
        "params": ["deploy"],
        "metrics": [{"metrics/deploy.json": {"cache": False}}],
        "always_changed": True,
    }
    assert yaml.safe_load((out / "params.yaml").read_text())["deploy"] == {"command": None}
    promote(notebook)  # no flag: the folder's choice stands
    assert "deploy" in yaml.safe_load((out / "dvc.yaml").read_text())["stages"]
    promote(notebook, deploy=False)
    assert "deploy" not in yaml.safe_load((out / "dvc.yaml").read_text())["stages"]


def test_deploy_without_a_model_gate_is_a_note(tmp_path: Path) -> None:
    source = ONE_STEP.replace("mae = mean_absolute_error(y_test, pred)", "n = len(pred)")
    result = promote(_notebook(tmp_path, (source, "step:fit")), deploy=True)
    assert "deploy" not in (result.out_dir / "dvc.yaml").read_text()
    assert any("no deploy stage" in note for note in result.notes)
