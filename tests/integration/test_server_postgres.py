"""nbops against a team tracking server: ``mlflow server`` on a real PostgreSQL cluster (started
here, on free ports), artifacts proxied to a local folder standing in for object storage.

Nothing in nbops changes but ``MLFLOW_TRACKING_URI=http://...``: ``%%track`` and
``nbops.track`` runs with their models, the registry aliases, reading runs back (CLI included),
and a server that is down (the record waits in the spool until ``nbops sync``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import nbops
from nbops import commands, registry
from nbops.cli import main
from nbops.config import Config, load_config
from nbops.session import Session

sys.path.insert(0, str(Path(__file__).parent))
from services import MlflowServer, free_port, mlflow_server, postgres

pytestmark = pytest.mark.server

SETUP = """\
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier
X, y = load_wine(return_X_y=True, as_frame=True)
"""
TRAIN = """\
n_estimators = 10
model = RandomForestClassifier(n_estimators=n_estimators, max_depth=3, random_state=0).fit(X, y)
accuracy = float(model.score(X, y))
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    tmp = tmp_path_factory.mktemp("server")
    with postgres(tmp) as pg, mlflow_server(pg.url, tmp) as running:
        yield running


@pytest.fixture
def config(project: Path, server: MlflowServer, monkeypatch: pytest.MonkeyPatch) -> Config:
    """The project's config with the server as its store (overrides conftest's ``config``, so
    the ``shell`` fixture's %%track writes to the server)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a dead server fails fast
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    return load_config(project)


def client(server: MlflowServer) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=server.url)


def all_runs(server: MlflowServer) -> list[Any]:
    experiments = [e.experiment_id for e in client(server).search_experiments()]
    return list(client(server).search_runs(experiments))


def test_track_models_registry_and_artifacts_through_the_server(
    shell: Any,
    config: Config,
    server: MlflowServer,
    project: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert config.tracking_uri == server.url
    # 1. %%track in a shell: the run, its fingerprints and its model land on the server
    assert shell.run_cell(SETUP).success
    assert shell.run_cell(f"%%track --name forest --model model\n{TRAIN}").success
    session: Session = shell.user_ns["__nbops_session__"]
    assert session.flush(timeout=60) == []
    [run] = [r for r in all_runs(server) if r.info.run_name == "forest"]
    assert run.info.status == "FINISHED" and run.info.run_name == "forest"
    assert run.data.params["n_estimators"] == "10"
    assert 0.9 < run.data.metrics["accuracy"] <= 1.0
    assert {d.dataset.name for d in run.inputs.dataset_inputs} >= {"X", "y"}
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # proxied by the server
    files = [p for p in server.artifacts.rglob("*") if p.is_file()]
    stored = {p.relative_to(server.artifacts).parts[2:] for p in files}  # <exp>/<run>/...
    assert ("artifacts", "nbops", "record.json") in stored
    assert any(p.name == "MLmodel" and "models" in p.parts for p in files)  # a LoggedModel
    assert not (project / "mlflow.db").exists() and not (project / "mlartifacts").exists()
    assert "View run" not in capsys.readouterr().out  # MLflow's links would land in a cell

    # 2. nbops.track (scripts, steps) with a second model
    X, y = shell.user_ns["X"], shell.user_ns["y"]
    from sklearn.tree import DecisionTreeClassifier

    with nbops.track("tree", model="tree", session=session, wait=True) as tracked:
        tree = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y)
        accuracy = float(tree.score(X, y))
    assert tracked.error is None and tracked.record is not None
    assert tracked.record.metrics["accuracy"] == pytest.approx(accuracy)
    first, second = run.info.run_id, tracked.record.run_id
    assert second is not None

    # 3. the registry: aliases on the server's registry, the champion's model loads from it
    registry.register(config, first, "wine", reason="baseline", actor="alice")
    registry.promote(config, "wine", 1, actor="alice")
    registry.register(config, second, "wine", artifact_path="model", actor="bob")
    promoted = registry.promote(config, "wine", challenger=True, reason="simpler", actor="bob")
    assert promoted.aliases == {"champion": 2, "previous": 1}
    back = registry.rollback(config, "wine", reason="worse on new data", actor="carol")
    assert back.aliases == {"champion": 1}
    assert client(server).get_model_version_by_alias("wine", "champion").run_id == first
    import mlflow.pyfunc

    champion = mlflow.pyfunc.load_model("models:/wine@champion")  # MLFLOW_TRACKING_URI
    assert list(champion.predict(X.head(3))) == list(shell.user_ns["model"].predict(X.head(3)))

    # 4. reading back: the stored record (code included) and the CLI, unchanged
    record = session.tracker().get_run(first)
    assert record.code == TRAIN and record.model is not None and record.model.logged
    capsys.readouterr()
    assert main(["runs"]) == 0
    assert "forest" in capsys.readouterr().out
    assert main(["show", first]) == 0
    shown = capsys.readouterr()
    assert "accuracy" in shown.out and "n_estimators" in shown.out
    assert main(["model", "list", "wine"]) == 0
    assert "champion" in capsys.readouterr().out


def test_a_server_that_is_down_keeps_the_run_until_sync(
    config: Config, server: MlflowServer, project: Path
) -> None:
    from dataclasses import replace

    down = Session(replace(config, tracking_uri=f"http://127.0.0.1:{free_port()}"))
    params = {"alpha": 0.5}
    with nbops.track(
        "offline", experiment="down", params=["alpha"], session=down, wait=True
    ) as tracked:
        alpha = params["alpha"]
    assert tracked.error is not None and alpha == 0.5
    assert "nbops sync" in str(tracked.error)  # the message says how the run gets delivered
    assert tracked.record is not None and tracked.record.run_id is None

    # the record names the address it was made for, where nothing ever listened: a plain sync
    # keeps it, and says how to send it elsewhere; `nbops sync --store URI` delivers it
    text, ok = commands.sync(Session(config))
    assert not ok and "nbops sync --store URI" in text
    text, ok = commands.sync(Session(config), store=config.tracking_uri)
    assert ok, text
    assert "delivered 1 run(s)" in text
    found = [r for r in all_runs(server) if r.info.run_name == "offline"]
    assert len(found) == 1
    assert found[0].data.params["alpha"] == "0.5"
