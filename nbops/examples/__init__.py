"""Example notebooks shipped with nbops (the demo, tests, benchmarks and the course use them)."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

WINE_TRACKED = "wine_tracked.ipynb"
WINE_PIPELINE = "wine_pipeline.ipynb"
FANOUT_PIPELINE = "fanout_pipeline.ipynb"


def copy_example(name: str, folder: Path) -> Path:
    """Copy the example notebook ``name`` into ``folder``; works from a wheel too."""
    with resources.as_file(resources.files(__name__).joinpath(name)) as path:
        return Path(shutil.copyfile(path, folder / name))


def write_wine_project(folder: Path) -> Path:
    """A small project: the tagged wine notebook and its data (``data/wine.csv``, from
    scikit-learn's bundled dataset, so nothing is downloaded). Returns the notebook's path."""
    from sklearn.datasets import load_wine

    (folder / "data").mkdir(parents=True, exist_ok=True)
    load_wine(as_frame=True).frame.to_csv(folder / "data" / "wine.csv", index=False)
    return copy_example(WINE_PIPELINE, folder)


def write_fanout_project(folder: Path) -> Path:
    """The five-model fan-out/fan-in notebook and its data (``data/cancer.csv``, scikit-learn's
    bundled breast-cancer set). Returns the notebook's path."""
    from sklearn.datasets import load_breast_cancer

    (folder / "data").mkdir(parents=True, exist_ok=True)
    load_breast_cancer(as_frame=True).frame.to_csv(folder / "data" / "cancer.csv", index=False)
    return copy_example(FANOUT_PIPELINE, folder)
