"""Notebooks written the way people write them keep both Level 1 gates: one fixture per pattern
(tests/notebooks/gates_*.ipynb), each promoted with the data gate and the model gate attached and
run green with real DVC, papermill kernels and a SQLite MLflow store.

The data paths are built a different way in each fixture (a folder constant from an earlier
cell + concatenation, an f-string, os.path.join, pathlib `/` from Path.cwd(), str.format with
a parameter); the scoring is split across cells, wrapped in round(... * 100), done in a loop over
models with the best one picked, read from a classification_report, cross-validated, or printed
by Kale's pipeline-metrics. One promote and one run per fixture; the many variants of the
analysis are unit tests (tests/unit/test_evaluation.py, test_paths.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from nbops import registry
from nbops.cli import main
from nbops.config import Config
from nbops.pipeline.run import run_pipeline

pytestmark = pytest.mark.kernel
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

# fixture -> (split, the gate's metric, its function, steps)
PATTERNS = {
    "gates_split_scoring": ("tags", "accuracy", "accuracy_score", ["train", "evaluate"]),
    "gates_round_score": ("headings", "acc", "score", ["load_the_data", "train_and_score"]),
    "gates_model_loop": ("tags", "f1", "f1_score", ["load", "compare"]),
    "gates_classification_report": ("tags", "f1_macro", "f1_score", ["train", "report"]),
    "gates_cross_val": ("tags", "cv_accuracy", "cross_val_score", ["load", "cross_validate"]),
    "gates_kale_metrics": ("tags", "acc_tree", "score", ["loaddata", "knn", "tree"]),
}


def wine_data(folder: Path) -> None:
    from sklearn.datasets import load_wine

    (folder / "data").mkdir(exist_ok=True)
    load_wine(as_frame=True).frame.to_csv(folder / "data" / "wine.csv", index=False)


@pytest.mark.parametrize("fixture", list(PATTERNS))
def test_pattern_keeps_both_gates_and_runs_green(
    fixture: str, project: Path, config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    split, metric, function, steps = PATTERNS[fixture]
    shutil.copy(NOTEBOOKS / f"{fixture}.ipynb", project)
    wine_data(project)

    assert main(["promote", f"{fixture}.ipynb", "--split", split]) == 0
    out = capsys.readouterr().out
    assert "no validate_" not in out, out  # neither gate was left out
    folder = project / "pipelines" / fixture
    stages = list(yaml.safe_load((folder / "dvc.yaml").read_text())["stages"])
    assert stages == ["validate_data", *steps, "validate_model"]
    assert "wine.csv" in (folder / "schema.yaml").read_text()
    gate = yaml.safe_load((folder / "params.yaml").read_text())["gate"]
    assert (gate["metric"], gate["evaluate"]["function"]) == (metric, function)

    lines: list[str] = []
    result = run_pipeline(folder, echo=lines.append)
    log = "\n".join(lines)
    assert result.status == "FINISHED", log
    assert result.step("validate_data").state == "ran"
    assert result.step("validate_model").state == "ran"
    report = json.loads((folder / "reports" / "validate_model.json").read_text())
    assert report["passed"] and report["metric"] == metric, report
    assert report["candidate"] > 0
    (version,) = registry.list_versions(config, fixture)
    assert "champion" in version.aliases
