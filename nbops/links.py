"""Links from nbops' output to a run's page in MLflow's UI.

A link needs the UI's address: ``[tool.nbops] ui_url`` (or ``NBOPS_UI_URL``), e.g.
``http://127.0.0.1:5000`` for an ``mlflow ui`` the user started; for a tracking server
(``http(s)://`` tracking URI) the server itself, which serves the UI. A SQLite store has no UI
until someone starts one, so without ``ui_url`` there is no link (the README says how to start
it). The link opens MLflow's model-training view (``workflowType=machine_learning``): MLflow
3.17 opens on its GenAI view unless told, whatever the experiment's kind. Stdlib only: the
summary under every tracked cell calls this.
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


VIEW = "workflowType=machine_learning"  # MLflow's "Model training" view


def run_link(ui: str, run_id: str | None, experiment_id: str = "") -> str:
    """The run's page in the UI at ``ui`` ("" without a UI or a run id), in the model-training
    view when the experiment id is known (MLflow's ``#/runs/<id>`` route drops the view). The
    run browser calls this for each row."""
    if not ui or not run_id:
        return ""
    base = ui.rstrip("/")
    if experiment_id:
        return f"{base}/#/experiments/{experiment_id}/runs/{run_id}?{VIEW}"
    return f"{base}/#/runs/{run_id}"


def experiment_link(ui: str, experiment_id: str) -> str:
    """The experiment's runs table in the model-training view."""
    return f"{ui.rstrip('/')}/#/experiments/{experiment_id}?{VIEW}" if ui and experiment_id else ""
