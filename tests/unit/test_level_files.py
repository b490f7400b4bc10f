"""`nbops level` over project folders built by hand: each Level 1 and Level 2 item checked and
unchecked from files alone (the store items are in tests/integration/test_level.py; here the
store does not exist, and must not be created)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nbops.errors import UsageError
from nbops.level import assess
from nbops.level.report import LevelReport
from nbops.level.scan import filters_data

WORKFLOW = """\
name: retrain
on:
  schedule:
    - cron: "0 6 * * 1"
  push:
    paths:
      - "pipelines/wine/**"
      - "pipelines/wine/data/wine.csv.dvc"
jobs:
  retrain:
    runs-on: ubuntu-latest
    steps:
      - run: nbops retrain pipelines/wine
"""


def notebook(path: Path, *tags: str, source: str = "x = 1") -> Path:
    cell = {"cell_type": "code", "metadata": {"tags": list(tags)}, "source": source}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4}))
    return path


def pipeline(root: Path, *, gates: bool = True, workflow: str | None = WORKFLOW) -> Path:
    """A promoted pipeline as promote (with the gates) lays it out, written by hand."""
    folder = root / "pipelines" / "wine"
    (folder / "data").mkdir(parents=True)
    manifest = {"pipeline": "wine", "source": "../../train.ipynb", "data": ["data/wine.csv"]}
    (folder / ".nbops-promote.json").write_text(json.dumps(manifest))
    stages = ["validate_data", "train", "validate_model"] if gates else ["train"]
    dvc = "stages:\n" + "".join(f"  {s}:\n    cmd: nbops step {s}\n" for s in stages)
    (folder / "dvc.yaml").write_text(dvc)
    params = "n_estimators: 50\n" + ("gate:\n  model_name: wine\n  metric: accuracy\n" * gates)
    (folder / "params.yaml").write_text(params)
    if gates:
        (folder / "schema.yaml").write_text("columns: {}\n")
    notebook(root / "train.ipynb", "step:train")
    (root / ".git").mkdir(exist_ok=True)
    if workflow is not None:
        (root / ".github" / "workflows").mkdir(parents=True, exist_ok=True)
        (root / ".github" / "workflows" / "wine.yml").write_text(workflow)
    return folder


def items(report: LevelReport) -> dict[str, bool]:
    return {item.key: item.ok for item in report.items}


def item(report: LevelReport, key: str):  # type: ignore[no-untyped-def]
    return next(i for i in report.items if i.key == key)


def test_bare_notebook_folder_is_level_0_and_the_store_is_not_created(project: Path) -> None:
    notebook(project / "train.ipynb")
    report = assess(project)
    assert report.level == 0
    assert not any(items(report).values())
    assert "%%track" in report.next_step and "nbops promote train.ipynb" in report.next_step
    assert "does not exist" in item(report, "tracked_runs").detail
    assert not (project / "mlflow.db").exists()


def test_notebooks_ready_for_promote_are_suggested_first(project: Path) -> None:
    notebook(project / "a_explore.ipynb")
    notebook(project / "b_tracked.ipynb", source="%%track\nx = 1")
    notebook(project / "c_tagged.ipynb", "step:load")
    assert "nbops promote c_tagged.ipynb" in item(assess(project), "pipeline").next_step


def test_a_promoted_pipeline_with_gates_workflow_and_triggers(project: Path) -> None:
    folder = pipeline(project)
    report = assess(project)
    assert report.pipeline == folder
    checked = items(report)
    assert all(checked[k] for k in ("pipeline", "data_validation", "model_gate"))
    assert checked["ci_workflow"] and checked["triggers"]
    # no store: nothing can be tracked or registered, so Level 1 is not reached
    assert not checked["tracked_runs"] and not checked["champion"]
    assert report.level == 0
    assert item(report, "champion").next_step == "nbops run pipelines/wine"


def test_a_pipeline_promoted_before_the_gates_says_to_promote_again(project: Path) -> None:
    pipeline(project, gates=False, workflow=None)
    report = assess(project)
    checked = items(report)
    assert checked["pipeline"]
    assert not checked["data_validation"] and not checked["model_gate"]
    assert not checked["ci_workflow"] and not checked["triggers"]
    step = item(report, "data_validation").next_step
    assert step == "nbops promote train.ipynb --out pipelines/wine"
    assert "validate_data stage" in item(report, "data_validation").detail


def test_data_validation_needs_the_schema_and_the_gate_needs_a_model_name(project: Path) -> None:
    folder = pipeline(project)
    (folder / "schema.yaml").unlink()
    (folder / "params.yaml").write_text("gate:\n  metric: accuracy\n")
    report = assess(project)
    assert "no schema.yaml" in item(report, "data_validation").detail
    gate = item(report, "model_gate")
    assert not gate.ok and gate.next_step == "set gate.model_name in pipelines/wine/params.yaml"


def test_triggers_need_a_schedule_and_a_paths_filter_on_the_data(project: Path) -> None:
    no_schedule = WORKFLOW.replace('  schedule:\n    - cron: "0 6 * * 1"\n', "")
    pipeline(project, workflow=no_schedule)
    triggers = item(assess(project), "triggers")
    assert not triggers.ok and "no schedule" in triggers.detail
    code_only = WORKFLOW.replace('"pipelines/wine/**"', '"src/**"').replace(
        '      - "pipelines/wine/data/wine.csv.dvc"\n', ""
    )
    (project / ".github" / "workflows" / "wine.yml").write_text(code_only)
    triggers = item(assess(project), "triggers")
    assert not triggers.ok and "paths filter on the data" in triggers.detail


@pytest.mark.parametrize(
    ("patterns", "ok"),
    [
        (["pipelines/wine/**"], True),
        (["pipelines/wine/data/*.dvc"], True),
        (["pipelines/wine/*.dvc"], False),  # `*` stays within one folder
        (["pipelines/wine/data/wine\\.csv.dvc"], True),
        (["src/**", "README.md"], False),
    ],
)
def test_paths_filters_follow_github_globs(patterns: list[str], ok: bool) -> None:
    data = ["pipelines/wine/data/wine.csv", "pipelines/wine/data/wine.csv.dvc"]
    assert filters_data(patterns, data) is ok


def test_a_broken_workflow_or_params_file_is_reported_not_raised(project: Path) -> None:
    folder = pipeline(project, workflow="on: [push\n")
    (folder / "params.yaml").write_text("gate: [unclosed\n")
    report = assess(project)
    assert "not readable YAML" in item(report, "triggers").detail
    assert "params.yaml is not valid YAML" in item(report, "model_gate").detail


def test_level_2_items_from_files(project: Path) -> None:
    folder = pipeline(project)
    report = assess(project)
    assert not any(i.ok for i in report.items if i.level == 2)
    assert item(report, "dvc_remote").next_step.startswith("dvc remote add -d")
    (project / ".dvc").mkdir()
    (project / ".dvc" / "config").write_text("['remote \"storage\"']\n    url = s3://b/p\n")
    (folder / "tests").mkdir()
    (folder / "tests" / "test_features.py").write_text("def test_x():\n    pass\n")
    (project / ".github" / "workflows" / "ci.yml").write_text(
        "on: push\njobs:\n  t:\n    steps:\n      - run: python -m pytest\n"
    )
    assert item(assess(project), "orchestrator").next_step.startswith(
        "nbops export airflow pipelines/wine"
    )
    (folder / "airflow_dag.py").write_text("from airflow import DAG\n")
    checked = items(assess(project))
    assert checked["dvc_remote"] and checked["ci_tests"] and checked["orchestrator"]
    assert not checked["tracking_server"]  # a local SQLite store


def test_text_and_json_agree(project: Path) -> None:
    pipeline(project)
    report = assess(project)
    text, data = report.text(), json.loads(report.to_json())
    assert "✓ promoted pipeline" in text and "✗ tracked runs" in text
    assert f"Next step: {report.next_step}" in text
    assert data["level"] == 0 and data["next_step"] == report.next_step
    assert [i["key"] for i in data["items"]] == [i.key for i in report.items]


def test_a_path_that_is_not_a_folder_is_a_usage_error(project: Path) -> None:
    with pytest.raises(UsageError, match="is not a folder"):
        assess(project / "missing")


def test_an_unusable_store_is_an_unchecked_item_with_its_fix(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "store.db").mkdir()  # a directory where the SQLite file should be
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / 'store.db'}")
    runs = item(assess(project), "tracked_runs")
    assert not runs.ok and "is a directory" in runs.detail
    assert "tracking_uri" in runs.next_step


def test_serving_counts_a_deploy_stage_a_running_server_or_a_past_deployment(
    project: Path,
) -> None:
    import os

    folder = pipeline(project)
    serving = item(assess(project), "serving")
    assert not serving.ok and serving.next_step == "nbops serve pipelines/wine"
    assert "not served" in serving.detail
    home = project / ".nbops" / "serve" / "wine"
    home.mkdir(parents=True)
    event = {"version": 2, "ok": True, "model": "wine", "at": 1.0}
    (home / "deployments.jsonl").write_text(json.dumps(event) + "\n{cut by a crash")
    assert item(assess(project), "serving").detail == "nbops serve deployed v2 (not running now)"
    state = {"pid": os.getpid(), "url": "http://127.0.0.1:5005", "version": 3}
    (home / "server.json").write_text(json.dumps(state))
    detail = item(assess(project), "serving").detail
    assert detail == "nbops serve at http://127.0.0.1:5005 answers with v3"
    (home / "server.json").unlink()
    (home / "deployments.jsonl").unlink()
    dvc = (folder / "dvc.yaml").read_text() + "  deploy:\n    cmd: nbops deploy\n"
    (folder / "dvc.yaml").write_text(dvc)
    serving = item(assess(project), "serving")
    assert serving.ok and serving.detail == "the deploy stage delivers each new champion"


def test_monitoring_needs_logged_requests_that_are_checked(project: Path) -> None:
    pipeline(project)
    monitoring = item(assess(project), "monitoring")
    assert not monitoring.ok and "no request log" in monitoring.detail
    log = project / ".nbops" / "serve" / "wine" / "log"
    log.mkdir(parents=True)
    (log / "2026-01-05.sqlite").write_bytes(b"")
    monitoring = item(assess(project), "monitoring")
    assert not monitoring.ok and monitoring.next_step == "nbops monitor pipelines/wine"
    (log.parent / "monitor.json").write_text("{}")
    monitoring = item(assess(project), "monitoring")
    assert monitoring.ok and monitoring.detail == "1 day(s) of requests, checked by nbops monitor"
