"""The README's main job: run the example notebook end to end on the embedded default store.

A fresh workspace folder becomes its own nbops project (a ``pyproject.toml`` with an empty
``[tool.nbops]`` table), so the demo's SQLite store and artifacts stay inside it. The notebook
runs in a real kernel through papermill, exactly as a user's headless run would.
"""

from __future__ import annotations

import os
from pathlib import Path

from nbops.errors import NotebookError
from nbops.examples import WINE_TRACKED, copy_example

EXAMPLE = WINE_TRACKED


def run_demo(folder: str | Path = "demo") -> str:
    """Execute the tracked example notebook in ``folder`` and return the runs table."""
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
    return (
        f"executed {workspace / EXAMPLE} -> {output.name}\n{table}\n\n"
        f"Open the MLflow UI on the same store:\n"
        f"  mlflow ui --backend-store-uri {session.config.tracking_uri}"
    )
