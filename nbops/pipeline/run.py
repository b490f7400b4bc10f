"""``nbops run [DIR]``: reproduce a promoted pipeline with DVC under one parent MLflow run.

The parent run is written synchronously before any step (status RUNNING) so every step's
kernel can name it as ``mlflow.parentRunId``; it is finished after ``dvc repro`` with the
status, the per-step timings and the union of ``metrics/*.json``. DVC decides what runs:
unchanged stages are skipped, and after a failure the next run resumes at the failed stage
because DVC only records stages that succeeded in ``dvc.lock``.
"""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from nbops import dvc
from nbops.config import ROOT_MARKERS, find_project_root, load_config
from nbops.errors import UsageError
from nbops.pipeline import dvc_project as dvcp
from nbops.pipeline import interrupted, layout
from nbops.pipeline.outcome import gate_outcome
from nbops.pipeline.runtime import PARENT_ENV
from nbops.record import Context, RunRecord

if TYPE_CHECKING:
    from nbops.pipeline.check import CheckReport
    from nbops.session import Session
    from nbops.store.mlflow_store import MlflowTracker
    from nbops.store.protocol import Tracker

StepState = Literal["ran", "unchanged", "restored", "failed", "not run"]
Echo = Callable[[str], None]
ERROR_MARK = "nbops: error:"  # how `nbops step` prints its error (the CLI's format)


@dataclass
class StepStatus:
    """What happened to one stage in this run; times are epoch seconds (None if not run)."""

    name: str
    state: StepState = "not run"
    start: float | None = None
    end: float | None = None
    output: list[str] = field(default_factory=list)  # the stage's own lines (nbops step's)

    @property
    def duration(self) -> float | None:
        return None if self.start is None or self.end is None else self.end - self.start


@dataclass
class PipelineResult:
    """The outcome of ``run_pipeline``; ``ok`` is False when a step (or DVC) failed."""

    name: str
    folder: Path
    status: str  # FINISHED | FAILED | KILLED
    parent_run_id: str | None
    steps: list[StepStatus]
    metrics: dict[str, float]
    duration: float
    error: str | None = None
    failed_step: str | None = None
    check: CheckReport | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Finished, and no metric differs from the notebook's (when checked)."""
        return self.status == "FINISHED" and (self.check is None or not self.check.mismatched)

    def step(self, name: str) -> StepStatus:
        return next(s for s in self.steps if s.name == name)

    def ran(self) -> list[str]:
        return [s.name for s in self.steps if s.state in ("ran", "failed")]


def run_pipeline(
    folder: str | Path = ".",
    check: bool = False,
    force: bool = False,
    *,
    session: Session | None = None,
    echo: Echo = print,
    gates: bool = False,
) -> PipelineResult:
    """Reproduce the pipeline in ``folder``; progress and errors go to ``echo`` line by line.

    ``gates``: run even when DVC sees nothing but its always-changed stages (the model gate,
    whose champion lives in MLflow): a monitor trigger asks the gate to judge again.

    ``session`` defaults to one configured from the pipeline's project (the nearest
    ``pyproject.toml``/``.git`` above the folder; the folder's own ``.dvc`` does not count),
    so ``nbops run`` writes to the same store wherever it is started from.
    """
    path = Path(folder).resolve()
    if not (path / layout.DVC_FILE).is_file():
        raise UsageError(
            f"{path} has no {layout.DVC_FILE}: it is not a promoted pipeline",
            fix="run `nbops promote NOTEBOOK` first, or pass the pipeline folder",
        )
    session = session or pipeline_session(path)
    session.deliver_pending()  # the source notebook's runs, which --check compares with
    name = layout.pipeline_name(path)
    warnings = dvc.ensure_project(path)
    root = dvc.dvc_root(path) or path
    warnings += [f"removed stale DVC lock {p}" for p in dvcp.clear_stale_locks(root)]
    for text in warnings:
        echo(f"nbops: {text}")
    steps = [StepStatus(stage) for stage in layout.stage_names(path)]
    if not force and not gates and dvcp.up_to_date(path):
        result = _nothing_changed(path, name, steps, echo)
    else:
        parent = ParentRun(session, path, name)
        parent.begin()
        interrupted.close_stale_runs(session, parent.record, echo)  # runs a killed run left
        result = _repro(path, parent, steps, force, session, echo)
        warnings += parent.warnings
    result.warnings = warnings
    if check and result.status == "FINISHED":
        from nbops.pipeline.check import check_pipeline

        result.check = check_pipeline(path, session=session, metrics=result.metrics)
        echo(result.check.text())
    return result


