"""The widgets over a real SQLite MLflow store: the run browser lists, filters, sorts, pages,
refreshes and compares the stored runs; the promotion panel's buttons move the aliases in the
store, only after confirmation, and show errors instead of raising. Widgets are driven through
their ipywidgets controls (``Button.click()``, setting ``value``), as a frontend would."""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

import pytest

from nbops import registry
from nbops.config import Config
from nbops.errors import UsageError
from nbops.record import DataRef, ModelRef, RunRecord
from nbops.session import Session
from nbops.store import MlflowTracker, Spool
from nbops.widgets import PromotionPanel, RunBrowser

mlflow = pytest.importorskip("mlflow")
pytest.importorskip("ipywidgets")
NAME = "iris"


def _record(i: int, **kw: object) -> RunRecord:
    values: dict = {
        "name": f"run{i}",
        "experiment": "wine",
        "status": "FINISHED",
        "start": time.time() - 100 + i,
        "end": time.time() - 99 + i,
        "params": {"max_depth": i % 3, "seed": 0},
        "metrics": {"accuracy": round(0.8 + i / 100, 4)},
        "data": [DataRef("X", "input", "DataFrame", "xxh128:" + ("a" if i < 4 else "b") * 32)],
        "code": f"model = fit(max_depth={i % 3})\n",
        "code_hash": "sha256:one" if i < 5 else "sha256:two",
    }
    values.update(kw)
    return RunRecord(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated MLflow SQLite store made once per module: creating one costs
    1.5 s (7 s on a busy machine) of schema migrations."""
    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def store(config: Config, empty_store: Path) -> Config:
    """This test's project with a copy of the empty store as its default store."""
    shutil.copy(empty_store, config.project_root / "mlflow.db")
    return config


@pytest.fixture
def stored(store: Config) -> list[str]:
    """Seven runs in experiment "wine" (run0 oldest); run5 and run6 have new code, run4-6
    new data, run3 failed."""
    tracker, spool = MlflowTracker(store), Spool(store.state_dir)
    ids = []
    for i in range(7):
        status = "FAILED" if i == 3 else "FINISHED"
        ids.append(tracker.write(spool.put(_record(i, status=status), None)))
    return ids


@pytest.fixture
def browser(config: Config, stored: list[str]) -> RunBrowser:
    b = RunBrowser(page_size=3, session=Session(config))
    assert b.widget is not None  # the ipywidgets tree, built and synced
    return b


def _names(b: RunBrowser) -> list[str]:
    return [r.name or "" for r in b.table.page_rows()]


def test_browser_shows_filters_sorts_and_pages_the_stored_runs(browser: RunBrowser) -> None:
    c = browser.controls
    assert _names(browser) == ["run6", "run5", "run4"]  # newest first, page 1 of 3
    assert "run6" in c.table.value and "max_depth" in c.table.value and "accuracy" in c.table.value
    assert "seed" not in c.table.value  # the same in every run: no column
    c.next.click()
    assert _names(browser) == ["run3", "run2", "run1"] and "page 2/3" in c.page_label.value
    c.filter.value = "accuracy >= 0.82, status = FINISHED"
    assert [r.name for r in browser.table.rows] == ["run6", "run5", "run4", "run2"]
    assert browser.table.page == 0 and "4 of 7 run(s)" in c.page_label.value
    c.sort_by.value = "metrics.accuracy"
    c.descending.value = False
    assert _names(browser) == ["run2", "run4", "run5"] and "accuracy ▲" in c.table.value
    c.filter.value = "max_depth = 0"  # replaces the filter; the sort stays
    assert [r.name for r in browser.table.rows] == ["run0", "run3", "run6"]
    c.filter.value = "max_dpth = 0"  # a typo: said in the browser, the filter stays
    assert "no column 'max_dpth'" in browser.message and "fix:" in browser.message
    assert "nbops-error" in c.message.value and "max_dpth" in c.message.value
    assert [r.name for r in browser.table.rows] == ["run0", "run3", "run6"]
    c.filter.value = ""
    assert len(browser.table.rows) == 7 and "max_dpth" not in browser.message

    bundle = browser._repr_mimebundle_()  # outside a widget frontend: HTML and text tables
    assert "application/vnd.jupyter.widget-view+json" not in bundle  # no kernel here
    assert "run0" in bundle["text/html"] and "<table" in bundle["text/html"]
    lines = bundle["text/plain"].splitlines()
    assert lines[0].split()[:2] == ["run", "name"] and lines[1].split()[1] == "run0"


def test_selecting_runs_shows_what_differs(browser: RunBrowser, stored: list[str]) -> None:
    c = browser.controls
    c.select.value = (stored[6], stored[5])  # page 1: run6, run5, run4
    c.next.click()
    c.next.click()  # page 3 holds run0
    c.select.value = (stored[0],)
    assert browser.table.selected == [stored[6], stored[5], stored[0]]  # kept across pages
    compared = browser.comparison()
    assert compared.labels[0].startswith("run0")  # the earliest is the baseline
    assert compared.params == {"max_depth": ["0", "2", "0"]}  # seed is equal: left out
    assert compared.deltas["accuracy"][2] == pytest.approx(0.06)
    assert compared.different_data == [[], ["X"], ["X"]]
    assert compared.code_changed == [False, True, True]
    html = c.compare.value
    assert "different data: X" in html and "(+0.06)" in html and "changed" in html
    assert c.chart.value.count("<circle") == 7 and c.chart.value.count("255,120,0") == 3
    c.clear.click()
    assert browser.table.selected == [] and "select two or more" in c.compare.value
    assert "255,120,0" not in c.chart.value  # nothing highlighted
    c.chart_x.value = "params.max_depth"
    c.filter.value = "status = FINISHED"
    assert c.chart.value.count("<circle") == 6 and "params.max_depth" in c.chart.value
    with pytest.raises(UsageError, match="no column 'f1'"):  # the Python API raises
        browser.set_chart("f1")
    browser.set_chart("accuracy", against="seed")
    assert c.chart_x.value == "params.seed" and c.chart.value.count("<circle") == 6


def test_refresh_shows_new_runs_and_delivers_spooled_ones(
    browser: RunBrowser, config: Config, shell: object, capsys: pytest.CaptureFixture[str]
) -> None:
    tracker = MlflowTracker(config)
    tracker.write(Spool(config.state_dir).put(_record(7, start=time.time()), None))
    Spool(config.state_dir).put(_record(8, start=time.time() + 1), None)  # not yet delivered
    browser.controls.refresh.click()
    assert _names(browser) == ["run8", "run7", "run6"]
    assert "9 run(s)" in browser.message and "2 new" in browser.message
    assert Spool(config.state_dir).pending() == []
    shell.run_line_magic("nbops", "runs")  # type: ignore[attr-defined]
    out = capsys.readouterr().out  # no kernel: the text table of `nbops runs`, as before
    assert out.splitlines()[0].split()[:2] == ["run", "name"] and "run8" in out


def test_store_errors_are_shown_in_the_browser(config: Config, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    broken = dataclasses.replace(config, tracking_uri=f"sqlite:///{tmp_path}/file/sub/x.db")
    b = RunBrowser(session=Session(broken))
    assert "could not read the runs" in b.message and b.table.records == []
    assert "could not read the runs" in b._repr_html_()


# ---- promotion panel ----------------------------------------------------------------------


@pytest.fixture
def model_runs(store: Config) -> list[str]:
    """Three runs with a small sklearn model each; the third is a gated candidate."""
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    x, y = load_iris(return_X_y=True, as_frame=True)
    tracker, spool = MlflowTracker(store), Spool(store.state_dir)
    ids = []
    for depth in (1, 2, 3):
        model = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(x, y)
        metrics = {"accuracy": round(float(model.score(x, y)), 4)}
        if depth == 3:
            metrics["champion.accuracy"] = 0.96
        record = _record(depth, metrics=metrics, model=ModelRef("model", "sklearn", "Tree"))
        ids.append(tracker.write(spool.put(record, {"model": model, "input_example": x})))
    return ids


GATE_TAGS = {
    "nbops.gate.decision": "passed",
    "nbops.gate.metric": "accuracy",
    "nbops.gate.reasons": "accuracy 0.9733 >= champion 0.96",
    "nbops.validation.data": "passed",
    "nbops.pipeline.run": "f" * 32,
}


@pytest.fixture
def panel(config: Config, model_runs: list[str]) -> PromotionPanel:
    """iris: v1 previous, v2 champion, v3 challenger (registered with the gate's tags)."""
    registry.register(config, model_runs[0], NAME, alias="champion", actor="ci")
    registry.register(config, model_runs[1], NAME, alias="champion", actor="ci")
    registry.register(config, model_runs[2], NAME, actor="ci")
    client = mlflow.tracking.MlflowClient(tracking_uri=config.tracking_uri)
    for key, value in GATE_TAGS.items():
        client.set_model_version_tag(NAME, "3", key, value)
    p = PromotionPanel(NAME, session=Session(config), actor="dana")
    assert p.widget is not None
    return p


def _aliases(config: Config) -> dict[str, int]:
    client = mlflow.tracking.MlflowClient(tracking_uri=config.tracking_uri)
    return {a: int(v) for a, v in client.get_registered_model(NAME).aliases.items()}


def test_panel_shows_versions_and_promotes_and_rolls_back_only_when_confirmed(
    panel: PromotionPanel,
    config: Config,
    model_runs: list[str],
    shell: object,
    capsys: pytest.CaptureFixture[str],
) -> None:
    c = panel.controls
    assert "champion v2, challenger v3, previous v1" in c.headline.value
    assert [v.version for v in panel.model.versions] == [2, 3, 1]
    for text in ("accuracy (holdout)", "champion&#x27;s accuracy", "0.96", "passed", "0.9733"):
        assert text in c.table.value
    assert c.table.value.count("—") >= 8  # v1 and v2 were registered by hand: no gate tags
    assert c.confirm_row.layout.display == "none"

    before = _aliases(config)
    c.promote.click()
    assert c.confirm_row.layout.display is None and "Promote challenger v3" in c.question.value
    assert _aliases(config) == before  # asked, nothing moved
    c.cancel.click()
    assert _aliases(config) == before and "cancelled" in c.message.value
    c.reason.value = "beats v2 on the holdout"
    c.promote.click()
    c.confirm.click()
    assert _aliases(config) == {"champion": 3, "previous": 2}
    assert "version 3 is the champion" in c.message.value and "load it:" in c.message.value
    assert panel.change is not None and panel.change.actor == "dana"
    history = registry.list_versions(config, NAME)[0].history  # from the version's audit trail
    assert history[-2] | {"at": ""} == {
        "at": "",
        "by": "dana",
        "op": "promote",
        "reason": "beats v2 on the holdout",
        "alias": "champion",
        "action": "set",
        "from": 2,
    }

    c.promote.click()  # no challenger left: an error in the panel, not a traceback
    assert "nothing to promote" in panel.message and "nbops-error" in c.message.value
    assert c.confirm_row.layout.display == "none"
    c.rollback.click()
    assert "previous champion v2" in c.question.value and _aliases(config)["champion"] == 3
    c.confirm.click()
    assert _aliases(config) == {"champion": 2, "previous": 1}  # v2 had replaced v1
    assert "(rollback)" in panel.message and "champion v2" in c.headline.value

    _confirm_refuses_a_changed_registry(panel, config, model_runs)
    shell.run_line_magic("nbops", "promotion iris")  # type: ignore[attr-defined]
    out = capsys.readouterr().out  # a terminal: the text table
    assert "model 'iris': champion v2, challenger v5" in out and "accuracy (holdout)" in out


def _confirm_refuses_a_changed_registry(
    panel: PromotionPanel, config: Config, model_runs: list[str]
) -> None:
    """Someone registers a new challenger between the question and Confirm: nothing moves."""
    registry.register(config, model_runs[0], NAME, actor="ci")  # v4: challenger
    panel.controls.promote.click()
    registry.register(config, model_runs[1], NAME, actor="someone-else")  # v5 meanwhile
    panel.controls.confirm.click()
    assert "changed since you asked (v4 -> v5)" in panel.message
    assert _aliases(config) == {"champion": 2, "previous": 1, "challenger": 5}


def test_unknown_model_is_an_error_in_the_panel(store: Config) -> None:
    p = PromotionPanel("irsi", session=Session(store))
    assert "no registered model 'irsi'" in p.message and "nbops model register" in p.message
    assert "no registered model" in p.to_text() and p.model.versions == []
