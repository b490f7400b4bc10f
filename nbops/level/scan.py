"""What a project folder holds, read from its files only (no store, no DVC, no git commands):
the facts ``nbops level`` checks against Google's MLOps levels.

A promoted pipeline is a folder holding ``.nbops-promote.json``; its gates are stages of its
``dvc.yaml`` and sections of its ``params.yaml``; its CI workflow is
``.github/workflows/<pipeline>.yml`` at the git root (or the scanned folder); a DVC remote is a
``remote`` section in ``.dvc/config``. Files that cannot be parsed count as missing, with the
reason kept for the report: a checklist must never fail on one bad file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from nbops.errors import NbopsError
from nbops.pipeline_folder import (  # noqa: F401 (re-exported: the checks' names)
    DATA_STAGE,
    DEPLOY_STAGE,
    GENERATED_DIRS,
    MANIFEST,
    MODEL_STAGE,
    SCHEMA,
)
from nbops.pipeline_folder import WORKFLOWS as WORKFLOWS_DIR

WORKFLOWS = Path(WORKFLOWS_DIR)
MAX_DEPTH = 6  # folders below the scanned one
_SKIP = {"node_modules", "__pycache__", "site-packages", "mlartifacts", "mlruns", "venv", "env"}
_PIPELINE_SKIP = set(GENERATED_DIRS)
_REMOTE = re.compile(r"""^\s*\[\s*['"]?remote\s+""", re.MULTILINE)
_ORCHESTRATOR = re.compile(r"argoproj\.io/|pipelineSpec:|from airflow|import airflow|kfp\.")


@dataclass
class Pipeline:
    """A promoted pipeline folder and what its files say about the Level 1 gates."""

    folder: Path
    name: str
    source: Path | None  # the notebook it was promoted from
    data: list[str]  # data files (relative to the folder) promote copied and `dvc add`-ed
    stages: list[str] = field(default_factory=list)
    has_schema: bool = False
    model_name: str | None = None  # params.yaml gate.model_name
    problems: list[str] = field(default_factory=list)  # files that could not be read
    # why promote left a gate out, and the fix: stage -> {"reason", "fix"} (the manifest's)
    missing_gates: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def validates_data(self) -> bool:
        return DATA_STAGE in self.stages and self.has_schema

    @property
    def validates_model(self) -> bool:
        return MODEL_STAGE in self.stages and bool(self.model_name)


@dataclass
class Workflow:
    """A GitHub Actions workflow file and the triggers it declares."""

    path: Path
    schedule: bool = False
    paths: list[str] = field(default_factory=list)  # push / pull_request `paths` filters
    runs: list[str] = field(default_factory=list)  # the `run:` scripts of its steps
    problem: str = ""


def walk(root: Path) -> Iterator[tuple[Path, list[str]]]:
    """(folder, file names) under ``root``, skipping hidden folders, environments, MLflow
    artifacts and the generated insides of pipelines; at most :data:`MAX_DEPTH` levels."""
    base = len(root.parts)
    for current, dirs, files in os.walk(root):
        folder = Path(current)
        inside_pipeline = MANIFEST in files
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and d not in _SKIP
            and not (inside_pipeline and d in _PIPELINE_SKIP)
            and len(folder.parts) - base < MAX_DEPTH
        )
        yield folder, files


def find_pipelines(root: Path) -> list[Pipeline]:
    return [read_pipeline(folder) for folder, files in walk(root) if MANIFEST in files]


def find_notebooks(root: Path, pipelines: list[Pipeline]) -> list[Path]:
    """Notebooks under ``root`` that are not a pipeline's generated steps or reports; those
    closest to a pipeline first: tagged with ``step:``, then using ``%%track``."""
    inside = [p.folder for p in pipelines]
    found = []
    for folder, files in walk(root):
        if any(folder == p or p in folder.parents for p in inside):
            continue
        found += [folder / f for f in sorted(files) if f.endswith(".ipynb")]
    return sorted(found, key=_readiness)


def _readiness(path: Path) -> int:
    """0: has ``step:`` tags, 1: uses ``%%track``, 2: neither (or unreadable)."""
    try:
        text = path.read_text(encoding="utf-8") if path.stat().st_size < 4 << 20 else ""
    except (OSError, UnicodeDecodeError):
        return 2
    if re.search(r'"(step|block):[a-z0-9_]+"', text):
        return 0
    return 1 if "%%track" in text else 2


def read_pipeline(folder: Path) -> Pipeline:
    from nbops.pipeline import layout

    manifest = _guarded(lambda: layout.read_manifest(folder), {})
    source = manifest.get("source") if isinstance(manifest, dict) else None
    data = manifest.get("data") if isinstance(manifest, dict) else None
    pipeline = Pipeline(
        folder=folder,
        name=_guarded(lambda: layout.pipeline_name(folder), folder.name),
        source=(folder / source).resolve() if isinstance(source, str) and source else None,
        data=[str(d) for d in data] if isinstance(data, list) else [],
        has_schema=(folder / SCHEMA).is_file(),
        missing_gates=_missing_gates(manifest),
    )
    try:
        pipeline.stages = layout.stage_names(folder)
        params = layout.read_params(folder)
    except NbopsError as exc:
        pipeline.problems.append(exc.message)
        return pipeline
    gate = params.get("gate")
    name = gate.get("model_name") if isinstance(gate, dict) else None
    pipeline.model_name = str(name) if name else None
    return pipeline


def _missing_gates(manifest: Any) -> dict[str, dict[str, str]]:
    missing = manifest.get("missing_gates") if isinstance(manifest, dict) else None
    if not isinstance(missing, dict):
        return {}
    return {
        str(stage): {"reason": str(info.get("reason", "")), "fix": str(info.get("fix", ""))}
        for stage, info in missing.items()
        if isinstance(info, dict)
    }


def _guarded(read: Any, default: Any) -> Any:
    try:
        return read()
    except NbopsError:
        return default


def git_root(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return None


def workflow_for(pipeline: Pipeline, bases: list[Path]) -> Workflow | None:
    """``.github/workflows/<pipeline>.yml`` (or ``.yaml``) in the first base that has it."""
    for base in bases:
        for suffix in (".yml", ".yaml"):
            path = base / WORKFLOWS / f"{pipeline.name}{suffix}"
            if path.is_file():
                return read_workflow(path)
    return None


def all_workflows(bases: list[Path]) -> list[Workflow]:
    found: dict[Path, Workflow] = {}
    for base in bases:
        folder = base / WORKFLOWS
        if folder.is_dir():
            for path in sorted(folder.glob("*.y*ml")):
                found.setdefault(path.resolve(), read_workflow(path))
    return list(found.values())


def read_workflow(path: Path) -> Workflow:
    import yaml

    workflow = Workflow(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        workflow.problem = f"{path} is not readable YAML: {' '.join(str(exc).split())[:200]}"
        return workflow
    if not isinstance(data, dict):
        workflow.problem = f"{path} is not a workflow (no mapping at the top)"
        return workflow
    triggers = data.get("on", data.get(True))  # YAML 1.1 reads a bare `on` as true
    if isinstance(triggers, dict):
        workflow.schedule = bool(triggers.get("schedule"))
        for event in ("push", "pull_request"):
            spec = triggers.get(event)
            if isinstance(spec, dict) and isinstance(spec.get("paths"), list):
                workflow.paths += [str(p) for p in spec["paths"]]
    jobs = data.get("jobs")
    for job in jobs.values() if isinstance(jobs, dict) else []:
        steps = job.get("steps") if isinstance(job, dict) else None
        for step in steps if isinstance(steps, list) else []:
            if isinstance(step, dict) and isinstance(step.get("run"), str):
                workflow.runs.append(step["run"])
    return workflow


def data_paths(pipeline: Pipeline, repo: Path) -> list[str]:
    """The pipeline's data files and their ``.dvc`` files, relative to ``repo`` (POSIX)."""
    try:
        prefix = PurePosixPath(pipeline.folder.resolve().relative_to(repo.resolve()).as_posix())
    except ValueError:
        return []
    out = []
    for rel in pipeline.data:
        path = (prefix / rel).as_posix()
        out += [path, path if path.endswith(".dvc") else f"{path}.dvc"]
    return out


def filters_data(patterns: list[str], data: list[str]) -> bool:
    """True if a ``paths`` pattern matches one of the data files (GitHub glob rules), or, when
    the data files are unknown, if a pattern names data (``data`` or a ``.dvc`` file)."""
    if not data:
        return any("data" in p or p.endswith(".dvc") for p in patterns)
    return any(_glob(p).fullmatch(d) for p in patterns for d in data)


def _glob(pattern: str) -> re.Pattern[str]:
    """GitHub's filter patterns: ``**`` any path, ``*`` and ``?`` within one segment,
    ``\\`` escapes the next character."""
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        out.append({"*": "[^/]*", "?": "[^/]"}.get(char, re.escape(char)))
        i += 1
    return re.compile("".join(out))


def dvc_remote(start: Path) -> Path | None:
    """The ``.dvc/config`` (or ``config.local``) of the DVC project holding ``start`` that
    configures a remote, or None."""
    for folder in (start, *start.parents):
        dvc = folder / ".dvc"
        if dvc.is_dir():
            for name in ("config", "config.local"):
                config = dvc / name
                if config.is_file() and _REMOTE.search(config.read_text(errors="replace")):
                    return config
            return None
    return None


def orchestrator_export(root: Path) -> Path | None:
    """A file that hands a pipeline to an orchestrator: an Airflow DAG (``nbops export
    airflow`` writes ``airflow_dag.py``; any ``*dag*.py`` or ``dags/*.py``) or a Kubeflow /
    Argo workflow spec."""
    for folder, files in walk(root):
        for name in files:
            path = folder / name
            wanted = name.endswith((".yaml", ".yml")) or (
                name.endswith(".py") and ("dag" in name.lower() or folder.name == "dags")
            )
            if not wanted or path.stat().st_size > 1 << 20:
                continue
            if _ORCHESTRATOR.search(path.read_text(errors="replace")):
                return path
    return None
