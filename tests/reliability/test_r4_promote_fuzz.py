"""R4: ``nbops promote`` on fuzzed notebooks either promotes or raises an ``NbopsError`` whose
message says what and where and whose fix says what to do; never another exception, and never a
file written (or deleted) outside the output folder.

Each example runs in its own sandbox: the notebook in ``work/``, a file next to the sandbox a
traversal could reach, and an empty ``.dvc`` folder above, so promote finds a DVC project and
starts no ``dvc init`` (the fuzzing stays in-process and fast). Since issue 15 the corpus also
holds secrets (in parameters and code), symlinks out of the project (``data/etc -> /etc``, a
link to a folder outside the sandbox), a FIFO, lone surrogates, control characters in the
notebook's name and in ``--out``, and a 1 MB parameter literal.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from nbops.errors import NbopsError
from nbops.promote import promote

pytestmark = pytest.mark.reliability

FUZZ = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
NAMES = [
    "load",
    "train",
    "a",
    "b",
    "../../x",
    "../x",
    "..",
    ".",
    "/etc/passwd",
    "a/b",
    "a\\b",
    "Train",
    "x" * 60,
    "",
    "é",
    "a b",
    "1abc",
    "step:x",
    "nul\x00",
    "con",
    "~",
    "$HOME",
]
EXACT_TAGS = [
    "parameters",
    "pipeline-parameters",
    "injected-parameters",
    "skip",
    "setup",
    "imports",
    "functions",
    "metrics",
    "pipeline-metrics",
    "step",
    "prev",
    "Step:load",
    "STEP:TRAIN",
]
PREFIXES = ["step:", "prev:", "block:", "limit:", "annotation:", "label:", "image:"]
CODE = [
    "x = 1",
    "y = x + 1",
    "import pandas as pd",
    "import numpy as np\nz = np.arange(3)",
    "df = pd.read_csv('../outside.txt')",
    "text = open('/etc/hostname').read()",
    "def f(v):\n    return v * 2",
    "class K:\n    pass",
    "print(undefined_name)",
    "a, b = 1, 2",
    "%%track\nscore = 0.5",
    "%load_ext nbops",
    "!ls ..",
    "def broken(:",
    "from os import *",
    "x += 1",
    "del x",
    "lambda: (yield)",
    "global g\ng = 1",
    "model = f(x)\naccuracy = 0.9",
    "é = 1\nprint(é)",
    "(" * 300 + ")" * 300,
    "s = '" + "a" * 20_000 + "'",
    "v = 0\n" * 2_000,
    "api_key = 'sk-r4abcdefghijklmnop1234'",
    "user, password = 'admin', 'r4-pw'",
    "db_url = 'postgresql://admin:r4pw@db/app'",
    "import os\nos.environ['API_KEY'] = 'r4-key'",
    "h = {'Authorization': 'Bearer r4abcdefgh123'}",
    "import os\nnames = os.listdir('data/etc')",
    "text = open('data/away/file.txt').read()",
    "text = open('data/stream').read()",
    "s = '\ud800'",
    "s = '\\ud800'",
]
PARAMETERS = [
    "alpha = 0.5",
    "n = 10\nname = 'run'",
    "lr = 1e-3 * 2",
    "x = np.arange(3)",
    "keys = {1: 2}",
    "pair = (1, 2)",
    "import os",
    "a.b = 1",
    "x: int = 3",
    "def = 1",
    "x = float('nan')",
    "x = y = 1",
    "x, y = 1, 2",
    "__class__ = 1",
    "api_token = 'r4-token-value'",
    "db = {'host': 'h', 'password': 'r4-pw'}",
    "api_token = None",
    "x = '\\ud800'",
    "url = 'mysql://u:r4pw@h/d'",
    "blob = '" + "b" * 200_000 + "'",
]

SIMPLE = ["x = 1", "y = 2", "import math", "w = x + 1", "accuracy = 0.9", "n = 3"]
STEP_TAGS = ["step:load", "step:train", "prev:load", "step:a", "prev:train"]

names = st.sampled_from(NAMES) | st.text(max_size=12)
tags = (
    st.sampled_from(STEP_TAGS)  # biased towards notebooks that promote
    | st.sampled_from(EXACT_TAGS)
    | st.builds("{}{}".format, st.sampled_from(PREFIXES), names)
)
sources = st.sampled_from(SIMPLE) | st.sampled_from(CODE + PARAMETERS) | st.text(max_size=40)


@st.composite
def cells(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["code", "code", "code", "markdown", "raw"]))
    source: Any = draw(sources)
    if draw(st.booleans()):
        source = source.splitlines(keepends=True)  # Jupyter's list-of-lines form
    cell: dict[str, Any] = {"cell_type": kind, "metadata": {}, "source": source}
    tag_list: Any = draw(st.lists(tags | st.text(max_size=8), max_size=2))
    if draw(st.sampled_from([False] * 9 + [True])):  # tags that are not a list of strings
        tag_list = draw(st.sampled_from(["step:load", None, 3, {"a": 1}, [1, None, "skip"]]))
    cell["metadata"]["tags"] = tag_list
    if kind == "code":
        cell.update(outputs=[], execution_count=None)
    return cell


@st.composite
def notebooks(draw: st.DrawFn) -> bytes:
    """A notebook file's bytes: mostly well-formed JSON notebooks, some broken ones."""
    nb: Any = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        "cells": draw(st.lists(cells(), max_size=8)),
    }
    damage = draw(
        st.sampled_from(["none"] * 6 + ["bytes", "cut", "shape", "version", "key", "surrogate"])
    )
    if damage == "bytes":
        return draw(st.binary(max_size=64))
    if damage == "cut":
        text = json.dumps(nb)
        return text[: draw(st.integers(0, max(len(text) - 1, 0)))].encode()
    if damage == "shape":
        nb = draw(st.sampled_from([[], None, 3, "cells", {"cells": {}}, {"cells": [1, "x"]}]))
    if damage == "version":
        nb["nbformat"] = draw(st.sampled_from([3, 5, "4", None]))
    if damage == "key" and nb["cells"]:
        del nb["cells"][0][draw(st.sampled_from(["source", "cell_type", "metadata"]))]
    if damage == "surrogate" and nb["cells"] and isinstance(nb["cells"][0]["source"], str):
        nb["cells"][0]["source"] += "\ud800"  # json.dumps writes the \ud800 escape
    return json.dumps(nb).encode()


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (relative path -> content digest; a symlink by its target,
    never followed)."""
    found = {}
    for p in sorted(root.rglob("*")):
        if p.is_symlink():
            found[p.relative_to(root).as_posix()] = "link:" + os.readlink(p)
        elif p.is_file():
            found[p.relative_to(root).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return found


def promote_in_sandbox(
    content: bytes, out: str | None, name: str = "nb.ipynb"
) -> tuple[Any, set[str], Path]:
    """Promote ``content`` in a fresh sandbox; returns (result or error, files changed outside
    the output folder, the sandbox's work folder)."""
    with (
        tempfile.TemporaryDirectory(prefix="nbops-r4-") as tmp,
        tempfile.TemporaryDirectory(prefix="nbops-r4-away-") as away,
    ):
        box = Path(tmp)
        (box / ".dvc").mkdir()  # a DVC project encloses the work: no `dvc init` subprocess
        (box / "outside.txt").write_text("a,b\n1,2\n")
        (Path(away) / "file.txt").write_text("not yours\n")
        work = box / "work"
        (work / "data").mkdir(parents=True)
        (work / "data" / "etc").symlink_to("/etc")
        (work / "data" / "away").symlink_to(away)
        os.mkfifo(work / "data" / "stream")
        (work / name).write_bytes(content)
        before, away_before = snapshot(box), snapshot(Path(away))
        try:
            outcome: Any = promote(work / name, out=None if out is None else work / out)
        except NbopsError as exc:
            outcome = exc
        after = snapshot(box)
        assert snapshot(Path(away)) == away_before
        changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
        out_rel = f"work/{out}" if out is not None else "work/pipelines"
        outside = {p for p in changed if not p.startswith(out_rel + "/")}
        workflow = {p for p in outside if p.startswith("work/.github/workflows/")}
        return outcome, outside - workflow, work


def check_error(exc: NbopsError) -> None:
    """A useful error: a message naming the problem and a fix, no traceback text."""
    assert exc.message.strip() and exc.fix.strip(), repr(exc)
    assert "Traceback" not in str(exc)


@FUZZ
@given(
    content=notebooks(),
    out=st.sampled_from(["out", "deep/out", None, "bad\nout", "data/etc/x", "data/stream"]),
    name=st.sampled_from(["nb.ipynb", "a\nb.ipynb", "tab\tname.ipynb", "é sp.ipynb"]),
)
def test_fuzzed_notebooks_promote_or_raise_a_useful_nbops_error(
    content: bytes, out: str | None, name: str
) -> None:
    outcome, outside, _ = promote_in_sandbox(content, out, name)
    event(type(outcome).__name__)  # --hypothesis-show-statistics: promoted vs each error
    if isinstance(outcome, NbopsError):
        check_error(outcome)
    assert outside == set(), f"promote changed files outside the output folder: {outside}"


def notebook(*cells: tuple[str, list[str]]) -> bytes:
    nb = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [
            {
                "cell_type": "code",
                "metadata": {"tags": t},
                "source": s,
                "outputs": [],
                "execution_count": None,
            }
            for s, t in cells
        ],
    }
    return json.dumps(nb).encode()


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        ([("x = 1", ["step:../../x"])], "is not a plain name"),
        ([("x = 1", ["step:a", "prev:b"]), ("y = 2", ["step:b", "prev:a"])], "cycle"),
        ([("lr = 1e-3 * 2", ["parameters"]), ("x = lr", ["step:a"])], "not a literal"),
        ([("df = open('../outside.txt').read()", ["step:a"])], "outside the notebook's folder"),
        ([("import os\nn = os.listdir('data/etc')", ["step:a"])], "data/etc"),
        ([("t = open('data/away/file.txt').read()", ["step:a"])], "data/away"),
        ([("t = open('data/stream').read()", ["step:a"])], "not a regular file"),
        ([("api_token = 'r4'", ["parameters"]), ("x = api_token", ["step:a"])], "a secret"),
        ([("password = 'r4'", ["step:a"])], "holds a secret"),
        ([("x = '\ud800'", ["step:a"])], "lone surrogate"),
    ],
    ids=[
        "traversal-step-name",
        "prev-cycle",
        "non-literal-parameter",
        "file-outside",
        "link-to-etc",
        "link-away",
        "fifo",
        "secret-parameter",
        "secret-in-code",
        "surrogate",
    ],
)
def test_known_bad_notebooks_name_the_problem(
    cells: list[tuple[str, list[str]]], expected: str
) -> None:
    outcome, outside, _ = promote_in_sandbox(notebook(*cells), "out")
    assert isinstance(outcome, NbopsError), outcome
    check_error(outcome)
    assert expected in outcome.message
    assert outside == set()


