"""``nbops run [DIR]``: reproduce a promoted pipeline with DVC under one parent MLflow run.

DVC decides what runs: unchanged stages are skipped, and after a failure the next run resumes at
the failed stage because DVC only records stages that succeeded in ``dvc.lock``. ``nbops run``
adds, around ``dvc repro``:

- the warm executor (:mod:`nbops.executor`): the stages DVC starts hand their work to it, so a
  step costs its code plus a few tenths of a second (``--cold``: every stage in a new process,
  as a plain ``dvc repro``);
- the parent MLflow run (:mod:`nbops.pipeline.parent`), spooled RUNNING at once and finished
  after DVC with the status, the per-step timings and the metrics of this run; the stages only
  spool their runs and the parent delivers them (:mod:`nbops.pipeline.deliverer`);
- one run of a pipeline at a time (:mod:`nbops.pipeline.exclusive`), and progress lines with
  each step's wall time and its cells' share (:mod:`nbops.pipeline.progress`).
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from nbops import dvc
from nbops.errors import UsageError
from nbops.pipeline import dvc_project as dvcp
from nbops.pipeline import interrupted, layout
from nbops.pipeline.deliverer import DELIVERY_ENV
from nbops.pipeline.exclusive import one_run_at_a_time
from nbops.pipeline.outcome import gate_outcome
from nbops.pipeline.parent import ParentRun
from nbops.pipeline.progress import Echo, StepState, StepStatus, follow
from nbops.pipeline.watch import Watcher

if TYPE_CHECKING:
    from nbops.pipeline.check import CheckReport
    from nbops.session import Session

__all__ = ["PipelineResult", "StepState", "StepStatus", "run_pipeline"]

ERROR_MARK = "nbops: error:"  # how `nbops step` prints its error (the CLI's format)


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
    warm: bool = True,
    gates: bool = False,
    trigger: str = "",
) -> PipelineResult:
    """Reproduce the pipeline in ``folder``; progress and errors go to ``echo`` line by line.

    ``gates``: run even when DVC sees nothing but its always-changed stages (the model gate,
    whose champion lives in MLflow): a monitor trigger asks the gate to judge again.

    ``session`` defaults to one configured from the pipeline's project (the nearest
    ``pyproject.toml``/``.git`` above the folder; the folder's own ``.dvc`` does not count),
    so ``nbops run`` writes to the same store wherever it is started from. ``warm=False``
    runs every stage in a new process (the cold path of a plain ``dvc repro``).
    """
    path = Path(folder).resolve()
    if not (path / layout.DVC_YAML).is_file():
        raise UsageError(
            f"{path} has no {layout.DVC_YAML}: it is not a promoted pipeline",
            fix="run `nbops promote NOTEBOOK` first, or pass the pipeline folder",
        )
    if session is None:
        from nbops.session import pipeline_session

        session = pipeline_session(path)
    name = layout.pipeline_name(path)
    with one_run_at_a_time(session.config.state_dir, path, name):
        warnings = dvc.ensure_project(path)
        root = dvc.dvc_root(path) or path
        warnings += [f"removed stale DVC lock {p}" for p in dvcp.clear_stale_locks(root)]
        for text in warnings:
            echo(f"nbops: {text}")
        steps = [StepStatus(stage) for stage in layout.stage_names(path)]
        if not force and not gates and dvcp.up_to_date(path):
            result = _nothing_changed(path, name, steps, echo)
        else:
            parent = ParentRun(session, path, name, trigger or ("forced" if force else ""))
            parent.begin(echo)
            result = _repro(path, parent, steps, force, session, echo, warm)
            warnings += parent.warnings
    result.warnings = warnings
    if check and result.status == "FINISHED":
        from nbops.pipeline.check import check_pipeline

        session.deliver_pending()  # the source notebook's runs, which --check compares with
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


def _repro(
    folder: Path,
    parent: ParentRun,
    steps: list[StepStatus],
    force: bool,
    session: Session,
    echo: Echo,
    warm: bool,
) -> PipelineResult:
    env = {
        "MLFLOW_TRACKING_URI": session.config.tracking_uri,
        "NBOPS_PROJECT_ROOT": str(session.config.project_root),  # steps share its .nbops/
        DELIVERY_ENV: "spool",  # the stages spool their runs; the parent delivers them
        **parent.env,
    }
    command = dvc.dvc_command("repro", *(["--force"] if force else []))
    tail: list[str] = []
    status = "FAILED"
    with _executor(folder, env, warm, parent) as (executor_env, settle):

        def on_event(step: StepStatus) -> None:
            if step.state == "failed":  # DVC stops at a failed stage: nothing else starts
                settle()
            parent.deliverer.kick()

        try:
            with subprocess.Popen(
                command,
                cwd=folder,
                env=dvc.dvc_env({**env, **executor_env}),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
            ) as proc:
                assert proc.stdout is not None
                watcher = Watcher(parent.record.to_json(), proc.pid, env)  # if we are killed
                try:
                    with interrupted.dvc_stops_first(proc):  # Ctrl-C: DVC exits first
                        follow(proc.stdout, steps, tail, echo, on_event)
                        code = proc.wait()
                    settle()
                finally:
                    watcher.done()
            status = "FINISHED" if code == 0 else "FAILED"
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        finally:  # while the executor lives: the parent's last delivery goes through it
            result = _finish(folder, parent, steps, status, tail, echo)
    return result


@contextlib.contextmanager
def _executor(
    folder: Path, env: dict[str, str], warm: bool, parent: ParentRun
) -> Iterator[tuple[dict[str, str], Callable[[], None]]]:
    """The warm executor for this run (its variables for DVC, and what to call when no stage
    will start any more), stopped with it; the parent's deliveries go through its zygote
    (none: they are made in this process)."""
    if not warm:
        parent.deliver()
        yield {}, lambda: None
        return
    import os

    from nbops.executor.server import Executor

    executor = Executor(folder)
    try:
        variables = executor.start({**os.environ, **env})
        parent.deliver(executor.zygote)
        yield variables, executor.settle
    finally:
        executor.close()


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
    names = [s.name for s in steps]
    metrics = layout.read_metrics(folder, names, only=_measured(steps, status))
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


def _measured(steps: list[StepStatus], status: str) -> list[str]:
    """The steps whose ``metrics/*.json`` describe this run: all of them when it finished
    (unchanged steps' metrics are the pipeline's current state); when it failed or was
    stopped, only the steps that ran to the end in it (the files of the others are stale)."""
    if status == "FINISHED":
        return [s.name for s in steps]
    return [s.name for s in steps if s.state in ("ran", "restored") and s.end is not None]


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
