"""Links from nbops' output to a run's page in MLflow's UI.

A link needs the UI's address: ``[tool.nbops] ui_url`` (or ``NBOPS_UI_URL``), e.g.
``http://127.0.0.1:5000`` for an ``mlflow ui`` the user started; for a tracking server
(``http(s)://`` tracking URI) the server itself, which serves the UI. A SQLite store has no UI
until someone starts one, so without ``ui_url`` there is no link (the README says how to start
it). ``#/runs/<run id>`` is MLflow's own route: it opens the run in its experiment. Stdlib
only: the summary under every tracked cell calls this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbops.config import Config


def ui_address(config: Config) -> str:
    """The MLflow UI to link to ("" for none): ``ui_url``, else a tracking server."""
    if config.ui_url:
        return config.ui_url.rstrip("/")
    uri = config.tracking_uri
    return uri.rstrip("/") if uri.startswith(("http://", "https://")) else ""


def run_link(ui: str, run_id: str | None) -> str:
    """The run's page in the UI at ``ui`` ("" without a UI or a run id). The run browser
    calls this for each row."""
    if not ui or not run_id:
        return ""
    return f"{ui.rstrip('/')}/#/runs/{run_id}"
