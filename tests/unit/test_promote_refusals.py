"""What promote refuses before it writes anything, and how it says so: secrets in the
parameters or the cells, names the generated files cannot hold, lone surrogates, an output
folder it cannot write, data that is not a regular file. Every refusal leaves no folder behind.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nbops.errors import NbopsError, NotebookError, UsageError
from nbops.promote import promote

SECRET = "sk-live-refusal-canary-0123456789"


def notebook(path: Path, *cells: tuple[str, list[str]] | tuple[str, list[str], str]) -> Path:
    """A notebook of (source, tags[, cell_type]) cells, written as JSON (any text allowed)."""
    nodes = []
    for source, tags, *kind in cells:
        cell_type = kind[0] if kind else "code"
        node = {"cell_type": cell_type, "metadata": {"tags": tags}, "source": source}
        if cell_type == "code":
            node.update(outputs=[], execution_count=None)
        nodes.append(node)
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": nodes}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


@pytest.fixture
def box(tmp_path: Path) -> Path:
    """A DVC project (an empty .dvc: no `dvc init` subprocess) to promote in."""
    (tmp_path / ".dvc").mkdir()
    return tmp_path


def refused(nb: Path, **kwargs: object) -> NbopsError:
    before = sorted(p.relative_to(nb.parent) for p in nb.parent.rglob("*"))
    with pytest.raises(NbopsError) as caught:
        promote(nb, **kwargs)  # type: ignore[arg-type]
    after = sorted(p.relative_to(nb.parent) for p in nb.parent.rglob("*"))
    assert after == before, "a refused promote wrote files"
    error = caught.value
    assert error.message and error.fix and SECRET not in str(error)
    return error


def test_a_secret_parameter_is_refused_with_the_line_to_write_instead(box: Path) -> None:
    nb = notebook(
        box / "nb.ipynb",
        (f"alpha = 0.5\napi_token = {SECRET!r}", ["parameters"]),
        ("y = alpha + len(api_token)", ["step:a"]),
    )
    error = refused(nb)
    assert isinstance(error, NotebookError)
    assert "cell 1" in error.message and "'api_token'" in error.message
    assert 'api_token = os.environ["API_TOKEN"]' in error.fix


def test_a_nested_secret_parameter_names_its_key(box: Path) -> None:
    nb = notebook(
        box / "nb.ipynb",
        (f"db = {{'host': 'h', 'password': {SECRET!r}}}", ["parameters"]),
        ("y = db", ["step:a"]),
    )
    error = refused(nb)
    assert "db['password']" in error.message
    assert "db['password'] = os.environ[\"DB_PASSWORD\"]" in error.fix


def test_a_credential_is_refused_whatever_its_parameter_is_called(box: Path) -> None:
    nb = notebook(
        box / "nb.ipynb",
        ("source = 'postgresql://admin:pw-canary@db/app'", ["parameters"]),
        ("y = source", ["step:a"]),
    )
    assert "'source'" in refused(nb).message


def test_a_placeholder_parameter_is_fine(box: Path) -> None:
    nb = notebook(
        box / "nb.ipynb",
        ("api_token = None\npassword = ''", ["parameters"]),
        ("y = api_token", ["step:a"]),
    )
    result = promote(nb)
    assert "api_token: null" in (result.out_dir / "params.yaml").read_text()


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ((f"client = connect(password={SECRET!r})", ["step:a"]), "passed as password="),
        ((f'headers = {{"Authorization": "Bearer {SECRET}"}}', ["step:a"]), "'Authorization'"),
        ((f"See the dashboard with key {SECRET}.", [], "markdown"), "an API key"),
        ((f"import os\nos.environ['API_KEY'] = {SECRET!r}", ["setup"]), "bound to 'API_KEY'"),
    ],
    ids=["keyword", "header", "markdown", "setup cell"],
)
def test_a_secret_in_a_cell_that_steps_copy_is_refused(
    box: Path, cell: tuple[str, ...], expected: str
) -> None:
    nb = notebook(box / "nb.ipynb", cell, ("y = 1", ["step:b"]))  # type: ignore[arg-type]
    error = refused(nb)
    assert "cell 1" in error.message and expected in error.message
    assert "os.environ[" in error.fix


def test_a_line_marked_not_secret_promotes(box: Path) -> None:
    nb = notebook(
        box / "nb.ipynb",
        ("import pandas as pd", ["setup"]),
        (
            "df = pd.DataFrame({'password': [1]})\n"
            "df = df.rename(columns={'password': 'pw_hash'})  # nbops: not-secret",
            ["step:a"],
        ),
    )
    assert promote(nb).plan.steps[0].name == "a"


def test_a_notebook_named_with_a_newline_is_refused_before_anything_is_written(
    box: Path,
) -> None:
    nb = notebook(box / "a\nb.ipynb", ("x = 1", ["step:a"]))
    error = refused(nb)
    assert "'\\n'" in error.message and "rename the notebook" in error.fix
    assert not (box / "pipelines").exists() and not (box / ".github").exists()


def test_a_lone_surrogate_in_a_cell_names_the_cell(box: Path) -> None:
    nb = notebook(box / "nb.ipynb", ("x = 1", ["step:a"]), ("y = '\ud800'", []))
    error = refused(nb)
    assert "cell 2" in error.message and "surrogate" in error.message
    assert "\\ud800 escape" in error.fix  # the one to look for in the JSON


def test_a_surrogate_escape_in_a_parameter_names_the_parameter(box: Path) -> None:
    nb = notebook(box / "nb.ipynb", ("x = '\\ud800'", ["parameters"]), ("y = x", ["step:a"]))
    error = refused(nb)
    assert "parameter 'x'" in error.message and "surrogate" in error.message


@pytest.mark.parametrize("kind", ["under a file", "a file", "/proc"])
def test_an_output_folder_that_cannot_be_written_is_a_usage_error(box: Path, kind: str) -> None:
    nb = notebook(box / "nb.ipynb", ("x = 1", ["step:a"]))
    (box / "afile").write_text("not a folder\n")
    out = {"under a file": box / "afile" / "out", "a file": box / "afile", "/proc": "/proc/nbx"}
    error = refused(nb, out=out[kind])
    assert isinstance(error, UsageError)
    assert "--out" in error.fix or "--out" in error.message
    assert (box / "afile").read_text() == "not a folder\n"


def test_a_fifo_among_the_data_is_refused_not_waited_on(box: Path) -> None:
    (box / "data").mkdir()
    os.mkfifo(box / "data" / "stream")
    nb = notebook(box / "nb.ipynb", ("t = open('data/stream').read()", ["step:a"]))
    error = refused(nb)
    assert "not a regular file" in error.message


def test_a_write_that_fails_midway_removes_the_folder_it_created(box: Path) -> None:
    """A real fault: the file-size limit (RLIMIT_FSIZE) makes the data copy fail with EFBIG
    after the generated files were written; the new folder must not stay half-made."""
    (box / "data").mkdir()
    (box / "data" / "big.csv").write_text("a\n" + "1\n" * 100_000)  # ~200 KB
    nb = notebook(box / "nb.ipynb", ("t = open('data/big.csv').read()", ["step:a"]))

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    done = subprocess.run(
        [sys.executable, "-m", "nbops.cli", "promote", str(nb)],
        cwd=box,
        preexec_fn=limit,
        capture_output=True,
        text=True,
        env={**os.environ, "DVC_NO_ANALYTICS": "1"},
        timeout=300,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and "could not write" in done.stderr, done.stderr
    assert not (box / "pipelines").exists()
