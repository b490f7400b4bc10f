"""The pipeline runtime's pure parts: DVC output parsing, stale locks, step parameters, error
text, the reproducibility check's run matching, and the step kernel's light import."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from nbops.errors import NbopsError, NotebookError, UsageError
from nbops.pipeline import check, dvc_project, run, step
from nbops.pipeline.progress import StepStatus, follow
from nbops.record import RunRecord
from nbops.session import project_start


@pytest.mark.parametrize(
    ("line", "kind", "stage"),
    [
        ("Running stage 'train':\n", "start", "train"),
        ("Stage 'load' didn't change, skipping", "unchanged", "load"),
        ("Stage 'f@1' is cached - skipping run, checking out outputs", "restored", "f@1"),
        (
            "ERROR: failed to reproduce 'features': failed to run: nbops step x",
            "failed",
            "features",
        ),
        ("Updating lock file 'dvc.lock'", "other", ""),
    ],
)
def test_dvc_lines_become_events(line: str, kind: str, stage: str) -> None:
    event = dvc_project.parse_line(line)
    assert (event.kind, event.stage) == (kind, stage)


def test_follow_times_steps_and_keeps_their_output() -> None:
    steps = [StepStatus("load"), StepStatus("train"), StepStatus("eval")]
    lines = [
        "Stage 'load' didn't change, skipping\n",
        "Running stage 'train':\n",
        "> nbops step steps/02_train.ipynb\n",
        "nbops: error: step 'train' failed in cell 5\n",
        "  fix: see reports/02_train.ipynb\n",
        "ERROR: failed to reproduce 'train': failed to run\n",
    ]
    echoed: list[str] = []
    follow(lines, steps, [], echoed.append)
    assert [s.state for s in steps] == ["unchanged", "failed", "not run"]
    assert steps[1].duration is not None and steps[1].output[0].startswith("nbops: error:")
    assert run.step_error(steps[1], []) == (
        "step 'train' failed in cell 5\n  fix: see reports/02_train.ipynb"
    )
    assert echoed == ["  unchanged  load", "  running    train", "  FAILED     train"]


def test_a_stage_that_succeeds_still_shows_its_warnings() -> None:
    """A gate that could not write its run says why on stderr and succeeds (its decision is an
    outcome): `nbops run` used to keep that line to itself."""
    steps = [StepStatus("validate_model")]
    warning = "nbops: the run 'validate_model' was not written to MLflow (database is locked)"
    lines = [
        "Running stage 'validate_model':\n",
        "> nbops validate model\n",
        "nbops: step 'validate_model' took 1.20 s, its cells 0.00 s\n",  # into the progress line
        f"{warning}\n",
        "some library's chatter\n",
    ]
    echoed: list[str] = []
    follow(lines, steps, [], echoed.append)
    assert echoed == [
        "  running    validate_model",
        f"  {warning}",
        "  done       validate_model (" + f"{steps[0].duration:.2f} s, its cells 0.00 s)",
    ]


def test_stale_rwlock_is_removed(tmp_path: Path) -> None:
    tmp = tmp_path / ".dvc" / "tmp"
    tmp.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    info = {"pid": dead.pid, "cmd": "dvc repro"}
    (tmp / "rwlock").write_text(json.dumps({"write": {"artifacts/x": info}}))
    assert dvc_project.clear_stale_locks(tmp_path) == [str(tmp / "rwlock")]
    assert not (tmp / "rwlock").exists()


def test_a_live_dvc_process_is_not_cleared(tmp_path: Path) -> None:
    tmp = tmp_path / ".dvc" / "tmp"
    tmp.mkdir(parents=True)
    fake = tmp_path / "dvc"  # a process whose command line says dvc
    fake.write_text("import time\ntime.sleep(30)\n")
    proc = subprocess.Popen([sys.executable, str(fake)])
    try:
        time.sleep(0.2)
        info = {"pid": proc.pid, "cmd": "dvc repro"}
        (tmp / "rwlock").write_text(json.dumps({"read": {"data": [info]}}))
        with pytest.raises(NbopsError, match=f"pid {proc.pid}"):
            dvc_project.clear_stale_locks(tmp_path)
        assert (tmp / "rwlock").exists()
    finally:
        proc.kill()
        proc.wait()


def _nb(*cells: tuple[str, str]) -> dict:
    return {
        "cells": [
            {"cell_type": "code", "source": src, "metadata": {"tags": [tag]}} for tag, src in cells
        ]
    }


def test_step_gets_only_the_parameters_its_cell_assigns() -> None:
    nb = _nb(("parameters", "alpha = 1.0\nn = 3"), ("nbops-step", "beta = 2"))
    params = {"alpha": 0.5, "beta": 9, "other": 1}
    assert step.step_parameters(nb, params, "train") == {"alpha": 0.5}


def test_values_papermill_would_turn_into_strings_are_refused() -> None:
    import datetime

    nb = _nb(("parameters", "start = '2020-01-01'"))
    with pytest.raises(NotebookError, match="quote it") as info:
        step.step_parameters(nb, {"start": datetime.date(2020, 1, 1)}, "load")
    assert info.value.param == "start"


def test_cell_error_names_step_cell_and_traceback_end() -> None:
    nb = _nb(("parameters", "x = 1"), ("nbops-step", "y = 1 / 0\nz = 2"))
    exc = SimpleNamespace(
        source="y = 1 / 0\nz = 2",
        exec_count=4,
        ename="ZeroDivisionError",
        evalue="division by zero",
        traceback=["\x1b[31mTraceback\x1b[0m", "----> 1 y = 1 / 0", "ZeroDivisionError: boom"],
    )
    err = step.cell_error("train", nb, exc, "reports/02_train.ipynb")
    assert err.message.startswith(
        "step 'train' failed in cell 2 [nbops-step] ('y = 1 / 0'): ZeroDivisionError"
    )
    assert "----> 1 y = 1 / 0" in err.message and "\x1b" not in err.message
    assert "reports/02_train.ipynb" in err.fix and (err.step, err.cell) == ("train", 2)
    assert step.step_name(Path("steps/02_train.ipynb")) == "train"


def test_cell_error_names_the_source_cell_and_the_users_own_lines(tmp_path: Path) -> None:
    """Real IPython traceback chunks: the user's cells (one calling a setup cell's function),
    then library frames, which are left to the report."""
    helper = {"cell": 3, "line_offset": 0}
    failing = {"cell": 9, "line_offset": 1}  # a %%track line was removed above it
    nb = {
        "metadata": {"nbops": {"source": "../../wine.ipynb"}},
        "cells": [
            {
                "cell_type": "code",
                "id": "nbops-setup-1",
                "source": "def helper(x):\n    return 1 / x",
                "metadata": {"tags": ["nbops-setup"], "nbops": helper},
            },
            {
                "cell_type": "code",
                "id": "nbops-step-1",
                "source": "a = 1\nb = helper(0)",
                "metadata": {"tags": ["nbops-step"], "nbops": failing},
            },
        ],
    }
    report = tmp_path / "02_train.ipynb"
    executed = [dict(c, execution_count=n) for c, n in zip(nb["cells"], (2, 5), strict=True)]
    report.write_text(json.dumps({"cells": executed}))
    exc = SimpleNamespace(
        source="a = 1\nb = helper(0)",
        exec_count=5,
        ename="ZeroDivisionError",
        evalue="division by zero",
        traceback=[
            "\x1b[0;31m----------\x1b[0m",
            "ZeroDivisionError     Traceback (most recent call last)",
            "Cell \x1b[0;32mIn[5], line 2\x1b[0m\n      1 a = 1\n----> 2 b = helper(0)\n",
            "Cell In[2], line 2, in helper(x)\n      1 def helper(x):\n----> 2     return 1 / x\n",
            "File /venv/site-packages/lib.py:10, in inner()\n---> 10 raise\n",
            "ZeroDivisionError: division by zero",
        ],
    )
    err = step.cell_error("train", nb, exc, "reports/02_train.ipynb", report)
    first, *frames = err.message.splitlines()
    assert first == (
        "step 'train' failed in cell 9 of ../../wine.ipynb ('a = 1'): "
        "ZeroDivisionError: division by zero"
    )
    assert frames == [
        "    cell 9, line 3: b = helper(0)",
        "    cell 3, line 2, in helper: return 1 / x",
    ]
    assert "../../wine.ipynb" in err.fix and err.cell == 9


def _run(run_id: str, params: dict, metrics: dict, source: str = "cell") -> RunRecord:
    return RunRecord(
        run_id=run_id, params=params, metrics=metrics, source=source, status="FINISHED"
    )


def test_check_uses_the_newest_run_with_the_same_parameters() -> None:
    runs = [
        _run("newer", {"alpha": "2.0"}, {"score": 0.1}),
        _run("step", {"alpha": "1"}, {"score": 0.2}, source="step"),
        _run("match", {"alpha": "1", "n": "5"}, {"score": 0.9}),
        _run("nothing", {}, {"score": 0.3}),
        _run("estimator", {"model.n": "7"}, {"score": 0.4}),  # n=7 reached the estimator
    ]
    report = check.CheckReport("p", "nb", {"alpha": 1.0, "n": 5})
    candidates = check._candidates(runs, report.params)
    assert [r.run_id for r, _ in candidates] == ["match", "nothing"]
    assert check._pick(candidates, "score", report).run_id == "match"
    rows = [check.MetricRow("score", 0.9, 0.9 + 1e-12), check.MetricRow("rows", None, 3.0)]
    report.rows = rows
    assert report.ok and "n/a" in report.text() and "yes" in report.text()
    report.rows.append(check.MetricRow("loss", 0.5, 0.6))
    assert not report.ok and "NO" in report.text()


def test_pipeline_project_skips_the_folders_own_dvc(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    folder = tmp_path / "pipelines" / "demo"
    (folder / ".dvc").mkdir(parents=True)
    assert project_start(folder) == tmp_path
    (folder / "pyproject.toml").write_text("")
    assert project_start(folder) == folder


def test_a_folder_without_dvc_yaml_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="nbops promote"):
        run.run_pipeline(tmp_path)


def test_step_kernel_import_is_light() -> None:
    heavy = ("mlflow", "dvc", "papermill", "pandas", "numpy", "nbformat", "sklearn")
    code = (
        "import sys, nbops.pipeline.runtime, nbops.pipeline\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_secret_put_into_params_yaml_by_hand_never_reaches_the_step() -> None:
    nb = _nb(("parameters", "db = None\nalpha = 1"))
    params = {"db": {"host": "h", "password": "hand-edited-canary"}, "alpha": 0.5}
    with pytest.raises(NotebookError) as info:
        step.step_parameters(nb, params, "load")
    assert info.value.param == "db" and "hand-edited-canary" not in str(info.value)
    assert 'os.environ["DB_PASSWORD"]' in info.value.fix
    assert step.step_parameters(nb, {"db": None, "alpha": 0.5}, "load") == {
        "db": None,
        "alpha": 0.5,
    }


def test_reports_lose_secrets_the_step_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The executed notebook in reports/ gets committed: outputs that print an environment
    secret or a URL with a password are scrubbed; everything else is kept byte for byte."""
    monkeypatch.setenv("WAREHOUSE_TOKEN", "printed-env-canary")
    outputs = [
        {"output_type": "stream", "name": "stdout", "text": ["token printed-env-canary\n"]},
        {
            "output_type": "execute_result",
            "data": {"text/plain": ["'mysql://u:url-canary@h/d'"]},
            "metadata": {},
            "execution_count": 1,
        },
        {"output_type": "error", "ename": "E", "evalue": "printed-env-canary", "traceback": []},
    ]
    clean = {"output_type": "stream", "name": "stdout", "text": ["accuracy 0.9\n"]}
    nb = {"cells": [{"cell_type": "code", "source": "x", "outputs": [*outputs, clean]}]}
    report = tmp_path / "01_a.ipynb"
    report.write_text(json.dumps(nb))
    assert step.scrub_report(report) is True
    text = report.read_text()
    assert "canary" not in text and "accuracy 0.9" in text and "mysql://u:" in text
    assert step.scrub_report(report) is False  # nothing left: the file is not rewritten


