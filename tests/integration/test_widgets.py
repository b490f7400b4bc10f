"""The widgets over a real SQLite MLflow store: the run browser lists, filters, sorts, pages,
refreshes and compares the stored runs; the promotion panel's buttons move the aliases in the
store, only after confirmation, only when they apply, and show errors instead of raising; it
follows changes made elsewhere. Widgets are driven by the messages their frontend sends (a click
on a header, a checkbox, a button), through ipywidgets' own comm dispatch."""

from __future__ import annotations

import dataclasses
import json
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
    assert b.widget is not None  # the anywidget, built and synced
    return b


def act(owner: RunBrowser | PromotionPanel, **message: object) -> None:
    """What a click sends: a comm message to the widget, through ipywidgets' own dispatch."""
    data = {"method": "custom", "content": message}
    owner.widget._handle_msg({"content": {"data": data}, "buffers": []})


def view(owner: RunBrowser | PromotionPanel) -> str:
    """The HTML the frontend draws (what a reopened notebook shows from its saved state)."""
    return str(owner.widget.view["html"])


def _names(b: RunBrowser) -> list[str]:
    return [r.name or "" for r in b.table.page_rows()]


def test_browser_shows_filters_sorts_and_pages_the_stored_runs(browser: RunBrowser) -> None:
    html, table = view(browser), browser.page_html(live=True)
    assert _names(browser) == ["run6", "run5", "run4"]  # newest first, page 1 of 3
    assert "run6" in table and "max_depth" in table and "accuracy" in table and table in html
    assert "seed" not in table  # the same in every run: no column
    assert 'data-action="sort" data-key="metrics.accuracy"' in html  # headers sort
    assert "data-snapshot" not in html and "Snapshot of this run browser" in html  # when saved
    act(browser, action="page", page="1")
    assert _names(browser) == ["run3", "run2", "run1"] and "page 2/3" in view(browser)
    act(browser, action="filter", value="accuracy >= 0.82, status = FINISHED")
    assert [r.name for r in browser.table.rows] == ["run6", "run5", "run4", "run2"]
    assert browser.table.page == 0 and "4 of 7 run(s)" in view(browser)
    act(browser, action="sort", key="metrics.accuracy")  # a header click: highest first
    assert _names(browser) == ["run6", "run5", "run4"] and "accuracy ▼" in view(browser)
    act(browser, action="sort", key="metrics.accuracy")  # again: the other way
    assert _names(browser) == ["run2", "run4", "run5"] and 'aria-sort="ascending"' in view(browser)
    act(browser, action="filter", value="max_depth = 0")  # replaces the filter; the sort stays
    assert [r.name for r in browser.table.rows] == ["run0", "run3", "run6"]
    act(browser, action="filter", value="max_dpth = 0")  # a typo: said in the browser
    assert "no column 'max_dpth'" in browser.message and "fix:" in browser.message
    assert "nbops-error" in view(browser) and "max_dpth" in view(browser)
    assert [r.name for r in browser.table.rows] == ["run0", "run3", "run6"]  # filter kept
    act(browser, action="filter", value="accuracy > high")
    assert "'accuracy' holds numbers, and 'high' is not one" in browser.message
    act(browser, action="filter", value="")
    assert len(browser.table.rows) == 7 and "max_dpth" not in browser.message

    bundle = browser._repr_mimebundle_()  # outside a widget frontend: HTML and text tables
    assert "application/vnd.jupyter.widget-view+json" not in bundle  # no kernel here
    assert "run0" in bundle["text/html"] and "<table" in bundle["text/html"]
    assert "data-action" not in bundle["text/html"].split("<svg")[0]  # no dead controls
    lines = bundle["text/plain"].splitlines()
    assert lines[0].split()[:2] == ["run", "name"] and lines[1].split()[1] == "run0"
    act(browser, action="no-such-button")
    assert "unknown widget action 'no-such-button'" in browser.message


def test_ticking_runs_shows_what_differs(browser: RunBrowser, stored: list[str]) -> None:
    act(browser, action="toggle", run=stored[6], value=True)  # page 1: run6, run5, run4
    act(browser, action="toggle", run=stored[5], value=True)
    act(browser, action="page", page="2")  # page 3 holds run0
    act(browser, action="toggle", run=stored[0])  # a click on its chart point
    assert browser.table.selected == [stored[6], stored[5], stored[0]]  # kept across pages
    compared = browser.comparison()
    assert compared.labels[0].startswith("run0")  # the earliest is the baseline
    assert compared.params == {"max_depth": [0, 2, 0]}  # typed (full records); seed: equal
    assert compared.deltas["accuracy"][2] == pytest.approx(0.06)
    assert list(compared.inputs) == ["X"] and compared.code_changed == [False, True, True]
    assert compared.code_diff and compared.code_diff[0].startswith("---")  # full records read
    html = view(browser)
    assert 'data-section="inputs"' in html and "different input data" in html
    assert "(+0.06)" in html and "changed" in html and "the diff" in html
    assert html.count("<circle") == 7 and html.count('stroke="currentColor" stroke-width="2"') == 3
    act(browser, action="toggle", run=stored[0], value=False)
    assert browser.table.selected == [stored[6], stored[5]]
    act(browser, action="clear")
    assert browser.table.selected == [] and "tick two or more runs" in view(browser)
    act(browser, action="chart-x", value="params.max_depth")
    act(browser, action="filter", value="status = FINISHED")
    assert view(browser).count("<circle") == 6 and "params.max_depth" in view(browser)
    act(browser, action="colour", value="status")
    assert "colour: status" in view(browser)
    act(browser, action="mode", mode="parallel")
    assert view(browser).count('class="nbops-line"') == 6 and "colour: accuracy" in view(browser)
    with pytest.raises(UsageError, match="no column 'f1'"):  # the Python API raises
        browser.set_chart("f1")
    browser.set_view("scatter")
    browser.set_chart("accuracy", against="seed")
    assert browser.chart_x == "params.seed" and view(browser).count("<circle") == 6


