"""Where the work ran: notebook lookup order, git state, package versions, context."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from nbops.capture import discovery
from nbops.capture.context import (
    build_context,
    git_state,
    imported_top_level,
    package_versions,
)
from nbops.capture.discovery import find_notebook

KERNEL_ID = "0b6f2c1e-1111-4222-8333-944445555666"
TOKEN = "s3cret-token"

# --- find_notebook: the cheap steps, in order -------------------------------------------------


def test_explicit_argument_beats_everything(tmp_path: Path) -> None:
    ns = {"__vsc_ipynb_file__": str(tmp_path / "vscode.ipynb")}
    env = {"NBOPS_NOTEBOOK": str(tmp_path / "env.ipynb")}
    found = find_notebook(ns, explicit=str(tmp_path / "arg.ipynb"), config_notebook="c", env=env)
    assert found == (str(tmp_path / "arg.ipynb"), "argument")


def test_env_then_config_beat_vscode(tmp_path: Path) -> None:
    ns = {"__vsc_ipynb_file__": str(tmp_path / "vscode.ipynb")}
    env = {"NBOPS_NOTEBOOK": str(tmp_path / "env.ipynb")}
    assert find_notebook(ns, env=env) == (str(tmp_path / "env.ipynb"), "env")
    config = str(tmp_path / "cfg.ipynb")
    assert find_notebook(ns, config_notebook=config, env={}) == (config, "config")


def test_vscode_beats_jupyter_session_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discovery, "started_by_jupyter_host", lambda: True)
    notebook = tmp_path / "lab.ipynb"
    notebook.write_text("{}")
    ns = {"__vsc_ipynb_file__": str(tmp_path / "vscode.ipynb")}
    env = {"JPY_SESSION_NAME": str(notebook)}
    assert find_notebook(ns, env=env) == (str(tmp_path / "vscode.ipynb"), "vscode")
    assert find_notebook({}, env=env) == (str(notebook), "jupyter-session-name")


def test_relative_paths_become_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_notebook({}, explicit="nb/train.ipynb", env={}) == (
        str(tmp_path / "nb" / "train.ipynb"),
        "argument",
    )


def test_stale_jupyter_session_name_is_ignored(tmp_path: Path) -> None:
    """Renaming a notebook leaves the kernel's JPY_SESSION_NAME pointing at the old file."""
    env = {"JPY_SESSION_NAME": str(tmp_path / "renamed-away.ipynb")}
    assert find_notebook({}, env=env) == (None, "unknown")


def test_nothing_found_is_unknown() -> None:
    assert find_notebook({"x": 1}, env={}) == (None, "unknown")


# --- find_notebook: the Jupyter sessions API --------------------------------------------------


