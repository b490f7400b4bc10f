"""R8: a corpus of secrets, each a unique canary, through every way a notebook user hands one
to nbops; afterwards no byte of anything nbops or DVC wrote holds any canary.

Tracked cells (a real IPython shell, the default SQLite store): literals bound to secret names
in every syntactic form, values reaching params through ``--params``, ``nbops.log_param(s)`` and
estimators at any depth, tags, exception messages that interpolate an environment value,
warnings, a DataFrame column named ``password`` and a model's input example. Pipelines: a
secret in the parameters cell or a step's code (promote refuses it; nothing is written), a step
that prints, logs, tags and finally raises with a secret from the environment (``nbops run``,
real DVC and kernels), a secret hand-edited into ``params.yaml`` (the step refuses it) and the
Airflow export of it (refused). The search covers the whole project folder: ``mlflow.db``, the
artifacts, the spool, the pipeline folder with ``reports/``, ``dvc.lock`` and the DVC cache.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from reliability_support import NBOPS, all_runs

from nbops.capture.vocab import REDACTED
from nbops.config import Config
from nbops.session import Session

pytestmark = [pytest.mark.reliability, pytest.mark.kernel]

CANARIES: list[str] = []


def canary(case: str) -> str:
    """A unique marker for one case; its presence anywhere on disk is a leak of that case."""
    value = f"r8{case}canary"
    CANARIES.append(value)
    return value


def key(case: str) -> str:
    value = f"sk-r8{case}canary0123456789"
    CANARIES.append(value)
    return value


SETUP = """\
import os, types
import nbops
import pandas as pd
from sklearn.linear_model import LogisticRegression
def connect(**kw): return kw
class OpenAI:
    def __init__(self, key): self.key = key
class Client:
    def __init__(self, token=None): self.token = token
    def get_params(self, deep=False): return {"token": self.token}
    def fit(self, X=None, y=None): return self
class Broken:
    def get_params(self, deep=False):
        raise RuntimeError("token " + os.environ["R8_API_TOKEN"] + " expired")
    def fit(self, X=None, y=None): return self
class Conn:
    def __init__(self, password): self.password = password
    def __repr__(self): return f"Conn(password={self.password!r})"
