"""Is a person's front end attached to this kernel, or is it a headless run?

It decides when a tracked run is delivered to MLflow. With an interactive front end
(JupyterLab, Notebook 7, VS Code, Spyder, qtconsole, Colab) the kernel outlives the cell, so the
write stays on the background thread, off the cell's critical path. A headless run (papermill,
nbclient, nbval, ``jupyter execute``, a pipeline step) shuts the kernel down right after its
last cell: there each tracked cell waits until its run is in MLflow, so the run is complete
when execution returns. ``[tool.nbops] delivery`` (``NBOPS_DELIVERY``) overrides the guess:
``async`` or ``sync``.

Every check reads memory, the environment or ``/proc``: a few microseconds, once per session.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

# Processes that host interactive kernels, matched against the parent's command line.
_HOSTS = re.compile(
    r"jupyter[-_](lab|notebook|server|nbclassic|qtconsole)|jupyterhub-singleuser|voila|"
    r"jupyter_server|notebook\.app|spyder"
)
_WRAPPERS = re.compile(r"^\S*(sh|bash|conda|mamba|micromamba|env|pixi|uv|poetry)( |$)")

# (front end, check): the first check that holds names the attached front end. Environment
# variables alone prove little: `!papermill ...` run from a JupyterLab notebook, or from VS
# Code's terminal, passes the caller's JPY_SESSION_NAME / VSCODE_* to a headless kernel.
_FRONT_ENDS: tuple[tuple[str, Callable[[Mapping[str, Any]], bool]], ...] = (
    ("jupyter", lambda ns: started_by_jupyter_host()),
    ("vscode", lambda ns: "__vsc_ipynb_file__" in ns),
    ("spyder", lambda ns: "spyder_kernels" in sys.modules),
    ("colab", lambda ns: "google.colab" in sys.modules),
)


def attached_front_end(shell: Any, user_ns: Mapping[str, Any] | None = None) -> str | None:
    """The interactive front end attached to ``shell``, or None for a headless kernel.

    A shell that is not a kernel (terminal IPython, a plain script) counts as interactive:
    the process ends on its own and its exit hook flushes the writer.
    """
    if shell is None or not hasattr(shell, "kernel"):
        return "terminal"
    ns = user_ns if user_ns is not None else getattr(shell, "user_ns", {})
    for name, check in _FRONT_ENDS:
        try:
            if check(ns):
                return name
        except Exception:  # an odd environment: try the next check
            continue
    return None


def delivers_at_cell_end(mode: str, shell: Any) -> bool:
    """True when each tracked cell waits for its run to be in MLflow (see module docstring)."""
    if mode == "sync":
        return True
    if mode in ("async", "spool"):
        return False
    return attached_front_end(shell) is None


def started_by_jupyter_host() -> bool:
    """The kernel's parent (or, through a wrapper script, grandparent) process is a Jupyter
    server, qtconsole or the like: not papermill, nbclient, pytest or a pipeline step."""
    pid = os.getpid()
    for _ in range(2):
        pid = _parent_pid(pid)
        if pid <= 1:
            return False
        command = _command(pid)
        if _HOSTS.search(command):
            return True
        if not _WRAPPERS.search(command):  # `bash -c`, `conda run`: look one level up
            return False
    return False


def _parent_pid(pid: int) -> int:
    if pid == os.getpid():
        return os.getppid()
    try:  # field 4 of /proc/PID/stat, after the command name in parentheses
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _command(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        try:
            import psutil

            return " ".join(psutil.Process(pid).cmdline())
        except Exception:
            return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")