def test_a_step_error_message_is_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", "error-env-canary")
    nb = _nb(("nbops-step", "connect()"))
    exc = SimpleNamespace(
        source="connect()",
        exec_count=1,
        ename="OperationalError",
        evalue="login failed with error-env-canary",
        traceback=["OperationalError: login failed with error-env-canary"],
    )
    err = step.cell_error("load", nb, exc, "reports/01_load.ipynb")
    assert "error-env-canary" not in err.message and "login failed" in err.message


@pytest.mark.parametrize("kind", ["model", "data"])
@pytest.mark.parametrize("where", ["missing", "empty", "file"])
def test_validate_on_something_that_is_not_a_pipeline_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, where: str
) -> None:
    from nbops.cli import main

    target = {"missing": tmp_path / "nonexistent", "empty": tmp_path, "file": tmp_path / "f"}
    (tmp_path / "f").write_text("x\n")
    assert main(["validate", kind, str(target[where])]) == UsageError.exit_code
    err = capsys.readouterr().err
    assert "params.yaml has no" not in err
    expected = {"missing": "does not exist", "empty": "not a promoted pipeline", "file": "a file"}
    if kind == "data":  # an empty folder lacks what validate data reads: its contract
        expected["empty"] = "schema.yaml does not exist"
    assert expected[where] in err and "nbops promote" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("env", "trigger"),
    [
        ({}, "manual"),
        ({"CI": "true"}, "ci"),
        ({"CI": "false"}, "manual"),
        ({"GITLAB_CI": "true", "CI": "true"}, "ci"),
        ({"GITHUB_EVENT_NAME": "schedule", "CI": "true"}, "ci schedule"),
    ],
)
def test_pipeline_run_names_what_started_it(
    env: dict[str, str], trigger: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbops.pipeline.parent import detect_trigger

    for key in ("CI", "GITLAB_CI", "GITHUB_EVENT_NAME"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert detect_trigger() == trigger
