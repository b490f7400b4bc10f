"""`nbops promote`: the emitted folder follows docs/pipeline-layout.md, runs from anywhere (no
absolute paths), is a DVC project DVC itself understands, and promoting again never loses a
hand edit. Real DVC through its CLI, no mocks."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_notebook

from nbops.errors import NotebookError
from nbops.promote import PromoteResult, promote

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
TRAIN_CSV = "a,target\n1,0\n2,1\n3,0\n"
THREE_STEPS = ["steps/01_load.ipynb", "steps/02_train.ipynb", "steps/03_evaluate.ipynb"]


def three_steps(folder: Path) -> Path:
    """The three-step fixture next to the data file it reads."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(NOTEBOOKS / "promote_three_steps.ipynb", folder / "wine.ipynb")
    (folder / "data").mkdir(exist_ok=True)
    (folder / "data" / "train.csv").write_text(TRAIN_CSV)
    return folder / "wine.ipynb"


def write_notebook(path: Path, *cells: tuple[str, ...]) -> Path:
    """A notebook of (source, *tags) code cells."""
    nodes = [new_code_cell(src, metadata={"tags": list(tags)}) for src, *tags in cells]
    nbformat.write(new_notebook(cells=nodes), path)
    return path


def cells(path: Path) -> list[tuple[str, list[str], str]]:
    nb = json.loads(path.read_text())
    return [
        (c["cell_type"], c["metadata"].get("tags", []), "".join(c["source"])) for c in nb["cells"]
    ]


def start_call(source: str) -> dict[str, object]:
    """The literal arguments of the load cell's ``StepRun.start(...)`` call."""
    call = ast.parse(source).body[-1].value  # type: ignore[attr-defined]
    assert ast.unparse(call.func) == "StepRun.start"
    args = [ast.literal_eval(a) for a in call.args if not isinstance(a, ast.Call)]
    kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    return {"step": args[0], **kwargs}


def dvc(args: list[str], cwd: Path) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def promoted(tmp_path_factory: pytest.TempPathFactory) -> PromoteResult:
    """One promote of the three-step notebook, shared by the tests that only read the folder."""
    return promote(three_steps(tmp_path_factory.mktemp("wine")))


def test_folder_follows_the_contract(promoted: PromoteResult) -> None:
    out = promoted.out_dir
    assert out.name == "wine" and out.parent.name == "pipelines"
    contract = ["schema.yaml", "reference/profile.json"]  # inferred from data/train.csv
    generated = [*THREE_STEPS, "params.yaml", "dvc.yaml", "README.md", ".gitignore"]
    assert promoted.written == [*contract, *generated]
    assert (out / ".nbops-promote.json").is_file()
    params = yaml.safe_load((out / "params.yaml").read_text())
    assert params.pop("gate")["evaluate"] == {  # `pred` in one cell, scored in the next
        "function": "accuracy_score",
        "model": "train/model",
        "X": "train/X_test",
        "y": "train/y_test",
        "method": "predict",
    }
    from nbops.promote.gates import MONITOR_DEFAULTS

    assert params.pop("monitor") == MONITOR_DEFAULTS  # with a model gate: what it monitors
    assert params == {
        "test_size": 0.25,
        "n_estimators": 10,
        "drift": {"psi": 0.2, "ks_pvalue": 0.05, "ks_statistic": 0.1, "share": 0.5},
    }
    assert (out / ".gitignore").read_text().splitlines()[-3:] == [
        "artifacts/",
        "reports/",
        ".nbops/",
    ]
    readme = (out / "README.md").read_text()
    assert "```mermaid" in readme and "s1 -->|X, y| s2" in readme
    assert all(cmd in readme for cmd in ("`nbops run`", "`dvc repro`", "`dvc dag`"))


