"""Notebook 05 in JupyterLab, with the learner clicking: the course's own path must survive it.

Notebook 04 runs first (nbclient: it promotes ``weather.ipynb`` and trains champion v1). Then 05
is opened in JupyterLab (headless Chromium, see lab_support.py) and run down to its
PromotionPanel; the learner clicks *Roll back* and *Confirm* there; then *Run All* from the next
cell down must be green: no cell raises (the winter comparison and the CLI rollback cope with the
rollback already done), and the champion is the 2012-13 model again. A screenshot of the panel
after the rollback goes with the others.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from lab_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    WAIT_MS,
    Lab,
    command,
    errors_on_page,
    jupyterlab,
    open_notebook,
    require_browser,
    screenshot,
    wait_until_done,
)
from nbclient import NotebookClient

from nbops import registry
from nbops.config import load_config

pytestmark = [pytest.mark.browser, pytest.mark.kernel]
COURSE = Path(__file__).resolve().parents[2] / "notebooks"
PANEL_CELL = 'PromotionPanel("weather")'


@pytest.fixture
def course_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Lab, Path]]:
    require_browser()
    keep = ("NBOPS_SCREENSHOTS", "NBOPS_REQUIRE_BROWSER")  # the test's own switches
    for key in [k for k in os.environ if k.startswith(("NBOPS_", "MLFLOW_", "JPY_"))]:
        if key not in keep:
            monkeypatch.delenv(key)  # the course's store comes from its own folder
    course = tmp_path / "course"
    course.mkdir()
    for path in [*COURSE.glob("*.ipynb"), COURSE / "pyproject.toml"]:
        shutil.copy(path, course)
    four = nbformat.read(course / "04_promote_to_pipeline.ipynb", as_version=4)
    NotebookClient(
        four, kernel_name="python3", timeout=900, resources={"metadata": {"path": str(course)}}
    ).execute()
    with jupyterlab(tmp_path, tmp_path / "jupyter") as lab:
        yield lab, course


def _cell_index(page: Any, text: str) -> int:
    return page.evaluate(
        """(text) => window.jupyterapp.shell.currentWidget.content.widgets
             .findIndex(cell => cell.model.sharedModel.getSource().includes(text))""",
        text,
    )


def _select(page: Any, index: int) -> None:
    page.evaluate(
        "(i) => { window.jupyterapp.shell.currentWidget.content.activeCellIndex = i; }", index
    )


def test_roll_back_in_the_panel_then_run_all_the_rest_of_05(
    course_lab: tuple[Lab, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    from playwright.sync_api import sync_playwright

    lab, course = course_lab
    shots = tmp_path_factory.mktemp("screenshots")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = chromium.new_page(viewport={"width": 1700, "height": 1400})
            page.set_default_timeout(WAIT_MS)
            open_notebook(page, lab, "course/05_continuous_training.ipynb")
            panel_at = _cell_index(page, PANEL_CELL)
            assert panel_at > 0
            _select(page, panel_at)
            command(page, "notebook:run-all-above")
            page.wait_for_timeout(500)
            wait_until_done(page)
            command(page, "notebook:run-cell")
            panel = page.locator(".nbops-widget").first
            panel.locator("table.nbops-versions").wait_for()
            assert "champion v2" in panel.inner_text() and "previous v1" in panel.inner_text()
            assert "not comparable down the column" in panel.inner_text()  # 2012-13 vs summers

            panel.get_by_role("button", name="Roll back").click()
            panel.get_by_role("button", name="Confirm").click()
            panel.locator(".nbops-ok").wait_for()
            assert "version 1 is the champion (rollback)" in panel.inner_text()
            screenshot(panel, shots, "promotion_panel_rolled_back.png")

            _select(page, panel_at + 1)
            command(page, "notebook:run-all-below")
            page.wait_for_timeout(500)
            wait_until_done(page)
            assert errors_on_page(page) == []
            text = page.locator(".jp-Notebook").inner_text()
            assert "already rolled back: the champion is v1" in text
            assert "MAE on winter days" in text and "Level 1" in text
        finally:
            chromium.close()
    versions = {v.version: v for v in registry.list_versions(load_config(course), "weather")}
    assert versions[1].aliases == ["champion"] and versions[2].aliases == []
