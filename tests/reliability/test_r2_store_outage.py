"""R2: a store that is down never breaks a cell. The cell runs and shows its value, nbops says
the run was not written (``%nbops wait``), keeps it in the spool, and ``nbops sync`` delivers
every record once the store is back.

Real outages: a SQLite file another process holds an exclusive lock on, an ``mlflow server``
that is not running, and one frozen with SIGSTOP (requests time out). MLflow's HTTP retries are
turned down (``MLFLOW_HTTP_REQUEST_MAX_RETRIES=0``, a 3 s timeout) so an outage costs seconds.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from reliability_support import MlflowServer, all_runs, free_port

from nbops import cli
from nbops.config import Config, load_config
from nbops.session import Session

pytestmark = pytest.mark.reliability

LOCK = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
"""


def use(shell: Any, session: Session) -> None:
    """Make ``%%track`` and ``%nbops`` in ``shell`` use ``session``."""
    shell.magics_manager.registry["NbopsMagics"]._session = session
    shell.user_ns["__nbops_session__"] = session


def tracked(shell: Any, name: str, value: float) -> None:
    """A tracked cell returns its value exactly as without nbops."""
    result = shell.run_cell(f"%%track --name {name}\nlr = {value}\nresult = lr * 2\nresult")
    assert result.success, result.error_in_exec
    assert result.result == pytest.approx(value * 2)


def wait(shell: Any, capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """``%nbops wait``: what was printed since the last look (stdout, stderr)."""
    shell.run_line_magic("nbops", "wait")
    captured = capsys.readouterr()
    return captured.out, captured.err


def sync(capsys: pytest.CaptureFixture[str]) -> str:
    code = cli.main(["sync"])
    out = capsys.readouterr().out
    assert code == 0, out
    return out


def test_a_locked_sqlite_store_is_reported_and_synced_after_release(
    shell: Any, config: Config, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session: Session = shell.user_ns["__nbops_session__"]
    tracked(shell, "before", 0.1)
    assert session.flush(timeout=120) == []
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK, str(project / "mlflow.db")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        tracked(shell, "locked", 0.3)
        report, err = wait(shell, capsys)  # the writer gives up after MLflow's 20 s wait
    finally:
        holder.communicate("")
    assert "1 run(s) could not be written to MLflow" in report
    assert "database is locked" in report and "nbops sync" in report
    assert "Traceback" not in err  # MLflow's own traceback is not printed
    assert len(session.spool.pending()) == 1

    assert "delivered 1 run(s)" in sync(capsys)
    runs = all_runs(config.tracking_uri)
    assert sorted((r.info.run_name, r.info.status) for r in runs) == [
        ("before", "FINISHED"),
        ("locked", "FINISHED"),
    ]
    assert session.spool.pending() == []


def test_a_stopped_or_frozen_mlflow_server_is_reported_and_synced_after_recovery(
    shell: Any,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = MlflowServer(tmp_path_factory.mktemp("server"), free_port())
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    session = Session(load_config(project))
    use(shell, session)
    try:
        tracked(shell, "down-1", 0.1)  # nothing listens on the port
        tracked(shell, "down-2", 0.2)
        report, _ = wait(shell, capsys)
        assert "2 run(s) could not be written to MLflow" in report, report
        assert len(session.spool.pending()) == 2

        server.start()
        assert "delivered 2 run(s)" in sync(capsys)

        server.signal(signal.SIGSTOP)  # accepts connections, never answers
        tracked(shell, "frozen", 0.3)
        report, _ = wait(shell, capsys)
        assert "1 run(s) could not be written to MLflow" in report, report
        server.signal(signal.SIGCONT)
        assert "delivered 1 run(s)" in sync(capsys)

        runs = {r.info.run_name: r for r in all_runs(server.url)}
        assert sorted(runs) == ["down-1", "down-2", "frozen"]
        assert {r.info.status for r in runs.values()} == {"FINISHED"}
        assert runs["frozen"].data.params["lr"] == "0.3"
        assert session.spool.pending() == []
    finally:
        server.stop()
