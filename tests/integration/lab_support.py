"""JupyterLab in headless Chromium for the browser tests: a JupyterLab server on localhost
(settings, runtime and workspaces in a temporary folder), Chromium from Debian's packages driven
by Playwright (no browser download), and helpers to open a notebook, run it, save it and open it
again with a new kernel.

The server's app settings folder holds only nbops' ``jupyter-config/overrides.d`` (what the
wheel installs): JupyterLab then saves widget state with the notebook, as it does where nbops is
installed. ``saveState=False`` starts one with JupyterLab's own default instead.

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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DOCS_IMG = ROOT / "docs" / "img"
WAIT_MS = 180_000  # JupyterLab + kernel + mlflow import on a busy 2-core machine
KERNEL_IDLE = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const kernel = w && w.sessionContext && w.sessionContext.session
    && w.sessionContext.session.kernel;
  return !!kernel && kernel.status === 'idle';
}"""
RUNNING_CELLS = "document.querySelectorAll('.jp-InputArea-prompt').length"


def require_browser() -> None:
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


def write_notebook(path: Path, cells: list[str]) -> None:
    nb_cells = [
        {"cell_type": "code", "metadata": {}, "source": src, "outputs": [], "execution_count": None}
        for src in cells
    ]
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb = {"cells": nb_cells, "metadata": {"kernelspec": kernel}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb), encoding="utf-8")


def new_project(root: Path, name: str) -> Path:
    """A project folder under the server's root (its own pyproject.toml, so its own store)."""
    folder = root / name
    folder.mkdir()
    (folder / "pyproject.toml").write_text("[tool.nbops]\n")
    return folder


@dataclass
class Lab:
    url: str
    root: Path
    log: Path

    def sessions(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/api/sessions", timeout=10) as reply:
            return json.loads(reply.read())

    def stop_kernels(self) -> None:
        """Shut down every kernel (a notebook opened again then gets a new one)."""
        for session in self.sessions():
            request = urllib.request.Request(
                f"{self.url}/api/sessions/{session['id']}", method="DELETE"
            )
            urllib.request.urlopen(request, timeout=30).close()


@contextmanager
def jupyterlab(root: Path, state: Path, save_state: bool = True) -> Iterator[Lab]:
    """A JupyterLab server on ``root``; its settings, runtime files and log in ``state``."""
    settings = state / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    quiet = {"checkForUpdates": False, "doNotDisturbMode": True, "fetchNews": "false"}
    (settings / "notification.jupyterlab-settings").write_text(json.dumps(quiet))
    app_settings = state / "app-settings"
    (app_settings / "overrides.d").mkdir(parents=True)
    if save_state:
        shutil.copy(
            ROOT / "jupyter-config" / "overrides.d" / "nbops.json", app_settings / "overrides.d"
        )
    port = _free_port()
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(state / "config"),
        "JUPYTER_DATA_DIR": str(state / "data"),
        "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
        "IPYTHONDIR": str(state / "ipython"),
        "DVC_NO_ANALYTICS": "1",
    }
    for key in [k for k in env if k.startswith(("NBOPS_", "MLFLOW_", "JPY_"))]:
        del env[key]  # each project's store comes from its own pyproject.toml
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        "--IdentityProvider.token=", "--ServerApp.password=", f"--ServerApp.root_dir={root}",
        "--allow-root",  # CI containers run as root
        "--ServerApp.disable_check_xsrf=True",  # the tests stop kernels through the REST API
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        f"--LabApp.user_settings_dir={state / 'settings'}",
        f"--LabApp.workspaces_dir={state / 'workspaces'}",
        f"--LabApp.app_settings_dir={app_settings}",
    ]  # fmt: skip
    log = state / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_for_server(url, server, log)
            yield Lab(url, root, log)
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, 9)
                server.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


# ---- driving the page ---------------------------------------------------------------------------


def open_notebook(page: Any, lab: Lab, path: str) -> None:
    """Open ``path`` (relative to the server's root), alone (``?reset``: no notebook of an
    earlier test restored beside it), and wait for its kernel to be idle."""
    page.goto(f"{lab.url}/lab/tree/{path}?reset")
    page.wait_for_function(KERNEL_IDLE, timeout=WAIT_MS)
    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")  # the notebook's full width


def command(page: Any, name: str, args: dict[str, Any] | None = None) -> None:
    """Start a JupyterLab command; returns at once (run-all's promise ends with the cells)."""
    page.evaluate(
        "([name, args]) => { window.jupyterapp.commands.execute(name, args); }",
        [name, args or {}],
    )


def wait_until_done(page: Any) -> None:
    """Wait until no cell is queued or running (no ``[*]`` prompt) and the kernel is idle."""
    page.wait_for_function(
        """() => {
          const prompts = [...document.querySelectorAll('.jp-InputArea-prompt')];
          return !prompts.some(p => p.textContent.includes('*'));
        }""",
        timeout=WAIT_MS * 3,
    )
    page.wait_for_function(KERNEL_IDLE, timeout=WAIT_MS)


def run_all(page: Any) -> None:
    command(page, "notebook:run-all-cells")
    page.wait_for_timeout(500)  # the first prompt turns to [*]
    wait_until_done(page)


def save(page: Any) -> None:
    command(page, "docmanager:save")
    page.wait_for_function(
        "() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=WAIT_MS
    )


def errors_on_page(page: Any) -> list[str]:
    """The current notebook's error outputs (a cell that raised) and widgets that could not
    be drawn ("Error displaying widget"), as text."""
    return page.evaluate(
        """() => {
          const cells = window.jupyterapp.shell.currentWidget.content.widgets;
          const raised = cells.filter(c => c.model.type === 'code').flatMap(c => {
            const outputs = c.model.outputs;
            return [...Array(outputs.length).keys()].map(i => outputs.get(i).toJSON());
          }).filter(o => o.output_type === 'error').map(o => `${o.ename}: ${o.evalue}`);
          const widgets = [...document.querySelectorAll('.jp-OutputArea-output')]
            .map(o => o.innerText).filter(t => t.includes('Error displaying widget'));
          return [...raised, ...widgets];
        }"""
    )


def screenshot(element: Any, shots: Path, name: str, **options: Any) -> None:
    """An element's (or the page's: ``clip=``) screenshot into ``shots`` (and docs/img with
    NBOPS_SCREENSHOTS=1)."""
    path = shots / name
    element.screenshot(path=str(path), **options)
    assert path.stat().st_size > 5_000, f"{name} looks empty"
    if os.environ.get("NBOPS_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS_IMG / name)
