"""MLflow's installed-packages map (used when a model is saved) comes from nbops' disk copy:
the same map MLflow computes, without scanning every installed file in each process."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.utils import requirements_utils as utils

from nbops import distributions
from nbops.store import mlflow_packages


@pytest.fixture
def empty(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that has not saved a model yet."""
    monkeypatch.setattr(utils, "_MODULES_TO_PACKAGES", None)
    monkeypatch.setattr(utils, "_PACKAGES_TO_MODULES", None)


def _mlflows_own() -> dict[str, set[str]]:
    utils._init_packages_to_modules_map()
    return {module: set(dists) for module, dists in utils._MODULES_TO_PACKAGES.items()}


def test_the_map_is_mlflows_without_a_scan(
    empty: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NBOPS_CACHE_DIR", str(tmp_path))
    distributions.installed()  # an earlier process (a kernel, a stage) wrote the disk copy
    own = _mlflows_own()
    monkeypatch.setattr(utils, "_MODULES_TO_PACKAGES", None)
    monkeypatch.setattr(utils, "_PACKAGES_TO_MODULES", None)
    real = utils.importlib_metadata

    def scan() -> None:
        raise AssertionError("MLflow scanned the installed packages itself")

    monkeypatch.setattr(real, "packages_distributions", scan)
    mlflow_packages.prime()
    primed = {module: set(dists) for module, dists in utils._MODULES_TO_PACKAGES.items()}
    assert primed == own
    assert utils._PACKAGES_TO_MODULES["scikit-learn"] == "sklearn"
    assert primed["mlflow.gateway"] == {"mlflow[gateway]"}  # MLflow's own additions stay
    assert utils.importlib_metadata is real  # put back


def test_a_filled_map_is_left_alone(empty: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(utils, "_MODULES_TO_PACKAGES", {"x": ["y"]})
    monkeypatch.setattr(utils, "_PACKAGES_TO_MODULES", {"y": "x"})
    mlflow_packages.prime()
    assert utils._PACKAGES_TO_MODULES == {"y": "x"}


def test_a_moved_private_name_falls_back_to_mlflow(
    empty: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If MLflow stops importing ``importlib_metadata`` under that name, it maps the packages
    itself: slower, never wrong."""
    monkeypatch.delattr(utils, "importlib_metadata")
    monkeypatch.setattr(
        utils, "_init_modules_to_packages_map",
        lambda: setattr(utils, "_MODULES_TO_PACKAGES", {"sklearn": ["scikit-learn"]}),
    )  # fmt: skip
    mlflow_packages.prime()
    assert utils._PACKAGES_TO_MODULES == {"scikit-learn": "sklearn"}
