"""What ``nbops serve|deploy|monitor [TARGET]`` is about: a promoted pipeline or a model name.

A pipeline folder names its model in ``params.yaml`` (``gate.model_name``) and uses the store of
its enclosing project (as ``nbops run`` does); any other word is a registered model name in the
current project's store. Every served model has a home, ``<serve_path>/<model>/``: the request
log (``log/``, a SQLite file per day), the per-version reference the gate recorded
(``versions/<v>/``), the running server's address (``server.json``) and the deployments made
(``deployments.jsonl``, append-only). Stdlib only: the retrain trigger reads these without
importing MLflow.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbops._pids import alive
from nbops.config import Config, load_config
from nbops.errors import UsageError
from nbops.pipeline_folder import DVC_YAML, REPORTS_DIR

CHAMPION = "champion"
SERVER_FILE = "server.json"
DEPLOYMENTS_FILE = "deployments.jsonl"
_UNSAFE = re.compile(r"[^\w.-]")


@dataclass(frozen=True)
class Target:
    """A model to serve (by alias), the store it is registered in and, if any, its pipeline."""

    model: str
    config: Config
    pipeline: Path | None = None
    alias: str = CHAMPION

    @property
    def home(self) -> Path:
        return self.config.serve_path / _UNSAFE.sub("_", self.model)

    @property
    def log_dir(self) -> Path:
        return self.home / "log"

    def version_dir(self, version: int) -> Path:
        return self.home / "versions" / str(version)

    @property
    def reports_dir(self) -> Path:
        """Where monitor reports go: the pipeline's ``reports/``, else the model's home."""
        return (self.pipeline / REPORTS_DIR) if self.pipeline else (self.home / REPORTS_DIR)

    @property
    def argument(self) -> str:
        """How to name this target on the command line (for the fixes in messages)."""
        return str(self.pipeline) if self.pipeline else self.model


def resolve(target: str | Path = ".", alias: str = CHAMPION) -> Target:
    """A pipeline folder (one with ``dvc.yaml``) or a registered model name."""
    path = Path(target).expanduser()
    if (path / DVC_YAML).is_file():
        return _pipeline_target(path.resolve(), alias)
    text = str(target)
    if path.is_dir() or "/" in text or text in ("", "."):
        raise UsageError(
            f"{text or '.'} is neither a promoted pipeline (no dvc.yaml) nor a model name",
            fix="pass a pipeline folder (nbops serve pipelines/NAME) or a registered model name "
            "(`nbops model list NAME` shows its versions)",
        )
    return Target(model=text, config=load_config(), alias=alias)


def _pipeline_target(folder: Path, alias: str) -> Target:
    from nbops.pipeline.layout import read_params
    from nbops.session import project_start

    gate = read_params(folder).get("gate")
    name = gate.get("model_name") if isinstance(gate, dict) else None
    if not isinstance(name, str) or not name:
        raise UsageError(
            f"pipeline {folder} has no model gate (gate.model_name in params.yaml): it "
            "registers no model to serve",
            fix="write the notebook's evaluation as `metric = f(y_test, model.predict(X_test))` "
            "and promote it again, or serve a registered model by name",
        )
    return Target(
        model=name, config=load_config(project_start(folder)), pipeline=folder, alias=alias
    )


# ---- the files of a served model's home ----------------------------------------------------


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` atomically: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def running_server(target: Target) -> dict[str, Any] | None:
    """``server.json`` of a live ``nbops serve`` for this model, or None (none, or its process
    is gone: a server killed with SIGKILL leaves the file behind)."""
    state = read_json(target.home / SERVER_FILE)
    pid = state.get("pid")
    if not isinstance(pid, int) or not alive(pid):
        return None
    return state


def deployments(target: Target) -> list[dict[str, Any]]:
    """Every deployment ``nbops serve`` made for this model, oldest first."""
    path = target.home / DEPLOYMENTS_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        try:
            item = json.loads(line)
        except ValueError:
            continue  # a line cut by a crash: the others stand
        if isinstance(item, dict):
            found.append(item)
    return found


def append_deployment(target: Target, event: dict[str, Any]) -> None:
    target.home.mkdir(parents=True, exist_ok=True)
    with (target.home / DEPLOYMENTS_FILE).open("a", encoding="utf-8") as out:
        out.write(json.dumps(event, sort_keys=True) + "\n")