settings = types.SimpleNamespace()
prefix, prod, token, cfg = "", True, "", {}
"""

# (case, cell after %%track): literals in the stored code, and params from literals
CODE = {
    "unpack": 'user, password = "admin", "{c}"',
    "nested_unpack": '(host, (u, pwd)) = ("h", ("a", "{c}"))',
    "parens": 'password = ("{c}")',
    "strcall": 'password = str("{c}")',
    "method": 'password = "{c}".strip()',
    "environ": 'os.environ["R8_SET_API_KEY"] = "{c}"',
    "item": 'cfg["password"] = "{c}"',
    "attribute": 'settings.db_password = "{c}"',
    "augmented": 'token += "{c}"',
    "walrus": 'if (secret := "{c}"):\n    pass',
    "listof": 'passwords = ["{c}", "{c}"]',
    "concat": 'password = "{c}" + "x"',
    "conditional": 'pwd = "{c}" if prod else "y"',
    "fallback": 'db_token = os.environ.get("R8_UNSET") or "{c}"',
    "envdefault": 'api_token = os.environ.get("R8_UNSET", "{c}")',
    "setdefault": 'os.environ.setdefault("R8_OTHER_API_KEY", "{c}")',
    "keyword": 'engine = connect(host="h", password="{c}")',
    "default": 'def login(user, password="{c}"):\n    return user',
    "lambda": 'f = lambda secret="{c}": secret',
    "classattr": 'class Cfg:\n    api_key: str = "{c}"',
    "nested_dict": 'conf = {{"db": {{"host": "h", "password": "{c}"}}}}',
    "authorization": 'headers = {{"Authorization": "Bearer {c}"}}',
    "fstring": 'token = f"{{prefix}}{c}"',
    "forloop": 'for password in ["{c}"]:\n    pass',
    "compare": 'ok = password == "{c}"',
    "bytes": 'key = b"{c}"',
    "creds": 'creds = "{c}"',
    "jwt": 'jwt = "{c}"',
    "bearer": 'bearer = "{c}"',
    "key": 'key = "{c}"',
    "camel": 'apiKey = "{c}"',
    "url": 'db_url = "postgresql://admin:{c}@db:5432/app"',
    "set_tag_literal": 'nbops.set_tag("token", "{c}")',
    "log_param_literal": 'nbops.log_param("db_password", "{c}")',
}
KEYS = {  # credentials recognised by their look, under names that say nothing
    "prefix": 'client = OpenAI("{k}")',
    "prefix_param": 'model_name = "{k}"',
}
# (case, env var, cell): values that come from the environment, never literals in the code
FROM_ENV = {
    "params_nested": ("R8_NESTED", "conf2 = dict(db=dict(password=os.environ['R8_NESTED']))"),
    "log_params": ("R8_LOGP", "nbops.log_params({'db': {'password': os.environ['R8_LOGP']}})"),
    "log_param_url": (
        "R8_URL",
        "nbops.log_param('endpoint', 'mysql://u:' + os.environ['R8_URL'] + '@h/d')",
    ),
    "log_param_bearer": (
        "R8_BEARER",
        "nbops.log_param('header', 'Bearer ' + os.environ['R8_BEARER'])",
    ),
    "set_tag": ("R8_TAG", "nbops.set_tag('token', os.environ['R8_TAG'])"),
    "estimator": ("R8_EST", "client = Client(token=os.environ['R8_EST']).fit()"),
    "repr": ("R8_REPR", "conn = Conn(os.environ['R8_REPR'])"),
    "frame_column": (
        "R8_FRAME",
        "users = pd.DataFrame({'user': ['a', 'b'], 'password': [os.environ['R8_FRAME']] * 2})",
    ),
}
# (case, env var, cell, --params): explicit params holding secrets at depth
EXPLICIT = {"params_flag": ("R8_FLAG", "blob = {'auth': {'token': os.environ['R8_FLAG']}}")}
# (case, env var, cell): cells that fail or warn with a secret in the message
FAILING = {
    "error_env": (
        "R8_DB_PASSWORD",
        "raise RuntimeError('login failed: ' + os.environ['R8_DB_PASSWORD'])",
    ),
    "error_url": (
        "R8_DSN",
        "raise ConnectionError('no route to pg://u:' + os.environ['R8_DSN'] + '@h')",
    ),
    "error_pair": ("R8_PLAIN", "raise ValueError('rejected password=' + os.environ['R8_PLAIN'])"),
}
WARNING = ("R8_API_TOKEN", "broken = Broken().fit()")


def leaks(root: Path, canaries: list[str], users: tuple[Path, ...] = ()) -> dict[str, list[str]]:
    """Canary -> the files under ``root`` holding it (UTF-8 or UTF-16, as SQLite may), except
    the ``users`` files: the user's own notebooks and edits, which nbops never wrote."""
    found: dict[str, list[str]] = {}
    for path in root.rglob("*"):
        if not path.is_file() or path.is_symlink() or path in users:
            continue
        data = path.read_bytes()
        for value in canaries:
            if value.encode() in data or value.encode("utf-16-le") in data:
                found.setdefault(value, []).append(str(path.relative_to(root)))
    return found


def test_no_canary_of_a_tracked_cell_is_stored(
    shell: Any, config: Config, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert shell.run_cell(SETUP).success
    cases = 0
    for case, template in CODE.items():
        cell = template.format(c=canary(case))
        assert shell.run_cell(f"%%track --name {case}\n{cell}").success, case
        cases += 1
    for case, template in KEYS.items():
        cell = template.format(k=key(case))
        assert shell.run_cell(f"%%track --name {case}\n{cell}").success, case
        cases += 1
    for case, (variable, cell) in FROM_ENV.items():
        monkeypatch.setenv(variable, canary(case))
        assert shell.run_cell(f"%%track --name {case}\n{cell}").success, case
        cases += 1
    for case, (variable, cell) in EXPLICIT.items():
        monkeypatch.setenv(variable, canary(case))
        assert shell.run_cell(f"%%track --name {case} --params blob\n{cell}").success
        cases += 1
    for case, (variable, cell) in FAILING.items():
        monkeypatch.setenv(variable, canary(case))
        assert not shell.run_cell(f"%%track --name {case}\n{cell}").success
        cases += 1
    monkeypatch.setenv(WARNING[0], canary("warning"))
    assert shell.run_cell(f"%%track --name warning\n{WARNING[1]}").success
    monkeypatch.setenv("R8_MODEL_PASSWORD_COL", "1")
    model_cell = (
        "X = pd.DataFrame({'a': [0.0, 1.0, 2.0, 3.0], 'password': [31415926001, 31415926002, "
        "31415926003, 31415926004]})\ny = [0, 1, 0, 1]\nmodel = LogisticRegression().fit(X, y)"
    )
    CANARIES.append("3141592600")
    assert shell.run_cell(f"%%track --name input_example\n{model_cell}").success
    cases += 2
    assert cases >= 36

    session: Session = shell.user_ns["__nbops_session__"]
    assert session.flush(timeout=120) == []
    runs = {r.info.run_name: r for r in all_runs(config.tracking_uri)}
    assert runs["unpack"].data.params["password"] == REDACTED  # the value, not the run
    assert runs["set_tag"].data.tags["token"] == REDACTED
    assert runs["error_env"].info.status == "FAILED"
    assert runs["input_example"].data.params  # the model's run was written
    assert leaks(project, CANARIES) == {}


STEP_NOTEBOOK = {
    "parameters": "alpha = 0.5\ndb_host = 'db.internal'",
    "setup": "import os\nimport nbops",
    "load": (
        "password = os.environ['R8_PIPE_PASSWORD']\n"
        "url = f'postgresql://admin:{password}@{db_host}/app'\n"
        "print('connecting to', url)\n"
        "nbops.log_param('db_password', password)\n"
        "nbops.set_tag('auth', password)\n"
        "rows = [1, 2, 3]"
    ),
    "train": (
        "password = os.environ['R8_PIPE_PASSWORD']\n"
        "total = sum(rows) * alpha\n"
        "if os.environ.get('R8_FAIL'):\n"
        "    raise RuntimeError(f'cannot reach {db_host} with {password}')"
    ),
}


def write_notebook(path: Path, cells: list[tuple[str, list[str]]]) -> Path:
    nb = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        "cells": [
            {
                "cell_type": "code",
                "metadata": {"tags": tags},
                "source": source,
                "outputs": [],
                "execution_count": None,
            }
            for source, tags in cells
        ],
    }
    path.write_text(json.dumps(nb))
    return path


