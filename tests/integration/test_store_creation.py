"""A new SQLite store is a copy of a migrated template: nothing but ``mlflow.db`` appears in
the user's folder (no lock, no half-made file), MLflow prints nothing, its ``Default``
experiment keeps artifacts beside the store, and readers never create a store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from nbops.config import Config
from nbops.store.mlflow_store import MlflowTracker

NBOPS = [sys.executable, "-m", "nbops.cli"]


def test_a_new_store_appears_whole_and_quietly(
    project: Path, config: Config, capfd: pytest.CaptureFixture[str]
) -> None:
    MlflowTracker(config).warm()
    out, err = capfd.readouterr()
    assert "INFO" not in out + err and "Creating initial MLflow database" not in err
    assert sorted(p.name for p in project.iterdir()) == ["mlflow.db", "pyproject.toml"]
    default = MlflowClient(tracking_uri=config.tracking_uri).get_experiment("0")
    assert default.artifact_location == (project / "mlartifacts" / "0").as_uri()


def test_a_second_project_gets_its_own_store_from_the_same_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    stores = []
    for name in ("one", "two"):
        root = tmp_path / name
        root.mkdir()
        config = Config(project_root=root, tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
        tracker = MlflowTracker(config)
        tracker.warm()
        MlflowClient(tracking_uri=config.tracking_uri).create_experiment(f"only-in-{name}")
        stores.append(config.tracking_uri)
    for uri, name in zip(stores, ("one", "two"), strict=True):
        names = {e.name for e in MlflowClient(tracking_uri=uri).search_experiments()}
        assert names == {"Default", f"only-in-{name}"}


def test_reading_commands_never_create_a_store(project: Path) -> None:
    for command in (["runs"], ["show", "abc123"], ["diff", "a", "b"]):
        done = subprocess.run([*NBOPS, *command], cwd=project, capture_output=True, text=True)
        assert "Traceback" not in done.stderr
        assert "no tracking store yet" in done.stdout + done.stderr, command
        assert "%%track" in done.stdout + done.stderr  # how to make one
    assert not (project / "mlflow.db").exists()
    assert sorted(p.name for p in project.iterdir()) == ["pyproject.toml"]


CREATE = """
import sys
from pathlib import Path
from nbops.config import Config
from nbops.store.mlflow_store import MlflowTracker
root = Path(sys.argv[1])
print("creating", flush=True)
MlflowTracker(Config(project_root=root, tracking_uri=f"sqlite:///{root / 'mlflow.db'}")).warm()
"""


def test_a_kill_while_creating_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed while MLflow migrates (the template is being built, seconds): the user's folder
    stays empty, and the next creation builds the template again from scratch."""
    import signal
    import time

    cache, root = tmp_path / "cache", tmp_path / "project"
    root.mkdir()
    env = {**os.environ, "NBOPS_CACHE_DIR": str(cache)}
    child = subprocess.Popen(
        [sys.executable, "-c", CREATE, str(root)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "creating"
    deadline = time.monotonic() + 60
    while not list(cache.glob(".mlflow-*.tmp*")) and time.monotonic() < deadline:
        time.sleep(0.02)  # the migration has begun
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert list(root.iterdir()) == []
    assert not list(cache.glob("mlflow-*-empty.db"))

    monkeypatch.setenv("NBOPS_CACHE_DIR", str(cache))
    MlflowTracker(Config(project_root=root, tracking_uri=f"sqlite:///{root / 'mlflow.db'}")).warm()
    assert [p.name for p in root.iterdir()] == ["mlflow.db"]
    assert [p.name for p in cache.iterdir()] == [next(cache.glob("mlflow-*-empty.db")).name]


def test_model_scratch_folders_stay_in_the_project_and_a_dead_process_s_are_removed(
    project: Path, config: Config
) -> None:
    """A model's input example holds training rows: its temporary folder lives under
    .nbops/tmp (never /tmp), and one a killed process left is removed on the next use."""
    scratch = config.state_dir / "tmp"
    scratch.mkdir(parents=True)
    dead = scratch / "model-999999999-leftover"
    dead.mkdir()
    (dead / "input_example.json").write_text('{"rows": [[1, 2]]}')
    mine = scratch / f"model-{os.getpid()}-busy"
    mine.mkdir()
    tracker = MlflowTracker(config)
    with tracker._scratch("model") as tmp:
        assert Path(tmp).parent == scratch and Path(tmp).name.startswith(f"model-{os.getpid()}-")
    assert not dead.exists() and mine.exists()
