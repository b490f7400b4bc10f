"""``nbops level [PATH]``: where a project stands on Google's MLOps levels, and the next step.

Level 0 is the manual process. Level 1 (ML pipeline automation) is reached when all of these
hold, checked in this order: tracked runs in the store, a promoted pipeline, data validation, a
model gate, a registered champion, a CI workflow, and its triggers, the champion delivered as a
prediction service (continuous delivery), and what it serves monitored (the drift and
performance triggers of retraining). Level 2 (CI/CD pipeline
automation) is shown as the next horizon: pipeline tests in CI, a shared tracking server, a DVC
remote, an orchestrator export. The next step is the first unchecked item's, as a command.

Files are read by :mod:`nbops.level.scan`. The store is only read: a SQLite store that does not
exist is reported, never created, and a store that fails marks its items unchecked with the
reason, so the checklist always prints.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbops.config import Config, load_config
from nbops.errors import RegistryError, StoreError, UsageError
from nbops.level import scan
from nbops.level.report import Item, LevelReport
from nbops.level.report import shown as _shown
from nbops.pipeline_folder import DVC_YAML, PARAMS, REPORTS_DIR

RUNS_COUNTED = 1000  # more are reported as "1000+"


@dataclass
class _Project:
    """What the checks share: the folder, its config, and what its files say."""

    root: Path
    config: Config
    bases: list[Path]  # where .github/workflows may be: the git root, then the folder
    pipeline: scan.Pipeline | None
    workflow: scan.Workflow | None
    notebooks: list[Path]

    @property
    def notebook(self) -> str:
        """The notebook the first steps are about (shell-quoted), or a placeholder."""
        return shlex.quote(_shown(self.notebooks[0])) if self.notebooks else "NOTEBOOK.ipynb"

    @property
    def repromote(self) -> str:
        """The command that regenerates the pipeline with what this nbops adds to it."""
        p = self.pipeline
        source = shlex.quote(_shown(p.source)) if p and p.source else self.notebook
        out = f" --out {shlex.quote(_shown(p.folder))}" if p else ""
        return f"nbops promote {source}{out}"


def assess(path: str | Path = ".") -> LevelReport:
    """Check the project folder ``path`` against Levels 1 and 2."""
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise UsageError(
            f"{path} is not a folder", fix="nbops level [FOLDER]  (default: the current folder)"
        )
    project = _scan(root)
    items = [
        _tracked_runs(project),
        _promoted(project),
        _data_validation(project),
        _model_gate(project),
        _champion(project),
        _ci_workflow(project),
        _triggers(project),
        _serving(project),
        _monitoring(project),
        _ci_tests(project),
        _tracking_server(project),
        _dvc_remote(project),
        _orchestrator(project),
    ]
    folder = project.pipeline.folder if project.pipeline else None
    return LevelReport(root, project.config.tracking_uri, folder, items)


def _scan(root: Path) -> _Project:
    config = load_config(root)
    git = scan.git_root(root)
    bases = [b for b in dict.fromkeys([git, root]) if b is not None]
    pipelines = scan.find_pipelines(root)
    workflows = [scan.workflow_for(p, bases) for p in pipelines]
    notebooks = scan.find_notebooks(root, pipelines)
    if not pipelines:
        return _Project(root, config, bases, None, None, notebooks)

    def completeness(i: int) -> tuple[int, int]:  # the most complete one is reported on
        p = pipelines[i]
        return p.validates_data + p.validates_model + (workflows[i] is not None), -i

    best = max(range(len(pipelines)), key=completeness)
    source = pipelines[best].source
    if source is not None and source.is_file():
        notebooks.insert(0, source)
    return _Project(root, config, bases, pipelines[best], workflows[best], notebooks)


# ---- Level 1 ------------------------------------------------------------------------------


def _tracked_runs(project: _Project) -> Item:
    label, config = "tracked runs", project.config
    pending = _spooled(config)
    track = (
        f"put %%track on the first line of the cell that trains in {project.notebook} "
        f"(after %load_ext nbops) and run it; or make it a pipeline: "
        f"nbops promote {project.notebook}"
    )
    if project.pipeline:
        track = f"nbops run {shlex.quote(_shown(project.pipeline.folder))}"
    if pending:
        track = "nbops sync"
    missing = _missing_store(config)
    if missing:
        detail = f"no store yet ({missing} does not exist)"
        return Item("tracked_runs", 1, label, False, detail + _pending_note(pending), track)
    try:
        count, latest = _count_runs(config)
    except StoreError as exc:
        return Item("tracked_runs", 1, label, False, exc.message, exc.fix)
    if not count:
        detail = f"no runs in {config.tracking_uri}" + _pending_note(pending)
        return Item("tracked_runs", 1, label, False, detail, track)
    shown = f"{count}+" if count >= RUNS_COUNTED else str(count)
    name = f"{latest.name!r} in {latest.experiment!r}" if latest else "?"
    return Item("tracked_runs", 1, label, True, f"{shown} run(s); latest {name}")


def _promoted(project: _Project) -> Item:
    label = "promoted pipeline"
    if project.pipeline is None:
        detail = f"no folder with {scan.MANIFEST} under {_shown(project.root)}"
        step = f"tag the cells of {project.notebook} (step:NAME), then: nbops promote "
        return Item("pipeline", 1, label, False, detail, step + project.notebook)
    p = project.pipeline
    source = f" from {_shown(p.source)}" if p.source else ""
    return Item("pipeline", 1, label, True, f"{p.name!r} in {_shown(p.folder)}{source}")


def _data_validation(project: _Project) -> Item:
    label, p = "data validation", project.pipeline
    if p is None:
        return _needs_pipeline("data_validation", label, project)
    missing = [
        what
        for what, there in (
            (f"{scan.DATA_STAGE} stage in dvc.yaml", scan.DATA_STAGE in p.stages),
            (scan.SCHEMA, p.has_schema),
        )
        if not there
    ]
    if not missing:
        return Item("data_validation", 1, label, True, f"{scan.DATA_STAGE} against {scan.SCHEMA}")
    detail = f"{_shown(p.folder)} has no {' and no '.join(missing)}" + _problems(p)
    return Item("data_validation", 1, label, False, *_gate_step(project, scan.DATA_STAGE, detail))


def _model_gate(project: _Project) -> Item:
    label, p = "model gate", project.pipeline
    if p is None:
        return _needs_pipeline("model_gate", label, project)
    if p.validates_model:
        detail = f"{scan.MODEL_STAGE} judges each candidate before {p.model_name!r} is registered"
        return Item("model_gate", 1, label, True, detail)
    if scan.MODEL_STAGE not in p.stages:
        detail = f"no {scan.MODEL_STAGE} stage in {_shown(p.folder / DVC_YAML)}" + _problems(p)
        return Item("model_gate", 1, label, False, *_gate_step(project, scan.MODEL_STAGE, detail))
    params = _shown(p.folder / PARAMS)
    detail = f"no gate.model_name in {params}" + _problems(p)
    return Item("model_gate", 1, label, False, detail, f"set gate.model_name in {params}")


def _champion(project: _Project) -> Item:
    label, p = "registered champion", project.pipeline
    if p is None or not p.model_name:
        detail = "no model gate names the model (gate.model_name)"
        return Item("champion", 1, label, False, detail, _model_gate(project).next_step)
    name, run = p.model_name, f"nbops run {shlex.quote(_shown(p.folder))}"
    config = _pipeline_config(p.folder)
    if _missing_store(config):
        return Item("champion", 1, label, False, f"no store yet for {name!r}", run)
    from nbops import registry

    try:
        versions = registry.list_versions(config, name)
    except RegistryError:
        detail = f"no registered model {name!r} (the model gate registers it)"
        return Item("champion", 1, label, False, detail, run)
    except StoreError as exc:
        return Item("champion", 1, label, False, exc.message, exc.fix)
    champion = next((v for v in versions if registry.CHAMPION in v.aliases), None)
    if champion is not None:
        detail = f"{name!r} version {champion.version} (models:/{name}@{registry.CHAMPION})"
        return Item("champion", 1, label, True, detail)
    if not versions:
        return Item("champion", 1, label, False, f"{name!r} has no versions", run)
    step = f"nbops model promote {shlex.quote(name)} {versions[0].version}"
    return Item("champion", 1, label, False, f"no version of {name!r} is the champion", step)


def _ci_workflow(project: _Project) -> Item:
    label, p = "CI workflow", project.pipeline
    if p is None:
        return _needs_pipeline("ci_workflow", label, project)
    if project.workflow is None:
        where = " or ".join(_shown(b / scan.WORKFLOWS / f"{p.name}.yml") for b in project.bases)
        return Item("ci_workflow", 1, label, False, f"no {where}", project.repromote)
    return Item("ci_workflow", 1, label, True, _shown(project.workflow.path))


def _triggers(project: _Project) -> Item:
    label, p, workflow = "triggers", project.pipeline, project.workflow
    if p is None or workflow is None:
        detail = "no CI workflow to trigger"
        return Item("triggers", 1, label, False, detail, _ci_workflow(project).next_step)
    repo = project.bases[0]
    on_data = scan.filters_data(workflow.paths, scan.data_paths(p, repo))
    checks = (("schedule", workflow.schedule), ("paths filter on the data", on_data))
    missing = [what for what, ok in checks if not ok]
    if workflow.problem or missing:
        detail = workflow.problem or f"{_shown(workflow.path)} has no {' and no '.join(missing)}"
        step = "add on.schedule (cron) and on.push.paths (the data's .dvc files) to " + _shown(
            workflow.path
        )
        return Item("triggers", 1, label, False, detail, step)
    return Item("triggers", 1, label, True, "on a schedule and when the data changes")


def _gate_step(project: _Project, stage: str, detail: str) -> tuple[str, str]:
    """(detail, next step) for a gate promote left out: its reason and fix when promote
    recorded them, then the command that promotes again (which also adds what a newer nbops
    finds on its own)."""
    assert project.pipeline is not None
    missing = project.pipeline.missing_gates.get(stage)
    if not missing:
        return detail, project.repromote
    notebook = _shown(project.pipeline.source) if project.pipeline.source else "the notebook"
    reason = f"{detail}: {missing['reason']}"
    return reason, f"{missing['fix']} in {notebook}, then: {project.repromote}"


def _serving(project: _Project) -> Item:
    """Continuous delivery: a deploy stage, a running ``nbops serve``, or one that deployed."""
    label, p = "prediction service", project.pipeline
    if p is None or not p.model_name:
        return Item("serving", 1, label, False, "no model gate names the model to serve",
                    _model_gate(project).next_step)  # fmt: skip
    from nbops.serve import target as served

    model = served.Target(p.model_name, _pipeline_config(p.folder), p.folder)
    running, done = served.running_server(model), served.deployments(model)
    deployed = [d for d in done if d.get("ok")]
    if running is not None:
        detail = f"nbops serve at {running.get('url')} answers with v{running.get('version')}"
    elif scan.DEPLOY_STAGE in p.stages:
        detail = f"the {scan.DEPLOY_STAGE} stage delivers each new champion"
    elif deployed:
        detail = f"nbops serve deployed v{deployed[-1].get('version')} (not running now)"
    else:
        folder = shlex.quote(_shown(p.folder))
        detail = f"{p.model_name!r} is not served (no {scan.DEPLOY_STAGE} stage, no nbops serve)"
        return Item("serving", 1, label, False, detail, f"nbops serve {folder}")
    return Item("serving", 1, label, True, detail)


def _monitoring(project: _Project) -> Item:
    """What the service answers is logged and checked (``nbops monitor``, here or in CI)."""
    label, p = "monitoring", project.pipeline
    if p is None or not p.model_name:
        return Item("monitoring", 1, label, False, "nothing is served", _serving(project).next_step)
    from nbops.serve import target as served

    model = served.Target(p.model_name, _pipeline_config(p.folder), p.folder)
    folder = shlex.quote(_shown(p.folder))
    days = sorted(model.log_dir.glob("*.sqlite")) if model.log_dir.is_dir() else []
    if not days:
        detail = f"no request log of {p.model_name!r} ({_shown(model.log_dir)})"
        return Item("monitoring", 1, label, False, detail, f"nbops serve {folder}  (it logs)")
    workflows = [project.workflow] if project.workflow else []
    in_ci = any("nbops monitor" in run for w in workflows for run in w.runs)
    checked = (model.home / "monitor.json").is_file() or (
        p.folder / REPORTS_DIR / "monitor.json"
    ).is_file()
    if not (in_ci or checked):
        detail = f"{len(days)} day(s) of requests logged, never monitored"
        return Item("monitoring", 1, label, False, detail, f"nbops monitor {folder}")
    where = "by the CI workflow" if in_ci else "by nbops monitor"
    return Item("monitoring", 1, label, True, f"{len(days)} day(s) of requests, checked {where}")


def _needs_pipeline(key: str, label: str, project: _Project) -> Item:
    return Item(key, 1, label, False, "no promoted pipeline", _promoted(project).next_step)


# ---- Level 2 ------------------------------------------------------------------------------


def _ci_tests(project: _Project) -> Item:
    label = "pipeline tests in CI"
    folder = project.pipeline.folder if project.pipeline else project.root
    tests = next((t for t in (folder / "tests", project.root / "tests") if _has_tests(t)), None)
    workflows = scan.all_workflows(project.bases)
    testing = next((w for w in workflows if any("pytest" in run for run in w.runs)), None)
    if tests is not None and testing is not None:
        detail = f"pytest in {_shown(testing.path)}, tests in {_shown(tests)}"
        return Item("ci_tests", 2, label, True, detail)
    detail = "no tests/test_*.py" if tests is None else "no workflow runs pytest"
    step = f"write pytest tests of the pipeline's code in {_shown(folder / 'tests')}"
    if tests is not None:
        step = f"run pytest {_shown(tests)} in a CI workflow (.github/workflows/)"
    return Item("ci_tests", 2, label, False, detail, step)


def _has_tests(folder: Path) -> bool:
    return folder.is_dir() and any(folder.rglob("test_*.py"))


def _tracking_server(project: _Project) -> Item:
    label, uri = "shared tracking server", project.config.tracking_uri
    scheme = uri.split(":", 1)[0] if ":" in uri else "file"
    if scheme not in ("sqlite", "file"):
        return Item("tracking_server", 2, label, True, uri)
    step = (
        "run an MLflow server on a shared database (mlflow server --backend-store-uri "
        "postgresql://...) and set tracking_uri in [tool.nbops] or MLFLOW_TRACKING_URI"
    )
    return Item("tracking_server", 2, label, False, f"a local {scheme} store", step)


def _dvc_remote(project: _Project) -> Item:
    label = "DVC remote"
    start = project.pipeline.folder if project.pipeline else project.root
    config = scan.dvc_remote(start)
    if config is not None:
        return Item("dvc_remote", 2, label, True, f"configured in {_shown(config)}")
    step = "dvc remote add -d storage s3://BUCKET/PATH  (any DVC remote: s3, gs, azure, ssh)"
    return Item("dvc_remote", 2, label, False, "no remote in .dvc/config", step)


def _orchestrator(project: _Project) -> Item:
    label = "orchestrator export"
    found = scan.orchestrator_export(project.root)
    if found is not None:
        return Item("orchestrator", 2, label, True, _shown(found))
    folder = shlex.quote(_shown(project.pipeline.folder)) if project.pipeline else "PIPELINE"
    step = f"nbops export airflow {folder}  (an Airflow DAG: one task per step)"
    return Item("orchestrator", 2, label, False, "no Airflow DAG or Kubeflow/Argo spec", step)


# ---- helpers ------------------------------------------------------------------------------


def _missing_store(config: Config) -> Path | None:
    """The SQLite file of the store if it does not exist (reading must not create it)."""
    from nbops.store.sqlite import db_path

    path = db_path(config.tracking_uri)
    return path if path is not None and not path.exists() else None


def _count_runs(config: Config) -> tuple[int, Any]:
    from nbops.store.mlflow_store import MlflowTracker

    runs = MlflowTracker(config).list_runs(None, max_results=RUNS_COUNTED)
    return len(runs), (runs[0] if runs else None)


def _spooled(config: Config) -> int:
    """Records waiting in the local spool (read only: counting, not loading)."""
    spool = config.state_dir / "spool"
    if not spool.is_dir():
        return 0
    return sum(1 for p in spool.iterdir() if p.is_dir() and not p.name.startswith("."))


def _pending_note(pending: int) -> str:
    return f"; {pending} record(s) wait in .nbops/spool" if pending else ""


def _pipeline_config(folder: Path) -> Config:
    """The store `nbops run` uses for this pipeline (its enclosing project's)."""
    from nbops.session import project_start

    return load_config(project_start(folder))


def _problems(pipeline: scan.Pipeline) -> str:
    return f" ({'; '.join(pipeline.problems)})" if pipeline.problems else ""
