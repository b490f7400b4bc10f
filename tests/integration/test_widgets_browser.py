"""The widgets in a real browser: JupyterLab on localhost, headless Chromium driven by Playwright
(see lab_support.py). What a user does, with the mouse:

- the RunBrowser: sort by clicking a column header (twice: the other way), tick two runs and
  read the comparison, hover a chart point and read its run in the tooltip, switch to parallel
  coordinates; then save the notebook, stop its kernel and open it again: the browser is drawn
  from the saved state with a "snapshot" note, never "Error displaying widget";
- the PromotionPanel: buttons that cannot apply are disabled and say why, Promote challenger and
  "make champion" ask first, and a rollback made elsewhere shows up in the open panel by itself;
- live tracking: during a 5-second loop that logs a metric per step, the curve under the cell
  grows while the cell runs.

Each takes its screenshots (docs/img with NBOPS_SCREENSHOTS=1).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lab_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    WAIT_MS,
    Lab,
    errors_on_page,
    jupyterlab,
    new_project,
    open_notebook,
    require_browser,
    run_all,
    save,
    screenshot,
    write_notebook,
)

from nbops import registry
from nbops.config import Config, load_config
from nbops.record import DataRef, ModelRef, RunRecord
from nbops.store import MlflowTracker, Spool

pytestmark = pytest.mark.browser
NAME = "wine"
SWEEP = [(n, d) for n in (10, 50) for d in (1, 2, 4, 8)]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    require_browser()
    root = tmp_path_factory.mktemp("lab")
    with jupyterlab(root, tmp_path_factory.mktemp("jupyter")) as server:
        yield server


@pytest.fixture
def page(lab: Lab) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            tab = chromium.new_page(viewport={"width": 1700, "height": 1800})
            tab.set_default_timeout(WAIT_MS)
            yield tab
        finally:
            chromium.close()
    lab.stop_kernels()


@pytest.fixture
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


def _sweep(config: Config) -> list[str]:
    """Eight runs of a forest sweep in experiment "sweep" (rf-10-1 oldest); the same input
    data in all but the last, each with its own predictions."""
    tracker, spool = MlflowTracker(config), Spool(config.state_dir)
    ids = []
    for i, (trees, depth) in enumerate(SWEEP):
        accuracy = round(0.70 + 0.05 * min(depth, 4) + 0.01 * (trees == 50) - 0.001 * i, 4)
        now = time.time() - 600 + i * 7
        x = "b" if i == len(SWEEP) - 1 else "a"
        record = RunRecord(
            name=f"rf-{trees}-{depth}",
            experiment="sweep",
            status="FINISHED",
            start=now,
            end=now + 1.5 + depth / 10,
            params={"n_estimators": trees, "max_depth": depth, "random_state": 0},
            metrics={"accuracy": accuracy, "f1": round(accuracy - 0.02, 4)},
            data=[
                DataRef("X_train", "input", "DataFrame", "xxh128:" + x * 32, [124, 4]),
                DataRef("y_train", "input", "Series", "xxh128:" + "c" * 32, [124]),
                DataRef("predicted", "output", "ndarray", "xxh128:" + f"{i:x}" * 32, [54]),
            ],
            code_hash="sha256:sweep",
        )
        ids.append(tracker.write(spool.put(record, None)))
    return ids


def _row_names(widget: Any) -> list[str]:
    return widget.locator("table.nbops-runs tbody tr td:nth-child(3)").all_inner_texts()


def test_run_browser_sorts_compares_hovers_and_survives_a_reopen(
    lab: Lab, page: Any, shots: Path
) -> None:
    folder = new_project(lab.root, "browse")
    config = load_config(folder)
    ids = _sweep(config)
    write_notebook(
        folder / "browse.ipynb",
        [
            "%load_ext nbops",
            "from nbops.widgets import RunBrowser\n"
            "browser = RunBrowser('sweep', page_size=10)\n"
            "browser.set_chart('accuracy', against='max_depth', colour='n_estimators')\n"
            "browser",
        ],
    )
    open_notebook(page, lab, "browse/browse.ipynb")
    run_all(page)
    widget = page.locator(".nbops-widget").first
    widget.locator("table.nbops-runs").wait_for()
    assert len(_row_names(widget)) == 8 and _row_names(widget)[0] == "rf-50-8"  # newest first

    # sort by clicking a header; again: the other way
    header = widget.locator('th[data-key="metrics.accuracy"]')
    header.click()
    page.wait_for_selector('th[data-key="metrics.accuracy"][aria-sort="descending"]')
    best = _row_names(widget)[0]
    assert best == "rf-50-4", _row_names(widget)
    header.click()
    page.wait_for_selector('th[data-key="metrics.accuracy"][aria-sort="ascending"]')
    assert _row_names(widget)[0] == "rf-10-1"
    started = widget.locator("table.nbops-runs tbody tr td:nth-child(5)").all_inner_texts()
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", t) for t in started), started
    assert len(set(started)) == 8  # to the second: runs a few seconds apart read apart

    # tick two runs: the comparison, split into inputs / outputs / params / metrics
    for name in ("rf-10-2", "rf-10-4"):
        widget.locator("tr", has_text=name).locator("input[type=checkbox]").check()
        page.wait_for_timeout(200)
    compare = widget.locator(".nbops-compare")
    compare.locator('[data-section="metrics"]').wait_for()
    text = compare.inner_text()
    assert "same input data in every run (X_train, y_train)" in text
    assert "outputs" in text and "predicted" in text and "max_depth" in text
    assert "different data" not in text

    # hover a chart point: its run in the tooltip
    widget.scroll_into_view_if_needed()  # all of it: the screenshot must not scroll
    run_id = ids[SWEEP.index((50, 4))]
    widget.locator(f'circle.nbops-point[data-run="{run_id}"]').hover()
    tip = widget.locator(".nbops-tip")
    tip.wait_for(state="visible")
    assert f"rf-50-4 ({run_id[:8]})" in tip.inner_text() and "accuracy = 0.904" in tip.inner_text()
    legend = widget.locator(".nbops-legend").inner_text()  # colour by n_estimators: 10 and 50
    assert "n_estimators" in legend and "10" in legend and "50" in legend
    screenshot(widget, shots, "run_browser.png")  # with the tooltip

    # a filter typo says what is wrong, and the table stays
    filter_box = widget.locator('input[data-action="filter"]')
    filter_box.fill("accuracy >> 2")
    filter_box.press("Enter")
    widget.locator(".nbops-error").wait_for()
    assert "an operator follows" in widget.locator(".nbops-error").inner_text()
    assert len(_row_names(widget)) == 8

    widget.get_by_role("button", name="parallel coordinates").click()
    widget.locator("svg.nbops-parallel").wait_for()
    assert widget.locator("polyline.nbops-line").count() == 8
    screenshot(widget, shots, "run_browser_parallel.png")

    # save, stop the kernel, open again: the last state, marked as a snapshot
    save(page)
    saved = json.loads((folder / "browse.ipynb").read_text())
    assert "application/vnd.jupyter.widget-state+json" in saved["metadata"]["widgets"]
    lab.stop_kernels()
    open_notebook(page, lab, "browse/browse.ipynb")
    widget = page.locator(".nbops-widget").first
    widget.locator("svg.nbops-parallel").wait_for()
    snapshot = widget.locator(".nbops-snapshot")
    snapshot.wait_for(state="visible")
    assert "Snapshot of this run browser" in snapshot.inner_text()
    assert len(_row_names(widget)) == 8
    assert errors_on_page(page) == []
    screenshot(widget, shots, "run_browser_reopened.png")


def _registry(config: Config) -> list[str]:
    """Model "wine": v1 champion (gated, holdout of 2012-13), v2 challenger (gated on another
    holdout), v3 registered by hand."""
    from mlflow.tracking import MlflowClient
    from sklearn.datasets import load_wine
    from sklearn.tree import DecisionTreeClassifier

    x, y = load_wine(return_X_y=True, as_frame=True)
    tracker, spool = MlflowTracker(config), Spool(config.state_dir)
    ids = []
    for i, (accuracy, champion) in enumerate([(0.91, None), (0.95, 0.89), (0.8, None)]):
        model = DecisionTreeClassifier(max_depth=i + 1, random_state=0).fit(x, y)
        metrics = {"accuracy": accuracy} | ({"champion.accuracy": champion} if champion else {})
        record = RunRecord(
            name=f"candidate-{i + 1}",
            experiment="gate",
            status="FINISHED",
            start=time.time() - 60 + i,
            end=time.time() - 59 + i,
            metrics=metrics,
            model=ModelRef("model", "sklearn", "DecisionTreeClassifier"),
        )
        ids.append(tracker.write(spool.put(record, {"model": model, "input_example": x})))
    registry.register(config, ids[0], NAME, alias="champion", actor="ci", reason="first")
    registry.register(config, ids[1], NAME, actor="ci", reason="pipeline run")
    registry.register(config, ids[2], NAME, alias=None, actor="dana")
    client = MlflowClient(tracking_uri=config.tracking_uri)
    reasons = (
        "accuracy 0.95 >= champion 0.89 on the same holdout (min improvement 0); data validation "
        "reported drift in 3 of 4 features (PSI 0.31-0.52): retrained on the new batch"
    )
    for version, rows, fp, why in [
        ("1", 146, "1" * 32, "no champion yet"),
        ("2", 92, "2" * 32, reasons),
    ]:
        for key, value in {
            "nbops.gate.decision": "passed",
            "nbops.gate.metric": "accuracy",
            "nbops.gate.reasons": why,
            "nbops.gate.holdout": json.dumps({"rows": rows, "fingerprint": f"xxh128:{fp}"}),
            "nbops.validation.data": "passed" if version == "1" else "drift",
        }.items():
            client.set_model_version_tag(NAME, version, key, value)
    return ids


def _aliases(config: Config) -> dict[str, int]:
    from mlflow.tracking import MlflowClient

    model = MlflowClient(tracking_uri=config.tracking_uri).get_registered_model(NAME)
    return {a: int(v) for a, v in model.aliases.items()}


def test_promotion_panel_buttons_questions_and_changes_made_elsewhere(
    lab: Lab, page: Any, shots: Path
) -> None:
    folder = new_project(lab.root, "promote")
    config = load_config(folder)
    _registry(config)
    write_notebook(folder / "panel.ipynb", ["%load_ext nbops", f"%nbops promotion {NAME}"])
    open_notebook(page, lab, "promote/panel.ipynb")
    run_all(page)
    panel = page.locator(".nbops-widget").first
    panel.locator("table.nbops-versions").wait_for()
    text = panel.inner_text()
    assert "champion v1, challenger v2, previous none" in text
    assert "different holdouts" in text and "H1: 146 rows" in text and "H2: 92 rows" in text
    assert "0.95 · H2" in text and "0.89 · H2" in text  # the champion on v2's holdout

    rollback = panel.get_by_role("button", name="Roll back")
    assert rollback.get_attribute("aria-disabled") == "true"
    assert "nothing to roll back to" in rollback.get_attribute("title")
    own = panel.locator("tr", has_text="v1").get_by_role("button", name="make champion")
    assert own.get_attribute("aria-disabled") == "true"
    assert own.get_attribute("title") == "v1 is the champion"
    panel.locator("details.nbops-reasons summary").first.click()  # the full gate reasons
    assert "retrained on the new batch" in panel.locator("details.nbops-reasons").first.inner_text()

    panel.locator('input[data-action="reason"]').fill("better on the new holdout")
    panel.get_by_role("button", name="Promote challenger").click()
    confirm = panel.get_by_role("button", name="Confirm")
    confirm.wait_for()
    assert _aliases(config) == {"champion": 1, "challenger": 2}  # asked, nothing moved yet
    screenshot(panel, shots, "promotion_panel.png")
    confirm.click()
    panel.locator(".nbops-ok").wait_for()
    assert "version 2 is the champion" in panel.inner_text()
    assert _aliases(config) == {"champion": 2, "previous": 1}
    assert panel.get_by_role("button", name="Roll back").get_attribute("aria-disabled") is None

    # "make champion" on the version registered by hand
    panel.locator("tr", has_text="v3").get_by_role("button", name="make champion").click()
    panel.get_by_role("button", name="Confirm").click()
    page.wait_for_function(
        "() => document.querySelector('.nbops-widget').innerText.includes('champion v3')"
    )
    assert _aliases(config) == {"champion": 3, "previous": 2}

    # a rollback from elsewhere (the CLI, another notebook): the open panel updates itself
    registry.rollback(config, NAME, actor="someone-else")
    page.wait_for_function(
        "() => document.querySelector('.nbops-widget').innerText.includes("
        "'the registry changed elsewhere')",
        timeout=60_000,
    )
    assert "champion v2" in panel.inner_text()
    screenshot(panel, shots, "promotion_panel_updated.png")

    save(page)
    lab.stop_kernels()
    open_notebook(page, lab, "promote/panel.ipynb")
    panel = page.locator(".nbops-widget").first
    panel.locator(".nbops-snapshot").wait_for(state="visible")
    assert "champion v2" in panel.inner_text() and errors_on_page(page) == []


LIVE_CELL = """%%track --name live-demo
import time
import nbops

