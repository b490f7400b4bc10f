"""Where things go in a promoted pipeline folder (``docs/pipeline-layout.md``): the names are
:mod:`nbops.pipeline_folder`'s (re-exported here), this module places the notebook's steps and
data among them and refuses what the generated files cannot hold. Every path is posix and
relative to the pipeline folder: the folder must run wherever it is copied.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from nbops.errors import NotebookError, UsageError
from nbops.notebook.parse import surrogate_escape
from nbops.notebook.plan import Plan
from nbops.pipeline_folder import (  # noqa: F401 (re-exported: promote names paths here)
    DVC_YAML,
    GITIGNORE,
    MANIFEST,
    PARAMS,
    README,
    RUNTIME_DIRS,
    STEPS_DIR,
    artifacts_dir,
    metrics_file,
    step_notebook,
)

# Characters that end a line in YAML, Markdown or a shell: a path holding one breaks the
# generated files that name it (dvc.yaml's comment, the README, the workflow).
_LINE_BREAKING = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")


def step_notebooks(plan: Plan) -> dict[str, str]:
    """Step name -> its notebook path, in run order."""
    return {step.name: step_notebook(i, step.name) for i, step in enumerate(plan.steps, start=1)}


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


def check_paths(notebook: str, source_rel: str, out_dir: Path) -> None:
    """Refuse paths the generated files cannot hold (a newline in the notebook's name)."""
    for what, text, fix in (
        ("the notebook's path", source_rel, "rename the notebook file"),
        ("the pipeline folder's path", str(out_dir), "pass --out a path without it"),
    ):
        bad = _LINE_BREAKING.search(text)
        if bad:
            raise NotebookError(
                f"{what} {text!r} holds the control character {bad.group()!r}: the generated "
                "dvc.yaml, README and workflow name that path and would break",
                fix=f"{fix} (letters, digits, -, _ and . are safe), then promote again",
                path=notebook,
            )


def check_encodable(notebook: str, files: dict[str, str]) -> None:
    """Every generated file must be writable as UTF-8 (a lone surrogate is not)."""
    for name, text in files.items():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            char = text[exc.start]
            raise NotebookError(
                f"{notebook}: the generated {name} would hold the lone surrogate "
                f"{char!r}, which no file can hold",
                fix=f"find the {surrogate_escape(char)} escape in the notebook's JSON (a cell, a "
                "tag or its metadata) and delete it, then promote again",
                path=notebook,
                file=name,
            ) from None


def prepare_out(out_dir: Path) -> Path | None:
    """Create the pipeline folder and make sure it can be written, before anything is written
    into it; returns the outermost folder this created (None if ``out_dir`` existed)."""
    fix = "pass --out a folder you can write (the default is pipelines/NAME next to the notebook)"
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} is a file, not a folder", fix=fix, path=str(out_dir))
    missing = [p for p in (out_dir, *out_dir.parents) if not p.exists()]
    created = missing[-1] if missing else None
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir, prefix=".nbops-probe-"):
            pass
    except OSError as exc:
        _remove_created(created)
        where = "" if exc.filename in (None, str(out_dir)) else f"{exc.filename}: "
        raise UsageError(
            f"cannot write the pipeline folder {out_dir}: {where}{exc.strerror or exc}",
            fix=fix,
            path=str(out_dir),
        ) from None
    return created


@contextlib.contextmanager
def undo_on_failure(out_dir: Path, created: Path | None) -> Iterator[None]:
    """The folders this promote created are removed again if writing fails (no half-made
    pipeline folder); an OSError becomes an error naming the file."""
    try:
        yield
    except BaseException as exc:
        _remove_created(created)
        if isinstance(exc, OSError):
            raise NotebookError(
                f"could not write {exc.filename or out_dir}: {exc.strerror or exc}",
                fix="free disk space or fix the folder's permissions, then promote again",
                path=str(out_dir),
            ) from None
        raise


def _remove_created(created: Path | None) -> None:
    if created is not None:
        shutil.rmtree(created, ignore_errors=True)


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
