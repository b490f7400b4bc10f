"""``nbops export airflow DIR``: a promoted pipeline as an Airflow DAG file.

One task per ``dvc.yaml`` stage, in file order, and an edge wherever a stage depends on a path
another stage writes (its outs, metrics or plots): the order DVC itself derives. A stage whose
cmd is ``nbops step NOTEBOOK`` becomes a ``PapermillOperator`` (apache-airflow-providers-papermill)
that runs the notebook in the pipeline folder with that step's parameters from ``params.yaml``;
any other cmd (``nbops validate data``, a script) becomes a ``BashOperator`` running it there.

The DAG file imports only Airflow and the standard library, so the scheduler needs no nbops; the
kernel the steps run in does. Tracking is configured by the workers' environment
(``MLFLOW_TRACKING_URI``), as for ``nbops run``. Airflow runs every task on each DAG run: DVC's
skipping of unchanged stages stays with ``nbops run``.
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from nbops.errors import UsageError
from nbops.pipeline import layout
from nbops.promote.layout import is_inside

DEFAULT_OUT = "airflow_dag.py"
TEMPLATE = "airflow_dag.py.j2"
STEP_COMMANDS = (("nbops", "step"), ("python", "-m", "nbops.pipeline.step"))
_UNSAFE_ID = re.compile(r"[^\w.-]")  # Airflow's dag_id/task_id alphabet: letters, digits, _.-


@dataclass(frozen=True)
class Task:
    """One Airflow task: a stage of ``dvc.yaml``."""

    task_id: str
    stage: str
    command: str  # the stage's cmd, as DVC runs it
    notebook: str | None = None  # a step notebook (relative to the folder): a Papermill task
    parameters: dict[str, Any] = field(default_factory=dict)
    kernel: str | None = None
    upstream: tuple[str, ...] = ()

    @property
    def bash_command(self) -> str:
        """The command for BashOperator, which would load a command ending in .sh/.bash as a
        template file: a trailing space is Airflow's documented way out."""
        return self.command + " " if self.command.endswith((".sh", ".bash")) else self.command

    @property
    def report(self) -> str:
        """Where the executed notebook goes: ``reports/<notebook file>``, as ``nbops step``."""
        return f"{layout.REPORTS_DIR}/{PurePosixPath(self.notebook or '').name}"


@dataclass
class AirflowExport:
    """What was written: the DAG file, its id and tasks (in stage order)."""

    out: Path
    dag_id: str
    pipeline_dir: str
    tasks: list[Task]

    @property
    def edges(self) -> list[tuple[str, str]]:
        return [(up, task.task_id) for task in self.tasks for up in task.upstream]

    def text(self) -> str:
        kinds = {t.task_id: "papermill" if t.notebook else "bash" for t in self.tasks}
        lines = [f"wrote {self.out}: DAG {self.dag_id!r}, {len(self.tasks)} task(s)"]
        lines += [f"  {task} ({kind})" for task, kind in kinds.items()]
        lines += [f"  {up} >> {down}" for up, down in self.edges]
        lines.append(
            f"tasks run in {self.pipeline_dir}; copy the file into Airflow's dags folder and set "
            "MLFLOW_TRACKING_URI for the workers (README: Scaling out)"
        )
        return "\n".join(lines)


def export_airflow(
    folder: str | Path,
    out: str | Path | None = None,
    *,
    dag_id: str | None = None,
    pipeline_dir: str | None = None,
    kernel: str | None = None,
    schedule: str | None = None,
) -> AirflowExport:
    """Write the DAG of the pipeline in ``folder`` to ``out`` (default ``DIR/airflow_dag.py``).

    ``pipeline_dir`` is where the workers see the folder (default: its absolute path here);
    ``kernel`` overrides the step notebooks' kernelspec (it must import nbops);
    ``schedule`` is Airflow's (a cron expression or preset; default: triggered by hand).
    """
    from nbops.promote.templates import environment, render

    path = Path(folder).resolve()
    if not (path / layout.DVC_YAML).is_file():
        raise UsageError(
            f"{path} has no {layout.DVC_YAML}: it is not a promoted pipeline",
            fix="run `nbops promote NOTEBOOK` first, or pass the pipeline folder",
        )
    tasks = read_tasks(path, kernel)
    name = dag_id or _safe_id(layout.pipeline_name(path))
    if not name or _UNSAFE_ID.search(name):
        raise UsageError(f"{name!r} cannot be a DAG id", fix="use letters, digits, _ . or -")
    target = Path(out) if out is not None else path / DEFAULT_OUT
    where = pipeline_dir or str(path)
    text = render(
        environment(),
        TEMPLATE,
        dag_id=name,
        pipeline_dir=where,
        schedule=schedule,
        tasks=tasks,
        parameters={t.task_id: _literal(t.parameters) for t in tasks},
        edges=[(up, t.task_id) for t in tasks for up in t.upstream],
    )
    compile(text, str(target), "exec")  # a template bug must not reach the scheduler
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return AirflowExport(target.resolve(), name, where, tasks)


