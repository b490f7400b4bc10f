"""The wheel ships what an installed nbops needs: every subpackage and the promote templates
(the repo-root templates/ folder, installed as nbops.templates), and promote works from it.

The packages are listed by hand in pyproject.toml (the templates mapping rules out automatic
discovery), so this test is what catches a new subpackage left out of the list.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the sources (the build never writes into the checkout)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("nbops", "templates", "jupyter-config"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"), "."],
        cwd=src,
        check=True,
        capture_output=True,
    )
    (built,) = (tmp / "dist").glob("nbops-*.whl")
    return built


def test_wheel_holds_the_templates_and_every_package(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = {p.name for p in (ROOT / "templates").glob("*.j2")}
    assert templates and {f"nbops/templates/{t}" for t in templates} <= names
    packages = {
        p.parent.relative_to(ROOT).as_posix()
        for p in (ROOT / "nbops").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    missing = [p for p in sorted(packages) if f"{p}/__init__.py" not in names]
    assert not missing, f"add {missing} (dotted) to packages in pyproject.toml"
    assert {"nbops/widgets/static/widgets.js", "nbops/widgets/static/widgets.css"} <= names
    # JupyterLab's default for saving widget state with the notebook (reopened widgets)
    override = "nbops-0.1.0.data/data/share/jupyter/lab/settings/overrides.d/nbops.json"
    assert override in names


def test_promote_runs_from_the_installed_wheel(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    nb = new_notebook(cells=[new_code_cell("x = 1", metadata={"tags": ["step:make"]})])
    nbformat.write(nb, tmp_path / "nb.ipynb")
    script = (
        "import nbops.promote.templates as t; from nbops.promote import promote\n"
        "print(t.templates_root()); print(promote('nb.ipynb').out_dir)"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "DVC_NO_ANALYTICS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    root, out = done.stdout.splitlines()
    assert str(site / "nbops" / "templates") in root  # read from the wheel, not the checkout
    assert (Path(out) / "dvc.yaml").read_text().count("nbops step steps/01_make.ipynb") == 1