def nbops_cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*NBOPS, *args],
        cwd=cwd,
        env={**os.environ, "DVC_NO_ANALYTICS": "1", **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_no_canary_of_a_pipeline_reaches_a_file(project: Path, config: Config) -> None:
    refused_param, refused_code = key("pipeparam"), canary("pipecode")
    params_nb = write_notebook(
        project / "params_secret.ipynb",
        [(f"api_token = {refused_param!r}", ["parameters"]), ("x = len(api_token)", ["step:a"])],
    )
    code_nb = write_notebook(
        project / "code_secret.ipynb",
        [(f"import os\nos.environ['API_KEY'] = {refused_code!r}", ["step:a"])],
    )
    for nb in (params_nb, code_nb):
        done = nbops_cli("promote", nb.name, cwd=project, env={})
        assert done.returncode == 5, done.stderr  # NotebookError
        assert "os.environ[" in done.stderr and "Traceback" not in done.stderr
    assert not (project / "pipelines").exists()

    from_env = canary("pipeenv")
    nb = write_notebook(
        project / "warehouse.ipynb",
        [
            (STEP_NOTEBOOK["parameters"], ["parameters"]),
            (STEP_NOTEBOOK["setup"], ["setup"]),
            (STEP_NOTEBOOK["load"], ["step:load"]),
            (STEP_NOTEBOOK["train"], ["step:train"]),
        ],
    )
    done = nbops_cli("promote", nb.name, cwd=project, env={})
    assert done.returncode == 0, done.stderr
    folder = project / "pipelines" / "warehouse"
    env = {"R8_PIPE_PASSWORD": from_env, "R8_FAIL": "1"}
    done = nbops_cli("run", str(folder), cwd=project, env=env)
    assert done.returncode != 0 and "cannot reach db.internal" in done.stdout + done.stderr
    assert from_env not in done.stdout + done.stderr
    report = (folder / "reports" / "01_load.ipynb").read_text()
    assert "postgresql://admin:" in report and REDACTED in report  # scrubbed, not dropped

    hand_edited = canary("handedit")
    params = yaml.safe_load((folder / "params.yaml").read_text())
    params["db_host"] = f"postgresql://u:{hand_edited}@db/app"
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    done = nbops_cli("run", str(folder), cwd=project, env=env)
    assert done.returncode != 0 and "holds a secret" in done.stdout + done.stderr
    done = nbops_cli("export", "airflow", str(folder), cwd=project, env={})
    assert done.returncode != 0 and "holds a secret" in done.stderr
    assert not (folder / "airflow_dag.py").exists()

    runs = all_runs(config.tracking_uri, "warehouse")
    assert any(r.info.status == "FAILED" for r in runs)
    users = (params_nb, code_nb, folder / "params.yaml")  # written by the user, not nbops
    found = leaks(project, [refused_param, refused_code, from_env, hand_edited], users)
    assert found == {}, found