def test_a_huge_cell_promotes() -> None:
    lines = "".join(f"v{i} = {i}\n" for i in range(20_000))  # 20,000 statements in one cell
    blob = f"blob = {'x' * 1_000_000!r}"  # a 1 MB literal
    cells = [("alpha = 1", ["parameters"]), (lines, ["step:big"]), (blob, [])]
    outcome, outside, _ = promote_in_sandbox(
        notebook(*cells, ("w = v1 + alpha + len(blob)", ["step:use"])), "out"
    )
    assert not isinstance(outcome, Exception), outcome
    assert [s.name for s in outcome.plan.steps] == ["big", "use"]
    assert outside == set()


def test_a_megabyte_parameter_literal_promotes() -> None:
    """A 1 MB string in the parameters cell once made promote quadratic (47 s; 2 MB > 120 s):
    every statement's text was cut out with ast.get_source_segment."""
    cells = [(f"blob = {'x' * 1_000_000!r}", ["parameters"]), ("n = len(blob)", ["step:a"])]
    outcome, outside, _ = promote_in_sandbox(notebook(*cells), "out")
    assert not isinstance(outcome, Exception), outcome
    assert len(outcome.plan.parameters["blob"]) == 1_000_000 and outside == set()


@pytest.mark.parametrize("name", ["a\nb.ipynb", "cr\r.ipynb", "tab\t.ipynb", "nel\x85.ipynb"])
def test_a_notebook_name_with_a_control_character_is_refused(name: str) -> None:
    outcome, outside, work = promote_in_sandbox(notebook(("x = 1", ["step:a"])), None, name)
    assert isinstance(outcome, NbopsError) and "control character" in outcome.message
    check_error(outcome)
    assert outside == set() and not (work / "pipelines").exists()


