"""Short parameter names (``max_depth`` for ``model.max_depth``) in the run browser's filter and
sort, ``nbops diff`` and ``nbops run --check``: accepted when unambiguous, and when not, the
error says which long names match."""

from __future__ import annotations

import pytest

from nbops import names
from nbops.diff import diff_records, format_diff
from nbops.errors import UsageError
from nbops.pipeline.check import _ambiguous, _candidates
from nbops.record import RunRecord
from nbops.widgets.table import RunTable


def sweep_run(i: int, n_trees: int, depth: int, f1: float) -> RunRecord:
    """A run of the course's sweep (notebooks/03): nbops.track() in a loop, as listed."""
    params = {"model.n_estimators": str(n_trees), "model.max_depth": str(depth)}
    params["model.random_state"] = "0"
    return RunRecord(
        run_id=f"{i:032d}",
        name=f"rf-{n_trees}-{depth}",
        status="FINISHED",
        start=1000.0 + i,
        params=params,
        metrics={"f1": f1, "accuracy": f1},
    )


def test_the_course_filter_example_works_on_runs_from_track_blocks() -> None:
    runs = [
        sweep_run(i, n, d, f1)
        for i, (n, d, f1) in enumerate(
            [(10, 1, 0.6), (10, 4, 0.93), (50, 4, 0.95), (50, 8, 0.96), (50, 2, 0.91)]
        )
    ]
    table = RunTable(runs)
    table.set_filter("f1 >= 0.9, max_depth = 4")  # as notebooks/03 writes it
    assert sorted(r.name for r in table.rows) == ["rf-10-4", "rf-50-4"]
    table.sort("n_estimators", descending=False)
    assert table.sort_key == "params.n_estimators"
    assert [r.name for r in table.rows] == ["rf-10-4", "rf-50-4"]


def test_a_short_name_spans_runs_that_name_the_param_differently() -> None:
    literal = RunRecord(run_id="a" * 32, name="baseline", params={"max_depth": 3})
    looped = RunRecord(run_id="b" * 32, name="depth-3", params={"model.max_depth": "3"})
    other = RunRecord(run_id="c" * 32, name="depth-5", params={"model.max_depth": "5"})
    table = RunTable([literal, looped, other])
    table.set_filter("max_depth = 3")
    assert sorted(r.name for r in table.rows) == ["baseline", "depth-3"]


def test_an_ambiguous_short_name_lists_the_long_names() -> None:
    both = RunRecord(run_id="d" * 32, params={"rf.max_depth": "3", "gb.max_depth": "2"})
    table = RunTable([both])
    with pytest.raises(
        UsageError, match=r"'max_depth' is ambiguous.*gb\.max_depth, rf\.max_depth"
    ) as err:
        table.set_filter("max_depth = 3")
    assert "params.gb.max_depth" in (err.value.fix or "")
    table.set_filter("rf.max_depth = 3")  # the long name works
    assert len(table.rows) == 1
    assert names.lookup(both.params, "max_depth") is None


def test_diff_pairs_a_literal_with_the_setting_of_the_same_short_name() -> None:
    a = RunRecord(run_id="a" * 32, name="baseline", params={"max_depth": 3, "n_estimators": 50})
    b = RunRecord(
        run_id="b" * 32, name="depth-5", params={"model.max_depth": "5", "model.n_estimators": "50"}
    )
    diff = diff_records(a, b)
    assert diff.params_changed == {"max_depth": (3, "5")}
    assert not diff.params_added and not diff.params_removed  # n_estimators: the same
    c = RunRecord(run_id="c" * 32, name="two", params={"rf.max_depth": "5", "gb.max_depth": "2"})
    diff = diff_records(a, c)
    assert set(diff.params_added) == {"rf.max_depth", "gb.max_depth"}
    assert "max_depth: max_depth in baseline (aaaaaaaa) and gb.max_depth, rf.max_depth" in (
        format_diff(diff)
    )


def test_check_matches_params_yaml_by_short_name_and_notes_ambiguity() -> None:
    params = {"max_depth": 4, "n_estimators": 50}
    run = sweep_run(1, 50, 4, 0.9)
    run.source = "block"
    [(found, agreeing)] = _candidates([run], params)
    assert found is run and agreeing == 2
    run.params["gb.max_depth"] = "2"
    assert _candidates([run], params) == []  # the two settings disagree: not this run
    [note] = _ambiguous([run], params)
    assert "'max_depth' matches gb.max_depth, model.max_depth" in note
