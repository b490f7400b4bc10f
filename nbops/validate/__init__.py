"""Data validation for promoted pipelines: a schema contract and a drift profile inferred from
the training data at promote time, checked against the current data by the ``validate_data``
stage (``nbops validate data``).

Modules: ``contract`` (pandera schema, ``schema.yaml``), ``profile`` (reference distributions,
``reference/profile.json``), ``drift`` (PSI/KS per feature), ``report`` (markdown, HTML, JSON),
``tracking`` (the stage's MLflow run), ``data`` (the entry points). Nothing heavy (pandas,
pandera, scipy) is imported until a function runs.
"""

from __future__ import annotations

from nbops.validate.data import DataValidation, validate_data, write_contract

__all__ = ["DataValidation", "validate_data", "write_contract"]
