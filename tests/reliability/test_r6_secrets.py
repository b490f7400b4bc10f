"""R6: what looks like a secret never reaches the store, and neither does the environment.

Secrets are planted as unique canary strings: as literals in a tracked cell, through the
environment into ``--params`` and ``nbops.log_param``, and in a pipeline's ``params.yaml``. After
the runs are written, every byte nbops left in the project (the SQLite file, the artifacts, the
spool) is searched for every canary, so a leak through any field (params, tags, the code
artifact, ``nbops/record.json``) fails the test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from reliability_support import all_runs

from nbops.capture.vocab import REDACTED
from nbops.config import Config
from nbops.pipeline.parent import ParentRun
from nbops.session import Session

pytestmark = pytest.mark.reliability

LITERAL_KEY = "sk-live-r6-literal-canary"
LITERAL_PASSWORD = "r6-password-canary"
FROM_ENV = "r6-secret-from-env-canary"
UNUSED_ENV = "r6-unrelated-env-canary"
PIPELINE_TOKEN = "r6-pipeline-token-canary"
CANARIES = [LITERAL_KEY, LITERAL_PASSWORD, FROM_ENV, UNUSED_ENV, PIPELINE_TOKEN]


def leaks(root: Path) -> dict[str, list[str]]:
    """Canary -> the files under ``root`` holding it (as UTF-8 or UTF-16, as SQLite may)."""
    found: dict[str, list[str]] = {}
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        for canary in CANARIES:
            if canary.encode() in data or canary.encode("utf-16-le") in data:
                found.setdefault(canary, []).append(str(path.relative_to(root)))
    return found


def stored_record(run: Any) -> dict[str, Any]:
    """The run's ``nbops/record.json`` artifact (local artifacts: read in place)."""
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    folder = Path(url2pathname(urlparse(run.info.artifact_uri).path))
    return json.loads((folder / "nbops" / "record.json").read_text())


def test_secret_params_are_redacted_and_the_environment_is_never_stored(
    shell: Any, config: Config, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("R6_SECRET", FROM_ENV)
    monkeypatch.setenv("R6_UNRELATED", UNUSED_ENV)
    literal = f"api_key = {LITERAL_KEY!r}\nDB_PASSWORD = {LITERAL_PASSWORD!r}\nlr = 0.1\n"
    assert shell.run_cell("%%track --name literal\n" + literal).success
    from_env = (
        "import os\nimport nbops\n"
        "client_secret = os.environ['R6_SECRET']\n"
        "nbops.log_param('auth_token', os.environ['R6_SECRET'])\n"
        "settings = {'n_estimators': 10}\n"
    )
    assert shell.run_cell("%%track --name env --params client_secret,settings\n" + from_env).success
    session: Session = shell.user_ns["__nbops_session__"]
    assert session.flush(timeout=60) == []

    runs = {r.info.run_name: r for r in all_runs(config.tracking_uri)}
    assert runs["literal"].data.params == {
        "api_key": REDACTED,
        "DB_PASSWORD": REDACTED,
        "lr": "0.1",
    }
    assert runs["env"].data.params == {
        "client_secret": REDACTED,
        "auth_token": REDACTED,
        "settings": '{"n_estimators": 10}',
    }
    record = stored_record(runs["literal"])
    assert record["params"]["api_key"] == REDACTED
    assert f"api_key = {REDACTED!r}" in record["code"]  # the code is kept, its secret is not
    assert "R6_SECRET" not in json.dumps(stored_record(runs["env"])["context"])
    assert leaks(project) == {}


def test_a_pipeline_runs_secret_params_from_params_yaml_are_redacted(
    config: Config, project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The pipeline's parent run takes its params from params.yaml, not from a capture."""
    folder = tmp_path_factory.mktemp("pipeline")
    (folder / "dvc.yaml").write_text("stages: {}\n")
    params = {"alpha": 0.5, "api_token": PIPELINE_TOKEN, "nested_password": {"a": PIPELINE_TOKEN}}
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    parent = ParentRun(Session(config), folder, "r6-pipeline")
    parent.begin()
    parent.end("FINISHED", [], {"score": 1.0}, None)
    assert parent.warnings == []

    [run] = all_runs(config.tracking_uri, "r6-pipeline")
    assert run.data.params == {"alpha": "0.5", "api_token": REDACTED, "nested_password": REDACTED}
    assert stored_record(run)["params"]["api_token"] == REDACTED
    assert leaks(project) == {}
