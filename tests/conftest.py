"""Shared fixtures: every test gets its own nbops project (a tmp folder with pyproject.toml)
and its own SQLite MLflow store, so tests never touch the developer's files or each other."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nbops.config import Config, load_config


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh project folder as the working directory, with no nbops env vars set and no CI
    variables (a pipeline run started in CI is named ``ci``, not ``manual``)."""
    for key in (
        "CI",
        "GITHUB_EVENT_NAME",
        "GITLAB_CI",
        "MLFLOW_TRACKING_URI",
        "NBOPS_TRACKING_URI",
        "NBOPS_NOTEBOOK",
        "NBOPS_ASYNC_WRITE",
        "NBOPS_EXPERIMENT",
        "JPY_SESSION_NAME",
    ):
        monkeypatch.delenv(key, raising=False)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\nversion = "0"\n')
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def config(project: Path) -> Config:
    return load_config(project)


@pytest.fixture
def shell(config: Config) -> Iterator[object]:
    """A real IPython shell with nbops' magics bound to this test's project and store."""
    from IPython.core.interactiveshell import InteractiveShell

    from nbops.magics import NbopsMagics
    from nbops.session import Session

    sh = InteractiveShell.instance()
    session = Session(config)
    magics = NbopsMagics(sh, session=session)
    sh.register_magics(magics)
    sh.user_ns["__nbops_session__"] = session
    yield sh
    session.flush(timeout=30)
    sh.user_ns.clear()
    sh.reset()


@pytest.fixture
def hold_lock() -> Callable[[Path], subprocess.Popen[str]]:
    """Start a child process that holds a flock on a path until its stdin closes (another
    process delivering the same spool entry)."""

    def start(lock: Path) -> subprocess.Popen[str]:
        code = (
            "import fcntl, os, sys\n"
            f"fd = os.open({str(lock)!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n"
        )
        child = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert child.stdout is not None and child.stdout.readline().strip() == "locked"
        return child

    return start
