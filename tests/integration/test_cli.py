"""`nbops runs/show/diff/sync`, called in-process (click's style) on a real SQLite store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nbops.cli import main

TRAIN = (
    "n_estimators = {n}\nmodel = RandomForestClassifier(n_estimators=n_estimators, random_state=0)"
    "\nmodel.fit(X, y)\naccuracy = model.score(X, y) - {penalty}\n"
)


@pytest.fixture
def two_runs(shell: Any) -> Any:
    shell.run_cell(
        "from sklearn.datasets import load_wine\n"
        "from sklearn.ensemble import RandomForestClassifier\n"
        "X, y = load_wine(return_X_y=True, as_frame=True)"
    )
    shell.run_cell("%%track --name small\n" + TRAIN.format(n=3, penalty=0.25))
    shell.run_cell("%%track --name large\n" + TRAIN.format(n=8, penalty=0.0))
    shell.user_ns["__nbops_session__"].flush(timeout=60)
    return shell


def test_runs_lists_newest_first_in_three_formats(two_runs: Any, capsys: Any) -> None:
    assert main(["runs"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["run", "name", "experiment"]
    assert [line.split()[1] for line in table[1:]] == ["large", "small"]
    assert "accuracy" in table[0] and "n_estimators" in table[0]

    assert main(["runs", "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["params"]["n_estimators"] for r in records] == ["8", "3"]

    assert main(["runs", "-f", "csv"]) == 0
    csv_lines = capsys.readouterr().out.splitlines()
    assert csv_lines[0].startswith("run_id,name,experiment,status") and len(csv_lines) == 3


def test_show_by_name_and_diff_shows_param_and_metric_change(two_runs: Any, capsys: Any) -> None:
    assert main(["show", "small"]) == 0
    shown = capsys.readouterr().out
    assert "n_estimators=3" in shown and "model.fit(X, y)" in shown

    assert main(["diff", "small", "large"]) == 0
    text = capsys.readouterr().out
    assert "n_estimators" in text and "3" in text and "8" in text
    assert "~ accuracy:" in text and "(+" in text

    assert main(["diff", "small", "large", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["params_changed"]["n_estimators"] == [3, 8]
    accuracy = data["metrics"]["accuracy"]
    assert accuracy["delta"] == pytest.approx(accuracy["b"] - accuracy["a"])
    assert accuracy["delta"] > 0


def test_unknown_run_is_a_clear_error_with_its_exit_code(two_runs: Any, capsys: Any) -> None:
    assert main(["show", "no-such-run"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("nbops: error:") and "no-such-run" in err and "fix:" in err
    assert "Traceback" not in err


def test_sync_with_nothing_pending(project: Path, capsys: Any) -> None:
    assert main(["sync"]) == 0
    assert "delivered 0 run(s)" in capsys.readouterr().out
