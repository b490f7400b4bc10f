"""The outcome of one data validation: what the CLI prints, the reports show and the run records."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Literal

from nbops.validate.contract import Problem
from nbops.validate.drift import DriftThresholds, FeatureDrift

Status = Literal["passed", "drift", "failed"]


@dataclass
class DataValidation:
    """``status``: "failed" on schema problems (drift is then not measured), "drift" when the
    share of drifted features reaches ``thresholds.share``, else "passed"."""

    status: Status
    files: list[str]
    problems: list[Problem] = field(default_factory=list)
    drift: list[FeatureDrift] = field(default_factory=list)
    drift_share: float = 0.0
    thresholds: DriftThresholds = field(default_factory=DriftThresholds)
    reports: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> list[FeatureDrift]:
        return [f for f in self.drift if f.drifted]

    def feature_name(self, feature: FeatureDrift) -> str:
        """The column, prefixed by its file's stem when several files are validated."""
        if len(self.files) <= 1:
            return feature.column
        return f"{PurePosixPath(feature.file).stem}.{feature.column}"

    def metrics(self) -> dict[str, float]:
        """Flat numbers for ``metrics/validate_data.json`` (DVC) and the MLflow run."""
        values: dict[str, float] = {
            "schema_problems": float(len(self.problems)),
            "drift_share": self.drift_share,
            "drifted_features": float(len(self.drifted)),
            "psi_max": max((f.psi for f in self.drift), default=0.0),
        }
        for feature in self.drift:
            values[f"psi.{self.feature_name(feature)}"] = feature.psi
        return values

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "files": self.files,
            "problems": [p.to_dict() for p in self.problems],
            "drift": [f.to_dict() for f in self.drift],
            "drift_share": self.drift_share,
            "thresholds": self.thresholds.to_dict(),
            "metrics": self.metrics(),
            "reports": self.reports,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    def _repr_markdown_(self) -> str:
        """In a notebook, ``validate_data(folder)`` shows the markdown report."""
        from nbops.validate.report import markdown

        return markdown(self)
