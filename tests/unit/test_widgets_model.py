"""The widgets' pure logic, without a frontend: the filter language, the run table (columns,
filtering, sorting, paging, selection), the comparison of selected runs, the SVG chart and
parallel coordinates, and the promotion panel's view model (holdouts, buttons, questions)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from nbops.errors import RegistryError, UsageError
from nbops.record import DataRef, RunRecord
from nbops.store.registry_store import VersionInfo
from nbops.widgets import versions as vm
from nbops.widgets.chart import PER_RUN, chart_points, colours, svg_chart
from nbops.widgets.compare import compare, comparison_html, comparison_sections, comparison_text
from nbops.widgets.filters import Condition, parse_filter
from nbops.widgets.parallel import axes_for, svg_parallel
from nbops.widgets.render import MISSING, button, html_table
from nbops.widgets.table import RunTable, cell_text


def run(i: int, **kw: object) -> RunRecord:
    values: dict = {
        "run_id": f"{i:02d}" + "a" * 30,
        "name": f"r{i}",
        "experiment": "e",
        "status": "FINISHED",
        "start": 1_000_000.0 + i,
        "end": 1_000_001.0 + i,
        "params": {"depth": str(i % 3), "lr": "0.1"},
        "metrics": {"accuracy": 0.8 + i / 100, "f1": 0.5},
        "code_hash": "sha256:same",
    }
    values.update(kw)
    return RunRecord(**values)  # type: ignore[arg-type]


# ---- filters ------------------------------------------------------------------------------


def test_parse_filter_reads_conditions_joined_by_comma_or_and() -> None:
    assert parse_filter("accuracy >= 0.9, depth = 3 and status == 'FAILED'") == [
        Condition("accuracy", ">=", "0.9"),
        Condition("depth", "=", "3"),
        Condition("status", "==", "FAILED"),
    ]
    assert parse_filter("  ") == []


@pytest.mark.parametrize("text", ["accuracy", "accuracy >=", ">= 3", "a = 1, b"])
def test_parse_filter_names_the_part_it_cannot_read(text: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_filter(text)
    assert (
        "cannot read the filter condition" in err.value.message and "accuracy >=" in err.value.fix
    )


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("accuracy >> 2", "an operator follows '>'"),
        ("accuracy => 2", "an operator follows '='"),
        ("accuracy > high", "'accuracy' holds numbers, and 'high' is not one"),
        ("depth = deep", "'depth' holds numbers, and 'deep' is not one"),
    ],
)
def test_filter_typos_are_errors_not_empty_tables(text: str, said: str) -> None:
    table = RunTable([run(i) for i in range(3)])
    with pytest.raises(UsageError, match=said) as err:
        table.set_filter(text)
    assert err.value.fix and table.filter_text == "" and len(table.rows) == 3
    table.set_filter("name ~ r1, status > A")  # text compares as text: no error
    assert [r.name for r in table.rows] == ["r1"]


def test_conditions_compare_numbers_as_numbers_and_text_as_text() -> None:
    assert Condition("depth", ">", "9").holds("10")  # as text "10" < "9"
    assert Condition("status", "=", "finished").holds("FINISHED")
    assert Condition("name", "~", "WIN").holds("wine-rf")
    assert not Condition("accuracy", ">", "0").holds(None)  # missing never passes a threshold
    assert Condition("accuracy", "!=", "0").holds(None)


# ---- the table ----------------------------------------------------------------------------


def test_columns_show_metrics_and_only_the_params_that_vary() -> None:
    table = RunTable([run(i) for i in range(4)])
    keys = [c.key for c in table.columns]
    assert "params.depth" in keys and "params.lr" not in keys  # lr is 0.1 everywhere
    assert {"metrics.accuracy", "metrics.f1"} <= set(keys) and "experiment" not in keys
    assert "params.lr" in table.sort_keys()  # still sortable and filterable
    two = RunTable([run(1), run(2, experiment="other")])
    assert "experiment" in [c.key for c in two.columns]


def test_filter_by_param_metric_and_status() -> None:
    table = RunTable([run(i) for i in range(6)] + [run(6, status="FAILED")])
    table.set_filter("accuracy >= 0.83")
    assert [r.name for r in table.rows] == ["r6", "r5", "r4", "r3"]
    table.set_filter("depth = 1, status = FINISHED")
    assert [r.name for r in table.rows] == ["r4", "r1"]
    table.set_filter("params.lr = 0.1 and status != FINISHED")
    assert [r.name for r in table.rows] == ["r6"]
    with pytest.raises(UsageError, match="no column 'depht'"):
        table.set_filter("depht = 1")
    assert table.filter_text == "params.lr = 0.1 and status != FINISHED"  # unchanged


def test_sort_numbers_numerically_text_alphabetically_missing_last() -> None:
    records = [run(1, params={"n": "10"}), run(2, params={"n": "9"}), run(3, params={})]
    table = RunTable(records)
    table.sort("n", descending=False)
    assert [r.name for r in table.rows] == ["r2", "r1", "r3"]
    table.sort("n", descending=True)
    assert [r.name for r in table.rows] == ["r1", "r2", "r3"]
    table.sort("name", descending=False)
    assert [r.name for r in table.rows] == ["r1", "r2", "r3"]
    assert table.header()[1] == "name ▲"


def test_a_header_click_sorts_and_a_second_click_reverses() -> None:
    table = RunTable([run(i) for i in range(4)])
    table.click_sort("accuracy")  # a number column: highest first
    assert (table.sort_key, table.descending) == ("metrics.accuracy", True)
    assert table.rows[0].name == "r3" and table.sort_state("metrics.accuracy") == "descending"
    table.click_sort("metrics.accuracy")
    assert table.rows[0].name == "r0" and table.sort_state("metrics.accuracy") == "ascending"
    table.click_sort("name")  # text: A to Z
    assert table.rows[0].name == "r0" and table.sort_state("metrics.accuracy") == "none"
    assert cell_text("started", 1_000_002.0).count(":") == 2  # to the second


def test_paging_over_thousands_of_runs() -> None:
    table = RunTable([run(i % 100, run_id=f"{i:032d}") for i in range(2500)], page_size=25)
    assert table.page_count == 100 and len(table.page_rows()) == 25
    table.go(99)
    assert len(table.page_rows()) == 25
    table.go(500)
    assert table.page == 99  # clamped
    table.set_filter("accuracy > 1.785")  # r99 only: 25 runs
    assert (table.page, table.page_count, len(table.rows)) == (0, 1, 25)


def test_reload_keeps_selection_and_reports_new_runs() -> None:
    table = RunTable([run(1), run(2)])
    table.select([run(1).run_id or ""])
    new = table.load([run(1), run(2), run(3)])
    assert [r.name for r in new] == ["r3"]
    assert table.selected == [run(1).run_id]
    with pytest.raises(UsageError, match="no loaded run"):
        table.select(["nope"])


# ---- comparison -----------------------------------------------------------------------------


def test_comparison_keeps_only_what_differs_against_the_earliest_run() -> None:
    data_a = [DataRef("X", "input", "DataFrame", "xxh128:aaaa")]
    data_b = [DataRef("X", "input", "DataFrame", "xxh128:bbbb")]
    later = run(5, data=data_b, code_hash="sha256:new", metrics={"accuracy": 0.9, "f1": 0.5})
    earlier = run(2, data=data_a, metrics={"accuracy": 0.8, "f1": 0.5})
    same = run(3, data=data_a, metrics={"accuracy": 0.8, "f1": 0.5}, params=earlier.params)
    c = compare([later, earlier, same])
    assert c.labels == ["r2 (02aaaaaa)", "r3 (03aaaaaa)", "r5 (05aaaaaa)"]
    assert c.params == {}  # depth is 2 in all three (5 % 3 == 2), lr is 0.1 in all
    assert list(c.metrics) == ["accuracy"] and c.equal_metrics == ["f1"]
    assert c.deltas["accuracy"][0] is None and c.deltas["accuracy"][1] == 0.0
    assert c.deltas["accuracy"][2] == pytest.approx(0.1)
    assert c.inputs == {"X": ["xxh128:aaaa", "xxh128:aaaa", "xxh128:bbbb"]}
    assert c.code_changed == [False, False, True]
    text = comparison_text(c)
    assert "inputs: different input data" in text and "(+0.1)" in text and "changed" in text
    assert "equal in all: f1" in text


def test_comparison_splits_inputs_outputs_params_metrics_and_code() -> None:
    """Outputs differ whenever anything else does: not "different data" (the inputs are)."""
    inputs = [DataRef("X", "input", "DataFrame", "xxh128:" + "a" * 32)]
    a = run(1, data=[*inputs, DataRef("pred", "output", "ndarray", "xxh128:" + "1" * 32)])
    b = run(2, data=[*inputs, DataRef("pred", "output", "ndarray", "xxh128:" + "2" * 32)])
    b.code, a.code, b.code_hash = "fit(depth=2)\n", "fit(depth=1)\n", "sha256:other"
    c = compare([b, a])
    sections = {title: (rows, note) for title, rows, note in comparison_sections(c)}
    assert list(sections) == ["inputs", "outputs", "params", "metrics", "code"]
    assert sections["inputs"] == ([], "same input data in every run (X): a fair comparison")
    assert sections["outputs"][0] == [["pred", "11111111", "22222222"]]
    assert sections["params"][0] == [["depth", "1", "2"]]
    assert c.code_diff and "-fit(depth=1)" in c.code_diff
    html = comparison_html(c)
    assert 'data-section="outputs"' in html and "different data" not in html
    assert "<details><summary>the diff</summary>" in html


def test_comparison_of_param_changes_and_of_too_few_runs() -> None:
    c = compare([run(1), run(2)])
    assert c.params == {"depth": ["1", "2"]} and "lr" not in c.params
    assert [t for t, _, _ in comparison_sections(c)] == ["params", "metrics"]
    assert comparison_text(compare([run(1)])).startswith("select two or more runs")
    same = compare([run(1), run(1, run_id="x" * 32, start=2e6)])
    assert same.is_empty and "no differences" in comparison_html(same)


# ---- chart --------------------------------------------------------------------------------


def test_chart_plots_a_metric_per_run_or_against_a_param() -> None:
    table = RunTable([run(i) for i in range(5)] + [run(9, metrics={})])
    per_run = chart_points(table.records, "accuracy", PER_RUN, table.value, {run(1).run_id or ""})
    assert [p.x for p in per_run] == [1, 2, 3, 4, 5]  # the run without accuracy is left out
    assert [p.marked for p in per_run] == [False, True, False, False, False]
    svg = svg_chart(per_run, "run", "accuracy")
    assert svg.count("<circle") == 5 and 'data-tip="r1 (01aaaaaa)\naccuracy = 0.81"' in svg
    assert f'data-run="{run(1).run_id}"' in svg and "nbops-legend" not in svg
    by_depth = chart_points(table.records, "accuracy", "params.depth", table.value)
    assert sorted({p.x for p in by_depth}) == ["0", "1", "2"]
    assert svg_chart(by_depth, "depth", "accuracy").count("<circle") == 5
    assert "no run has f2 to plot" in svg_chart([], "run", "f2")


def test_chart_colours_by_a_column_with_a_legend_and_spreads_equal_points() -> None:
    table = RunTable([run(i, metrics={"accuracy": 0.9}) for i in range(4)])
    points = chart_points(table.records, "accuracy", "params.lr", table.value, set(), "status")
    svg = svg_chart(points, "lr", "accuracy", "status")
    assert "colour: status" in svg and "FINISHED" in svg  # one category: one swatch
    xs = [float(c.split('cx="')[1].split('"')[0]) for c in svg.split("<circle")[1:]]
    assert len(set(xs)) == 4  # four runs at the same point: spread sideways, all visible
    pick, legend = colours([1, 2, 3] * 5 + list(range(10, 20)))  # many numbers: a gradient
    assert "linear-gradient" in legend and pick(1) != pick(19)
    pick, legend = colours([10, 50, 10])  # a few numbers: a palette, in order
    assert legend.index(">10<") < legend.index(">50<") and pick(10) != pick(50)


def test_parallel_coordinates_have_an_axis_per_varying_param_and_a_line_per_run() -> None:
    records = [
        run(i, params={"depth": str(i % 3), "lr": "0.1", "kind": "ab"[i % 2]}) for i in range(6)
    ]
    table = RunTable(records)
    axes = axes_for(records, ["params.depth", "params.lr", "params.kind"], "accuracy", table.value)
    assert [a.title for a in axes] == ["depth", "kind", "accuracy"]  # lr is the same: no axis
    assert axes[1].categories == ["a", "b"] and axes[0].categories == []
    svg = svg_parallel(records, axes, {records[2].run_id or ""})
    assert svg.count("<polyline") == 6 and 'stroke-width="3.5"' in svg  # the selected run
    assert "colour: accuracy" in svg and "depth = 2" in svg
    assert "need a parameter that varies" in svg_parallel(records, axes[-1:], set())


# ---- promotion panel model ------------------------------------------------------------------


def holdout(rows: int, fp: str) -> str:
    return json.dumps({"rows": rows, "fingerprint": "xxh128:" + fp * 32})


def version(n: int, aliases: list[str], tags: dict[str, str] | None = None, **metrics: float):
    created = datetime(2026, 1, n, tzinfo=UTC)
    return VersionInfo(
        "iris", n, f"{n}" * 32, "runs:/x/model", aliases, created, metrics, tags or {}
    )


GATED = {
    vm.TAG_GATE_DECISION: "passed",
    vm.TAG_GATE_METRIC: "accuracy",
    vm.TAG_GATE_REASONS: "accuracy 0.95 >= champion 0.90",
    vm.TAG_VALIDATION: "passed",
    vm.TAG_HOLDOUT: holdout(92, "b"),
}


def test_panel_orders_champion_challenger_then_newest_and_shows_gate_results() -> None:
    versions = [
        version(4, []),
        version(3, ["challenger"], GATED, accuracy=0.95, **{"champion.accuracy": 0.9}),
        version(2, ["champion"], accuracy=0.9),
        version(1, ["previous"], accuracy=0.8),
    ]
    model = vm.panel_model("iris", versions)
    assert [v.version for v in model.versions] == [2, 3, 4, 1]
    assert (model.champion, model.challenger, model.previous) == (2, 3, 1)
    assert model.gate_metric == "accuracy"
    head = vm.header(model)
    rows = {row[0]: dict(zip(head, row, strict=True)) for row in vm.rows(model)}
    score = "accuracy (per holdout)"  # v2 and v1 were scored on data nbops never saw
    assert rows["v3"][score] == "0.95 · H1" and rows["v3"]["holdout"] == "H1: 92 rows · bbbbbbbb"
    assert rows["v3"]["champion's accuracy"] == "0.9 · H1"
    assert rows["v3"]["gate"] == "passed" and rows["v3"]["data"] == "passed"
    assert rows["v2"]["gate"] == MISSING and rows["v2"]["data"] == MISSING
    assert rows["v2"][score] == "0.9 · ?" and rows["v2"]["holdout"] == "unknown (no gate record)"
    assert rows["v4"][score] == MISSING
    assert "not comparable down the column" in vm.holdout_note(model)
    assert "champion v2, challenger v3, previous v1" in vm.headline(model)
    assert "Promote challenger v3" in vm.promote_question(model)
    assert "v2 becomes previous" in vm.promote_question(model)
    assert "previous champion v1" in vm.rollback_question(model)


def test_panel_without_challenger_or_previous_says_what_to_do() -> None:
    model = vm.panel_model("my model", [version(1, ["champion"], accuracy=0.9)])
    assert model.gate_metric is None and "accuracy (run)" in vm.header(model)
    with pytest.raises(RegistryError) as err:
        vm.promote_question(model)
    assert "nothing to promote" in err.value.message
    assert "nbops model register RUN 'my model'" in err.value.fix  # the real name, quoted
    assert "nbops model promote 'my model' VERSION" in err.value.fix
    with pytest.raises(RegistryError, match="nothing to roll back to") as err:
        vm.rollback_question(model)
    assert "'my model'" in err.value.fix
    promote, rollback = vm.promote_button(model), vm.rollback_button(model)
    assert not promote.enabled and "nothing to promote" in promote.why
    assert not rollback.enabled and "nothing to roll back to" in rollback.why
    assert not vm.champion_button(model, 1).enabled
    assert vm.champion_button(model, 1).why == "v1 is the champion"


def test_scores_on_one_holdout_are_one_column_and_different_ones_are_said() -> None:
    same = {**GATED, vm.TAG_HOLDOUT: holdout(50, "a")}
    model = vm.panel_model(
        "m",
        [
            version(2, ["challenger"], same, accuracy=0.9),
            version(1, ["champion"], same, accuracy=0.8),
        ],
    )
    assert model.holdouts == {1: "H1", 2: "H1"} and not model.mixed_holdouts
    assert vm.holdout_note(model) == "" and "accuracy (holdout)" in vm.header(model)
    assert vm.promote_button(model).enabled and vm.champion_button(model, 2).enabled
    assert "Make v2 the champion? The champion v1 becomes previous" in vm.champion_question(
        model, 2
    )
    with pytest.raises(RegistryError, match="has no version 7"):
        vm.champion_question(model, 7)
    other = {**GATED, vm.TAG_HOLDOUT: holdout(80, "c")}
    mixed = vm.panel_model(
        "m", [version(2, [], other, accuracy=0.9), version(1, ["champion"], same, accuracy=0.8)]
    )
    assert mixed.holdouts == {1: "H1", 2: "H2"}
    assert "holdouts H1 (50 rows), H2 (80 rows)" in vm.holdout_note(mixed)


def test_html_table_escapes_values() -> None:
    out = html_table(["<a>"], [["<script>x</script>"]], marked=[True])
    assert "<script>" not in out and "&lt;script&gt;" in out and "background" in out
    off = button("Roll back", "rollback", disabled=True, title='no "previous"')
    assert 'aria-disabled="true"' in off and 'title="no &quot;previous&quot;"' in off


def test_importing_the_widgets_package_imports_no_heavy_library() -> None:
    code = (
        "import sys, json, nbops.widgets, nbops.widgets.run_browser, nbops.widgets.promotion;"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'ipywidgets', 'anywidget', 'mlflow', 'pandas', 'numpy'})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
