"""The files the notebook reads, copied into the pipeline folder at the same relative paths.

Steps run with the pipeline folder as their working directory and read files by the paths
written in the notebook, so a copy at the same relative path is what makes the folder run
anywhere (and lets DVC track the data with ``dvc add``). A path that leaves the notebook's
folder (``../data.csv``) cannot be reproduced inside the pipeline folder: that is refused with
the fix rather than producing a pipeline that fails when it runs.
"""

from __future__ import annotations

import filecmp
import shutil
from pathlib import Path, PurePosixPath

from nbops import dvc
from nbops.errors import NotebookError
from nbops.notebook.plan import Plan
from nbops.promote.layout import MANIFEST, RUNTIME_DIRS, STEPS_DIR, is_inside, outermost


def data_to_copy(plan: Plan, generated: set[str]) -> list[str]:
    """The data paths to copy and track, each once (:func:`~layout.outermost`); refuses paths
    the pipeline folder cannot hold."""
    paths: list[str] = []
    for step in plan.steps:
        for rel in step.files:
            _check(plan, step.name, rel, generated)
            if rel not in paths:
                paths.append(rel)
    return outermost(paths)


def _check(plan: Plan, step: str, rel: str, generated: set[str]) -> None:
    path = PurePosixPath(rel)
    if path.is_absolute() or ".." in path.parts:
        raise NotebookError(
            f"{plan.notebook}: step {step!r} reads {rel}, which is outside the notebook's "
            "folder, so the pipeline folder cannot carry a copy of it",
            fix="move the file into the notebook's folder (e.g. data/) and read it by that "
            "relative path, then promote again",
            path=plan.notebook,
            step=step,
            file=rel,
        )
    reserved = [STEPS_DIR, *RUNTIME_DIRS]
    if rel in generated or rel == MANIFEST or any(is_inside(rel, d) for d in reserved):
        raise NotebookError(
            f"{plan.notebook}: step {step!r} reads {rel}, a path the pipeline folder uses for "
            "its own files",
            fix="move the file to another folder (e.g. data/) and read it from there",
            path=plan.notebook,
            step=step,
            file=rel,
        )


def track_data(notebook_dir: Path, out_dir: Path, paths: list[str]) -> list[str]:
    """Copy the data files in and ``dvc add`` those that changed or are not tracked yet.

    Returns the paths given to ``dvc add`` (none when every copy is current: promoting an
    unchanged notebook again costs no DVC call).
    """
    copied = copy_data(notebook_dir, out_dir, paths)
    added = [p for p in paths if p in copied or not (out_dir / f"{p}.dvc").exists()]
    dvc.add(out_dir, added)
    return added


def copy_data(notebook_dir: Path, out_dir: Path, paths: list[str]) -> list[str]:
    """Copy each path from ``notebook_dir`` to ``out_dir``; returns the paths that changed."""
    changed = []
    for rel in paths:
        source, target = notebook_dir / rel, out_dir / rel
        copy = _copy_tree if source.is_dir() else _copy_file
        if copy(source, target):
            changed.append(rel)
    return changed


def _copy_file(source: Path, target: Path) -> bool:
    """Copy unless the target already holds the same bytes (keeps DVC's hash state valid)."""
    if target.is_file() and filecmp.cmp(source, target, shallow=False):
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)
    return True


def _copy_tree(source: Path, target: Path) -> bool:
    copied = False
    for path in sorted(source.rglob("*")):
        if path.is_file():
            copied = _copy_file(path, target / path.relative_to(source)) or copied
    return copied
