"""`nbops level` against real stores: a bare notebook folder is Level 0 and says to start with
`%%track` / `nbops promote`; a project with every Level 1 item (runs in a SQLite MLflow store,
a champion in its registry, a gated pipeline with a triggered workflow) is Level 1; the CLI and
`%nbops level` print the same checklist."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from nbops import registry
from nbops.cli import main
from nbops.config import Config
from nbops.level import assess
from nbops.record import ModelRef, RunRecord
from nbops.store import MlflowTracker, Spool

WORKFLOW = """\
on:
  schedule:
    - cron: "0 6 * * 1"
  push:
    paths: ["pipelines/wine/**"]
jobs:
  retrain:
    steps:
      - run: nbops monitor pipelines/wine
      - run: nbops retrain pipelines/wine
"""


def write_notebook(path: Path) -> None:
    cell = {"cell_type": "code", "metadata": {}, "source": "model.fit(X, y)", "outputs": []}
    path.write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4}))


def gated_pipeline(root: Path) -> Path:
    """A promoted pipeline with both gates and its workflow, as promote lays them out."""
    folder = root / "pipelines" / "wine"
    folder.mkdir(parents=True)
    manifest = {"pipeline": "wine", "source": "../../train.ipynb", "data": ["data/wine.csv"]}
    (folder / ".nbops-promote.json").write_text(json.dumps(manifest))
    (folder / "dvc.yaml").write_text(
        "stages:\n  validate_data:\n    cmd: x\n  train:\n    cmd: x\n  validate_model:\n"
        "    cmd: x\n  deploy:\n    cmd: nbops deploy\n"
    )
    (folder / "schema.yaml").write_text("columns: {}\n")
    (folder / "params.yaml").write_text("gate:\n  model_name: wine\n")
    (root / ".git").mkdir()
    (root / ".github" / "workflows").mkdir(parents=True)
    (root / ".github" / "workflows" / "wine.yml").write_text(WORKFLOW)
    write_notebook(root / "train.ipynb")
    return folder


def register_champion(config: Config) -> None:
    """One tracked run with a small model, registered as the champion of ``wine``."""
    from sklearn.datasets import load_wine
    from sklearn.tree import DecisionTreeClassifier

    x, y = load_wine(return_X_y=True, as_frame=True)
    model = DecisionTreeClassifier(max_depth=2, random_state=0).fit(x, y)
    now = time.time()
    record = RunRecord(
        name="train",
        experiment="wine",
        status="FINISHED",
        start=now,
        end=now,
        metrics={"accuracy": float(model.score(x, y))},
        model=ModelRef("model", "sklearn", "DecisionTreeClassifier"),
    )
    entry = Spool(config.state_dir).put(record, {"model": model, "input_example": x})
    run_id = MlflowTracker(config).write(entry)
    registry.register(config, run_id, "wine", alias=registry.CHAMPION)


def test_a_bare_notebook_folder_is_level_0_with_the_next_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "analysis"
    folder.mkdir()
    write_notebook(folder / "churn.ipynb")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["level", "analysis"]) == 0
    out = capsys.readouterr().out
    assert "Level reached: 0 · manual process (0 of 9 Level 1 items)" in out
    next_step = out.split("Next step: ", 1)[1]
    assert "%%track" in next_step and "nbops promote analysis/churn.ipynb" in next_step
    assert main(["level", "analysis", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["level"] == 0 and data["next_step"] == next_step.strip()
    assert not (folder / "mlflow.db").exists() and not (folder / ".nbops").exists()


def test_every_level_1_item_checked_is_level_1(project: Path, config: Config) -> None:
    from mlflow.tracking import MlflowClient

    from nbops.serve.predlog import connect, day_file

    folder = gated_pipeline(project)
    register_champion(config)
    report = assess(project)
    monitoring = next(i for i in report.items if i.key == "monitoring")
    assert report.level == 0 and not monitoring.ok  # nothing served has been logged
    assert monitoring.next_step == "nbops serve pipelines/wine  (it logs)"
    connect(day_file(config.serve_path / "wine" / "log", time.time())).close()  # a day's log
    report = assess(project)
    level1 = {i.key: (i.ok, i.detail) for i in report.items if i.level == 1}
    assert all(ok for ok, _ in level1.values()), level1
    assert report.level == 1 and report.pipeline == folder
    assert level1["tracked_runs"][1] == "1 run(s); latest 'train' in 'wine'"
    assert "'wine' version 1 (models:/wine@champion)" in level1["champion"][1]
    assert level1["serving"][1] == "the deploy stage delivers each new champion"
    assert level1["monitoring"][1] == "1 day(s) of requests, checked by the CI workflow"
    assert report.next_step == next(i.next_step for i in report.items if i.level == 2)

    MlflowClient(config.tracking_uri).delete_registered_model_alias("wine", registry.CHAMPION)
    report = assess(project)
    champion = next(i for i in report.items if i.key == "champion")
    assert report.level == 0
    assert not champion.ok and champion.next_step == "nbops model promote wine 1"


def test_the_magic_prints_the_checklist(shell: object, project: Path) -> None:
    write_notebook(project / "train.ipynb")
    from IPython.utils.capture import capture_output

    with capture_output() as captured:
        shell.run_line_magic("nbops", "level")  # type: ignore[attr-defined]
    assert f"nbops level: {project}" in captured.stdout
    assert "Next step: put %%track" in captured.stdout
