"""Reading tagged notebooks into steps: what users see as their pipeline's shape, and the
errors (naming the cell and the fix) they get for tags that cannot work."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from nbops.errors import NotebookError, UsageError
from nbops.notebook.parse import parse_notebook

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def write(path: Path, *cells: tuple[str, ...] | str) -> Path:
    """A notebook from ("code", *tags) tuples; a plain string is a markdown cell."""
    nodes = []
    for cell in cells:
        if isinstance(cell, str):
            nodes.append(new_markdown_cell(cell))
        else:
            source, *tags = cell
            nodes.append(new_code_cell(source, metadata={"tags": tags} if tags else {}))
    nbformat.write(new_notebook(cells=nodes), path)
    return path


def names(plan) -> list[str]:
    return [step.name for step in plan.steps]


def numbers(cells) -> list[int]:
    return [cell.index + 1 for cell in cells]


def test_three_steps_fixture() -> None:
    plan = parse_notebook(NOTEBOOKS / "promote_three_steps.ipynb")
    assert plan.name == "promote_three_steps"
    assert names(plan) == ["load", "train", "evaluate"]
    assert plan.parameters == {"test_size": 0.25, "n_estimators": 10}
    assert numbers([plan.parameters_cell]) == [2]
    assert numbers(plan.setup) == [3]
    assert numbers(plan.skipped) == [6]
    load = plan.step("load")
    # the title and "## Load" markdown travel with the step; the untagged cell 7 joins it
    assert numbers(load.cells) == [1, 4, 5, 7]
    assert [c.kind for c in load.cells] == ["markdown", "markdown", "code", "code"]
    assert "## Load" not in load.code and 'df["target"]' in load.code
    assert numbers(plan.step("evaluate").cells) == [9, 10]  # the metrics cell stays in its step


def test_kale_notebook(tmp_path: Path) -> None:
    plan = parse_notebook(NOTEBOOKS / "promote_kale_style.ipynb")
    assert names(plan) == ["load", "train_a", "train_b", "compare"]  # block: is step:
    # the untagged cell below `imports` joins the setup, as it does in Kale
    assert numbers(plan.setup) == [1, 2, 3]
    assert plan.parameters == {"n": 5, "seed": 1}
    assert plan.step("compare").explicit_upstream == ["train_a", "train_b"]
    assert plan.step("train_b").ignored_tags == ["limit:nvidia.com/gpu:1"]
    assert numbers(plan.metrics_cells) == [10] and numbers(plan.skipped) == [9]
    assert any("limit:nvidia.com/gpu:1" in note and "ignored" in note for note in plan.notes)


def test_no_step_tags_make_one_step_named_after_the_notebook_with_a_note() -> None:
    plan = parse_notebook(NOTEBOOKS / "promote_no_tags.ipynb")
    assert names(plan) == ["promote_no_tags"]
    assert numbers(plan.setup) == [2]  # an imports-only cell before any step is setup
    assert any("one step" in note for note in plan.notes)


def test_headings_split_at_h2_and_sections_without_code_join_the_previous_step() -> None:
    plan = parse_notebook(NOTEBOOKS / "promote_no_tags.ipynb", split="headings")
    assert names(plan) == ["load_data", "transform", "report"]
    assert numbers(plan.step("load_data").cells) == [1, 3, 4]
    assert numbers(plan.step("report").cells) == [7, 8, 9]  # "## Notes" has no code


def test_tags_win_over_headings(tmp_path: Path) -> None:
    path = write(tmp_path / "nb.ipynb", "## First", ("a = 1", "step:one"), "## Second", ("b = a",))
    plan = parse_notebook(path, split="headings")
    assert names(plan) == ["one"]
    assert any("step: tags" in note for note in plan.notes)


def test_untagged_code_before_the_first_step_forms_a_prepare_step(tmp_path: Path) -> None:
    path = write(tmp_path / "nb.ipynb", ("import os",), ("raw = 1",), ("x = raw", "step:train"))
    plan = parse_notebook(path)
    assert names(plan) == ["prepare", "train"]
    assert numbers(plan.step("prepare").cells) == [2]
    assert any("'prepare'" in note and "before the first step" in note for note in plan.notes)


def test_implicit_step_name_does_not_clash_with_a_tagged_prepare(tmp_path: Path) -> None:
    path = write(tmp_path / "nb.ipynb", ("raw = 1",), ("x = raw", "step:prepare"))
    assert names(parse_notebook(path)) == ["prepare_2", "prepare"]


def test_track_magic_and_load_ext_are_stripped_other_magics_kept(tmp_path: Path) -> None:
    path = write(
        tmp_path / "nb.ipynb",
        ("%load_ext nbops\nimport os", "setup"),
        ("%%track --metrics acc\nacc = 0.9\n!echo hi\n%time x = 1", "step:train"),
        ("%load_ext nbops",),
    )
    plan = parse_notebook(path)
    assert plan.setup[0].source == "import os"
    assert plan.step("train").cells[0].source == "acc = 0.9\n!echo hi\n%time x = 1"
    assert numbers(plan.step("train").cells) == [2]  # the cell left empty is dropped
    assert any("%%track" in note for note in plan.notes)


def test_step_names_are_lowercased(tmp_path: Path) -> None:
    path = write(tmp_path / "nb.ipynb", ("a = 1", "step:Load_Data"))
    assert names(parse_notebook(path)) == ["load_data"]


def test_unknown_tags_are_ignored_with_a_note(tmp_path: Path) -> None:
    path = write(tmp_path / "nb.ipynb", ("a = 1", "step:one", "hide-input", "Skip"))
    plan = parse_notebook(path)
    assert names(plan) == ["one"]
    notes = "\n".join(plan.notes)
    assert "'hide-input'" in notes and "did you mean 'skip'" in notes


def test_bad_step_name_names_the_cell_and_the_fix() -> None:
    with pytest.raises(NotebookError) as err:
        parse_notebook(NOTEBOOKS / "promote_bad_step_name.ipynb")
    text = str(err.value)
    assert "promote_bad_step_name.ipynb" in text
    assert "cell 2 ('y = x + 1')" in text and "'../x'" in text
    assert "fix: use lower-case letters" in text and "step:x" in text


@pytest.mark.parametrize("tag", ["step:a b", "step:", "block:", "step:" + "x" * 41, "prev:../up"])
def test_other_bad_step_names(tmp_path: Path, tag: str) -> None:
    path = write(tmp_path / "nb.ipynb", ("a = 1", "step:one"), ("b = 2", tag))
    with pytest.raises(NotebookError, match=r"cell 2 \('b = 2'\)") as err:
        parse_notebook(path)
    assert "lower-case letters" in err.value.fix


def test_duplicate_step_names(tmp_path: Path) -> None:
    path = write(tmp_path / "nb.ipynb", ("a = 1", "step:load"), ("b = 2", "step:Load"))
    with pytest.raises(NotebookError, match=r"cell 2 .*already started by cell 1") as err:
        parse_notebook(path)
    assert "own name" in err.value.fix


def test_duplicate_headings(tmp_path: Path) -> None:
    path = write(tmp_path / "nb.ipynb", "## Plot", ("a = 1",), "## Plot", ("b = a",))
    with pytest.raises(NotebookError, match=r"cell 3 .*step 'plot' is already started by cell 1"):
        parse_notebook(path, split="headings")


def test_conflicting_tags(tmp_path: Path) -> None:
    path = write(tmp_path / "nb.ipynb", ("a = 1", "step:one", "skip"))
    with pytest.raises(NotebookError, match="conflicting tags") as err:
        parse_notebook(path)
    assert "keep one" in err.value.fix


def test_nonliteral_parameters_name_the_line_and_the_fix() -> None:
    with pytest.raises(NotebookError) as err:
        parse_notebook(NOTEBOOKS / "promote_nonliteral_parameters.ipynb")
    text = str(err.value)
    assert "cell 1 ('base = 10')" in text and "`epochs = base * 2`" in text
    assert "move computed values out of the parameters cell" in text
    assert err.value.line == "epochs = base * 2"


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("size = (1, 2)", "a tuple cannot be a parameter"),
        ("a, b = 1, 2", "not a literal assignment"),
        ("print('hi')", "not a literal assignment"),
        ("%config x", "not Python"),
    ],
)
def test_parameters_must_be_plain_literals(tmp_path: Path, source: str, problem: str) -> None:
    path = write(tmp_path / "nb.ipynb", (source, "parameters"), ("x = 1", "step:one"))
    with pytest.raises(NotebookError, match=problem):
        parse_notebook(path)


def test_parameters_keep_literal_types(tmp_path: Path) -> None:
    source = "lr: float = 0.1\nlayers = [64, 32]\nopts = {'a': None, 'b': True}\nname = 'rf'"
    path = write(tmp_path / "nb.ipynb", (source, "parameters"), ("x = lr", "step:one"))
    assert parse_notebook(path).parameters == {
        "lr": 0.1,
        "layers": [64, 32],
        "opts": {"a": None, "b": True},
        "name": "rf",
    }


def test_two_parameters_cells(tmp_path: Path) -> None:
    path = write(tmp_path / "nb.ipynb", ("a = 1", "parameters"), ("b = 2", "pipeline-parameters"))
    with pytest.raises(NotebookError, match=r"cell 2 .*second parameters cell"):
        parse_notebook(path)


def test_invalid_json_names_the_file_and_the_fix() -> None:
    with pytest.raises(NotebookError) as err:
        parse_notebook(NOTEBOOKS / "promote_invalid.ipynb")
    assert "promote_invalid.ipynb" in str(err.value) and "invalid JSON" in str(err.value)
    assert "Jupyter notebook" in err.value.fix


@pytest.mark.parametrize("text", ['["not", "a", "notebook"]', '{"cells": 5}'])
def test_json_that_is_not_a_notebook(tmp_path: Path, text: str) -> None:
    path = tmp_path / "x.ipynb"
    path.write_text(text)
    with pytest.raises(NotebookError, match=r"x\.ipynb: not a notebook"):
        parse_notebook(path)


def test_missing_notebook(tmp_path: Path) -> None:
    with pytest.raises(NotebookError, match="no such notebook"):
        parse_notebook(tmp_path / "nope.ipynb")


def test_nothing_to_run(tmp_path: Path) -> None:
    path = write(tmp_path / "nb.ipynb", ("a = 1", "parameters"), ("b = 2", "skip"))
    with pytest.raises(NotebookError, match="no code to run"):
        parse_notebook(path)


def test_unknown_split_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown split"):
        parse_notebook(NOTEBOOKS / "promote_three_steps.ipynb", split="cells")