def read_tasks(folder: Path, kernel: str | None = None) -> list[Task]:
    """The pipeline's stages as tasks, with their upstream tasks and step parameters."""
    stages = _stages(folder)
    ids = _task_ids(list(stages))
    writes = {name: _paths(stage, ("outs", "metrics", "plots")) for name, stage in stages.items()}
    params = layout.read_params(folder)
    tasks = []
    for name, stage in stages.items():
        deps = _paths(stage, ("deps",))
        upstream = tuple(
            ids[other]
            for other in stages
            if other != name and any(_overlap(d, w) for d in deps for w in writes[other])
        )
        tasks.append(_task(folder, name, ids[name], stage, params, kernel, upstream))
    return tasks


def _task(
    folder: Path,
    name: str,
    task_id: str,
    stage: dict[str, Any],
    params: dict[str, Any],
    kernel: str | None,
    upstream: tuple[str, ...],
) -> Task:
    from nbops.pipeline.step import DEFAULT_KERNEL, step_parameters

    command = _command(name, stage)
    notebook = step_notebook(command)
    if notebook is None:
        return Task(task_id, name, command, upstream=upstream)
    nb = layout.read_notebook(folder / notebook)
    spec = ((nb.get("metadata") or {}).get("kernelspec") or {}).get("name")
    return Task(
        task_id,
        name,
        command,
        notebook=notebook,
        parameters=step_parameters(nb, params, name),
        kernel=kernel or spec or DEFAULT_KERNEL,
        upstream=upstream,
    )


def step_notebook(command: str) -> str | None:
    """The notebook of ``nbops step NOTEBOOK`` (or its ``python -m`` form), else None."""
    try:
        argv = shlex.split(command)
    except ValueError:
        return None
    for prefix in STEP_COMMANDS:
        if tuple(argv[: len(prefix)]) == prefix and len(argv) == len(prefix) + 1:
            return PurePosixPath(argv[-1]).as_posix()
    return None


def _stages(folder: Path) -> dict[str, dict[str, Any]]:
    data = layout.read_yaml(folder / layout.DVC_YAML) or {}
    stages = data.get("stages") if isinstance(data, dict) else None
    if not isinstance(stages, dict) or not stages:
        raise UsageError(
            f"{folder / layout.DVC_YAML} has no stages",
            fix="promote the notebook again (`nbops promote NOTEBOOK --force`)",
        )
    for name, stage in stages.items():
        if not isinstance(stage, dict) or "cmd" not in stage or "wdir" in stage:
            raise UsageError(
                f"stage {name!r} of {folder / layout.DVC_YAML} is not a plain stage (a cmd run "
                "in the pipeline folder): foreach/matrix stages and wdir are not exported",
                fix="write it as plain stages, or add its task to the DAG by hand",
                stage=name,
            )
    return stages


def _command(name: str, stage: dict[str, Any]) -> str:
    """DVC runs a list of commands one after the other, stopping at the first failure."""
    cmd = stage["cmd"]
    commands = [str(c) for c in cmd] if isinstance(cmd, list) else [str(cmd)]
    if not any(c.strip() for c in commands):
        raise UsageError(f"stage {name!r} has an empty cmd", fix="give it a command", stage=name)
    return " && ".join(commands)


def _paths(stage: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    """Paths of ``deps``/``outs``/``metrics``/``plots`` (each a string or ``{path: options}``)."""
    found: list[str] = []
    for key in keys:
        for entry in stage.get(key) or []:
            items = entry.keys() if isinstance(entry, dict) else [entry]
            found += [PurePosixPath(str(item)).as_posix() for item in items]
    return found


def _overlap(a: str, b: str) -> bool:
    """One path is the other or lies inside it (a dep on a file of a stage's out folder)."""
    return is_inside(a, b) or is_inside(b, a)


def _task_ids(stages: list[str]) -> dict[str, str]:
    """Stage names as Airflow task ids, unique (promote's names are already valid)."""
    ids: dict[str, str] = {}
    for stage in stages:
        base = _safe_id(stage) or "stage"
        candidate, n = base, 2
        while candidate in ids.values():
            candidate, n = f"{base}_{n}", n + 1
        ids[stage] = candidate
    return ids


def _safe_id(name: str) -> str:
    return _UNSAFE_ID.sub("_", name.strip())[:200]


def _literal(value: Any) -> str:
    """A Python literal of a params.yaml value (``repr`` writes ``nan``/``inf`` as bare names)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    if isinstance(value, dict):
        items = ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items())
        return "{" + items + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return repr(value)
