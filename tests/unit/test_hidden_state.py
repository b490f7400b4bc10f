"""The hidden-state check (issue 20) in an in-process IPython shell, against saved notebooks:
re-running a cell on its own result, stale values, producers below the reader, executions out
of order, history before ``%load_ext``; and promote's warning about out-of-order outputs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nbops.capture.staleness import Checker
from nbops.capture.state import StateLog, unwatch, watch
from nbops.notebook.order import order_problems, saved_notebook


@pytest.fixture
def sh(project: Path) -> Iterator[Any]:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    unwatch(shell)
    shell.reset()
    yield shell
    unwatch(shell)
    shell.reset()


def save(path: Path, *sources: str, counts: list[int | None] | None = None) -> Path:
    """A notebook whose code cells hold ``sources`` (no cell ids: matched by source)."""
    counts = counts or [None] * len(sources)
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": "# title"},
        *(
            {
                "cell_type": "code",
                "metadata": {},
                "source": src,
                "outputs": [],
                "execution_count": count,
            }
            for src, count in zip(sources, counts, strict=True)
        ),
    ]
    path.write_text(
        json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 4})
    )
    return path


def run(shell: Any, *cells: str) -> None:
    for code in cells:
        assert shell.run_cell(code, store_history=True).error_in_exec is None, code


def kernel_report(log: StateLog, path: Path | None) -> Any:
    return Checker(log, saved_notebook(path)).for_kernel()


LOAD = "import numpy as np\nX = np.arange(100)"
TRIM = "keep = X < np.quantile(X, 0.9)\nX = X[keep]"
TRAIN = "score = X.mean()"


def test_a_cell_run_again_on_its_own_result_is_named_with_where_to_restart(
    sh: Any, project: Path
) -> None:
    path = save(project / "nb.ipynb", LOAD, TRIM, TRAIN)
    log = watch(sh)
    run(sh, LOAD, TRIM, TRAIN, TRIM)  # scroll up, run the trimming cell again
    report = kernel_report(log, path)
    assert [i.variable for i in report.issues] == ["X", "keep", "score"]
    assert report.issues[0].message == (
        "X comes from cell 3 (In [4]), which ran again on its own earlier result (In [2]): X "
        "now depends on how many times that code ran; re-run from cell 2 (or Restart & Run All)"
    )
    assert report.issues[1].message == (
        "keep comes from cell 3 (In [4]), which ran again on its own earlier result (In [2]) "
        "(computed from X): re-run from cell 2 (or Restart & Run All)"
    )
    assert report.issues[2].message.startswith("score comes from cell 4 (In [3]), computed from X")
    assert report.order == ["cell 3 (In [4]) ran after cell 4 (In [3])"]
    assert report.verdict == "hidden state"


def test_a_copy_of_a_cell_applied_again_is_flagged_too(sh: Any, project: Path) -> None:
    """Notebook 01's demonstration: the trimming code twice, top to bottom, in two cells."""
    path = save(project / "nb.ipynb", LOAD, TRIM, TRAIN, TRIM, TRAIN)
    log = watch(sh)
    run(sh, LOAD, TRIM, TRAIN, TRIM, TRAIN)
    report = kernel_report(log, path)
    assert report.order == []
    [issue] = [i for i in report.issues if i.variable == "X"]
    assert issue.message.startswith(
        "X comes from cell 5 (In [4]), which ran the code of cell 3 (In [2]) again, on that "
        "cell's result: X now depends on how many times that code ran; re-run from cell 2"
    )


def test_an_idempotent_rerun_is_not_hidden_state(sh: Any, project: Path) -> None:
    path = save(project / "nb.ipynb", LOAD, "X = np.sort(X)", TRAIN)
    log = watch(sh)
    run(sh, LOAD, "X = np.sort(X)", TRAIN, "X = np.sort(X)")
    report = kernel_report(log, path)
    assert report.issues == [] and report.verdict == "out of order"


def test_a_value_computed_before_its_input_changed_is_stale(sh: Any, project: Path) -> None:
    path = save(project / "nb.ipynb", "a = 1", "b = a * 2", "c = b + 1")
    log = watch(sh)
    run(sh, "a = 1", "b = a * 2", "a = 1")  # the same value again: nothing is stale
    assert kernel_report(log, path).issues == []
    save(project / "nb.ipynb", "a = 5", "b = a * 2", "c = b + 1")
    run(sh, "a = 5")
    log.pre_run(_info(sh, "c = b + 1"))
    report = Checker(log, saved_notebook(path)).for_cell(log.current)
    assert [i.message for i in report.issues] == [
        "b comes from cell 3 (In [2]), computed from a before cell 2 (In [4]) set a again: "
        "re-run cell 3, then this cell (cell 4)"
    ]