def test_dvc_yaml_stages(promoted: PromoteResult) -> None:
    stages = yaml.safe_load((promoted.out_dir / "dvc.yaml").read_text())["stages"]
    assert stages == {
        "validate_data": {  # before the steps that read the data
            "cmd": "nbops validate data",
            "deps": ["data/train.csv", "schema.yaml", "reference/profile.json"],
            "params": ["drift"],
            "outs": [
                "reports/validate_data.json",
                "reports/validate_data.md",
                "reports/validate_data.html",
            ],
            "metrics": [{"metrics/validate_data.json": {"cache": False}}],
        },
        "load": {
            "cmd": "nbops step steps/01_load.ipynb",
            "deps": ["steps/01_load.ipynb", "data/train.csv", "metrics/validate_data.json"],
            "outs": ["artifacts/load"],
            "metrics": [{"metrics/load.json": {"cache": False}}],
        },
        "train": {
            "cmd": "nbops step steps/02_train.ipynb",
            "deps": ["steps/02_train.ipynb", "artifacts/load"],
            "params": ["test_size", "n_estimators"],
            "outs": ["artifacts/train"],
            "metrics": [{"metrics/train.json": {"cache": False}}],
        },
        "evaluate": {  # saves nothing later steps read: no outs; every step reports metrics
            "cmd": "nbops step steps/03_evaluate.ipynb",
            "deps": ["steps/03_evaluate.ipynb", "artifacts/train"],
            "metrics": [{"metrics/evaluate.json": {"cache": False}}],
        },
        "validate_model": {  # scores train's model on train's holdout, as evaluate does
            "cmd": "nbops validate model",
            "deps": ["artifacts/train", "metrics/evaluate.json"],
            "params": ["gate"],
            "metrics": [{"metrics/validate_model.json": {"cache": False}}],
            "always_changed": True,
        },
    }


def test_step_notebook_cells_are_tagged_by_owner(promoted: PromoteResult) -> None:
    train = cells(promoted.out_dir / "steps/02_train.ipynb")
    assert [tags for _, tags, _ in train] == [
        ["nbops-generated"],
        ["parameters"],
        ["nbops-setup"],
        ["nbops-load"],
        ["nbops-step"],
        ["nbops-save"],
    ]
    assert train[0][0] == "markdown" and "Step 2 of 3" in train[0][2]
    assert train[1][2] == "test_size = 0.25\nn_estimators = 10"
    assert train[2][2].startswith("import pandas as pd")
    assert start_call(train[3][2]) == {
        "step": "train",
        "inputs": {"X": "load", "y": "load"},
        "outputs": ["X_test", "model", "y_test"],
        "params": ["test_size", "n_estimators"],
        "metrics": [],
    }
    assert train[4][2].startswith("X_train, X_test, y_train, y_test = train_test_split(")
    assert train[5][2] == "_nbops_step.finish(globals())"


def test_each_step_gets_only_its_parameters_and_its_own_cells(promoted: PromoteResult) -> None:
    load = cells(promoted.out_dir / "steps/01_load.ipynb")
    evaluate = cells(promoted.out_dir / "steps/03_evaluate.ipynb")
    assert not ast.parse(evaluate[1][2]).body  # a comment: evaluate uses no parameter
    step_sources = [src for _, tags, src in load if tags == ["nbops-step"]]
    assert "# Three steps\nA tiny tagged pipeline." in step_sources  # markdown kept
    assert not any("describe()" in src for _, _, src in load)  # skip-tagged cell left out
    load_cell = next(src for _, tags, src in evaluate if tags == ["nbops-load"])
    assert start_call(load_cell)["metrics"] == ["accuracy"]
    assert "accuracy = accuracy_score(y_test, pred)" in [src for _, _, src in evaluate]


def test_papermill_sees_exactly_the_step_parameters(promoted: PromoteResult) -> None:
    import papermill

    found = papermill.inspect_notebook(str(promoted.out_dir / "steps/02_train.ipynb"))
    assert list(found) == ["test_size", "n_estimators"]
    assert papermill.inspect_notebook(str(promoted.out_dir / "steps/03_evaluate.ipynb")) == {}


def test_no_absolute_paths_in_generated_files(promoted: PromoteResult) -> None:
    out = promoted.out_dir
    texts = {rel: (out / rel).read_text() for rel in [*promoted.written, ".nbops-promote.json"]}
    texts["data/train.csv.dvc"] = (out / "data/train.csv.dvc").read_text()
    roots = {str(out.parents[1]), str(out.parents[1].resolve()), str(Path.home())}
    assert not [rel for rel, text in texts.items() for root in roots if root in text]
    manifest = json.loads(texts[".nbops-promote.json"])
    assert manifest["source"] == "../../wine.ipynb" and manifest["pipeline"] == "wine"
    assert all(not Path(p).is_absolute() for p in [*manifest["files"], *manifest["data"]])


def test_dvc_init_no_scm_outside_git_and_dvc_reads_the_dag(promoted: PromoteResult) -> None:
    out = promoted.out_dir
    assert "no_scm = True" in (out / ".dvc" / "config").read_text()
    assert any("dvc init --no-scm" in note for note in promoted.notes)
    dag = dvc(["dag"], out)
    assert all(stage in dag for stage in ("load", "train", "evaluate", "data/train.csv.dvc"))
    assert (out / "data/train.csv").read_text() == TRAIN_CSV
    assert promoted.data == ["data/train.csv"]
    tracked = yaml.safe_load((out / "data/train.csv.dvc").read_text())
    assert tracked["outs"][0]["path"] == "train.csv"


