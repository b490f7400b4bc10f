"""Where things go in a promoted pipeline folder (``docs/pipeline-layout.md``), in one place.

The emitter, the manifest check and the data copier all name paths through these functions so
the folder's layout is stated once. Every path is posix and relative to the pipeline folder:
the folder must run wherever it is copied.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from nbops.notebook.plan import Plan, Step

README = "README.md"
PARAMS = "params.yaml"
DVC_YAML = "dvc.yaml"
GITIGNORE = ".gitignore"
MANIFEST = ".nbops-promote.json"
STEPS_DIR = "steps"
# Folders the steps write at run time: data copied there would collide with step outputs.
RUNTIME_DIRS = ("artifacts", "metrics", "reports")


def step_notebook(position: int, step: Step) -> str:
    """``steps/02_train.ipynb``: numbered in run order (1-based) so a listing reads as the DAG."""
    return f"{STEPS_DIR}/{position:02d}_{step.name}.ipynb"


def artifacts_dir(step: str) -> str:
    return f"artifacts/{step}"


def metrics_file(step: str) -> str:
    return f"metrics/{step}.json"


def step_notebooks(plan: Plan) -> dict[str, str]:
    """Step name -> its notebook path, in run order."""
    return {step.name: step_notebook(i, step) for i, step in enumerate(plan.steps, start=1)}


def default_out(notebook: Path, plan: Plan) -> Path:
    """``pipelines/<name>/`` next to the notebook; the slugified name keeps paths shell-safe."""
    return notebook.parent / "pipelines" / plan.name


def relative_path(target: Path, start: Path) -> str:
    """``target`` as seen from ``start`` (posix), or its bare name when no relative path exists.

    Generated files name the source notebook this way so they hold no absolute path.
    """
    try:
        return Path(os.path.relpath(target.resolve(), start.resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return target.name


def is_inside(relative: str, folder: str) -> bool:
    """Whether the relative posix path ``relative`` is ``folder`` or lies under it."""
    parts = PurePosixPath(relative).parts
    folder_parts = PurePosixPath(folder).parts
    return parts[: len(folder_parts)] == folder_parts


def outermost(paths: list[str]) -> list[str]:
    """``paths`` without those inside another of them: the targets of one ``dvc add``.

    A copied folder carries the files under it, and DVC refuses overlapping targets.
    """
    return [p for p in paths if not any(q != p and is_inside(p, q) for q in paths)]


def dvc_ignored(paths: list[str]) -> list[str]:
    """The entries ``dvc add`` writes into the pipeline folder's ``.gitignore`` for these data
    paths: one ``/name`` per tracked path at the folder's top level (deeper ones go into their
    own folder's ``.gitignore``), escaped as DVC escapes them."""
    entries = []
    for path in outermost(list(dict.fromkeys(paths))):
        parts = PurePosixPath(path).parts
        if len(parts) == 1 and parts[0] not in (".", ".."):
            entries.append("/" + "".join(f"\\{c}" if c in "\\[]!*#?" else c for c in parts[0]))
    return entries
