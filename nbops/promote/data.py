"""The files the notebook reads, copied into the pipeline folder at the same relative paths.

Steps run with the pipeline folder as their working directory and read files by the paths
written in the notebook, so a copy at the same relative path is what makes the folder run
anywhere (and lets DVC track the data with ``dvc add``). A path that leaves the notebook's
folder (``../data.csv``) cannot be reproduced inside the pipeline folder: that is refused with
the fix rather than producing a pipeline that fails when it runs. So is a path that only reads
as inside: every path, and every file under a copied folder, is resolved first, and a symlink
that leads outside the project (``data/etc -> /etc``) is refused naming the link
(:mod:`nbops.project_paths`): nothing from outside is copied, hashed or ``dvc add``-ed.
"""

from __future__ import annotations

import filecmp
import shutil
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from nbops import dvc
from nbops.errors import NotebookError, UsageError
from nbops.notebook.plan import Plan
from nbops.project_paths import Escape, escape, files_under
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


def check_sources(plan: Plan, notebook_dir: Path, paths: list[str]) -> None:
    """Refuse, before anything is written, a data path that resolves outside the project
    (through a symlink on the path or anywhere in a folder's tree)."""
    root = project_root(notebook_dir)
    for rel in paths:
        text = PurePosixPath(rel)
        if text.is_absolute() or ".." in text.parts:
            continue  # outside by its text: data_to_copy refuses it, with its own fix
        step = next((s.name for s in plan.steps if rel in s.files), None)
        problem = next(_escapes(notebook_dir / rel, root), None)
        if problem is not None:
            raise _escape_error(plan.notebook, rel, problem, step)
        special = _special_file(notebook_dir / rel, root)
        if special is not None:
            raise NotebookError(
                f"{plan.notebook}: step {step!r} reads {rel}, and {special} is not a regular "
                "file (a FIFO, socket or device): promote cannot copy it into the pipeline",
                fix="read a regular file (save the stream to a file first), then promote again",
                path=plan.notebook,
                step=step,
                file=rel,
            )


def check_targets(out_dir: Path, paths: list[str]) -> None:
    """Refuse to write through a symlink in the pipeline folder that leads out of it."""
    for rel in paths:
        problem = escape(out_dir / rel, out_dir)
        if problem is not None:
            raise NotebookError(
                f"{problem.describe(rel)}: promote would write {rel} outside the pipeline folder "
                f"{out_dir}",
                fix=f"remove the symlink {problem.link} from the pipeline folder and promote again",
                path=str(out_dir),
                file=rel,
                link=str(problem.link),
            )


def check_out(out: Path, notebook_dir: Path) -> None:
    """Refuse an output folder that reads as inside the project but leads out of it through
    a symlink (``--out data/etc/x`` with ``data/etc -> /etc``): promote would write there."""
    problem = escape(out, project_root(notebook_dir))
    if problem is not None and problem.link != problem.path:
        raise UsageError(
            f"--out {out}: {problem.describe(str(out))}; promote writes only inside the project",
            fix="pass --out a folder inside the project (the default is pipelines/NAME next to "
            "the notebook)",
            path=str(out),
            link=str(problem.link),
        )


def project_root(notebook_dir: Path) -> Path:
    """The project a notebook's data must stay in (see :func:`nbops.config.find_project_root`)."""
    from nbops.config import find_project_root

    return find_project_root(notebook_dir.resolve())


def _special_file(path: Path, root: Path) -> str | None:
    """The first path (``path`` or a file under it) that exists but is not a regular file."""
    if path.is_dir():
        for item in files_under(path, root):
            if not isinstance(item, Escape) and not item[1].is_file():
                return str(path / item[0])
        return None
    return str(path) if path.exists() and not path.is_file() else None


def _escapes(path: Path, root: Path) -> Iterator[Escape]:
    problem = escape(path, root)
    if problem is not None:
        yield problem
    elif path.is_dir():
        yield from (item for item in files_under(path, root) if isinstance(item, Escape))


def _escape_error(notebook: str, rel: str, problem: Escape, step: str | None) -> NotebookError:
    reader = f"step {step!r} reads" if step else "the pipeline reads"
    link = problem.link
    return NotebookError(
        f"{notebook}: {reader} {rel}, but {problem.describe(str(link))}: promote does not copy, "
        "hash or `dvc add` files from outside the project",
        fix=f"replace the symlink with the data itself (`rm {link} && cp -r {problem.target} "
        f"{link}`), or move the data into the project and read it from there",
        path=notebook,
        step=step,
        file=rel,
        link=str(link),
        target=str(problem.target),
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
    root = project_root(notebook_dir)
    changed = []
    for rel in paths:
        source, target = notebook_dir / rel, out_dir / rel
        problem = next(_escapes(source, root), None)
        if problem is not None:  # check_sources ran before; the tree may have changed since
            raise _escape_error(str(notebook_dir), rel, problem, None)
        if source.is_dir():
            files = [i for i in files_under(source, root) if not isinstance(i, Escape)]
            files = [(inner, real) for inner, real in files if real.is_file()]  # type: ignore[misc]
            copied = [_copy_file(real, target / inner) for inner, real in files]  # type: ignore[misc]
            if any(copied):
                changed.append(rel)
        elif not source.is_file():
            raise NotebookError(
                f"{source} is not a regular file: promote cannot copy it",
                fix="read a regular file, then promote again",
                file=rel,
            )
        elif _copy_file(source.resolve(), target):
            changed.append(rel)
    return changed


def _copy_file(source: Path, target: Path) -> bool:
    """Copy unless the target already holds the same bytes (keeps DVC's hash state valid)."""
    if target.is_file() and filecmp.cmp(source, target, shallow=False):
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink():
        target.unlink()  # copy2 would write through a link
    shutil.copy2(source, target)
    return True
