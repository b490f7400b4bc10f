"""Golden files: what `nbops promote` emits for the fixture notebooks, byte for byte.

A change to the emitted pipeline shows up here as a reviewable diff of tests/golden/<fixture>/
(dvc.yaml, params.yaml, README.md, .gitignore and steps.json: each step notebook's cells as
type, tags and source). After an intended change, regenerate them and review the diff:

    NBOPS_UPDATE_GOLDEN=1 .venv/bin/pytest tests/integration/test_promote_golden.py
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from nbops.promote import PromoteResult, promote

TESTS = Path(__file__).resolve().parents[1]
GOLDEN = TESTS / "golden"
TEXT_FILES = ("dvc.yaml", "params.yaml", "README.md", ".gitignore")
FIXTURES = {  # fixture -> promote's split, and the data files it reads
    "promote_three_steps": ("tags", {"data/train.csv": "a,target\n1,0\n2,1\n3,0\n"}),
    "promote_kale_style": ("tags", {}),
    "promote_no_tags": ("headings", {}),
}


def steps_json(result: PromoteResult) -> str:
    """The step notebooks normalized to what matters: each cell's type, tags and source."""
    notebooks = {}
    for rel in sorted(p for p in result.written if p.startswith("steps/")):
        nb = json.loads((result.out_dir / rel).read_text())
        notebooks[rel] = [
            {
                "cell_type": cell["cell_type"],
                "tags": cell["metadata"].get("tags", []),
                "source": "".join(cell["source"]),
            }
            for cell in nb["cells"]
        ]
    files = sorted(result.written)
    return json.dumps({"files": files, "notebooks": notebooks}, indent=1) + "\n"


@pytest.mark.parametrize("fixture", list(FIXTURES))
def test_promote_matches_golden_files(fixture: str, tmp_path: Path) -> None:
    split, data = FIXTURES[fixture]
    shutil.copy(TESTS / "notebooks" / f"{fixture}.ipynb", tmp_path / f"{fixture}.ipynb")
    for rel, text in data.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    result = promote(tmp_path / f"{fixture}.ipynb", split=split)
    actual = {name: (result.out_dir / name).read_text() for name in TEXT_FILES}
    actual["steps.json"] = steps_json(result)

    golden = GOLDEN / fixture
    if os.environ.get("NBOPS_UPDATE_GOLDEN") == "1":
        golden.mkdir(parents=True, exist_ok=True)
        for name, text in actual.items():
            (golden / name).write_text(text)
    missing = [name for name in actual if not (golden / name).is_file()]
    assert not missing, f"no golden {missing} in {golden}: run with NBOPS_UPDATE_GOLDEN=1"
    for name, text in actual.items():
        assert text == (golden / name).read_text(), (
            f"{fixture}/{name} differs from its golden file "
            "(if intended: NBOPS_UPDATE_GOLDEN=1, then review the diff)"
        )