def _nothing_changed(
    folder: Path, name: str, steps: list[StepStatus], echo: Echo
) -> PipelineResult:
    """DVC says every stage is up to date: nothing runs, so no run is recorded."""
    start = time.time()
    for step in steps:
        step.state = "unchanged"
    result = PipelineResult(
        name=name,
        folder=folder,
        status="FINISHED",
        parent_run_id=None,
        steps=steps,
        metrics=layout.read_metrics(folder, [s.name for s in steps]),
        duration=time.time() - start,
    )
    echo(f"pipeline {name}: up to date (dvc status): nothing to run, no run recorded")
    return result


def pipeline_session(folder: Path) -> Session:
    """A session of the project the pipeline belongs to (see :func:`project_start`)."""
    from nbops.session import Session

    return Session(load_config(project_start(folder)))


def project_start(folder: Path) -> Path:
    """Where to look for the nbops project: a ``.dvc`` that ``dvc init --no-scm`` put in the
    pipeline folder must not make the folder its own project when one encloses it."""
    own = [m for m in ROOT_MARKERS if (folder / m).exists()]
    if own and own != [dvc.DVC_DIR]:
        return folder
    parent = find_project_root(folder.parent)
    if any((parent / m).exists() for m in ROOT_MARKERS):
        return parent
    return folder


def _repro(
    folder: Path,
    parent: ParentRun,
    steps: list[StepStatus],
    force: bool,
    session: Session,
    echo: Echo,
) -> PipelineResult:
    env = {
        "MLFLOW_TRACKING_URI": session.config.tracking_uri,
        "NBOPS_PROJECT_ROOT": str(session.config.project_root),  # steps share its .nbops/
    }
    if parent.run_id:
        env[PARENT_ENV] = parent.run_id
    command = dvc.dvc_command("repro", *(["--force"] if force else []))
    tail: list[str] = []
    status = "FAILED"
    try:
        with subprocess.Popen(
            command,
            cwd=folder,
            env=dvc.dvc_env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        ) as proc:
            assert proc.stdout is not None
            with interrupted.dvc_stops_first(proc):  # Ctrl-C: DVC exits (and unlocks) first
                _follow(proc.stdout, steps, tail, echo)
                code = proc.wait()
        status = "FINISHED" if code == 0 else "FAILED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        result = _finish(folder, parent, steps, status, tail, echo)
    return result


def _follow(lines: Iterable[str], steps: list[StepStatus], tail: list[str], echo: Echo) -> None:
    """Turn DVC's output into per-step states and one progress line per event."""
    by_name = {s.name: s for s in steps}
    current: StepStatus | None = None
    for raw in lines:
        event = dvcp.parse_line(raw)
        if event.kind == "other":
            if current is not None and not event.line.startswith("> "):
                current.output.append(event.line)
            tail[:] = [*tail[-40:], event.line]
            continue
        step = by_name.get(event.stage)
        if step is None:  # a stage dvc.yaml did not list (foreach/matrix expansions)
            step = by_name[event.stage] = StepStatus(event.stage)
            steps.append(step)
        if event.kind == "failed":
            step.state, step.end = "failed", step.end or time.time()
            echo(f"  FAILED     {step.name}")
            current = None
            continue
        _close(current, echo)
        current = step if event.kind == "start" else None
        step.state = "ran" if event.kind == "start" else event.kind
        if event.kind == "start":
            step.start = time.time()
        echo(f"  {'running' if event.kind == 'start' else event.kind:<10} {step.name}")
    _close(current, echo)


def _close(step: StepStatus | None, echo: Echo) -> None:
    """A running stage ends where DVC moves on to the next one (or exits)."""
    if step is None or step.end is not None:
        return
    step.end = time.time()
    echo(f"  done       {step.name} ({step.duration:.1f} s)")


