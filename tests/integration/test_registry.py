"""The model registry against a real SQLite MLflow store: register, promote, rollback, the alias
history on the versions, the errors (message names the model and the fix), and the CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from nbops import registry
from nbops.cli import main
from nbops.config import Config
from nbops.errors import RegistryError, RunNotFoundError, UsageError
from nbops.record import ModelRef, RunRecord
from nbops.store import MlflowTracker, Spool

mlflow = pytest.importorskip("mlflow")
sklearn_tree = pytest.importorskip("sklearn.tree")

NAME = "iris"


@pytest.fixture
def runs(config: Config) -> list[str]:
    """Three finished runs, each with a small sklearn model logged under ``model``."""
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True, as_frame=True)
    tracker, spool = MlflowTracker(config), Spool(config.state_dir)
    run_ids = []
    for depth in (1, 2, 3):
        model = sklearn_tree.DecisionTreeClassifier(max_depth=depth, random_state=0).fit(x, y)
        now = time.time()
        record = RunRecord(
            name=f"depth{depth}",
            experiment="iris",
            status="FINISHED",
            start=now,
            end=now,
            params={"max_depth": depth},
            metrics={"accuracy": float(model.score(x, y))},
            model=ModelRef("model", "sklearn", "DecisionTreeClassifier"),
        )
        run_ids.append(tracker.write(spool.put(record, {"model": model, "input_example": x})))
    return run_ids


def _client(config: Config):  # type: ignore[no-untyped-def]
    return mlflow.tracking.MlflowClient(tracking_uri=config.tracking_uri)


def _alias_owner(config: Config, alias: str) -> int:
    return int(_client(config).get_model_version_by_alias(NAME, alias).version)


def _versions(config: Config) -> dict[int, registry.VersionInfo]:
    return {v.version: v for v in registry.list_versions(config, NAME)}


def test_register_promote_challenger_and_roll_back(
    config: Config,
    runs: list[str],
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # elsewhere, MLflow's default store is another one: the registry must not depend on it
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    v1 = registry.register(config, runs[0], NAME, reason="baseline", actor="alice")
    assert (v1.version, v1.aliases, v1.run_id) == (1, ["challenger"], runs[0])
    # a version of the run's LoggedModel
    [output] = _client(config).get_run(runs[0]).outputs.model_outputs
    assert v1.source == f"models:/{output.model_id}" and v1.uri == "models:/iris/1"

    first = registry.promote(config, NAME, 1, reason="first model", actor="alice")
    assert first.aliases == {"champion": 1}  # the challenger alias left the promoted version
    assert registry.AliasChange("challenger", 1, None) in first.changes
    mlflow.set_tracking_uri(config.tracking_uri)
    try:
        served = mlflow.sklearn.load_model(f"models:/{NAME}@champion")
    finally:
        mlflow.set_tracking_uri(None)
    assert served.get_params()["max_depth"] == 1

    registry.register(config, runs[1], NAME, reason="deeper tree", actor="bob")
    assert _alias_owner(config, "challenger") == 2
    second = registry.promote(config, NAME, challenger=True, reason="beats v1", actor="bob")
    assert second.aliases == {"champion": 2, "previous": 1}
    assert _client(config).get_model_version_by_alias(NAME, "champion").run_id == runs[1]

    back = registry.rollback(config, NAME, reason="v2 misbehaves", actor="carol")
    assert back.aliases == {"champion": 1}  # nothing was champion before v1: previous removed
    versions = _versions(config)
    assert list(_versions(config)) == [2, 1]  # newest first
    assert versions[1].aliases == ["champion"] and versions[2].aliases == []
    assert versions[2].metrics["accuracy"] > versions[1].metrics["accuracy"]

    # one short tag on the version in MLflow; the history is a document beside the model
    tags = _client(config).get_model_version(NAME, "2").tags
    assert list(tags) == ["nbops.audit"]
    assert tags["nbops.audit"].startswith("no alias since ")
    assert "rollback by carol: v2 misbehaves" in tags["nbops.audit"]
    assert tags["nbops.audit"].endswith("5 event(s) in nbops/registry/iris/v2.json")
    [output] = _client(config).get_run(runs[1]).outputs.model_outputs
    logged = _client(config).get_logged_model(output.model_id)
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=f"{logged.artifact_location}/nbops/registry/iris/v2.json",
        tracking_uri=config.tracking_uri,
    )
    history = json.loads(Path(local).read_text())["events"]
    assert history == versions[2].history
    assert [(e.get("op"), e.get("alias"), e.get("action")) for e in history] == [
        ("register", None, None),
        ("register", "challenger", "set"),
        ("promote", "champion", "set"),
        ("promote", "challenger", "removed"),
        ("rollback", "champion", "removed"),
    ]
    assert history[2] | {"at": ""} == {
        "at": "",
        "by": "bob",
        "op": "promote",
        "reason": "beats v1",
        "alias": "champion",
        "action": "set",
        "from": 1,
    }
    v1_events = [(e["op"], e.get("alias"), e.get("action")) for e in versions[1].history]
    assert v1_events[-2:] == [("rollback", "champion", "set"), ("rollback", "previous", "removed")]


def test_rollback_walks_back_through_promotions(config: Config, runs: list[str]) -> None:
    for run_id in runs:
        registry.register(config, run_id, NAME, alias="champion", actor="ci")
    assert registry.promote(config, NAME, 3).changes == []  # already champion: nothing to do
    assert _versions(config)[3].aliases == ["champion"]
    assert registry.rollback(config, NAME).aliases == {"champion": 2, "previous": 1}
    assert registry.rollback(config, NAME).aliases == {"champion": 1}
    nothing = registry.rollback(config, NAME)  # no previous: an outcome, not an error
    assert nothing.changes == [] and nothing.aliases == {"champion": 1}
    assert "nothing to roll back to: no version of model 'iris' has alias 'previous'" in (
        nothing.note
    )
    assert "nbops model promote iris VERSION" in nothing.note
    assert _versions(config)[1].aliases == ["champion"]

    change = registry.promote(config, NAME, "v3", reason="re-promote")
    assert change.aliases == {"champion": 3, "previous": 1}


def test_errors_name_the_model_and_the_fix(config: Config, runs: list[str]) -> None:
    with pytest.raises(RegistryError, match=r"model .nope. in .*\(no model is registered there\)"):
        registry.list_versions(config, "nope")
    registry.register(config, runs[0], NAME, alias=None)

    with pytest.raises(RegistryError, match=r"no registered model 'nope' .*registered: iris") as e:
        registry.promote(config, "nope", 1)
    assert "nbops model register RUN nope" in e.value.fix
    with pytest.raises(RegistryError, match=r"model 'iris' has no version 9 \(versions: 1\)"):
        registry.promote(config, NAME, 9)
    with pytest.raises(RegistryError, match="has alias 'challenger': nothing to promote") as e:
        registry.promote(config, NAME, challenger=True)
    assert "nbops model promote iris VERSION" in e.value.fix
    with pytest.raises(UsageError, match="exactly one"):
        registry.promote(config, NAME, 1, challenger=True)
    with pytest.raises(UsageError, match="not a version number"):
        registry.promote(config, NAME, "latest")
    with pytest.raises(RunNotFoundError, match="no run 'f00d'"):
        registry.register(config, "f00d", NAME)
    with pytest.raises(RegistryError, match="has no artifact 'weights'"):
        registry.register(config, runs[0], NAME, "weights")
    with pytest.raises(UsageError, match="'latest' cannot be an alias"):
        registry.register(config, runs[1], NAME, alias="latest")
    assert list(_versions(config)) == [1]  # no failed call left a version behind


def test_cli_model_commands(
    project: Path, config: Config, runs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["model", "register", runs[0][:10], NAME, "--reason", "baseline"]) == 0
    assert "as 'iris' version 1 (alias challenger)" in capsys.readouterr().out
    assert main(["model", "register", "depth2", NAME]) == 0  # a run name works too
    assert main(["model", "promote", NAME, "1", "-r", "first"]) == 0
    out = capsys.readouterr().out
    assert "version 1 is the champion (promote)" in out and "reason: first" in out
    assert "models:/iris@champion" in out

    assert main(["model", "promote", NAME, "--challenger", "--reason", "better"]) == 0
    out = capsys.readouterr().out
    assert "previous   - -> v1" in out and "challenger v2 -> - (removed)" in out
    assert main(["model", "list", NAME]) == 0
    shown = capsys.readouterr()
    assert "Downloading artifacts" not in shown.err  # nbops' own reads draw no progress bars
    table = shown.out.splitlines()
    assert table[0].split()[:4] == ["version", "aliases", "run", "created"]
    assert table[1].split()[:2] == ["2", "champion"] and table[2].split()[:2] == ["1", "previous"]
    assert "previous set" in table[2] and "better" in table[2]

    assert main(["model", "rollback", NAME, "--reason", "bad"]) == 0
    assert "version 1 is the champion (rollback)" in capsys.readouterr().out
    assert main(["model", "list", NAME, "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(v["version"], v["aliases"]) for v in listed] == [(2, []), (1, ["champion"])]

    assert main(["model", "rollback", NAME]) == 0  # nothing to roll back to: says so, exit 0
    out = capsys.readouterr().out
    assert "model 'iris': nothing to roll back to" in out
    assert "nothing changed (version 1 is the champion)" in out
    assert main(["model", "list", NAME, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == listed  # no change, no history event
    assert main(["model", "promote", NAME]) == 2  # neither VERSION nor --challenger
    assert main(["model", "promote", "nope", "1"]) == 7
    assert "no registered model 'nope'" in capsys.readouterr().err


def test_history_is_capped_oldest_first() -> None:
    events = [{"at": str(i), "reason": "x" * 300} for i in range(200)]
    kept = registry._capped(events)
    assert len(kept) <= registry.HISTORY_MAX_EVENTS and kept[-1]["at"] == "199"
    assert len(json.dumps(kept, separators=(",", ":"))) <= registry.HISTORY_MAX_CHARS
