"""``nbops retrain``'s decision, from the folder and its ``dvc.lock`` alone (no DVC, no MLflow):
the trigger a schedule runs must answer quickly and say why."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from nbops.errors import UsageError
from nbops.pipeline.retrain import changes, retrain


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "steps").mkdir()
    (tmp_path / "data/d.csv").write_text("a,b\n1,2\n")
    (tmp_path / "steps/01_train.ipynb").write_text("{}")
    (tmp_path / "params.yaml").write_text("alpha: 1.0\n")
    (tmp_path / ".nbops-promote.json").write_text(json.dumps({"data": ["data/d.csv"]}))
    stages = {"train": {"cmd": "nbops step steps/01_train.ipynb", "deps": ["data/d.csv"]}}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))
    deps = [{"path": p, "md5": md5(tmp_path / p)} for p in ("data/d.csv", "steps/01_train.ipynb")]
    deps.append({"path": "artifacts/load", "md5": "0" * 32 + ".dir"})  # outputs: not compared
    lock = {"train": {"deps": deps, "params": {"params.yaml": {"alpha": 1.0}}}}
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": lock}))
    return tmp_path


def test_nothing_changed_means_nothing_runs(folder: Path) -> None:
    lines: list[str] = []
    assert changes(folder) == []
    result = retrain(folder, echo=lines.append)
    assert not result.ran and result.ok and "up to date" in lines[0]


def test_new_data_code_and_params_are_each_a_reason(folder: Path) -> None:
    (folder / "data/d.csv").write_text("a,b\n1,2\n3,4\n")
    (folder / "steps/01_train.ipynb").write_text('{"cells": []}')
    (folder / "params.yaml").write_text("alpha: 0.5\n")
    reasons = changes(folder)
    assert reasons[0].startswith("data/d.csv changed (md5 ")  # data first: what retraining is for
    assert any(r.startswith("steps/01_train.ipynb changed") for r in reasons)
    assert "params.yaml: alpha changed (1.0 -> 0.5)" in reasons


def test_no_lock_a_missing_file_and_an_unfinished_stage(folder: Path) -> None:
    stages = yaml.safe_load((folder / "dvc.yaml").read_text())["stages"]
    stages["evaluate"] = {"cmd": "nbops step steps/02_evaluate.ipynb"}
    (folder / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))
    (folder / "data/d.csv").unlink()
    reasons = changes(folder)
    assert "data/d.csv is missing" in reasons
    assert any("evaluate have not completed" in r for r in reasons)
    (folder / "dvc.lock").unlink()
    assert changes(folder) == ["no dvc.lock: the pipeline has not completed a run yet"]


def test_a_folder_that_is_not_a_pipeline_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a promoted pipeline"):
        retrain(tmp_path)
