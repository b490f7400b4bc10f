"""The layers of ARCHITECTURE.md hold: import-linter's contract (pyproject.toml) passes on nbops
and fails when a module imports from a layer above it; no import circle joins two concepts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

pytestmark = pytest.mark.skipif(
    not LINT_IMPORTS.exists(), reason="import-linter is not installed (pip install -e .[test])"
)


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports on the ``nbops`` package under ``root``, with ``root``'s pyproject.toml."""
    env = {**os.environ, "PYTHONPATH": str(root)}  # ahead of the installed (editable) nbops
    return subprocess.run(
        [str(LINT_IMPORTS), str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(REPO / "nbops", root / "nbops", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_layer_contract_holds() -> None:
    done = _lint(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout


def test_an_import_from_a_higher_layer_breaks_the_contract(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    record = root / "nbops" / "record.py"  # the foundation's data model
    record.write_text(record.read_text() + "\nfrom nbops.commands import runs  # noqa\n")
    done = _lint(root)
    assert done.returncode != 0
    assert "nbops.record is not allowed to import nbops.commands" in done.stdout


def test_a_lazy_import_counts_and_a_type_checking_one_does_not(tmp_path: Path) -> None:
    """An import inside a function still runs (it counts); one under TYPE_CHECKING never does."""
    root = _copy(tmp_path)
    spool = root / "nbops" / "store" / "spool.py"
    text = spool.read_text()
    typed = "\nif typing.TYPE_CHECKING:\n    from nbops.session import Session  # noqa\n"
    spool.write_text(text + "\nimport typing\n" + typed)
    assert _lint(root).returncode == 0
    spool.write_text(text + "\n\ndef _later():\n    from nbops.session import Session  # noqa\n")
    done = _lint(root)
    assert done.returncode != 0
    assert "nbops.store is not allowed to import nbops.session" in done.stdout
    assert "nbops.store.spool -> nbops.session" in done.stdout


def test_no_import_circle_joins_two_concepts() -> None:
    """Circles inside one package (hashing's frames and values) are one concept's business;
    a circle through two packages or root modules would make the layers meaningless."""
    import grimp

    graph = grimp.build_graph("nbops", cache_dir=None, exclude_type_checking_imports=True)
    concept = {m: ".".join(m.split(".")[:2]) for m in graph.modules}
    crossing = []
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            if concept[module] != concept[imported] and graph.chain_exists(
                importer=imported, imported=module
            ):
                crossing.append(f"{module} -> {imported} -> ... -> {module}")
    assert not crossing, "\n".join(sorted(crossing))