def test_refresh_shows_new_runs_and_delivers_spooled_ones(
    browser: RunBrowser, config: Config, shell: object, capsys: pytest.CaptureFixture[str]
) -> None:
    tracker = MlflowTracker(config)
    tracker.write(Spool(config.state_dir).put(_record(7, start=time.time()), None))
    Spool(config.state_dir).put(_record(8, start=time.time() + 1), None)  # not yet delivered
    act(browser, action="refresh")
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


def test_an_unknown_experiment_is_named_with_the_ones_that_exist(
    config: Config, stored: list[str]
) -> None:
    b = RunBrowser("wnie", session=Session(config))
    assert b.message_kind == "error" and "no experiment 'wnie'" in b.message
    assert "experiments are: " in b.message and "'wine'" in b.message
    assert "RunBrowser()" in b.message and "0 run(s)" not in b.message


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
    "nbops.gate.holdout": json.dumps({"rows": 150, "fingerprint": "xxh128:" + "e" * 32}),
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
    assert p.widget is not None  # the anywidget, built and synced
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
    html = view(panel)
    assert "champion v2, challenger v3, previous v1" in html
    assert [v.version for v in panel.model.versions] == [2, 3, 1]
    for text in ("accuracy (per holdout)", "0.96 · H1", "passed", "0.9733 · H1"):
        assert text in html
    assert "H1: 150 rows" in html and "unknown (no gate record)" in html
    assert "not comparable down the column" in html  # v1, v2: scored on unknown data
    assert "Confirm" not in html

    before = _aliases(config)
    act(panel, action="promote")
    assert "Promote challenger v3" in view(panel) and "Confirm" in view(panel)
    assert 'data-action="rollback" title="answer the question below first"' in view(panel)
    assert _aliases(config) == before  # asked, nothing moved
    act(panel, action="cancel")
    assert _aliases(config) == before and "cancelled" in view(panel)
    act(panel, action="reason", value="beats v2 on the holdout")
    act(panel, action="promote")
    act(panel, action="confirm")
    assert _aliases(config) == {"champion": 3, "previous": 2}
    assert "version 3 is the champion" in view(panel) and "load it:" in view(panel)
    assert panel.change is not None and panel.change.actor == "dana"
    assert panel.reason == "" and "data-reset" in view(panel)  # the reason box empties
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

    html = view(panel)  # no challenger left: the button cannot apply, and says why
    assert '<button class="nbops-button" data-action="promote" title="no version has alias' in html
    act(panel, action="promote")  # a stale frontend clicking anyway: an error, no traceback
    assert "nothing to promote" in panel.message and "nbops-error" in view(panel)
    act(panel, action="rollback")
    assert "previous champion v2" in view(panel) and _aliases(config)["champion"] == 3
    act(panel, action="confirm")
    assert _aliases(config) == {"champion": 2, "previous": 1}  # v2 had replaced v1
    assert "(rollback)" in panel.message and "champion v2" in view(panel)

    act(panel, action="champion", version="3")  # "make champion" on any version
    assert "Make v3 the champion? The champion v2 becomes previous" in view(panel)
    act(panel, action="confirm")
    assert _aliases(config) == {"champion": 3, "previous": 2}

    _confirm_refuses_a_changed_registry(panel, config, model_runs)
    shell.run_line_magic("nbops", "promotion iris")  # type: ignore[attr-defined]
    out = capsys.readouterr().out  # a terminal: the text table
    assert "model 'iris': champion v3, challenger v5" in out and "accuracy (per holdout)" in out


def _confirm_refuses_a_changed_registry(
    panel: PromotionPanel, config: Config, model_runs: list[str]
) -> None:
    """Someone registers a new challenger between the question and Confirm: nothing moves."""
    registry.register(config, model_runs[0], NAME, actor="ci")  # v4: challenger
    act(panel, action="refresh")
    act(panel, action="promote")
    registry.register(config, model_runs[1], NAME, actor="someone-else")  # v5 meanwhile
    act(panel, action="confirm")
    assert "changed since you asked (challenger v4 -> v5)" in panel.message
    assert _aliases(config) == {"champion": 3, "previous": 2, "challenger": 5}


def test_the_panel_follows_changes_made_elsewhere(panel: PromotionPanel, config: Config) -> None:
    act(panel, action="check")  # nothing changed: nothing redrawn
    assert panel.message == "" and "champion v2" in view(panel)
    registry.rollback(config, NAME, actor="cli")  # the CLI, another notebook, the pipeline
    act(panel, action="check")
    assert "updated: the registry changed elsewhere (champion v2 -> v1" in panel.message
    assert "champion v1" in view(panel) and panel.model.champion == 1
    assert registry.rollback(config, NAME).changes == []  # nothing left: not an error
    act(panel, action="check")
    assert "previous none" in view(panel)
    rollback = view(panel).split('data-action="rollback"')[1][:200]
    assert "nothing to roll back to" in rollback
    assert panel.view_state()["poll"] == PromotionPanel.POLL > 0  # the frontend asks this often


def test_unknown_model_is_an_error_in_the_panel(store: Config) -> None:
    p = PromotionPanel("irsi", session=Session(store))
    assert "no registered model 'irsi'" in p.message and "nbops model register" in p.message
    assert "no registered model" in p.to_text() and p.model.versions == []