def test_promote_again_changes_nothing(tmp_path: Path) -> None:
    first = promote(three_steps(tmp_path))
    stamps = {p: p.stat().st_mtime_ns for p in first.out_dir.rglob("*") if p.is_file()}
    again = promote(tmp_path / "wine.ipynb")
    assert again.written == [] and again.removed == []
    assert again.unchanged == first.written
    assert {p: p.stat().st_mtime_ns for p in first.out_dir.rglob("*") if p.is_file()} == stamps
    assert any("already up to date" in note for note in again.notes)


def test_hand_edit_is_refused_then_forced(tmp_path: Path) -> None:
    result = promote(three_steps(tmp_path))
    train = result.out_dir / "steps/02_train.ipynb"
    generated = train.read_text()
    train.write_text(generated.replace("random_state=0", "random_state=1"))
    (tmp_path / "data/train.csv").write_text(TRAIN_CSV + "4,1\n")  # must not be copied either
    with pytest.raises(NotebookError) as refused:
        promote(tmp_path / "wine.ipynb")
    assert "steps/02_train.ipynb" in str(refused.value)
    assert "--force" in refused.value.fix and "source notebook" in refused.value.fix
    assert refused.value.files == ["steps/02_train.ipynb"]
    assert "random_state=1" in train.read_text()  # nothing was touched
    assert (result.out_dir / "data/train.csv").read_text() == TRAIN_CSV
    forced = promote(tmp_path / "wine.ipynb", force=True)
    # the new data row changes the reference profile (the data contract is inferred again)
    assert forced.written == ["reference/profile.json", "steps/02_train.ipynb"]
    assert train.read_text() == generated
    assert (result.out_dir / "data/train.csv").read_text() == TRAIN_CSV + "4,1\n"


def test_files_of_a_removed_step_are_deleted(tmp_path: Path) -> None:
    nb = write_notebook(tmp_path / "nb.ipynb", ("x = 1", "step:make"), ("y = x + 1", "step:use"))
    out = promote(nb).out_dir
    write_notebook(nb, ("x = 1", "step:make"), ("z = x + 2", "step:twice"))
    result = promote(nb)
    assert result.removed == ["steps/02_use.ipynb"]
    assert sorted(p.name for p in (out / "steps").iterdir()) == ["01_make.ipynb", "02_twice.ipynb"]
    assert "twice" in yaml.safe_load((out / "dvc.yaml").read_text())["stages"]


def test_files_promote_did_not_write_are_not_overwritten(tmp_path: Path) -> None:
    nb = write_notebook(tmp_path / "nb.ipynb", ("x = 1", "step:make"))
    (tmp_path / "README.md").write_text("my project\n")
    with pytest.raises(NotebookError, match=r"did not write: README\.md"):
        promote(nb, out=tmp_path)
    assert (tmp_path / "README.md").read_text() == "my project\n"
    assert not (tmp_path / "dvc.yaml").exists()


def test_track_magic_and_load_ext_are_not_copied(tmp_path: Path) -> None:
    nb = write_notebook(
        tmp_path / "nb.ipynb",
        ("%load_ext nbops\nimport math", "setup"),
        ("%%track\nx = math.sqrt(4)", "step:root"),
    )
    result = promote(nb)
    sources = [src for _, _, src in cells(result.out_dir / "steps/01_root.ipynb")]
    assert "import math" in sources and "x = math.sqrt(4)" in sources
    assert not [src for src in sources if "%%track" in src or "load_ext" in src]


def test_data_outside_the_notebook_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "shared.csv").write_text("a\n1\n")
    (tmp_path / "project").mkdir()
    nb = write_notebook(
        tmp_path / "project/nb.ipynb", ("t = open('../shared.csv').read()", "step:read")
    )
    with pytest.raises(NotebookError, match=r"reads \.\./shared\.csv") as refused:
        promote(nb)
    assert "move the file into the notebook's folder" in refused.value.fix
    assert not (tmp_path / "project/pipelines").exists()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_inside_a_git_repository_dvc_init_runs_at_its_root(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "notebooks").mkdir()
    nb = write_notebook(tmp_path / "notebooks/nb.ipynb", ("x = 1", "step:make"))
    result = promote(nb)
    assert (tmp_path / ".dvc").is_dir() and not (result.out_dir / ".dvc").exists()
    assert "no_scm" not in (tmp_path / ".dvc" / "config").read_text()
    assert "make" in dvc(["dag"], result.out_dir)