def _finish(
    folder: Path,
    parent: ParentRun,
    steps: list[StepStatus],
    status: str,
    tail: list[str],
    echo: Echo,
) -> PipelineResult:
    failed = next((s for s in steps if s.state == "failed"), None)
    error = None
    if status == "FAILED":
        error = step_error(failed, tail)
        echo(error)
    metrics = layout.read_metrics(folder, [s.name for s in steps])
    ran = {s.name for s in steps if s.state in ("ran", "restored")}  # restored: its reports too
    outcome = gate_outcome(folder, ran, {s.name for s in steps if s.state == "failed"})
    parent.record.tags.update(outcome.tags)
    for line in outcome.lines:
        echo(line)
    parent.end(status, steps, metrics, error)
    result = PipelineResult(
        name=parent.name,
        folder=folder,
        status=status,
        parent_run_id=parent.run_id,
        steps=steps,
        metrics=metrics,
        duration=time.time() - parent.record.start,
        error=error,
        failed_step=failed.name if failed else None,
    )
    echo(summary(result))
    return result


def step_error(step: StepStatus | None, tail: list[str]) -> str:
    """What the failing step printed (``nbops: error: ...``), else the end of DVC's output."""
    if step is not None:
        lines = step.output
        start = next((i for i, ln in enumerate(lines) if ln.startswith(ERROR_MARK)), None)
        if start is not None:
            text = "\n".join(lines[start:]).removeprefix(ERROR_MARK).strip()
            return text
        if lines:
            return f"step {step.name!r} failed:\n" + "\n".join(lines[-15:])
    return "dvc repro failed:\n" + "\n".join(tail[-15:])


def summary(result: PipelineResult) -> str:
    ran = len(result.ran())
    unchanged = sum(s.state in ("unchanged", "restored") for s in result.steps)
    run = f"run {result.parent_run_id}" if result.parent_run_id else "no MLflow run"
    return (
        f"pipeline {result.name}: {result.status} in {result.duration:.1f} s "
        f"({ran} ran, {unchanged} unchanged; {run})"
    )


class ParentRun:
    """The pipeline's parent MLflow run: written before the steps, finished after them."""

    def __init__(self, session: Session, folder: Path, name: str) -> None:
        self.session = session
        self.name = name
        self.warnings: list[str] = []
        self._store: MlflowTracker | None = None
        self._context: threading.Thread | None = None
        dvc_yaml = folder / layout.DVC_FILE
        code = dvc_yaml.read_text(encoding="utf-8")
        self.record = RunRecord(
            name=name,
            experiment=name,
            code=code,
            code_hash="sha256:" + hashlib.sha256(code.encode()).hexdigest(),
            source="pipeline",
            params=layout.read_params(folder),
            tags={"nbops.pipeline": name},
            # a known "notebook" spares finalize() the Jupyter sessions lookup
            context=Context(notebook=str(dvc_yaml), notebook_source="pipeline"),
        )

    @property
    def run_id(self) -> str | None:
        return self.record.run_id

    def begin(self) -> None:
        """Write the RUNNING run now; complete its context (git, packages: ~0.4 s) while DVC
        runs, so that lookup is not paid before the first step."""
        from nbops.store.mlflow_store import MlflowTracker

        self.record.start = time.time()
        self._store = MlflowTracker(self.session.config)
        self._write(self._store)
        self._context = threading.Thread(target=self._finalize, name="nbops-context", daemon=True)
        self._context.start()

    def _finalize(self) -> None:
        with contextlib.suppress(Exception):  # the end write finalizes again if this failed
            self.session.finalize(self.record)

    def end(
        self, status: str, steps: list[StepStatus], metrics: dict[str, float], error: str | None
    ) -> None:
        from nbops.session import FinalizingTracker

        if self._context is not None:
            self._context.join()
        record = self.record
        record.status = status  # type: ignore[assignment]
        record.end = time.time()
        record.metrics = dict(metrics)
        record.error = error.splitlines()[0] if error else None
        for step in steps:
            prefix = f"nbops.step.{step.name}."
            record.tags[prefix + "status"] = step.state
            if step.start is not None:
                record.tags[prefix + "start"] = f"{step.start:.3f}"
            if step.end is not None:
                record.tags[prefix + "end"] = f"{step.end:.3f}"
            if step.duration is not None:
                record.tags[prefix + "duration"] = f"{step.duration:.3f}"
        self._write(FinalizingTracker(self._store, self.session) if self._store else None)

    def _write(self, tracker: Tracker | None) -> None:
        """Spool, then deliver now: a failed write stays in the spool for ``nbops sync``."""
        from nbops.pipeline.stage_run import write_now

        if write_now(self.session, self.record, tracker=tracker) is None:
            self.warnings.append(
                f"the pipeline run was not written to MLflow; it is kept in "
                f"{self.session.spool.root} and `nbops sync` delivers it"
            )
