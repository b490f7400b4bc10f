"""The README's main job: Level 0 to Level 1 end to end on the embedded default store.

A fresh workspace folder becomes its own nbops project (a ``pyproject.toml`` with an empty
``[tool.nbops]`` table), so the demo's SQLite store, DVC project and artifacts stay inside it.
It tracks the example notebook in a real kernel through papermill (as a user's headless run
would), promotes the tagged wine notebook into a pipeline, runs it with its gates (the first
model passes and becomes the champion), serves the champion and monitors what it answered, and
ends with the ``nbops level`` checklist.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from nbops.errors import NotebookError
from nbops.examples import WINE_TRACKED, copy_example

if TYPE_CHECKING:
    from nbops.session import Session

EXAMPLE = WINE_TRACKED


def run_demo(folder: str | Path = "demo", echo: Callable[[str], None] = print) -> str:
    """Track the example notebook, promote and run the pipeline in ``folder``; progress goes
    to ``echo``; returns the runs table, the registry and the level checklist."""
    import papermill

    from nbops import commands
    from nbops.config import load_config
    from nbops.session import Session

    workspace = Path(folder).resolve()
    workspace.mkdir(parents=True, exist_ok=True)
    project = workspace / "pyproject.toml"
    if not project.exists():
        project.write_text('[project]\nname = "nbops-demo"\nversion = "0"\n\n[tool.nbops]\n')
    copy_example(EXAMPLE, workspace)
    output = workspace / f"executed_{EXAMPLE}"
    previous = os.environ.get("NBOPS_NOTEBOOK")
    os.environ["NBOPS_NOTEBOOK"] = str(workspace / EXAMPLE)  # no server to ask: tell the kernel
    try:
        papermill.execute_notebook(
            str(workspace / EXAMPLE),
            str(output),
            cwd=str(workspace),
            kernel_name="python3",
            progress_bar=False,
        )
    except papermill.PapermillExecutionError as exc:
        raise NotebookError(
            f"the demo notebook failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}",
            fix=f"open {output} to see the full traceback",
        ) from None
    finally:
        if previous is None:
            os.environ.pop("NBOPS_NOTEBOOK", None)
        else:
            os.environ["NBOPS_NOTEBOOK"] = previous
    session = Session(load_config(workspace))
    table = commands.runs(session, experiment=Path(EXAMPLE).stem)
    echo(f"1. tracked {workspace / EXAMPLE} -> {output.name}\n{table}\n")
    pipeline = _pipeline(workspace, session, echo)
    _serve(workspace / "pipelines" / pipeline, echo)
    model = commands.model_list(session, pipeline)
    level = commands.level(session, str(workspace), "text")
    return (
        f"4. registered model {pipeline!r}:\n{model}\n\n{level}\n\n"
        f"Open the MLflow UI on the same store:\n"
        f"  mlflow ui --backend-store-uri {session.config.tracking_uri}"
    )


def _serve(folder: Path, echo: Callable[[str], None]) -> None:
    """Serve the champion (``nbops serve``), send it the rows its gate scored, monitor what
    it answered (``nbops monitor``), stop it."""
    from nbops.monitor import monitor
    from nbops.serve import reference, serve

    server = serve(folder, poll=1.0)
    try:
        version = int(server.status()["version"])
        found = reference.cached(server.target, version)
        if found is None or found.holdout is None:
            raise NotebookError(f"version {version} has no gate holdout to send", fix="re-run")
        rows, _ = reference.holdout_frame(found)
        answer = server.send(rows)
        echo(f"3. {server!r}: {len(answer.predictions)} predictions (request {answer.request_id})")
        echo(monitor(folder).text())
    finally:
        server.stop()


def _pipeline(workspace: Path, session: Session, echo: Callable[[str], None]) -> str:
    """Promote the tagged wine notebook and run its pipeline; the registered model's name."""
    from nbops.examples import write_wine_project
    from nbops.pipeline.run import run_pipeline
    from nbops.promote import promote

    if not (workspace / ".git").exists():  # its own repository: DVC and the workflow go here,
        subprocess.run(["git", "init", "-q"], cwd=workspace, check=True)  # not in an enclosing one
    notebook = write_wine_project(workspace)
    promoted = promote(notebook)
    echo(f"2. {promoted.text()}")
    result = run_pipeline(promoted.out_dir, session=session, echo=echo)
    if result.status != "FINISHED":
        raise NotebookError(
            f"the demo pipeline failed: {result.error}",
            fix=f"see the executed step notebooks in {promoted.out_dir / 'reports'}",
        )
    return promoted.plan.name