def test_a_crafted_manifest_cannot_make_promote_delete_files_outside(tmp_path: Path) -> None:
    """The output folder's ``.nbops-promote.json`` lists the files promote may replace or
    delete; an entry pointing outside the folder (a crafted or corrupted manifest) is ignored."""
    (tmp_path / ".dvc").mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    (tmp_path / "nb.ipynb").write_bytes(notebook(("x = 1", ["step:a"])))
    out = tmp_path / "out"
    out.mkdir()
    digest = hashlib.sha256(victim.read_bytes()).hexdigest()
    manifest = {
        "pipeline": "nb",
        "source": "../nb.ipynb",
        "nbops_version": "0.1.0",
        "split": "tags",
        "files": {"../victim.txt": digest, str(victim): digest, "steps/../../victim.txt": "0"},
    }
    (out / ".nbops-promote.json").write_text(json.dumps(manifest))
    for force in (False, True):
        promote(tmp_path / "nb.ipynb", out=out, force=force)
        assert victim.read_text() == "keep me\n"


@pytest.mark.parametrize("out", ["data/away/pipeline", "data/etc/nbops-r4"])
def test_an_output_folder_behind_a_link_out_of_the_project_is_refused(out: str) -> None:
    """Not even written and then removed: the folder behind the link never sees a file
    (promote_in_sandbox compares the outside folder before and after)."""
    outcome, outside, _ = promote_in_sandbox(notebook(("x = 1", ["step:a"])), out)
    assert isinstance(outcome, NbopsError) and "symlink" in outcome.message
    check_error(outcome)
    assert outside == set() and not Path("/etc/nbops-r4").exists()
