"""Finding the files a notebook reads the way Python finds them: path expressions constant-folded
over the cells run before them, and every data-reading call reported, resolved or not."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from nbops.errors import NotebookError
from nbops.notebook.dataflow import infer_dataflow
from nbops.notebook.folding import UNKNOWN, fold
from nbops.notebook.parse import parse_notebook
from nbops.notebook.paths import cell_paths
from nbops.notebook.plan import Plan


def reads(*cells: str) -> list[tuple[str, str | None]]:
    """(call, resolved path) of every data-reading call, cells run in order."""
    env: dict = {}
    found = []
    for source in cells:
        found += [(r.call, r.text) for r in cell_paths(ast.parse(source), source, env).reads]
    return found


SETUP = 'import os\nfrom pathlib import Path\nDATA = "data/"\nROOT = Path("data")'


@pytest.mark.parametrize(
    ("code", "path"),
    [
        ('pd.read_csv(DATA + "train.csv")', "data/train.csv"),  # concatenation
        ('pd.read_csv(f"{DATA}train.csv")', "data/train.csv"),  # f-string
        ('pd.read_csv(os.path.join(DATA, "train.csv"))', "data/train.csv"),
        ('pd.read_csv(ROOT / "train.csv")', "data/train.csv"),  # pathlib
        ('pd.read_csv("{}/{}".format("data", "train.csv"))', "data/train.csv"),
        ('pd.read_csv("{d}{f}".format(d=DATA, f="train.csv"))', "data/train.csv"),
        ('pd.read_csv(Path.cwd() / "data" / "train.csv")', "data/train.csv"),
        (
            'pd.read_csv(os.path.abspath(os.path.join(os.getcwd(), "data/train.csv")))',
            "data/train.csv",
        ),
        ('pd.read_parquet(ROOT.joinpath("x.parquet"))', "data/x.parquet"),
        ('np.load(str(ROOT / "arr.npy"))', "data/arr.npy"),
        ('pd.read_csv("%s/train.csv" % "data")', "data/train.csv"),
    ],
)
def test_path_expressions_fold_across_cells(code: str, path: str) -> None:
    ((call, found),) = reads(SETUP, f"df = {code}")
    assert found == path and code.startswith(call.removesuffix("..."))


def test_names_loops_dicts_and_reassignments_fold() -> None:
    code = (
        'path = DATA\npath += "a.csv"\na = pd.read_csv(path)\n'
        'files = {"train": ROOT / "t.csv"}\nt = pd.read_csv(files["train"])\n'
        'for name in ["x.csv", "y.csv"]:\n    frames.append(pd.read_csv(ROOT / name))\n'
        "path = compute()\nb = pd.read_csv(path)\n"
    )
    assert [p for _, p in reads(SETUP, code)] == [
        "data/a.csv",
        "data/t.csv",
        "data/x.csv",
        "data/y.csv",
        None,  # reassigned to something computed: not followed, reported as unresolved
    ]


def test_file_handles_buffers_writes_and_urls() -> None:
    code = (
        'with open(DATA + "q.json") as f:\n    q = json.load(f)\n'
        "r = pd.read_csv(f)\nbuf = io.StringIO(text)\ns = pd.read_csv(buf)\n"
        'open("out.txt", "w").write("x")\nu = pd.read_csv("https://example.org/a.csv")\n'
    )
    assert reads(SETUP, code) == [
        ('open(DATA + "q.json")', "data/q.json"),
        ('pd.read_csv("https://example.org/a.csv")', "https://example.org/a.csv"),
    ]


def test_a_function_reading_a_parameter_is_reported_unresolved() -> None:
    code = "def load(name):\n    return pd.read_csv(DATA + name)\ndf = load('train.csv')"
    assert reads(SETUP, code) == [("pd.read_csv(DATA + name)", None)]


@pytest.mark.parametrize(
    "expression",
    ["x.name", "'a' * 10**9", "'{0.__class__}'.format(1)", "f'{x:99999999}'", "Path(x)"],
)
def test_what_cannot_be_known_or_would_cost_too_much_stays_unknown(expression: str) -> None:
    assert fold(ast.parse(expression, mode="eval").body, {"x": UNKNOWN}) is UNKNOWN


def plan_of(tmp_path: Path, *cells: tuple[str, ...], files: tuple[str, ...] = ()) -> Plan:
    for rel in files:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("a,b\n1,2\n")
    nodes = [new_code_cell(src, metadata={"tags": list(tags)}) for src, *tags in cells]
    nbformat.write(new_notebook(cells=nodes), tmp_path / "nb.ipynb")
    return infer_dataflow(parse_notebook(tmp_path / "nb.ipynb"))


def test_a_folder_constant_of_an_earlier_step_finds_the_file(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        ('DATA = "data"', "step:config"),
        ("import pandas as pd\ndf = pd.read_csv(f'{DATA}/train.csv')", "step:load"),
        files=("data/train.csv",),
    )
    assert plan.step("load").files == ["data/train.csv"]
    assert plan.step("config").files == []  # the constant alone is not a read
    (read,) = plan.data_reads
    assert (read.step, read.path, read.file) == ("load", "data/train.csv", "data/train.csv")


def test_parameters_fold_into_paths(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        ('data_dir = "data"', "parameters"),
        ("import pandas as pd\ndf = pd.read_csv(data_dir + '/train.csv')", "step:load"),
        files=("data/train.csv",),
    )
    assert plan.step("load").files == ["data/train.csv"]


def test_a_data_tag_adds_the_file_promote_cannot_work_out(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        ("import pandas as pd\nlocate = 'data/{}.csv'.format", "setup"),
        ("df = pd.read_csv(locate('t'))", "step:load", "data:data/t.csv"),
        files=("data/t.csv",),
    )
    assert plan.step("load").files == ["data/t.csv"]
    with pytest.raises(NotebookError, match="names no file") as err:
        plan_of(tmp_path, ("x = 1", "step:load", "data:data/missing.csv"))
    assert "data:data/train.csv" in (err.value.fix or "")
