"""Which notebook a headless kernel runs, and whether a person's front end is attached."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from nbops.capture.discovery import Candidate, headless_candidates, match_history
from nbops.capture.frontend import attached_front_end, delivers_at_cell_end


def write_notebook(path: Path, cells: list[str], metadata: dict | None = None) -> Path:
    nb = {
        "cells": [{"cell_type": "code", "source": c, "metadata": {}} for c in cells],
        "metadata": metadata or {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb))
    return path


def test_the_notebook_holding_the_cells_run_so_far_is_chosen(tmp_path: Path) -> None:
    write_notebook(tmp_path / "train.ipynb", ["%load_ext nbops", "%%track\nx = 1"])
    write_notebook(tmp_path / "eval.ipynb", ["%load_ext nbops", "%%track\ny = 2"])
    found, note = match_history(
        headless_candidates(str(tmp_path)), ["", "%load_ext nbops", "%%track\ny = 2\n"]
    )
    assert found == (str(tmp_path / "eval.ipynb"), "working-dir") and note == ""


def test_two_notebooks_with_the_same_cells_are_no_answer_and_say_so(tmp_path: Path) -> None:
    for name in ("a.ipynb", "a-Copy1.ipynb"):
        write_notebook(tmp_path / name, ["%%track\nx = 1"])
    found, note = match_history(headless_candidates(str(tmp_path)), ["%%track\nx = 1"])
    assert found == (None, "unknown")
    assert "a-Copy1.ipynb, a.ipynb" in note and "NBOPS_NOTEBOOK" in note


def test_a_cell_no_notebook_holds_is_unknown(tmp_path: Path) -> None:
    write_notebook(tmp_path / "a.ipynb", ["x = 1"])
    assert match_history(headless_candidates(str(tmp_path)), ["y = 2"]) == ((None, "unknown"), "")


def test_a_papermill_output_stands_for_its_input(tmp_path: Path) -> None:
    source = write_notebook(tmp_path / "train.ipynb", ["%%track\nx = 1"])
    meta = {"papermill": {"input_path": "train.ipynb", "output_path": "run.ipynb"}}
    write_notebook(tmp_path / "run.ipynb", ["alpha = 2", "%%track\nx = 1"], meta)
    candidates = headless_candidates(str(tmp_path), parent=_no_such_pid())
    assert [(c.path, c.source) for c in candidates] == [(str(source), "papermill")]
    found, _ = match_history(candidates, ["alpha = 2", "%%track\nx = 1"])
    assert found == (str(source), "papermill")


@pytest.fixture
def parent_with_notebook_args(tmp_path: Path) -> Iterator[int]:
    """A real process whose command line names notebooks (as papermill's does)."""
    code = "import time; print('ready', flush=True); time.sleep(60)"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "in.ipynb", "out.ipynb"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_notebooks_on_the_parent_command_line_win_a_tie(
    tmp_path: Path, parent_with_notebook_args: int
) -> None:
    write_notebook(tmp_path / "in.ipynb", ["%%track\nx = 1"])
    kernel_cwd = tmp_path / "work"
    kernel_cwd.mkdir()
    write_notebook(kernel_cwd / "copy.ipynb", ["%%track\nx = 1"])
    candidates = headless_candidates(str(kernel_cwd), parent=parent_with_notebook_args)
    assert [(Path(c.path).name, c.source) for c in candidates] == [
        ("in.ipynb", "parent-command"),
        ("copy.ipynb", "working-dir"),
    ]
    found, _ = match_history(candidates, ["%%track\nx = 1"])
    assert found == (str(tmp_path / "in.ipynb"), "parent-command")


def test_most_cells_in_common_wins() -> None:
    a = Candidate("/a.ipynb", "working-dir", frozenset({"import x", "%%track\ny"}))
    b = Candidate("/b.ipynb", "working-dir", frozenset({"%%track\ny"}))
    assert match_history([a, b], ["import x", "%%track\ny"])[0] == ("/a.ipynb", "working-dir")


def _no_such_pid() -> int:
    return 2**22 + 12345


# ---- front ends ------------------------------------------------------------------------------


def test_scripts_and_terminals_are_not_headless_kernels() -> None:
    assert attached_front_end(None) == "terminal"
    assert attached_front_end(SimpleNamespace(user_ns={})) == "terminal"  # no .kernel
    assert not delivers_at_cell_end("auto", None)
    assert delivers_at_cell_end("sync", None) and not delivers_at_cell_end("async", object())


def test_vscode_kernels_are_interactive() -> None:
    shell = SimpleNamespace(kernel=object(), user_ns={"__vsc_ipynb_file__": "/x.ipynb"})
    assert attached_front_end(shell) == "vscode"


CHECK = textwrap.dedent(
    """
    import json, subprocess, sys
    code = (
        "import json; from types import SimpleNamespace;"
        "from nbops.capture.frontend import attached_front_end as a;"
        "print(json.dumps(a(SimpleNamespace(kernel=1, user_ns={}))))"
    )
    print(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout)
    """
)


@pytest.mark.parametrize(
    ("parent_name", "expected"), [("jupyter-lab", "jupyter"), ("papermill", None)]
)
def test_a_kernel_started_by_a_jupyter_server_is_interactive_papermill_is_not(
    tmp_path: Path, parent_name: str, expected: str | None
) -> None:
    """A real parent process named like the program that starts the kernel."""
    parent = tmp_path / parent_name
    parent.write_text(CHECK)
    out = subprocess.run(
        [sys.executable, str(parent)], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out.strip()) == expected
