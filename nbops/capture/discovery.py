"""Which notebook is this process running? Looked up once per session, off the cell's thread.

The first of these that answers wins (``find_notebook``, then ``match_history``):

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
6. ``papermill`` / ``parent-command`` / ``working-dir``: headless runs (papermill, nbclient,
   nbval, ``jupyter execute``) tell the kernel nothing, so the notebooks named on the command
   line of the process that started the kernel, and those in the kernel's working directory,
   are read (as JSON) and the one holding the cells this kernel executed is chosen. A papermill
   output notebook stands for its input (``metadata.papermill.input_path``);
7. ``unknown``: none of the above, or several notebooks hold the same cells (the record then
   says so and how to name the notebook).

A failing step (no server, timeout, bad JSON) silently moves on to the next: the notebook
path is context, never a reason to fail a cell. Environment variables are read to find
things, never recorded. ``urllib`` and ``json`` parsing live here, loaded by the session's
background lookup only, so ``%load_ext nbops`` does not pay for them.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbops._pids import alive
from nbops.capture.frontend import started_by_jupyter_host

_KERNEL_FILE = re.compile(r"kernel-(.+)\.json$")
MAX_CANDIDATES = 64  # notebooks read per lookup (a folder of hundreds: the first 64 by name)
MAX_NOTEBOOK_BYTES = 32 * 1024 * 1024  # larger notebooks are skipped (outputs, not code)
Found = tuple[str | None, str]


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
    session_name = env.get("JPY_SESSION_NAME")  # inherited by `!papermill` in a notebook too
    if session_name and os.path.isfile(_absolute(session_name)) and started_by_jupyter_host():
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
        if isinstance(info, dict) and alive(info.get("pid")):
            yield info


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


# ---- headless runs: the notebook that holds the cells this kernel executed -----------------


@dataclass
class Candidate:
    """A notebook that may be the one running: its path, how it was found, its code cells."""

    path: str
    source: str  # "papermill", "parent-command" or "working-dir"
    cells: frozenset[str] = field(default_factory=frozenset)


def headless_candidates(cwd: str | None = None, parent: int | None = None) -> list[Candidate]:
    """Notebooks named on the parent process's command line (papermill, ``jupyter execute``,
    ``nbconvert``), then those in the working directory (nbval and nbclient scripts start the
    kernel in the notebook's folder). A papermill output stands for its input."""
    cwd = cwd or os.getcwd()
    paths: list[tuple[str, str]] = []
    args, parent_cwd = _parent_command(os.getppid() if parent is None else parent)
    for arg in args[1:]:
        if arg.endswith(".ipynb"):
            paths.append((os.path.normpath(os.path.join(parent_cwd or cwd, arg)), "parent-command"))
    try:
        names = sorted(n for n in os.listdir(cwd) if n.endswith(".ipynb"))
    except OSError:
        names = []
    paths += [(os.path.join(cwd, n), "working-dir") for n in names[:MAX_CANDIDATES]]
    found: dict[str, Candidate] = {}
    for path, how in paths:
        candidate = _read_candidate(path, how, parent_cwd or cwd)
        if candidate is not None and candidate.path not in found:
            found[candidate.path] = candidate
    return list(found.values())


def match_history(candidates: Sequence[Candidate], history: Sequence[str]) -> tuple[Found, str]:
    """``((path, source), note)``: the candidate holding the current cell (``history[-1]``)
    and most of the cells before it; a tie between files is no answer (``note`` says why)."""
    cells = [c.strip() for c in history if c and c.strip()]
    if not cells:
        return (None, "unknown"), ""
    current = cells[-1]
    scored = [(sum(cell in c.cells for cell in cells), c) for c in candidates if current in c.cells]
    if not scored:
        return (None, "unknown"), ""
    best = max(score for score, _ in scored)
    top = [c for score, c in scored if score == best]
    named = [c for c in top if c.source in ("papermill", "parent-command")]
    if len(top) == 1 or len(named) == 1:
        chosen = top[0] if len(top) == 1 else named[0]
        return (chosen.path, chosen.source), ""
    listed = ", ".join(sorted(os.path.basename(c.path) for c in top))
    return (None, "unknown"), (
        f"nbops cannot tell which notebook ran this cell ({listed} all hold it): set "
        "NBOPS_NOTEBOOK=PATH or use %%track --notebook PATH"
    )


def _parent_command(pid: int) -> tuple[list[str], str | None]:
    """The parent's argv and working directory (``/proc`` on Linux, psutil elsewhere)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return [a.decode(errors="replace") for a in raw.split(b"\0") if a], os.readlink(
            f"/proc/{pid}/cwd"
        )
    except OSError:
        pass
    try:
        import psutil

        proc = psutil.Process(pid)
        return proc.cmdline(), proc.cwd()
    except Exception:  # no such process, no permission, no psutil
        return [], None


def _read_candidate(path: str, how: str, base: str) -> Candidate | None:
    nb = _read_json(path)
    if nb is None:
        return None
    papermill = (nb.get("metadata") or {}).get("papermill") or {}
    source_path = papermill.get("input_path") if isinstance(papermill, dict) else None
    if isinstance(source_path, str) and source_path.endswith(".ipynb"):
        original = os.path.normpath(os.path.join(base, source_path))
        if os.path.isfile(original) and os.path.realpath(original) != os.path.realpath(path):
            inner = _read_candidate(original, "papermill", base)
            if inner is not None:
                return Candidate(inner.path, "papermill", inner.cells)
    return Candidate(os.path.abspath(path), how, _code_cells(nb))


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        if os.path.getsize(path) > MAX_NOTEBOOK_BYTES:
            return None
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _code_cells(nb: Mapping[str, Any]) -> frozenset[str]:
    found = set()
    for cell in nb.get("cells") or []:
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            source = cell.get("source", "")
            text = "".join(source) if isinstance(source, list) else str(source)
            if text.strip():
                found.add(text.strip())
    return frozenset(found)


class NotebookFinder:
    """The session's notebook lookup: the slow parts run once, on a background thread started
    by :meth:`start` (at ``%load_ext``), and :meth:`resolve` only matches the kernel's cells."""

    def __init__(self, config_notebook: str = "", env: Mapping[str, str] | None = None) -> None:
        self.config_notebook = config_notebook
        self.env = os.environ if env is None else env
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._api: str | None = None
        self._candidates: list[Candidate] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._lookup, name="nbops-notebook", daemon=True
                )
                self._thread.start()

    def _lookup(self) -> None:
        try:
            self._api = _from_sessions_api(0.5)
            if self._api is None:
                self._candidates = headless_candidates()
        except Exception:  # the notebook is context: never fail for it
            pass
        finally:
            self._done.set()

    def resolve(
        self, user_ns: Mapping[str, object], history: Sequence[str], timeout: float = 2.0
    ) -> tuple[Found, str]:
        """``((path, source), note)`` for the cell being recorded now."""
        cheap = _from_arguments(user_ns, None, self.config_notebook, self.env)
        if cheap is not None:
            return cheap, ""
        self.start()
        self._done.wait(timeout)
        if not self._done.is_set():
            return (None, "unknown"), "nbops was still looking for the notebook's path"
        if self._api is not None:
            return (self._api, "sessions-api"), ""
        return match_history(self._candidates, history)
