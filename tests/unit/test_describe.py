"""A run's description comes from what the notebook already says: the cell's first comment,
else the heading of the section the cell is in."""

from __future__ import annotations

import json
from pathlib import Path

from nbops.capture.describe import first_comment, heading_above
from nbops.config import Config
from nbops.record import Context, RunRecord
from nbops.session import complete_context


def notebook(path: Path, cells: list[tuple[str, str]]) -> str:
    body = [{"cell_type": kind, "metadata": {}, "source": src} for kind, src in cells]
    path.write_text(json.dumps({"cells": body, "metadata": {}, "nbformat": 4}))
    return str(path)


def test_the_first_comment_that_says_something() -> None:
    assert first_comment("# NBVAL_CHECK_OUTPUT\n# noqa\n#\n# the baseline forest\nx = 1\n") == (
        "the baseline forest"
    )
    assert first_comment("x = 1  # trailing comments are not descriptions\n") == ""
    assert len(first_comment("# " + "long " * 100)) == 200


def test_the_heading_of_the_section_above_the_cell(tmp_path: Path) -> None:
    code = "model.fit(X, y)\naccuracy = model.score(X, y)"
    path = notebook(
        tmp_path / "train.ipynb",
        [
            ("markdown", "# 2 · Track every experiment\n\nIntro."),
            ("code", "import sklearn"),
            ("markdown", "## One **tracked** run\n\nPut `%%track` on the cell."),
            ("code", "%%track --name baseline\n" + code + "\n"),
        ],
    )
    assert heading_above(path, code) == "One **tracked** run"  # MLflow renders markdown
    assert heading_above(path, "not in the notebook = 1") == ""  # unsaved edits: none
    assert heading_above(str(tmp_path / "missing.ipynb"), code) == ""
    # the writer thread fills it in before delivery, for cells without a comment
    record = RunRecord(code=code, context=Context(notebook=path, project_root=str(tmp_path)))
    complete_context(record, Config(project_root=tmp_path))
    assert record.description == "One **tracked** run"
