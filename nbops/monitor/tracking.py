"""Monitoring in MLflow: each check's numbers as metrics over time on the served version's run
(the run the model gate registered it from), and its latest status as version tags.

MLflow has no metrics on a registered version itself; its run is where the version's metrics
already are (the gate's score), so the live numbers sit beside it and plot over time. Failures
are warnings: monitoring must not fail because the store is down.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbops.monitor.result import MonitorResult
    from nbops.serve.target import Target

TAG_STATUS, TAG_AT = "nbops.monitor.status", "nbops.monitor.at"


def record(target: Target, result: MonitorResult, step: int) -> str | None:
    """Log ``result.metrics()`` at ``step`` on the version's run; its run id, or None."""
    if result.version is None or not result.rows:
        return None
    try:
        from mlflow.entities import Metric

        from nbops.store.registry_store import open_model

        with open_model(target.config, target.model, "record monitoring metrics") as model:
            run_id = model.version(result.version).run_id
            now = int(time.time() * 1000)
            metrics = [Metric(k, float(v), now, step) for k, v in result.metrics().items()]
            if run_id:
                model.call(model.client.log_batch, run_id, metrics)
            tags = {
                TAG_STATUS: result.status,
                TAG_AT: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            for key, value in tags.items():
                model.call(
                    model.client.set_model_version_tag,
                    target.model,
                    str(result.version),
                    key,
                    value,
                )
            return run_id
    except Exception as exc:
        print(f"nbops monitor: warning: metrics not recorded in MLflow: {exc}", file=sys.stderr)
        return None
