"""The widgets in a real browser: JupyterLab on localhost, headless Chromium from Debian's
packages driven by Playwright (no browser download). The test prepares a project with runs and
a registered model (champion v1, challenger v2), opens a notebook showing the RunBrowser and
the PromotionPanel, clicks "Promote challenger" and "Confirm", and reads the aliases back from
the store. It saves screenshots of both widgets (into docs/img with NBOPS_SCREENSHOTS=1).

Skipped when /usr/bin/chromium or playwright is missing, unless NBOPS_REQUIRE_BROWSER=1 (CI).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbops import registry
from nbops.config import Config
from nbops.record import ModelRef, RunRecord
from nbops.store import MlflowTracker, Spool

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
WAIT_MS = 120_000  # JupyterLab + kernel + mlflow import on a busy 2-core machine
NAME = "wine"
NOTEBOOK_CELLS = [
    "%load_ext nbops",
    "from nbops.widgets import RunBrowser\n"
    "browser = RunBrowser(page_size=8)\n"
    "browser.select([r.run_id for r in browser.table.rows[:2]])\n"
    "browser.set_chart('accuracy', against='max_depth')\n"
    "browser",
    f"%nbops promotion {NAME}",
    "%nbops runs wine",  # the magic's widget path (in a kernel)
]


def _require_browser() -> None:
    """Skip without Chromium/Playwright, or fail when CI says they must be there."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install playwright; no `playwright install` needed)")
    if not missing:
        return
    reason = "browser test needs " + " and ".join(missing)
    if os.environ.get("NBOPS_REQUIRE_BROWSER") == "1":
        pytest.fail(reason + " (NBOPS_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


def _prepare_store(config: Config) -> None:
    """Six runs (two with a model), v1 champion and v2 challenger with the gate's tags."""
    from sklearn.datasets import load_wine
    from sklearn.tree import DecisionTreeClassifier

    x, y = load_wine(return_X_y=True, as_frame=True)
    tracker, spool = MlflowTracker(config), Spool(config.state_dir)
    ids: list[str] = []
    ids_accuracy: list[float] = []  # run 1 (the candidate) logs the champion's as the gate does
    for i, depth in enumerate((1, 2, 3, 4, 5, 6)):
        model = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(x, y)
        now = time.time() - 60 + i
        accuracy = round(float(model.score(x, y)) - 0.02 * (i % 2), 4)
        champion = {"champion.accuracy": ids_accuracy[0]} if i == 1 else {}
        ids_accuracy.append(accuracy)
        record = RunRecord(
            name=f"tree-depth{depth}",
            experiment="wine",
            status="FINISHED",
            start=now,
            end=now + 0.4 + i / 10,
            params={"max_depth": depth, "criterion": "gini" if i % 2 else "entropy"},
            metrics={"accuracy": accuracy, "f1": round(accuracy - 0.01, 4), **champion},
            code_hash=f"sha256:{i // 3}",
            model=ModelRef("model", "sklearn", "DecisionTreeClassifier") if i < 2 else None,
        )
        payload = {"model": model, "input_example": x} if i < 2 else None
        ids.append(tracker.write(spool.put(record, payload)))
    registry.register(config, ids[0], NAME, alias="champion", actor="ci", reason="baseline")
    registry.register(config, ids[1], NAME, actor="ci", reason="pipeline run")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=config.tracking_uri)
    for key, value in {
        "nbops.gate.decision": "passed",
        "nbops.gate.metric": "accuracy",
        "nbops.gate.reasons": "accuracy >= champion's on the same holdout",
        "nbops.validation.data": "passed",
    }.items():
        client.set_model_version_tag(NAME, "2", key, value)


