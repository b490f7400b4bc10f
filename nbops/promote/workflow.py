"""The GitHub Actions workflow that retrains a promoted pipeline (``github_workflow.yml.j2``).

It runs ``nbops retrain`` weekly (cron, UTC), on manual dispatch (a ``force`` input adds
``--force``) and on pushes that touch the pipeline folder or its DVC-tracked data. Every path in
it is relative to the repository root, because GitHub evaluates ``paths`` filters and runs the
job from there. The folder reaches the shell through an environment variable and data file
names are shell-quoted, so an odd name cannot inject shell code.
"""

from __future__ import annotations

import re
import shlex
from pathlib import PurePosixPath

from nbops.errors import UsageError
from nbops.promote.layout import outermost
from nbops.promote.templates import environment, render

TEMPLATE = "github_workflow.yml.j2"
DEFAULT_SCHEDULE = "0 6 * * 1"  # Mondays 06:00 UTC
WORKFLOWS_DIR = ".github/workflows"
# GitHub filter patterns treat these as wildcards; a backslash makes them literal.
_GLOB_SPECIAL = re.compile(r"([\\*?+\[\]!])")
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,\-]+$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def workflow_path(plan_name: str) -> str:
    """Where the workflow goes, from the repository root: ``.github/workflows/<name>.yml``."""
    _check_name(plan_name)
    return f"{WORKFLOWS_DIR}/{plan_name}.yml"


def render_workflow(
    plan_name: str, pipeline_rel: str, data_files: list[str], schedule: str = DEFAULT_SCHEDULE
) -> str:
    """The workflow's text for pipeline ``plan_name`` in folder ``pipeline_rel``.

    ``pipeline_rel`` is the pipeline folder relative to the repository root (POSIX, ``.`` for
    the root itself); ``data_files`` are the DVC-tracked data paths relative to the pipeline
    folder as the plan names them (``data/wine.csv``; a ``.dvc`` suffix is added unless given;
    files inside another listed folder are covered by that folder's ``.dvc`` file).
    """
    _check_name(plan_name)
    _check_schedule(schedule)
    folder = _relative(pipeline_rel, "the pipeline folder", "relative to the repository root")
    dvc_files = [_dvc_file(f) for f in outermost(data_files)]
    prefix = "" if folder == "." else f"{folder}/"
    paths = [f"{_glob_literal(prefix)}**"]
    paths += [_glob_literal(prefix + f) for f in dvc_files]
    paths.append(_glob_literal(workflow_path(plan_name)))
    return render(
        environment(),
        TEMPLATE,
        name=plan_name,
        folder=folder,
        schedule=schedule,
        paths=list(dict.fromkeys(paths)),
        pull_targets=" ".join(shlex.quote(t) for t in ["dvc.yaml", *dvc_files]),
        data_paths=" ".join(shlex.quote(t.removesuffix(".dvc")) for t in dvc_files),
        reports=f"{prefix}reports/",
    )


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise UsageError(
            f"pipeline name {name!r} cannot name a workflow file",
            fix="use letters, digits, '.', '_' or '-' (promote slugifies the notebook's stem)",
        )


def _check_schedule(schedule: str) -> None:
    fields = schedule.split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        raise UsageError(
            f"schedule {schedule!r} is not a cron expression of 5 fields",
            fix="write minute hour day-of-month month day-of-week in UTC, e.g. '0 6 * * 1'",
        )


def _relative(path: str, what: str, where: str) -> str:
    """``path`` normalized to a relative POSIX path that stays inside its base, or an error."""
    if "\\" in path or "\n" in path or "\r" in path:
        raise UsageError(
            f"{what} {path!r} is not a POSIX path", fix=f"give it with '/' separators, {where}"
        )
    pure = PurePosixPath(path or ".")
    if pure.is_absolute() or ".." in pure.parts:
        raise UsageError(
            f"{what} {path!r} is not inside the repository", fix=f"give it {where}, without '..'"
        )
    return pure.as_posix()


def _dvc_file(data_file: str) -> str:
    """The ``.dvc`` file ``dvc add`` wrote for ``data_file`` (a file or a folder)."""
    rel = _relative(data_file, "data file", "relative to the pipeline folder")
    if rel == ".":
        raise UsageError("a data file path is empty", fix="name the file the pipeline reads")
    return rel if rel.endswith(".dvc") else f"{rel}.dvc"


def _glob_literal(path: str) -> str:
    """``path`` as a GitHub filter pattern matching exactly that path."""
    return _GLOB_SPECIAL.sub(r"\\\1", path)
