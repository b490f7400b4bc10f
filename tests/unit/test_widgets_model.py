"""The widgets' pure logic, without a frontend: the filter language, the run table (columns,
filtering, sorting, paging, selection), the comparison of selected runs, the SVG chart and the
promotion panel's view model."""

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
from nbops.widgets.chart import PER_RUN, chart_points, svg_chart
from nbops.widgets.compare import compare, comparison_html, comparison_text
from nbops.widgets.filters import Condition, parse_filter
from nbops.widgets.render import MISSING, html_table
from nbops.widgets.table import RunTable


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
    assert c.different_data == [[], [], ["X"]] and c.code_changed == [False, False, True]
    text = comparison_text(c)
    assert "different data: X" in text and "(+0.1)" in text and "changed" in text
    assert "equal in all: f1" in text


def test_comparison_of_param_changes_and_of_too_few_runs() -> None:
    c = compare([run(1), run(2)])
    assert c.params == {"depth": ["1", "2"]} and "lr" not in c.params
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
    assert svg.startswith("<svg") and svg.count("<circle") == 5 and "r1: accuracy=0.81" in svg
    by_depth = chart_points(table.records, "accuracy", "params.depth", table.value)
    assert sorted({p.x for p in by_depth}) == ["0", "1", "2"]
    assert svg_chart(by_depth, "depth", "accuracy").count("<circle") == 5
    assert "no run has f2 to plot" in svg_chart([], "run", "f2")


# ---- promotion panel model ------------------------------------------------------------------


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
    assert rows["v3"]["accuracy (holdout)"] == "0.95"
    assert rows["v3"]["champion's accuracy"] == "0.9"
    assert rows["v3"]["gate"] == "passed" and rows["v3"]["data validation"] == "passed"
    assert rows["v2"]["gate"] == MISSING and rows["v2"]["data validation"] == MISSING
    assert rows["v4"]["accuracy (holdout)"] == MISSING
    assert "champion v2, challenger v3, previous v1" in vm.headline(model)
    assert "Promote challenger v3" in vm.promote_question(model)
    assert "v2 becomes previous" in vm.promote_question(model)
    assert "previous champion v1" in vm.rollback_question(model)


def test_panel_without_challenger_or_previous_says_what_to_do() -> None:
    model = vm.panel_model("iris", [version(1, ["champion"], accuracy=0.9)])
    assert model.gate_metric is None and "accuracy" in vm.header(model)
    with pytest.raises(RegistryError) as err:
        vm.promote_question(model)
    assert "nothing to promote" in err.value.message and "nbops model register" in err.value.fix
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        vm.rollback_question(model)


def test_html_table_escapes_values() -> None:
    out = html_table(["<a>"], [["<script>x</script>"]], marked=[True])
    assert "<script>" not in out and "&lt;script&gt;" in out and "background" in out


def test_importing_the_widgets_package_imports_no_heavy_library() -> None:
    code = (
        "import sys, json, nbops.widgets, nbops.widgets.run_browser, nbops.widgets.promotion;"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'ipywidgets', 'mlflow', 'pandas', 'numpy'})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
