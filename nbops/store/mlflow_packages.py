"""MLflow's map of installed packages, filled from nbops' copy on disk.

The first time a process saves a model, MLflow maps every module to the distributions providing
it (to warn when a pinned requirement is not installed): ``packages_distributions()``, 0.3-1 s
of CPU in each process that logs a model (every pipeline run's delivery, a headless kernel).
nbops keeps that same map on disk per environment (:mod:`nbops.distributions`). :func:`prime`
runs MLflow's own initialisation with the map read from there, so what MLflow adds to it (its
extras, Databricks' scoping) stays MLflow's. It relies on two private names of
``mlflow.utils.requirements_utils``; if they move, MLflow computes the map itself, as before.
"""

from __future__ import annotations

import contextlib
from types import ModuleType
from typing import Any


class _Metadata:
    """``importlib_metadata`` whose ``packages_distributions`` answers from nbops' cache."""

    def __init__(self, real: ModuleType) -> None:
        self._real = real

    def packages_distributions(self) -> dict[str, list[str]]:
        from nbops.distributions import installed

        return {module: list(dists) for module, dists in installed().items()}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def prime() -> None:
    """Fill MLflow's map now (a no-op once filled); never fails: a model saved later fills it
    the slow way."""
    try:
        from mlflow.utils import requirements_utils as utils
    except Exception:
        return
    if getattr(utils, "_PACKAGES_TO_MODULES", None) is not None:
        return
    real = getattr(utils, "importlib_metadata", None)
    unmapped = "_MODULES_TO_PACKAGES" in vars(utils) and utils._MODULES_TO_PACKAGES is None
    if isinstance(real, ModuleType) and unmapped:
        utils.importlib_metadata = _Metadata(real)  # type: ignore[assignment]
        try:
            with contextlib.suppress(Exception):
                utils._init_packages_to_modules_map()  # type: ignore[no-untyped-call]
        finally:
            utils.importlib_metadata = real
    if getattr(utils, "_PACKAGES_TO_MODULES", None) is None:
        with contextlib.suppress(Exception):
            utils._init_packages_to_modules_map()  # type: ignore[no-untyped-call]
