"""A Kale-tagged notebook promotes and runs: fan-out, fan-in, Kale-only tags handled.

The fixture uses Kale's tags (imports, functions, pipeline-parameters, block:/step:, prev:,
pipeline-metrics, skip and a ``limit:`` resource tag): load fans out to train_a and train_b,
which fan in to compare. It reads no data file, so the project needs none besides the notebook.
Real papermill kernels, real DVC, a SQLite MLflow store in tmp_path; CLI called in-process."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from nbops.cli import main
from nbops.config import Config
from nbops.pipeline import serializers

pytestmark = pytest.mark.kernel

FIXTURE = Path(__file__).parent.parent / "notebooks" / "promote_kale_style.ipynb"
NAME = "promote_kale_style"
STEPS = ("load", "train_a", "train_b", "compare")
# what each step saves, with a value of the type it has when the fixture runs (n = 5)
OUTPUTS = {
    "load": {"data": list(range(5))},
    "train_a": {"score_a": 2.0},
    "train_b": {"score_b": 4.0},
}
PIPELINE_METRICS = {"score_a": 2.0, "score_b": 4.0}  # the `pipeline-metrics` cell prints these


def deps(stage: dict) -> set[str]:
    return set(stage.get("deps", []))


def test_kale_notebook_promotes_and_runs(
    project: Path, config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(FIXTURE, project / FIXTURE.name)

    assert main(["promote", FIXTURE.name]) == 0
    out = capsys.readouterr().out
    assert "limit:nvidia.com/gpu:1" in out and "note:" in out
    note = next(line for line in out.splitlines() if "limit:" in line)
    assert note.startswith("note:") and "ignored" in note

    pipeline = project / "pipelines" / NAME
    manifest = json.loads((pipeline / ".nbops-promote.json").read_text())
    assert manifest["data"] == []  # the notebook reads no file
    stages = yaml.safe_load((pipeline / "dvc.yaml").read_text())["stages"]
    assert list(stages) == list(STEPS)
    assert "artifacts/load" not in deps(stages["load"])
    for branch in ("train_a", "train_b"):  # fan-out
        assert "artifacts/load" in deps(stages[branch])
        assert not deps(stages[branch]) & {"artifacts/train_a", "artifacts/train_b"}
    assert {"artifacts/train_a", "artifacts/train_b"} <= deps(stages["compare"])  # fan-in
    assert "artifacts/load" not in deps(stages["compare"])  # it loads nothing from load
    assert stages["load"]["params"] == ["n"]
    assert yaml.safe_load((pipeline / "params.yaml").read_text()) == {"n": 5, "seed": 1}
    steps_dir = sorted(p.name for p in (pipeline / "steps").iterdir())
    assert steps_dir == [f"{i:02d}_{s}.ipynb" for i, s in enumerate(STEPS, start=1)]
    step_text = "".join(p.read_text() for p in (pipeline / "steps").iterdir())
    assert "statistics.mean(data)" not in step_text  # the `skip` cell is left out

    assert main(["run", str(pipeline)]) == 0
    out = capsys.readouterr().out
    assert "4 ran, 0 unchanged" in out
    for step in STEPS:  # each stage ran exactly once
        assert sum(line.split() == ["running", step] for line in out.splitlines()) == 1
        assert (pipeline / "reports" / f"{STEPS.index(step) + 1:02d}_{step}.ipynb").is_file()

    for step, outputs in OUTPUTS.items():
        expected = {f"{var}.{serializers.candidates(v)[0].ext}" for var, v in outputs.items()}
        assert {p.name for p in (pipeline / "artifacts" / step).iterdir()} == expected
        for var, value in outputs.items():
            assert serializers.load(var, step, "test", pipeline) == value
    assert not (pipeline / "artifacts" / "compare").exists()  # compare saves nothing

    metrics: dict[str, float] = {}
    for path in (pipeline / "metrics").glob("*.json"):
        metrics.update(json.loads(path.read_text()))
    assert metrics == PIPELINE_METRICS

    client = MlflowClient(tracking_uri=config.tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name(NAME).experiment_id])
    parents = [r for r in runs if r.data.tags.get("nbops.source") == "pipeline"]
    children = [r for r in runs if r.data.tags.get("nbops.source") == "step"]
    assert len(runs) == len(parents) + len(children)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    parent = parents[0]
    assert parent.data.metrics == PIPELINE_METRICS
    assert all(parent.data.tags[f"nbops.step.{s}.status"] == "ran" for s in STEPS)
    assert sorted(c.data.tags["nbops.step"] for c in children) == sorted(STEPS)
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert all(c.info.status == "FINISHED" for c in children)