for epoch in nbops.steps(range(20)):
    time.sleep(0.25)  # one epoch of training
    nbops.log_metric("loss", 1 / (epoch + 1) + 0.05 * (epoch % 3))
    nbops.log_metric("accuracy", 1 - 1 / (epoch + 2))
"""


def test_live_chart_grows_while_the_cell_runs(lab: Lab, page: Any, shots: Path) -> None:
    folder = new_project(lab.root, "live")
    write_notebook(folder / "live.ipynb", ["%load_ext nbops", LIVE_CELL])
    open_notebook(page, lab, "live/live.ipynb")
    from lab_support import command, wait_until_done

    command(page, "notebook:run-all-cells")
    curve = page.locator('svg.nbops-curve[data-metric="loss"]')
    curve.wait_for()
    counts = []
    for _ in range(60):  # while the 5-second loop runs
        summary = page.locator(".nbops-summary").first
        if "RUNNING" not in summary.inner_text():
            break
        counts.append(int(curve.get_attribute("data-points") or 0))
        if len(counts) == 6 and (box := summary.bounding_box()):
            # the page, clipped: each update replaces the summary's element, and an element
            # screenshot fails when that happens while it waits for the element to be stable
            screenshot(page, shots, "live_tracking.png", clip=box)
        page.wait_for_timeout(250)
    wait_until_done(page)
    grew = sorted(set(counts))
    assert len(grew) >= 3 and grew == sorted(grew), counts  # updated live, several times
    final = page.locator(".nbops-summary").first.inner_text()
    assert "FINISHED" in final and "20 pts" in final


def test_where_jupyterlab_saves_no_widget_state_the_widget_says_so(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """JupyterLab's own default (saveState off): a reopened notebook would show "Error
    displaying widget", so the live widget warns and names the setting."""
    from playwright.sync_api import sync_playwright

    require_browser()
    root = tmp_path_factory.mktemp("plain-lab")
    folder = new_project(root, "plain")
    _sweep(load_config(folder))
    write_notebook(folder / "plain.ipynb", ["%load_ext nbops", "%nbops runs sweep"])
    state = tmp_path_factory.mktemp("plain-jupyter")
    with jupyterlab(root, state, save_state=False) as lab, sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = chromium.new_page(viewport={"width": 1700, "height": 1200})
            page.set_default_timeout(WAIT_MS)
            open_notebook(page, lab, "plain/plain.ipynb")
            run_all(page)
            widget = page.locator(".nbops-widget").first
            widget.locator("table.nbops-runs").wait_for()  # %nbops runs: the widget
            warning = widget.locator(".nbops-savestate")
            warning.wait_for(state="visible")
            assert "Save Widget State Automatically" in warning.inner_text()
        finally:
            chromium.close()
