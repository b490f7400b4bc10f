"""The retrain workflow promote writes: valid against GitHub's workflow schema (check-jsonschema's
bundled copy, offline), with the triggers and the `nbops retrain` call the docs promise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from check_jsonschema import main as check_jsonschema
from click.testing import CliRunner

from nbops.errors import UsageError
from nbops.promote.workflow import render_workflow, workflow_path

PIPELINE = "projects/wine/pipelines/wine"
DATA = ["data/wine.csv", "data/raw"]


def validate(text: str, tmp_path: Path) -> tuple[int, str]:
    """Exit code and output of ``check-jsonschema --builtin-schema vendor.github-workflows``."""
    path = tmp_path / "workflow.yml"
    path.write_text(text)
    args = ["--builtin-schema", "vendor.github-workflows", str(path)]
    result = CliRunner().invoke(check_jsonschema, args)
    return result.exit_code, result.output


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    """The ``on:`` mapping (YAML 1.1 reads the bare key ``on`` as the boolean True)."""
    return workflow.get("on", workflow.get(True))


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return workflow["jobs"]["retrain"]["steps"]


@pytest.fixture(scope="module")
def text() -> str:
    return render_workflow("wine", PIPELINE, DATA)


def test_rendered_workflow_is_valid_against_the_github_schema(text: str, tmp_path: Path) -> None:
    code, output = validate(text, tmp_path)
    assert code == 0, output


def test_a_mangled_workflow_fails_validation(text: str, tmp_path: Path) -> None:
    workflow = yaml.safe_load(text)
    del workflow["jobs"]["retrain"]["runs-on"]
    code, output = validate(yaml.safe_dump(workflow), tmp_path)
    assert code == 1
    assert "runs-on" in output


def test_a_misspelled_trigger_fails_validation(text: str, tmp_path: Path) -> None:
    code, output = validate(text.replace("workflow_dispatch:", "workflow_dispatched:"), tmp_path)
    assert code == 1, output


def test_triggers_schedule_dispatch_and_paths(text: str) -> None:
    on = triggers(yaml.safe_load(text))
    assert on["schedule"] == [{"cron": "0 6 * * 1"}]
    assert on["workflow_dispatch"]["inputs"]["force"]["type"] == "boolean"
    assert on["workflow_dispatch"]["inputs"]["force"]["default"] is False
    assert on["push"]["paths"] == [
        f"{PIPELINE}/**",
        f"{PIPELINE}/data/wine.csv.dvc",
        f"{PIPELINE}/data/raw.dvc",
        ".github/workflows/wine.yml",
    ]


def test_retrain_runs_on_the_pipeline_folder_and_force_adds_the_flag(text: str) -> None:
    workflow = yaml.safe_load(text)
    assert workflow["jobs"]["retrain"]["env"]["PIPELINE"] == PIPELINE
    (retrain,) = [s for s in steps(workflow) if "nbops retrain" in s.get("run", "")]
    assert retrain["run"].startswith('nbops retrain "$PIPELINE"')
    assert retrain["env"]["FORCE"] == "${{ inputs.force && '--force' || '' }}"
    assert "github.event.repository.default_branch" in retrain["if"]
    runs = [s.get("run", "") for s in steps(workflow)]
    order = [next(i for i, r in enumerate(runs) if word in r) for word in ("dvc pull", "pytest")]
    assert order == sorted(order) and order[-1] < runs.index(retrain["run"])


def test_install_pull_and_store_steps(text: str) -> None:
    runs = "\n".join(s.get("run", "") for s in steps(yaml.safe_load(text)))
    assert "pip install -r requirements.txt" in runs
    assert "pip install nbops" in runs
    assert 'if [ -n "$(dvc remote list)" ]' in runs
    assert "dvc pull --allow-missing dvc.yaml data/wine.csv.dvc data/raw.dvc" in runs
    assert "for path in data/wine.csv data/raw; do" in runs  # no data after the pull: an error
    assert "secrets.MLFLOW_TRACKING_URI || vars.MLFLOW_TRACKING_URI" in text


def test_schedule_and_root_folder(tmp_path: Path) -> None:
    text = render_workflow("wine", ".", ["wine.csv.dvc"], schedule="30 2 * * *")
    workflow = yaml.safe_load(text)
    on = triggers(workflow)
    assert on["schedule"] == [{"cron": "30 2 * * *"}]
    assert on["push"]["paths"][:2] == ["**", "wine.csv.dvc"]
    assert validate(text, tmp_path)[0] == 0


def test_glob_characters_in_paths_are_literal(tmp_path: Path) -> None:
    text = render_workflow("wine", "ml [v2]/*wine*", ["data/a+b.csv", "raw data/x.csv"])
    workflow = yaml.safe_load(text)
    paths = triggers(workflow)["push"]["paths"]
    assert paths[0] == r"ml \[v2\]/\*wine\*/**"
    assert paths[1] == r"ml \[v2\]/\*wine\*/data/a\+b.csv.dvc"
    assert workflow["jobs"]["retrain"]["env"]["PIPELINE"] == "ml [v2]/*wine*"
    assert "dvc pull --allow-missing dvc.yaml data/a+b.csv.dvc 'raw data/x.csv.dvc'" in text
    assert validate(text, tmp_path)[0] == 0


def test_files_inside_a_tracked_folder_use_the_folder_dvc_file() -> None:
    text = render_workflow("wine", "p", ["data", "data/wine.csv", "extra.csv"])
    assert triggers(yaml.safe_load(text))["push"]["paths"][1:3] == ["p/data.dvc", "p/extra.csv.dvc"]
    assert "dvc pull --allow-missing dvc.yaml data.dvc extra.csv.dvc\n" in text


def test_workflow_path() -> None:
    assert workflow_path("wine") == ".github/workflows/wine.yml"


@pytest.mark.parametrize(
    ("name", "folder", "data", "schedule", "message"),
    [
        ("wine", "../wine", [], "0 6 * * 1", "not inside the repository"),
        ("wine", "/abs/wine", [], "0 6 * * 1", "not inside the repository"),
        ("wine", r"pipelines\wine", [], "0 6 * * 1", "not a POSIX path"),
        ("wine", "pipelines/wine", ["../outside.csv"], "0 6 * * 1", "not inside"),
        ("wine", "pipelines/wine", [], "weekly", "not a cron expression"),
        ("wine", "pipelines/wine", [], "0 6 * *", "not a cron expression"),
        ("../x", "pipelines/wine", [], "0 6 * * 1", "cannot name a workflow file"),
    ],
)
def test_invalid_arguments_raise_usage_errors(
    name: str, folder: str, data: list[str], schedule: str, message: str
) -> None:
    with pytest.raises(UsageError, match=message) as info:
        render_workflow(name, folder, data, schedule=schedule)
    assert info.value.fix


def test_the_monitor_runs_before_the_retrain_on_the_serving_log(text: str) -> None:
    names = [s.get("name", "") for s in steps(yaml.safe_load(text))]
    monitor = next(i for i, n in enumerate(names) if n.startswith("Monitor"))
    retrain = next(i for i, n in enumerate(names) if n.startswith("Retrain"))
    assert monitor < retrain
    step = steps(yaml.safe_load(text))[monitor]
    assert 'nbops monitor "$PIPELINE"' in step["run"]
    assert step["env"]["NBOPS_SERVE_DIR"] == "${{ vars.NBOPS_SERVE_DIR }}"


def test_after_a_retrain_outputs_are_pushed_and_dvc_lock_committed(text: str) -> None:
    workflow = yaml.safe_load(text)
    assert workflow["permissions"] == {"contents": "write"}
    names = [s.get("name", "") for s in steps(workflow)]
    retrain = next(i for i, n in enumerate(names) if n.startswith("Retrain"))
    share = steps(workflow)[retrain + 1]
    assert share["name"].startswith("Share")
    script = share["run"]
    order = [
        script.index(word) for word in ("git add", "dvc push", "commit --quiet", "git push origin")
    ]
    assert order == sorted(order)
    assert "git diff --cached --quiet" in script  # nothing retrained: nothing pushed
    assert share["if"] == steps(workflow)[retrain]["if"]  # the default branch only


def test_dvc_remote_credentials_come_from_repository_secrets(text: str) -> None:
    (step,) = [
        s for s in steps(yaml.safe_load(text)) if s.get("name", "").startswith("Point at the DVC")
    ]
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AZURE_STORAGE_CONNECTION_STRING"):
        assert step["env"][name] == f"${{{{ secrets.{name} }}}}"
    assert "dvc remote modify --local" in step["run"] and "$GITHUB_ENV" in step["run"]
