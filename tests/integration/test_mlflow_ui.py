"""MLflow's own UI shows what nbops recorded: a %%track run's page, in headless Chromium, lists
its description, its datasets (with their contexts) and its logged model.

``mlflow ui`` is started on a free port against the test's SQLite store; the page is read as a
person would read it (its text), and its screenshot is kept (into docs/img with
NBOPS_SCREENSHOTS=1). Skipped without Chromium or Playwright, unless NBOPS_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from nbops.config import Config
from nbops.links import experiment_link, run_link

sys.path.insert(0, str(Path(__file__).parent))
from lab_support import CHROMIUM, CHROMIUM_ARGS, DOCS_IMG
from lab_support import require_browser as _require_browser
from services import _stop, _wait_healthy, free_port, tail

pytestmark = pytest.mark.browser
WAIT_MS = 120_000
SETUP = """\
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
wine = load_wine(as_frame=True).frame
FEATURES = ["alcohol", "malic_acid", "magnesium", "hue"]
X_train, X_test, y_train, y_test = train_test_split(
    wine[FEATURES], wine["target"], test_size=0.3, random_state=0, stratify=wine["target"]
)
"""
BASELINE = """\
%%track --name baseline
# the baseline forest: a few shallow trees
n_estimators = 50
max_depth = 3
model = RandomForestClassifier(n_estimators=n_estimators, max_depth=max_depth, random_state=0)
model.fit(X_train, y_train)
accuracy = accuracy_score(y_test, model.predict(X_test))
"""


class _Ui:
    """``mlflow ui`` for one store, stopped (its process group) at the end."""

    def __init__(self, uri: str, tmp: Path) -> None:
        self.log = tmp / "mlflow-ui.log"
        self.artifacts = tmp
        port = free_port()
        command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri]
        command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                command, cwd=tmp, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.url = f"http://127.0.0.1:{port}"


def _close_assistant(page: Any) -> None:
    """MLflow 3.17 opens an assistant panel beside the run; it hides half the page."""
    for label in ("Close", "close"):
        button = page.get_by_role("button", name=label)
        if button.count():
            button.first.click()
            return


def test_the_run_page_shows_datasets_and_the_logged_model(
    shell: Any, config: Config, tmp_path_factory: pytest.TempPathFactory
) -> None:
    _require_browser()
    from playwright.sync_api import sync_playwright

    assert shell.run_cell(SETUP).success and shell.run_cell(BASELINE).success
    assert shell.user_ns["__nbops_session__"].flush(timeout=60) == []
    client = MlflowClient(config.tracking_uri)
    [experiment] = [e for e in client.search_experiments() if e.name != "Default"]
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    [run] = client.search_runs([experiment.experiment_id])
    assert len(run.data.params) <= 5  # the course's baseline cell: lean params

    shots, text = tmp_path_factory.mktemp("ui"), ""  # what the page says, read as a person
    ui = _Ui(config.tracking_uri, shots)
    try:
        _wait_healthy(ui, 120)  # type: ignore[arg-type]
        with sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = chromium.new_page(viewport={"width": 1300, "height": 1250})
                # nbops' links open the model-training view (MLflow opens on GenAI otherwise)
                page.goto(experiment_link(ui.url, experiment.experiment_id))
                page.get_by_text("baseline").first.wait_for(timeout=WAIT_MS)
                page.screenshot(path=str(shots / "experiment.png"))
                page.goto(run_link(ui.url, run.info.run_id, experiment.experiment_id))
                page.get_by_text("the baseline forest").first.wait_for(timeout=WAIT_MS)
                page.get_by_text("Logged models").first.wait_for(timeout=WAIT_MS)
                _close_assistant(page)
                page.get_by_text("+3").first.click()  # the other datasets of the run
                page.get_by_text("X_train").first.wait_for(timeout=WAIT_MS)
                page.wait_for_timeout(1000)
                page.screenshot(path=str(shots / "mlflow_run_page.png"))
                text = page.inner_text("body")
            finally:
                chromium.close()
    except Exception:
        print(tail(ui.log))
        raise
    finally:
        _stop(ui.process)
    # what a person reads there: the description, the datasets with their contexts, the model
    for shown in ("the baseline forest", "X_train", "X_test", "Training", "Evaluation", "Ready"):
        assert shown in text, shown
    assert "Logged models (1)" in text and "Parameters (3)" in text
    assert "max_depth" in text and "model.criterion" not in text
    assert (shots / "mlflow_run_page.png").stat().st_size > 10_000
    if os.environ.get("NBOPS_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copy(shots / "mlflow_run_page.png", DOCS_IMG / "mlflow_run_page.png")