def _sessions_handler(sessions: list[dict[str, Any]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            authorised = self.headers.get("Authorization") == f"token {TOKEN}"
            if self.path.split("?")[0] != "/api/sessions" or not authorised:
                self.send_error(403)
                return
            body = json.dumps(sessions).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def sessions_server() -> Iterator[str]:
    """A real HTTP server on localhost serving a Jupyter-like ``/api/sessions``."""
    sessions = [
        {"id": "s1", "path": "other.ipynb", "type": "notebook", "kernel": {"id": "someone-else"}},
        {"id": "s2", "path": "sub/train.ipynb", "type": "notebook", "kernel": {"id": KERNEL_ID}},
    ]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _sessions_handler(sessions))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def in_kernel(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Pretend to be kernel ``KERNEL_ID`` with its Jupyter runtime dir in ``tmp_path``."""
    import ipykernel.connect

    monkeypatch.setattr(
        ipykernel.connect, "get_connection_file", lambda: f"/run/kernel-{KERNEL_ID}.json"
    )
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    return runtime


def _write_server_file(runtime: Path, url: str, root: Path, pid: int, token: str = TOKEN) -> None:
    info = {"url": url, "token": token, "root_dir": str(root), "pid": pid, "port": 0}
    (runtime / f"jpserver-{pid}.json").write_text(json.dumps(info))


def _dead_pid() -> int:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


def test_sessions_api_resolves_path_against_server_root(
    in_kernel: Path, sessions_server: str, tmp_path: Path
) -> None:
    _write_server_file(in_kernel, sessions_server, tmp_path / "root", os.getpid())
    found = find_notebook({}, env={}, timeout=5)
    assert found == (str(tmp_path / "root" / "sub" / "train.ipynb"), "sessions-api")


def test_sessions_api_skips_dead_and_unauthorised_servers(
    in_kernel: Path, sessions_server: str, tmp_path: Path
) -> None:
    # A leftover file of a dead server, and a live server whose token we do not have.
    _write_server_file(in_kernel, sessions_server, tmp_path / "dead", _dead_pid())
    info = {"url": sessions_server, "token": "wrong", "root_dir": "/x", "pid": os.getpid()}
    (in_kernel / "jpserver-aaa.json").write_text(json.dumps(info))
    (in_kernel / "jpserver-bad.json").write_text("{not json")
    assert find_notebook({}, env={}, timeout=5) == (None, "unknown")


def test_unreachable_server_falls_back_to_unknown(in_kernel: Path, tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _write_server_file(in_kernel, f"http://127.0.0.1:{port}/", tmp_path, os.getpid())
    assert find_notebook({}, env={}, timeout=2) == (None, "unknown")


def test_silent_server_times_out_to_unknown(in_kernel: Path, tmp_path: Path) -> None:
    with socket.socket() as sock:  # accepts connections, never answers
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
        _write_server_file(in_kernel, url, tmp_path, os.getpid())
        assert find_notebook({}, env={}, timeout=0.2) == (None, "unknown")


def test_plain_python_never_asks_the_server(
    in_kernel: Path, sessions_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a loaded ipykernel there is no kernel id to look up."""
    _write_server_file(in_kernel, sessions_server, tmp_path, os.getpid())
    monkeypatch.delitem(sys.modules, "ipykernel")
    assert find_notebook({}, env={}, timeout=5) == (None, "unknown")


def test_cheap_steps_win_over_the_sessions_api(
    in_kernel: Path, sessions_server: str, tmp_path: Path
) -> None:
    _write_server_file(in_kernel, sessions_server, tmp_path, os.getpid())
    ns = {"__vsc_ipynb_file__": "/code/v.ipynb"}
    assert find_notebook(ns, env={}, timeout=5) == (os.path.abspath("/code/v.ipynb"), "vscode")


# --- git_state ----------------------------------------------------------------------------

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(repo: Path, *args: str) -> str:
    config = ["-c", "user.name=t", "-c", "user.email=t@e.x", "-c", "commit.gpgsign=false"]
    done = subprocess.run(
        ["git", *config, *args], cwd=repo, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "symbolic-ref", "HEAD", "refs/heads/trunk")
    return repo


@needs_git
def test_git_state_clean_then_dirty(repo: Path) -> None:
    (repo / "train.py").write_text("print(1)\n")
    _git(repo, "add", "train.py")
    _git(repo, "commit", "-q", "-m", "first")
    sha = _git(repo, "rev-parse", "HEAD")
    assert git_state(repo) == (sha, False, "trunk")
    (repo / "scratch.txt").write_text("untracked files do not count")
    assert git_state(repo) == (sha, False, "trunk")
    (repo / "train.py").write_text("print(2)\n")
    assert git_state(repo) == (sha, True, "trunk")


@needs_git
def test_git_state_before_first_commit(repo: Path) -> None:
    assert git_state(repo) == (None, False, "trunk")


@needs_git
def test_git_state_from_a_subfolder(repo: Path) -> None:
    (repo / "nb").mkdir()
    (repo / "nb" / "a.ipynb").write_text("{}")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "first")
    assert git_state(repo / "nb")[0] == _git(repo, "rev-parse", "HEAD")


def test_git_state_outside_a_repo(tmp_path: Path) -> None:
    assert git_state(tmp_path) == (None, None, None)
    assert git_state(tmp_path / "does-not-exist") == (None, None, None)


# --- packages and modules -----------------------------------------------------------------


def test_package_versions_maps_modules_to_distributions() -> None:
    versions = package_versions({"sklearn", "numpy", "os", "json", "no_such_module_xyz"})
    assert versions == {
        "numpy": metadata.version("numpy"),
        "scikit-learn": metadata.version("scikit-learn"),
    }


def test_imported_top_level_sees_modules_classes_functions_and_instances() -> None:
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import train_test_split

    ns: dict[str, object] = {
        "np": np,
        "RandomForestClassifier": RandomForestClassifier,
        "train_test_split": train_test_split,
        "arr": np.zeros(3),
        "join": os.path.join,
        "n": 3,
        "_hidden": json,
        "In": [""],
        "Out": {},
        "get_ipython": lambda: None,
    }
    assert imported_top_level(ns) == {"numpy", "sklearn", os.path.__name__.split(".")[0]}


def test_imported_top_level_feeds_package_versions() -> None:
    from sklearn.linear_model import LogisticRegression

    versions = package_versions(imported_top_level({"model": LogisticRegression()}))
    assert versions == {"scikit-learn": metadata.version("scikit-learn")}


# --- build_context ------------------------------------------------------------------------


@needs_git
def test_build_context(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBOPS_TEST_SECRET", "hunter2-do-not-record")
    (repo / "a.txt").write_text("a")
    _git(repo, "add", "a.txt")
    _git(repo, "commit", "-q", "-m", "first")
    context = build_context(repo, {"sklearn", "os"}, ("/nb/train.ipynb", "vscode"))
    assert context.notebook == "/nb/train.ipynb"
    assert context.notebook_source == "vscode"
    assert context.project_root == str(repo)
    assert context.git_commit == _git(repo, "rev-parse", "HEAD")
    assert (context.git_dirty, context.git_branch) == (False, "trunk")
    assert context.python == ".".join(map(str, sys.version_info[:3]))
    assert context.packages == {"scikit-learn": metadata.version("scikit-learn")}
    assert context.host == socket.gethostname()
    assert "hunter2" not in json.dumps(context.__dict__)


def test_build_context_outside_a_repo(tmp_path: Path) -> None:
    context = build_context(tmp_path, set(), (None, "unknown"))
    assert (context.git_commit, context.git_dirty, context.git_branch) == (None, None, None)
    assert context.notebook is None and context.notebook_source == "unknown"