def _notebook(path: Path) -> None:
    cells = [
        {"cell_type": "code", "metadata": {}, "source": src, "outputs": [], "execution_count": None}
        for src in NOTEBOOK_CELLS
    ]
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb = {"cells": cells, "metadata": {"kernelspec": kernel}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb), encoding="utf-8")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def lab(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """JupyterLab serving the project folder; yields its URL."""
    _require_browser()
    state = tmp_path_factory.mktemp("jupyter")
    settings = state / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    quiet = {"checkForUpdates": False, "doNotDisturbMode": True, "fetchNews": "false"}
    (settings / "notification.jupyterlab-settings").write_text(json.dumps(quiet))
    port = _free_port()
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(state / "config"),
        "JUPYTER_DATA_DIR": str(state / "data"),
        "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
        "IPYTHONDIR": str(state / "ipython"),
    }
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        "--IdentityProvider.token=", "--ServerApp.password=", f"--ServerApp.root_dir={project}",
        "--allow-root",  # CI containers run as root
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        f"--LabApp.user_settings_dir={state / 'settings'}",
        f"--LabApp.workspaces_dir={state / 'workspaces'}",
    ]  # fmt: skip
    log = (state / "server.log").open("w")
    server = subprocess.Popen(
        command, cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_server(url, server, state / "server.log")
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait()
        log.close()


def _wait_for_server(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"JupyterLab exited ({server.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/status", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.2)  # polling the server's start, not a timing assumption
    pytest.fail(f"JupyterLab did not start in time:\n{log.read_text()[-3000:]}")


KERNEL_IDLE = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const kernel = w && w.sessionContext && w.sessionContext.session
    && w.sessionContext.session.kernel;
  return !!kernel && kernel.status === 'idle';
}"""


def test_promote_in_jupyterlab_moves_the_alias(
    config: Config, lab: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from mlflow.tracking import MlflowClient
    from playwright.sync_api import sync_playwright

    _prepare_store(config)
    _notebook(config.project_root / "widgets.ipynb")
    shots = tmp_path_factory.mktemp("screenshots")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = chromium.new_page(viewport={"width": 1700, "height": 1100})
            page.set_default_timeout(WAIT_MS)
            page.goto(f"{lab}/lab/tree/widgets.ipynb")
            page.wait_for_function(KERNEL_IDLE, timeout=WAIT_MS)
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")

            browsers = page.locator(".widget-vbox.nbops-run-browser")  # widgets, not fallbacks
            browser = browsers.first
            browser.locator("table.nbops-runs").wait_for()
            assert browser.locator("table.nbops-runs tbody tr").count() == 6
            assert "tree-depth6" in browser.inner_text()
            browser.locator("svg.nbops-chart").wait_for()
            browser.locator("table.nbops-compare").wait_for()  # the two preselected runs
            browser.screenshot(path=str(shots / "run_browser.png"))
            browsers.nth(1).locator("table.nbops-runs").wait_for()  # %nbops runs wine

            panel = page.locator(".widget-vbox.nbops-promotion-panel")
            panel.locator("table.nbops-versions").wait_for()
            assert "challenger v2" in panel.inner_text()
            panel.get_by_role("button", name="Promote challenger").click()
            confirm = panel.get_by_role("button", name="Confirm")
            confirm.wait_for()
            panel.screenshot(path=str(shots / "promotion_panel.png"))  # the question asked
            assert (
                int(
                    MlflowClient(config.tracking_uri).get_registered_model(NAME).aliases["champion"]
                )
                == 1
            )
            confirm.click()
            panel.locator(".nbops-ok").wait_for()
            assert "version 2 is the champion" in panel.inner_text()
        finally:
            chromium.close()

    client = MlflowClient(tracking_uri=config.tracking_uri)
    assert int(client.get_model_version_by_alias(NAME, "champion").version) == 2
    assert int(client.get_model_version_by_alias(NAME, "previous").version) == 1
    _keep_screenshots(shots)


def _keep_screenshots(shots: Path) -> None:
    """Screenshots are checked (not empty); NBOPS_SCREENSHOTS=1 copies them into docs/img."""
    for name in ("run_browser.png", "promotion_panel.png"):
        assert (shots / name).stat().st_size > 10_000
        if os.environ.get("NBOPS_SCREENSHOTS") == "1":
            DOCS_IMG.mkdir(parents=True, exist_ok=True)
            shutil.copy(shots / name, DOCS_IMG / name)
