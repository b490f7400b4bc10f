"""Where the work ran: git state, package versions, user and host (the run's context).

Which notebook ran is :mod:`nbops.capture.discovery`'s job. Git and package lookups run
subprocesses or scan installed distributions: the session calls :func:`build_context` on the
writer thread, never on the cell's. Environment variables are never recorded.
"""

from __future__ import annotations

import getpass
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Iterable, Mapping
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from types import BuiltinFunctionType, FunctionType, MethodType, ModuleType
from typing import TYPE_CHECKING

from nbops.record import Context

if TYPE_CHECKING:
    from nbops.distributions import Modules

GIT_TIMEOUT = 5.0  # seconds per git subprocess; a huge repo's status can be slow
_IPYTHON_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit"})
_NOT_PACKAGES = frozenset({"builtins", "__main__", "__mp_main__"})


def git_state(root: Path) -> tuple[str | None, bool | None, str | None]:
    """``(commit sha, dirty, branch)`` of the repo holding ``root``; None where git cannot say.

    Dirty ignores untracked files: a new scratch file should not mark every run dirty. The
    branch is None on a detached HEAD; the commit is None before the first commit.
    """
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    if status is None:  # not a work tree, no git, or git refused (e.g. dubious ownership)
        return None, None, None
    commit = _git(root, "rev-parse", "--verify", "-q", "HEAD")
    branch = _git(root, "branch", "--show-current")
    return commit or None, bool(status), branch or None


def _git(root: Path, *args: str) -> str | None:
    """Run one git command; its stripped stdout, or None on any failure."""
    # GIT_OPTIONAL_LOCKS=0: `status` must not take index.lock under the user's own git use.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):  # no git, no such dir, timeout
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def package_versions(modules: Iterable[str]) -> dict[str, str]:
    """Map top-level module names to ``{distribution: version}`` (``sklearn`` -> scikit-learn).

    The standard library and modules no installed distribution provides (local code) are
    skipped: they have no version to pin.
    """
    found = _installed()
    versions: dict[str, str] = {}
    for module in modules:
        if module in sys.stdlib_module_names or module in _NOT_PACKAGES:
            continue
        for dist in found.get(module, ()):
            version = _version(dist)
            if version is not None:
                versions[dist] = version
    return dict(sorted(versions.items(), key=lambda item: item[0].lower()))


@lru_cache(maxsize=1)
def _installed() -> Modules:
    """Once per process, as before the disk cache: a kernel that ``%pip install``s pins what
    it had when it first looked."""
    from nbops.distributions import installed

    return installed()


@lru_cache(maxsize=512)
def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except Exception:  # PackageNotFoundError, broken metadata
        return None


def imported_top_level(user_ns: Mapping[str, object]) -> set[str]:
    """Top-level modules the namespace uses: imported modules and the modules defining its
    functions, classes and instances (``from sklearn.ensemble import X`` -> ``sklearn``).

    Only type-level attributes are read, so no user ``__getattr__`` runs; a few hundred names
    take well under a millisecond.
    """
    found: set[str] = set()
    for name, value in list(user_ns.items()):
        if name.startswith("_") or name in _IPYTHON_NAMES:
            continue
        module = _defining_module(value)
        if isinstance(module, str) and module:
            found.add(module.partition(".")[0])
    return found - _NOT_PACKAGES


def _defining_module(value: object) -> object:
    if isinstance(value, ModuleType):
        return value.__name__
    if isinstance(value, type | FunctionType | BuiltinFunctionType):
        return value.__module__
    if isinstance(value, MethodType):
        return getattr(value.__func__, "__module__", None)
    return type(value).__module__


def build_context(
    root: Path, user_ns_modules: set[str], notebook: tuple[str | None, str]
) -> Context:
    """Gather the run's :class:`Context`. Runs git subprocesses: call it off the cell's thread.

    Environment variables are deliberately not recorded: they routinely hold secrets.
    """
    commit, dirty, branch = git_state(root)
    return Context(
        notebook=notebook[0],
        notebook_source=notebook[1],
        project_root=str(root),
        git_commit=commit,
        git_dirty=dirty,
        git_branch=branch,
        python=platform.python_version(),
        packages=package_versions(user_ns_modules),
        user=_user(),
        host=_host(),
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no USER/LOGNAME and no passwd entry (some containers)
        return ""


def _host() -> str:
    try:
        return socket.gethostname()
    except OSError:
        return ""
