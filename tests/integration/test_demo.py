"""The README's main job (`make demo` = `nbops demo`) works on a fresh folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbops.cli import main

pytestmark = pytest.mark.kernel


def test_demo_goes_from_a_tracked_notebook_to_a_level_1_pipeline(
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
    # then the tagged notebook becomes a pipeline whose gate registers the first champion
    assert "registered wine_pipeline v1 (champion)" in out
    assert (project / "demo" / ".github" / "workflows" / "wine_pipeline.yml").is_file()
    # served (the gate's 45 holdout rows sent through nbops serve) and monitored
    assert "45 predictions (request" in out and "monitor wine_pipeline v1: ok (45 rows" in out
    assert "Level reached: 1" in out
