"""Which variables, parameters and files flow between steps: what each emitted step loads,
saves and depends on, and the errors for notebooks whose steps cannot run on their own."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from nbops.errors import NotebookError
from nbops.notebook.dataflow import infer_dataflow
from nbops.notebook.parse import parse_notebook
from nbops.notebook.plan import Plan

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def plan_of(tmp_path: Path, *cells: tuple[str, ...]) -> Plan:
    """Dataflow of a notebook made of (source, *tags) code cells."""
    nodes = [
        new_code_cell(source, metadata={"tags": tags} if tags else {}) for source, *tags in cells
    ]
    path = tmp_path / "nb.ipynb"
    nbformat.write(new_notebook(cells=nodes), path)
    return infer_dataflow(parse_notebook(path))


def inputs(plan: Plan, step: str) -> list[tuple[str, str]]:
    return [(a.name, a.producer) for a in plan.step(step).inputs]


def test_three_steps(tmp_path: Path) -> None:
    shutil.copy(NOTEBOOKS / "promote_three_steps.ipynb", tmp_path / "nb.ipynb")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("a,target\n1,0\n")
    plan = infer_dataflow(parse_notebook(tmp_path / "nb.ipynb"))
    load, train, evaluate = plan.steps
    assert load.files == ["data/train.csv"]
    assert load.outputs == ["X", "y"] and load.inputs == []
    assert inputs(plan, "train") == [("X", "load"), ("y", "load")]
    assert train.params == ["test_size", "n_estimators"]
    assert sorted(train.outputs) == ["X_test", "model", "y_test"]
    assert sorted(inputs(plan, "evaluate")) == [
        ("X_test", "train"),
        ("model", "train"),
        ("y_test", "train"),
    ]
    assert [s.upstream for s in plan.steps] == [[], ["load"], ["train"]]
    assert evaluate.metrics == ["accuracy"] and plan.metrics == ["accuracy"]
    assert evaluate.outputs == []  # `pred` is used only where it is computed


def test_setup_names_are_never_artifacts() -> None:
    plan = infer_dataflow(parse_notebook(NOTEBOOKS / "promote_three_steps.ipynb"))
    loaded = {a.name for step in plan.steps for a in step.inputs}
    assert not loaded & {"pd", "train_test_split", "RandomForestClassifier", "accuracy_score"}
    assert plan.step("load").files == []  # the csv does not exist next to this copy


def test_kale_fan_out_fan_in_and_printed_metrics() -> None:
    plan = infer_dataflow(parse_notebook(NOTEBOOKS / "promote_kale_style.ipynb"))
    assert inputs(plan, "train_a") == [("data", "load")]
    assert inputs(plan, "train_b") == [("data", "load")]  # `v` in the comprehension is local
    assert plan.step("load").outputs == ["data"] and plan.step("load").params == ["n"]
    assert plan.step("compare").upstream == ["train_a", "train_b"]
    assert plan.metrics == ["score_a", "score_b"]
    assert plan.step("train_a").metrics == ["score_a"]
    assert plan.step("train_b").metrics == ["score_b"]
    assert all(
        not step.inputs or "score" not in {a.name for a in step.inputs} for step in plan.steps
    )


def test_artifacts_come_from_the_latest_earlier_definer(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        ("x = 1", "step:a"),
        ("x = x + 1", "step:b"),
        ("y = 3", "step:c"),
        ("print(x, y)", "step:d"),
    )
    assert inputs(plan, "b") == [("x", "a")]
    assert inputs(plan, "d") == [("x", "b"), ("y", "c")]
    assert plan.step("a").outputs == ["x"] and plan.step("b").outputs == ["x"]
    assert plan.step("d").upstream == ["b", "c"]


def test_in_place_changes_count_as_redefinitions(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        ("def make():\n    return []\n\ndef load():\n    return {}", "setup"),
        ("clf = make()\ndf = load()", "step:a"),
        ("clf.fit(df)\ndf['b'] = 1", "step:b"),
        ("print(clf, df)", "step:c"),
    )
    assert inputs(plan, "c") == [("clf", "b"), ("df", "b")]


def test_locals_loop_and_with_targets_are_not_inputs(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        ("i = 0\nfh = None\nerr = None\ntmp = 1", "step:a"),
        (
            "def f(a):\n    tmp = a\n    return tmp\n"
            "for i in range(3):\n    f(i)\n"
            "with open('x.txt') as fh:\n    pass\n"
            "try:\n    pass\nexcept ValueError as err:\n    print(err)\n"
            "squares = [k * k for k in range(3)]",
            "step:b",
        ),
    )
    assert plan.step("b").inputs == [] and plan.step("a").outputs == []


def test_functions_in_a_step_may_use_names_bound_later_in_it(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, ("def predict(x):\n    return model(x)\nmodel = abs", "step:a"))
    assert plan.step("a").inputs == []


def test_ipython_syntax_is_read_as_ipython_runs_it(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        ("files = !ls\n%matplotlib inline\nn = len(files)", "step:a"),
        ("%%time\ntotal = n * 2", "step:b"),
        ("%%bash\necho $x", "step:c"),
    )
    assert inputs(plan, "b") == [("n", "a")]
    assert any("%%bash" in note for note in plan.notes)


def test_undefined_name_names_the_cell_the_step_and_the_fix() -> None:
    with pytest.raises(NotebookError) as err:
        infer_dataflow(parse_notebook(NOTEBOOKS / "promote_undefined_name.ipynb"))
    text = str(err.value)
    assert "cell 3 ('total = sum(data + extra)')" in text
    assert "`extra`" in text and "step 'train'" in text and "tagged skip" in text
    assert "define it in an earlier step or a setup cell" in err.value.fix
    assert (err.value.name, err.value.step) == ("extra", "train")


def test_undefined_name_defined_by_a_later_step(tmp_path: Path) -> None:
    with pytest.raises(NotebookError, match="defined later, in step 'b'"):
        plan_of(tmp_path, ("y = x", "step:a"), ("x = 1", "step:b"))


def test_modules_imported_in_a_step_are_not_passed_on(tmp_path: Path) -> None:
    with pytest.raises(NotebookError, match="`json` is imported in step 'a'") as err:
        plan_of(tmp_path, ("import json", "step:a"), ("s = json.dumps(1)", "step:b"))
    assert "setup" in err.value.fix


def test_star_imports_turn_off_undefined_name_errors(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, ("from math import *", "setup"), ("r = sqrt(2)", "step:a"))
    assert plan.step("a").inputs == []
    assert any("import *" in note for note in plan.notes)


def test_prev_cycle_names_the_cycle_and_the_tag_to_remove() -> None:
    with pytest.raises(NotebookError) as err:
        infer_dataflow(parse_notebook(NOTEBOOKS / "promote_prev_cycle.ipynb"))
    text = str(err.value)
    assert "cycle" in text and "train -> evaluate -> train" in text
    assert "cell 2 ('model = sum(data)')" in text
    assert "remove the prev:evaluate tag" in err.value.fix


def test_prev_to_an_unknown_step(tmp_path: Path) -> None:
    with pytest.raises(NotebookError, match=r"cell 2 .*prev:tran names no step") as err:
        plan_of(tmp_path, ("a = 1", "step:train"), ("b = 2", "step:test", "prev:tran"))
    assert "train" in err.value.fix


def test_forward_prev_reorders_the_steps(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, ("a = 1", "step:one", "prev:two"), ("b = 2", "step:two"))
    assert [s.name for s in plan.steps] == ["two", "one"]
    assert plan.step("one").upstream == ["two"]
    assert any("reorder" in note for note in plan.notes)


def test_parameters_a_step_reads(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        ("lr = 0.1\nepochs = 3", "parameters"),
        ("steps = epochs * 10", "step:a"),
        ("lr = 0.2", "step:b"),
    )
    assert plan.step("a").params == ["epochs"] and plan.step("a").inputs == []
    assert any("reassigns the parameter `lr`" in note for note in plan.notes)


def test_printed_metrics_must_be_print_lines(tmp_path: Path) -> None:
    with pytest.raises(NotebookError, match=r"`acc \+ 1` is not print\(name\)"):
        plan_of(tmp_path, ("acc = 0.9", "step:a"), ("acc + 1", "pipeline-metrics"))


def test_syntax_errors_name_the_cell(tmp_path: Path) -> None:
    with pytest.raises(NotebookError, match=r"cell 1 \('x = \(1'\): not valid Python"):
        plan_of(tmp_path, ("x = (1", "step:a"))


def test_setup_files_are_dependencies_of_every_step(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("a: 1\n")
    (tmp_path / "data").mkdir()
    plan = plan_of(
        tmp_path,
        ("CONFIG = open('config.yaml').read()", "setup"),
        ("rows = open('data/missing.csv')\nfolder = 'data/'", "step:a"),
        ("tmp = '/tmp/'\nup = '../'\nn = len(rows)", "step:b"),
    )
    assert plan.step("a").files == ["data", "config.yaml"]
    assert plan.step("b").files == ["config.yaml"]  # folders outside the notebook's are not


def test_importing_the_package_does_not_import_nbformat_or_ipython() -> None:
    code = (
        "import sys, nbops.notebook.parse, nbops.notebook.dataflow; "
        "print(sorted({'nbformat', 'IPython'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_imports_under_the_first_heading_move_to_setup_when_a_later_step_uses_them(
    tmp_path: Path,
) -> None:
    nodes = [
        nbformat.v4.new_markdown_cell("## Load"),
        new_code_cell("import json\nimport math"),
        new_code_cell("values = [1.0, 4.0]"),
        nbformat.v4.new_markdown_cell("## Imports only"),
        new_code_cell("import statistics"),
        nbformat.v4.new_markdown_cell("## Report"),
        new_code_cell("roots = [math.sqrt(v) for v in values]\nprint(json.dumps(roots))"),
        new_code_cell("mean = statistics.mean(roots)"),
    ]
    nbformat.write(new_notebook(cells=nodes), tmp_path / "nb.ipynb")
    plan = infer_dataflow(parse_notebook(tmp_path / "nb.ipynb", split="headings"))
    assert [c.index + 1 for c in plan.setup] == [2, 5]
    assert [s.name for s in plan.steps] == ["load", "report"]  # "imports only" had no other code
    assert [c.index + 1 for c in plan.step("report").cells] == [4, 6, 7, 8]
    assert any("cell 2 ('import json') only imports" in note for note in plan.notes)
    assert inputs(plan, "report") == [("values", "load")]


def test_models_fitted_in_a_loop_are_saved_by_the_step_that_fits_them(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        ("from sklearn.linear_model import Lasso, Ridge", "setup"),
        ("models = {'a': Ridge(), 'b': Lasso()}\nX, y = [[0], [1]], [0, 1]", "step:make"),
        ("for name, m in models.items():\n    m.fit(X, y)", "step:fit"),
        ("best = models['a']", "step:pick"),
    )
    assert inputs(plan, "pick") == [("models", "fit")]
