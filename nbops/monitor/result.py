"""The outcome of one monitoring check: what the CLI prints, the reports show, MLflow records
and the retrain trigger reads."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from nbops.monitor.config import MonitorConfig
from nbops.validate.drift import DriftThresholds, FeatureDrift

DRIFT, PERFORMANCE = "drift", "performance"


@dataclass
class LiveMetric:
    """The champion's metric on the served rows whose true labels came back."""

    metric: str
    value: float | None
    labels: int
    gate_score: float | None  # the same metric on the gate's holdout
    bound: float | None  # worse than this is degraded (threshold or gate score - max_drop)
    greater_is_better: bool
    degraded: bool = False
    note: str = ""


@dataclass
class Trigger:
    """A reason to retrain: ``name`` is ``drift`` or ``performance``."""

    name: str
    reason: str


@dataclass
class MonitorResult:
    model: str
    version: int | None
    rows: int = 0
    requests: int = 0
    start: float | None = None
    end: float | None = None
    reference: str = ""  # where the reference came from
    drift: list[FeatureDrift] = field(default_factory=list)
    drift_share: float = 0.0
    dataset_drift: bool = False
    prediction: FeatureDrift | None = None
    live: LiveMetric | None = None
    triggers: list[Trigger] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    thresholds: DriftThresholds = field(default_factory=DriftThresholds)
    config: MonitorConfig = field(default_factory=MonitorConfig)
    reports: list[str] = field(default_factory=list)
    run_id: str | None = None  # the version's run that got the metrics

    @property
    def status(self) -> str:
        if self.version is None or not self.rows:
            return "no data"
        problems = []
        if self.dataset_drift or (self.prediction is not None and self.prediction.drifted):
            problems.append("drift")
        if self.live is not None and self.live.degraded:
            problems.append("degraded")
        return ", ".join(problems) or "ok"

    @property
    def drifted(self) -> list[FeatureDrift]:
        return [f for f in self.drift if f.drifted]

    def metrics(self) -> dict[str, float]:
        """Flat numbers for MLflow (``monitor.*`` on the version's run) and the JSON report."""
        values: dict[str, float] = {
            "monitor.rows": float(self.rows),
            "monitor.drift_share": self.drift_share,
            "monitor.drifted_features": float(len(self.drifted)),
            "monitor.psi_max": max((f.psi for f in self.drift), default=0.0),
        }
        values.update({f"monitor.psi.{f.column}": f.psi for f in self.drift})
        if self.prediction is not None:
            values["monitor.prediction_psi"] = self.prediction.psi
        if self.live is not None and self.live.value is not None:
            values[f"monitor.live.{self.live.metric}"] = self.live.value
            values["monitor.labels"] = float(self.live.labels)
        return values

    def window(self) -> str:
        if self.start is None or self.end is None:
            return "no requests"
        return f"{_time(self.start)} to {_time(self.end)}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(status=self.status, metrics=self.metrics(), window=self.window())
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, default=str)

    def text(self) -> str:
        from nbops.monitor.report import cli_text

        return cli_text(self)

    def _repr_html_(self) -> str:
        from nbops.monitor.report import html

        return html(self, page=False)

    def __repr__(self) -> str:
        return self.text()


def _time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
