"""The README's main job (`make demo` = `nbops demo`) works on a fresh folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbops.cli import main

pytestmark = pytest.mark.kernel


def test_demo_runs_the_example_notebook_and_lists_its_runs(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--dir", str(project / "demo")]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("run "))
    names = [line.split()[1] for line in lines[header + 1 : header + 3]]
    assert names == ["forest-deeper", "forest"]
    assert "wine_tracked" in lines[header + 1]
    assert (project / "demo" / "mlflow.db").is_file()
    assert f"sqlite:///{project / 'demo' / 'mlflow.db'}" in out
    assert not list((project / "demo" / ".nbops" / "spool").glob("*"))