def test_a_value_from_a_cell_below_the_reader(sh: Any, project: Path) -> None:
    path = save(project / "nb.ipynb", "y = x + 1", "x = 3")
    log = watch(sh)
    run(sh, "x = 3")
    log.pre_run(_info(sh, "y = x + 1"))
    report = Checker(log, saved_notebook(path)).for_cell(log.current)
    assert [i.message for i in report.issues] == [
        "x comes from cell 3 (In [1]), below this cell (cell 2): run top to bottom, this cell "
        "runs before it; move that code above this cell, then this cell (cell 2)"
    ]


def test_code_no_longer_in_the_saved_notebook(sh: Any, project: Path) -> None:
    path = save(project / "nb.ipynb", "rate = 0.1", "total = rate * 10")
    log = watch(sh)
    run(sh, "rate = 0.1", "total = rate * 10")
    save(path, "rate = 0.2", "total = rate * 10")  # edited (no cell ids: by source), saved
    rate, total = kernel_report(log, path).issues
    assert rate.message.startswith("rate comes from In [1] (`rate = 0.1`), whose code is no")
    assert total.message == (
        "total comes from cell 3 (In [2]), which used rate (its code is no longer in the "
        "notebook): re-run cell 3 once rate is right"
    )


def test_history_before_the_extension_is_read_back(sh: Any, project: Path) -> None:
    path = save(project / "nb.ipynb", LOAD, TRIM)
    run(sh, LOAD, TRIM, TRIM)  # before %load_ext: only the code is known
    log = watch(sh)
    assert log.bindings["X"] == 3 and [e.count for e in log.executions] == [1, 2, 3]
    assert [i.variable for i in kernel_report(log, path).issues] == ["X", "keep"]


def test_the_check_off_registers_nothing(sh: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from nbops.capture.state import log_of
    from nbops.magics import watch_state
    from nbops.session import default_session

    monkeypatch.setenv("NBOPS_STATE_CHECK", "false")
    default_session.cache_clear()
    try:
        before = len(sh.events.callbacks["pre_run_cell"])
        watch_state(sh)
        assert log_of(sh) is None and len(sh.events.callbacks["pre_run_cell"]) == before
    finally:
        default_session.cache_clear()


def test_saved_order_names_the_cells_that_ran_after_later_ones(project: Path) -> None:
    path = save(project / "nb.ipynb", "a = 1", "b = 2", "c = 3", "d = 4", counts=[1, 5, 2, None])
    notebook = saved_notebook(path)
    assert notebook is not None
    assert order_problems(list(notebook.cells)) == ["cell 3 (In [5]) ran after cell 4 (In [2])"]


def test_promote_warns_when_the_saved_outputs_are_out_of_order(project: Path) -> None:
    from nbops.notebook.parse import parse_notebook

    path = save(project / "nb.ipynb", "a = 1", "b = a + 1", counts=[3, 2])
    [note] = [n for n in parse_notebook(path).notes if n.startswith("warning")]
    assert note == (
        "warning: the notebook's saved outputs come from an out-of-order execution: cell 2 "
        "(In [3]) ran after cell 3 (In [2]). The pipeline runs the cells top to bottom, so its "
        "results may differ from what the notebook shows: Restart & Run All in Jupyter, save, "
        "and promote again to compare"
    )
    save(path, "a = 1", "b = a + 1", counts=[1, 2])
    assert not [n for n in parse_notebook(path).notes if n.startswith("warning")]


def _info(shell: Any, raw: str) -> Any:
    """The ExecutionInfo IPython passes to pre_run_cell for the next execution of ``raw``."""
    from IPython.core.interactiveshell import ExecutionInfo

    shell.execution_count += 1  # as run_cell does before the event
    return ExecutionInfo(raw, True, False, True, None, None, transformed_cell=raw)


def test_names_bound_where_the_code_does_not_show_them(sh: Any) -> None:
    log = watch(sh)
    run(sh, "def reset():\n    global level\n    level = 0", "exec('hidden = 1')", "reset()")
    assert log.bindings["hidden"] == 2 and log.bindings["level"] == 3
    run(sh, "x = 1", "del x")
    assert "x" not in log.bindings


def test_only_what_was_computed_from_a_bad_value_is_flagged(sh: Any, project: Path) -> None:
    train = "C = 0.1\nfit = X.sum() * C\nlabel = 'model'"
    path = save(project / "nb.ipynb", LOAD, TRIM, train)
    log = watch(sh)
    run(sh, LOAD, TRIM, TRIM, train)
    flagged = {issue.variable for issue in kernel_report(log, path).issues}
    assert flagged == {"X", "keep", "fit"}  # not C or label: the cell computed them from nothing


def test_nbops_promote_prints_the_out_of_order_warning(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from nbops.cli import main

    save(project / "nb.ipynb", "n = 3", "total = n * 2", "print(total)", counts=[1, 4, 2])
    assert main(["promote", "nb.ipynb"]) == 0
    out = capsys.readouterr().out
    assert (
        "\nwarning: the notebook's saved outputs come from an out-of-order execution: "
        "cell 3 (In [4]) ran after cell 4 (In [2]). The pipeline runs the cells top to bottom"
    ) in out
