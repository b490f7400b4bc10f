"""Where the work ran: notebook path, git state, packages, user and host.

The notebook path is found by the first of these that answers (``find_notebook``):

1. ``argument``: ``%%track --notebook PATH``;
2. ``env`` / ``config``: the ``NBOPS_NOTEBOOK`` variable, then ``[tool.nbops] notebook``;
3. ``vscode``: ``__vsc_ipynb_file__``, which VS Code puts in the kernel's namespace;
4. ``jupyter-session-name``: ``JPY_SESSION_NAME``, which jupyter_server (2.x) sets to the
   notebook's absolute path when it starts a kernel for a session (JupyterLab, Notebook 7).
   It is fixed at kernel start, so it goes stale when the notebook is renamed: it is only
   used while that file still exists;
5. ``sessions-api``: ask each running Jupyter server (its ``jpserver-*.json`` file in the
   Jupyter runtime dir) for ``api/sessions`` and match this kernel's id, taken from the
   kernel's connection file; the path is resolved against the server's ``root_dir``;
6. ``unknown``: none of the above (plain Python, papermill/nbclient without ``--notebook``).

A failing step (no server, timeout, bad JSON) silently moves on to the next: the notebook
path is context, never a reason to fail a cell. Relative paths are resolved against the
working directory. Environment variables are read to find things, never recorded.
"""

from __future__ import annotations

import getpass
import json
import os
import platform
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from types import BuiltinFunctionType, FunctionType, MethodType, ModuleType
from typing import Any

from nbops.record import Context

GIT_TIMEOUT = 5.0  # seconds per git subprocess; a huge repo's status can be slow
_IPYTHON_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit"})
_NOT_PACKAGES = frozenset({"builtins", "__main__", "__mp_main__"})
_KERNEL_FILE = re.compile(r"kernel-(.+)\.json$")


def find_notebook(
    user_ns: Mapping[str, object],
    explicit: str | None = None,
    config_notebook: str = "",
    env: Mapping[str, str] | None = None,
    timeout: float = 0.5,
) -> tuple[str | None, str]:
    """Return ``(absolute notebook path or None, source)``; see the module docstring."""
    env = os.environ if env is None else env
    cheap = _from_arguments(user_ns, explicit, config_notebook, env)
    if cheap is not None:
        return cheap
    path = _from_sessions_api(timeout)
    if path is not None:
        return path, "sessions-api"
    return None, "unknown"


def _from_arguments(
    user_ns: Mapping[str, object],
    explicit: str | None,
    config_notebook: str,
    env: Mapping[str, str],
) -> tuple[str, str] | None:
    """Steps 1-4: lookups in memory (and one ``stat``), cheap enough for the cell's thread."""
    for value, source in (
        (explicit, "argument"),
        (env.get("NBOPS_NOTEBOOK"), "env"),
        (config_notebook, "config"),
        (user_ns.get("__vsc_ipynb_file__"), "vscode"),
    ):
        if isinstance(value, str) and value:
            return _absolute(value), source
    session_name = env.get("JPY_SESSION_NAME")
    if session_name and os.path.isfile(_absolute(session_name)):
        return _absolute(session_name), "jupyter-session-name"
    return None


def _absolute(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


def _from_sessions_api(timeout: float) -> str | None:
    """Step 5: ask the running Jupyter servers which notebook this kernel belongs to."""
    kernel_id = _kernel_id()
    if kernel_id is None:
        return None
    deadline = time.monotonic() + timeout
    for info in _running_servers():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        path = _query_server(info, kernel_id, remaining)
        if path is not None:
            return path
    return None


def _kernel_id() -> str | None:
    """This kernel's id, from its connection file ``kernel-<id>.json``; None outside a kernel.

    A plain Python never imports ipykernel, so neither do we: only an already loaded
    ipykernel can tell us the connection file.
    """
    if "ipykernel" not in sys.modules:
        return None
    try:
        from ipykernel.connect import get_connection_file

        match = _KERNEL_FILE.search(os.path.basename(get_connection_file()))
    except Exception:  # not in a running kernel, or an ipykernel we do not know
        return None
    return match.group(1) if match else None


def _running_servers() -> Iterator[dict[str, Any]]:
    """The info dicts of live Jupyter servers, read from ``jpserver-*.json`` in the runtime dir.

    Same files as ``jupyter_server.serverapp.list_running_servers``, read directly: importing
    ``jupyter_server.serverapp`` costs over a second in a kernel, and that function deletes
    the files of servers it believes dead.
    """
    try:
        from jupyter_core.paths import jupyter_runtime_dir

        files = sorted(Path(jupyter_runtime_dir()).glob("jpserver-*.json"))
    except Exception:
        return
    for file in files:
        try:
            info = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(info, dict) and _alive(info.get("pid")):
            yield info


def _alive(pid: object) -> bool:
    if not isinstance(pid, int):
        return False
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: alive, owned by someone else
        return True
    return True


def _query_server(info: Mapping[str, Any], kernel_id: str, timeout: float) -> str | None:
    """GET ``<url>api/sessions`` and return the absolute path of ``kernel_id``'s notebook."""
    url, root = info.get("url"), info.get("root_dir") or info.get("notebook_dir")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")) or not root:
        return None
    request = urllib.request.Request(url.rstrip("/") + "/api/sessions")
    if info.get("token"):
        request.add_header("Authorization", f"token {info['token']}")
    # No proxies: the token must not leave the machine, and localhost needs none.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as response:
            sessions = json.loads(response.read())
    except Exception:  # refused, timeout, 403 (password), bad JSON...
        return None
    for session in sessions if isinstance(sessions, list) else []:
        path = _session_path(session, kernel_id)
        if path is not None:
            return os.path.join(str(root), *path.split("/"))
    return None


def _session_path(session: object, kernel_id: str) -> str | None:
    if not isinstance(session, dict):
        return None
    kernel = session.get("kernel")
    if not isinstance(kernel, dict) or kernel.get("id") != kernel_id:
        return None
    path = session.get("path") or (session.get("notebook") or {}).get("path")
    return path if isinstance(path, str) and path else None


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
    distributions = _packages_distributions()
    versions: dict[str, str] = {}
    for module in modules:
        if module in sys.stdlib_module_names or module in _NOT_PACKAGES:
            continue
        for dist in distributions.get(module, ()):
            version = _version(dist)
            if version is not None:
                versions[dist] = version
    return dict(sorted(versions.items(), key=lambda item: item[0].lower()))


@lru_cache(maxsize=1)
def _packages_distributions() -> Mapping[str, tuple[str, ...]]:
    """Cached: scanning every installed distribution costs ~100 ms."""
    return {
        module: tuple(dict.fromkeys(dists))
        for module, dists in metadata.packages_distributions().items()
    }


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
