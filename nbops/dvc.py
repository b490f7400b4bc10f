"""DVC through its command line, for promote and run alike: one place decides where a DVC
project goes (``dvc init``), how DVC is started, and how its failures read.

DVC runs as a subprocess (``python -m dvc``, the interpreter running nbops) rather than through
its Python API: the CLI is DVC's stable interface, and importing dvc would cost promote a
second. Analytics are off. A failure becomes an :class:`NbopsError` carrying DVC's own message.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from nbops.errors import NbopsError

DVC_DIR = ".dvc"
BASE_ENV = {"DVC_NO_ANALYTICS": "1"}


def dvc_command(*args: str) -> list[str]:
    """DVC of the interpreter running nbops, whatever is on PATH."""
    return [sys.executable, "-m", "dvc", *args]


def dvc_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for DVC and the stages it runs: ``nbops`` (and ``python``) of this
    interpreter first on PATH, so a stage's ``nbops step`` is the nbops running the pipeline."""
    env = {**os.environ, **BASE_ENV, **(extra or {})}
    bindir = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join([bindir, env.get("PATH", "")])
    env.setdefault("PYTHONUNBUFFERED", "1")  # steps' lines arrive in order with DVC's
    return env


def run_dvc(args: Sequence[str], cwd: Path) -> str:
    """Run ``dvc ARGS`` in ``cwd`` and return its output; raise NbopsError if it fails."""
    command = dvc_command(*args)
    env = dvc_env()
    shown = "dvc " + " ".join(args)
    try:
        done = subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, text=True, check=False
        )
    except OSError as exc:  # the interpreter itself could not start
        raise NbopsError(f"`{shown}` could not start: {exc}", fix="reinstall nbops") from None
    if done.returncode == 0:
        return done.stdout
    output = (done.stderr.strip() or done.stdout.strip()).splitlines()
    message = "\n".join(output[-15:]) or f"exit code {done.returncode}"
    if "No module named dvc" in message:
        fix = "install DVC in this environment: pip install dvc"
    else:
        fix = f"fix what DVC reports above, then try again (or run `{shown}` in {cwd})"
    raise NbopsError(f"`{shown}` failed in {cwd}:\n{message}", fix=fix, command=shown)


def dvc_root(folder: Path) -> Path | None:
    """The DVC project containing ``folder``, found as DVC does (up to a mount point)."""
    return _find_upwards(folder, lambda p: (p / DVC_DIR).is_dir())


def git_root(folder: Path) -> Path | None:
    """The git work tree containing ``folder`` (``.git`` is a folder, or a file in worktrees)."""
    return _find_upwards(folder, lambda p: (p / ".git").exists())


def _find_upwards(folder: Path, found: Callable[[Path], bool]) -> Path | None:
    current = folder.resolve()
    while True:
        if found(current):
            return current
        if os.path.ismount(current) or current.parent == current:
            return None
        current = current.parent


def ensure_project(folder: Path) -> list[str]:
    """``dvc init`` unless a DVC project holds ``folder``; returns what was done, as notes.

    Inside a git repository the project goes at the git root (DVC's usual setup: one project per
    repository); elsewhere ``--no-scm`` in the pipeline folder itself, so it runs as is.
    """
    if dvc_root(folder) is not None:
        return []
    repo = git_root(folder)
    if repo is not None:
        run_dvc(["init", "--quiet"], cwd=repo)
        return [f"ran `dvc init` in the git repository's root ({repo}); commit .dvc/ with git"]
    run_dvc(["init", "--no-scm", "--quiet"], cwd=folder)
    return ["ran `dvc init --no-scm` in the pipeline folder (it is not inside a git repository)"]


def add(folder: Path, paths: Sequence[str]) -> None:
    """``dvc add`` the given paths (relative to ``folder``) in one DVC call."""
    if paths:
        run_dvc(["add", "--quiet", *paths], cwd=folder)
