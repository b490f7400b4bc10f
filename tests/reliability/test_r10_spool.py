"""R10: the spool never loses a record, never says "safe" when it is not, and one bad entry
never blocks the good ones.

- The spool cannot be written (``.nbops/spool`` is a file; a full file system): the record goes
  to MLflow directly and the summary says so; when MLflow fails too, the summary and
  ``%nbops wait`` say the run is LOST and show what it recorded.
- Poison entries of every shape (``[]``, ``null``, wrong-typed fields, a record MLflow refuses
  forever: a 600-character experiment name, a lone surrogate) are set aside with the reason;
  ``nbops sync``, ``runs`` and ``show`` never print a traceback; the good records behind them
  are delivered; ``nbops sync --retry-quarantined`` tries the set-aside ones again.
- What the capture path would otherwise spool as poison is fixed before it is spooled.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reliability_support import NBOPS, all_runs

from nbops.config import Config, load_config
from nbops.session import Session

pytestmark = pytest.mark.reliability


def use(shell: Any, session: Session) -> Session:
    shell.magics_manager.registry["NbopsMagics"]._session = session
    shell.user_ns["__nbops_session__"] = session
    return session


def cell(shell: Any, capsys: pytest.CaptureFixture[str], source: str) -> str:
    result = shell.run_cell(source)
    assert result.success, result.error_in_exec
    return capsys.readouterr().out


def nbops(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NBOPS, *args], cwd=project, capture_output=True, text=True)


def test_an_unwritable_spool_sends_the_record_to_mlflow_directly(
    shell: Any, project: Path, config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / ".nbops").mkdir()
    (project / ".nbops" / "spool").write_text("not a folder")
    out = cell(shell, capsys, "%%track --name direct\nlr = 0.25\nresult = lr * 4\nresult")
    assert "written to MLflow directly" in out and "saved to MLflow" in out
    [run] = all_runs(config.tracking_uri)
    assert run.info.run_name == "direct" and run.data.params["lr"] == "0.25"
    shell.run_line_magic("nbops", "wait")
    assert "all runs of this session are in MLflow" in capsys.readouterr().out


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A real file system with no space left (a 64 KiB tmpfs, filled)."""
    mount = tmp_path / "full"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr!r}")
    try:
        filler = mount / "filler"
        with filler.open("wb") as handle, pytest.raises(OSError):
            handle.write(b"x" * (1 << 20))
            handle.flush()
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_and_a_failing_store_say_the_run_is_lost(
    shell: Any,
    project: Path,
    full_disk: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nothing can take the record: the user is told, with what it recorded, never "safe"."""
    (project / "store-is-a-folder").mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / 'store-is-a-folder'}")
    monkeypatch.setenv("NBOPS_PROJECT_ROOT", str(project))
    monkeypatch.setattr(Config, "state_dir", property(lambda self: full_disk / ".nbops"))
    session = use(shell, Session(load_config(project)))
    out = cell(shell, capsys, "%%track --name doomed\nlr = 0.125\nresult = lr * 8\nresult")
    assert "NOT SAVED" in out and "not saved" in out and "spool" in out
    assert "kept in .nbops/spool" not in out  # never claims it is safe
    shell.run_line_magic("nbops", "wait")
    waited = capsys.readouterr().out
    assert "LOST doomed" in waited and '"lr": 0.125' in waited
    assert "all runs of this session are in MLflow" not in waited
    assert session.lost and session.lost[0][0].params == {"lr": 0.125}


def write_entry(project: Path, name: str, content: object) -> Path:
    entry = project / ".nbops" / "spool" / name
    entry.mkdir(parents=True, exist_ok=True)
    (entry / "record.json").write_text(json.dumps(content))
    return entry


def good_record(project: Path, name: str, start: float) -> dict[str, object]:
    return {
        "record_id": name,
        "name": name,
        "status": "FINISHED",
        "start": start,
        "end": start + 1,
        "params": {"depth": 3},
        "experiment": "good",
        "context": {"notebook": None, "project_root": str(project)},
        "store": f"sqlite:///{project / 'mlflow.db'}",
    }


def test_poison_entries_are_set_aside_and_never_block_good_records(
    project: Path, config: Config
) -> None:
    poison = {
        "a1": [],
        "a2": None,
        "a3": {"record_id": "a3", "params": "not a dict"},
        "a4": {"record_id": "a4", "metrics": {"acc": "high"}},
        "a5": {"record_id": 5},
    }
    for name, content in poison.items():
        write_entry(project, name, content)
    refused = {}
    for i, name in enumerate(("b1", "b2", "b3", "b4")):  # more than 3 in a row, before the good
        record = good_record(project, name, 1.0 + i)
        if i % 2:
            record["experiment"] = "x" * 600  # over MLflow's limit, from an older nbops
        else:
            record["params"] = {"note": "\ud800 lone surrogate"}
        refused[name] = write_entry(project, name, record)
    for i, name in enumerate(("c1", "c2")):
        write_entry(project, name, good_record(project, name, 100.0 + i))

    done = nbops(project, "runs")  # reading never creates the store: it says what waits
    assert done.returncode == 0 and "no tracking store yet" in done.stdout, done.stderr
    assert "Traceback" not in done.stderr and not (project / "mlflow.db").exists()
    done = nbops(project, "sync")
    assert done.returncode == 0 and "Traceback" not in done.stderr + done.stdout, done.stderr
    assert {r.info.run_name for r in all_runs(config.tracking_uri)} == {"c1", "c2"}
    assert "SET ASIDE" in done.stdout and "--retry-quarantined" in done.stdout
    assert list((project / ".nbops" / "spool").glob("[abc]*")) == []
    quarantine = project / ".nbops" / "spool" / ".quarantine"
    reasons = {
        p.name.rsplit("-", 1)[0]: (p / "reason.txt").read_text() for p in quarantine.iterdir()
    }
    assert set(reasons) == {"a1", "a2", "a3", "a4", "a5", "b1", "b2", "b3", "b4"}
    assert "params is str" in reasons["a3"] and "metric is not a number" in reasons["a4"]
    assert "500" in reasons["b2"] and "encode" in reasons["b1"]
    for command in (["runs"], ["show", "c1"]):
        done = nbops(project, *command)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr

    again = nbops(project, "sync", "--retry-quarantined")
    assert "restored 9 quarantined" in again.stdout and "Traceback" not in again.stderr
    assert len(list(quarantine.iterdir())) == 9  # still refused: set aside again
    assert {r.info.run_name for r in all_runs(config.tracking_uri)} == {"c1", "c2"}


def test_what_mlflow_would_refuse_is_fixed_before_it_is_spooled(
    shell: Any, config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    long_name = "e" * 600
    out = cell(shell, capsys, f'%%track --experiment {long_name}\nlabel = "a\\ud800b"\nn = 1')
    assert "not one MLflow accepts" in out and "surrogate" in out
    shell.run_line_magic("nbops", "wait")
    assert "all runs of this session are in MLflow" in capsys.readouterr().out
    [run] = all_runs(config.tracking_uri)
    assert run.data.params["label"] == "a\ufffdb" and run.data.params["n"] == "1"
