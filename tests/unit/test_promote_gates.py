"""Promote adds the gates: validate_data before the steps that read data, validate_model after
the evaluation, the holdout and the model saved by the step that makes them."""

from __future__ import annotations

import json
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
    assert any("no validate_model stage (the model gate)" in note for note in result.notes)


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


def _stages(out: Path) -> list[str]:
    return list(yaml.safe_load((out / "dvc.yaml").read_text())["stages"])


def _retag(path: Path, cell: int, *tags: str) -> None:
    """Apply a fix the way a user does: add tags to cell ``cell`` (1-based) in Jupyter."""
    nb = nbformat.read(path, as_version=4)
    nb.cells[cell - 1].metadata.setdefault("tags", []).extend(tags)
    nbformat.write(nb, path)


SETUP = """\
import pandas as pd
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score
def forecast(model, X):
    return model.predict(X) * 1.0
"""
UNREAD = """\
import glob
files = sorted(glob.glob("data/*.csv"))
df = pd.read_csv(files[0])
"""
HELPER = """\
reg = LinearRegression().fit(df[["a"]], df["y"])
X_test, y_test = df[["a"]], df["y"]
pred = forecast(reg, X_test)
"""


def test_gates_left_out_are_said_with_the_cell_and_the_fix_that_attaches_them(
    tmp_path: Path,
) -> None:
    score = ("r2 = r2_score(y_test, pred)", "step:score")
    path = _notebook(tmp_path, (SETUP, "setup"), (UNREAD, "step:load"), (HELPER, "step:fit"), score)
    result = promote(path)
    assert _stages(result.out_dir) == ["load", "fit", "score"]
    data_note = next(n for n in result.notes if n.startswith("no validate_data stage"))
    assert "cell 2 ('import glob')" in data_note and "`pd.read_csv(files[0])`" in data_note
    assert "tag cell 2 `data:data/d.csv`" in data_note
    model_note = next(n for n in result.notes if n.startswith("no validate_model stage"))
    assert "cell 4 ('r2 = r2_score(y_test, pred)')" in model_note
    assert "`pred` comes from `forecast(reg, X_test)`" in model_note
    assert "tag cell 4 `model:reg`" in model_note
    manifest = json.loads((result.out_dir / ".nbops-promote.json").read_text())
    assert set(manifest["missing_gates"]) == {"validate_data", "validate_model"}

    _retag(path, 2, "data:data/d.csv")  # the fixes, as printed
    _retag(path, 4, "model:reg")
    again = promote(path)
    assert _stages(again.out_dir) == ["validate_data", "load", "fit", "score", "validate_model"]
    gate = yaml.safe_load((again.out_dir / "params.yaml").read_text())["gate"]
    assert gate["evaluate"]["model"] == "fit/reg" and gate["evaluate"]["X"] == "fit/X_test"
    manifest = json.loads((again.out_dir / ".nbops-promote.json").read_text())
    assert manifest["missing_gates"] == {}


def test_an_evaluation_the_installed_sklearn_cannot_run_is_said_at_promote(tmp_path: Path) -> None:
    import inspect

    from sklearn.metrics import mean_squared_error

    if "squared" in inspect.signature(mean_squared_error).parameters:
        pytest.skip("this scikit-learn still accepts squared=")
    rmse = ONE_STEP.replace(
        "mae = mean_absolute_error(y_test, pred)",
        "from sklearn.metrics import mean_squared_error\n"
        "rmse = mean_squared_error(y_test, pred, squared=False)",
    )
    result = promote(_notebook(tmp_path, (rmse, "step:fit")))
    note = next(n for n in result.notes if "squared=False" in n)
    assert note.startswith("cell 1 (") and "has no `squared`" in note
    assert "root_mean_squared_error" in note
    gate = yaml.safe_load((result.out_dir / "params.yaml").read_text())["gate"]
    assert gate["evaluate"]["function"] == "root_mean_squared_error"
    assert "kwargs" not in gate["evaluate"]

    odd = ONE_STEP.replace("mean_absolute_error(y_test, pred)", "r2_score(y_test, pred, adj=1)")
    result = promote(
        _notebook(
            tmp_path / "odd", (odd.replace("mean_absolute_error\n", "r2_score\n"), "step:fit")
        )
    )
    note = next(n for n in result.notes if n.startswith("no validate_model stage"))
    assert "has no `adj`" in note and "sample_weight" in note


def test_a_data_folder_gets_a_contract_per_table(tmp_path: Path) -> None:
    source = (
        "import pandas as pd\nimport os\nDATA = 'data/'\n"
        "frames = [pd.read_csv(DATA + f) for f in sorted(os.listdir(DATA))]"
    )
    path = _notebook(tmp_path, (source, "step:load"))
    (tmp_path / "data" / "e.csv").write_text("b\n1\n2\n")
    out = promote(path).out_dir
    schema = (out / "schema.yaml").read_text()
    assert "data/d.csv" in schema and "data/e.csv" in schema
    stages = yaml.safe_load((out / "dvc.yaml").read_text())["stages"]
    assert stages["validate_data"]["deps"][:2] == ["data/d.csv", "data/e.csv"]
    assert "metrics/validate_data.json" in stages["load"]["deps"]  # it reads the folder


@pytest.mark.parametrize(
    ("fixture", "dataset", "split", "evaluate"),
    [  # written the way people write them: imports with warnings.filterwarnings under the first
        # heading, a path constant, a metric printed, a second model reusing `y_pred`
        ("messy_wine_headings", "wine", "headings", ("accuracy_score", "modeling/lr")),
        # os.getcwd() + os.path.join in a function's default, a loop over alphas, `** 0.5`
        ("messy_diabetes", "diabetes", "tags", ("r2_score", "messy_diabetes/final")),
    ],
)
def test_messy_notebooks_keep_both_gates(
    tmp_path: Path, fixture: str, dataset: str, split: str, evaluate: tuple[str, str]
) -> None:
    import shutil

    from sklearn import datasets

    (tmp_path / "data").mkdir()
    frame = getattr(datasets, f"load_{dataset}")(as_frame=True).frame
    frame.to_csv(tmp_path / "data" / f"{dataset}.csv", index=False)
    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    shutil.copy(notebooks / f"{fixture}.ipynb", tmp_path)
    result = promote(tmp_path / f"{fixture}.ipynb", split=split)
    assert not [n for n in result.notes if n.startswith("no validate_")], result.notes
    stages = _stages(result.out_dir)
    assert stages[0] == "validate_data" and stages[-1] == "validate_model"
    spec = yaml.safe_load((result.out_dir / "params.yaml").read_text())["gate"]["evaluate"]
    assert (spec["function"], spec["model"]) == evaluate


def test_an_analysis_that_trips_still_promotes_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbops.promote import gates

    def trips(plan: object) -> None:
        raise RecursionError("deep")  # a fault no reasonable notebook causes

    monkeypatch.setattr(gates, "analyse", trips)
    result = promote(_notebook(tmp_path, (ONE_STEP, "step:fit")))
    assert _stages(result.out_dir) == ["validate_data", "fit"]
    note = next(n for n in result.notes if n.startswith("no validate_model stage"))
    assert "could not read how the notebook scores its model (RecursionError)" in note


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
