"""The check itself: the rows the served version answered, against its reference.

The window is the current stint of the version that answers now (from the first request it
answered after any other version did), restricted to requests after the last retrain this
monitor triggered for it, so one drift does not retrain twice. Input drift and prediction drift
use :mod:`nbops.validate.drift` (PSI on the reference's bins, KS against its sample); the live
metric is the gate's metric on the rows whose labels came back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nbops.monitor.config import MonitorConfig
from nbops.monitor.result import DRIFT, PERFORMANCE, LiveMetric, MonitorResult, Trigger
from nbops.serve import reference as ref
from nbops.validate import drift as drifts

if TYPE_CHECKING:
    from nbops.serve.logread import Served
    from nbops.serve.target import Target


def check(
    target: Target,
    config: MonitorConfig,
    thresholds: drifts.DriftThresholds,
    since: Callable[[int | None], float] = lambda version: 0.0,
    days: int | None = None,
) -> MonitorResult:
    """Monitor ``target``'s request log (no MLflow unless the reference is not cached yet)."""
    from nbops.serve import logread

    now = time.time()
    days = days or config.window_days
    start = since(logread.latest_version(target.log_dir, days, now))
    served = logread.served(target.log_dir, days, now, start)
    result = MonitorResult(target.model, served.version, thresholds=thresholds, config=config)
    result.rows, result.requests = served.rows, served.requests
    result.start, result.end = served.start, served.end
    if served.skipped:
        result.notes.append(f"{served.skipped} request(s) could not be read and were skipped")
    if served.version is None or not served.rows:
        where = "since the last retrain it triggered" if start else f"in the last {days} day(s)"
        result.notes.append(
            f"no request answered {where} (log: {target.log_dir}); `nbops serve "
            f"{target.argument}` logs what it serves"
        )
        return result
    reference = ref.cached(target, served.version) or ref.fetch(target, served.version)
    _drift(result, served, reference, target)
    if reference is not None:
        result.live = _live(served, reference, config)
    _triggers(result, config, start)
    return result


def _drift(
    result: MonitorResult, served: Served, reference: ref.Reference | None, target: Target
) -> None:
    thresholds = result.thresholds
    if reference is not None:
        profiles, source = reference.inputs, f"the gate holdout of v{reference.version}"
    else:
        profiles, source = _pipeline_profile(target), "the pipeline's reference/profile.json"
        result.notes.append(
            f"v{served.version} has no serving reference (registered by hand or by an older "
            f"nbops): drift is measured against {source} and prediction drift and the live "
            "metric are not measured; run the pipeline so its gate records one"
        )
    result.reference = source
    result.drift = drifts.frame_drift(served.inputs, profiles, thresholds, "served")
    result.drift_share, result.dataset_drift = drifts.dataset_drift(result.drift, thresholds)
    missing = [c for c in profiles if c not in served.inputs.columns]
    if missing and reference is not None:
        result.notes.append(f"columns of the reference never sent: {', '.join(missing)}")
    if reference is not None and reference.prediction.get("kind") in ("numeric", "categorical"):
        predictions = ref.prediction_series(
            served.predictions, reference.prediction_kind == "categorical"
        )
        result.prediction = drifts.feature_drift(
            predictions, reference.prediction, thresholds, "served", "prediction"
        )


def _pipeline_profile(target: Target) -> dict[str, Any]:
    if target.pipeline is None:
        return {}
    from nbops.validate.data import read_profile

    merged: dict[str, Any] = {}
    for columns in read_profile(target.pipeline).values():
        for name, profile in columns.items():
            merged.setdefault(name, profile)
    return merged


def _live(served: Served, reference: ref.Reference, config: MonitorConfig) -> LiveMetric:
    """The gate's metric on the labelled rows, and whether it counts as degraded."""
    pairs = [
        (served.labels[key], prediction)
        for key, prediction in zip(
            zip(served.request_ids, served.row_numbers, strict=True),
            served.predictions,
            strict=True,
        )
        if key in served.labels
    ]
    better = reference.greater_is_better
    live = LiveMetric(reference.metric, None, len(pairs), reference.score, None, better)
    live.bound = _bound(reference.score, better, config)
    if not reference.function:
        live.note = (
            f"{reference.metric} is computed from probabilities, which the server does not return"
        )
        return live
    if not pairs:
        live.note = "no labels fed back yet (POST /nbops/feedback)"
        return live
    import sklearn.metrics

    truth, predicted = zip(*pairs, strict=True)
    try:
        function = getattr(sklearn.metrics, reference.function)
        live.value = float(function(list(truth), list(predicted), **reference.kwargs))
    except (ValueError, TypeError, AttributeError) as exc:
        live.note = f"{reference.metric} could not be computed: {exc}"
        return live
    if live.bound is not None and live.labels >= config.min_labels:
        live.degraded = live.value < live.bound if better else live.value > live.bound
    elif live.labels < config.min_labels:
        live.note = (
            f"{live.labels} labelled rows: judged from {config.min_labels} (monitor.min_labels)"
        )
    return live


def _bound(score: float, better: bool, config: MonitorConfig) -> float | None:
    """The worst acceptable live value: the stricter of ``metric_threshold`` and the gate
    score ``max_drop`` (a fraction of it) worse."""
    bounds = []
    if config.metric_threshold is not None:
        bounds.append(config.metric_threshold)
    if config.max_drop is not None:
        drop = config.max_drop * abs(score)
        bounds.append(score - drop if better else score + drop)
    if not bounds:
        return None
    return max(bounds) if better else min(bounds)


def _triggers(result: MonitorResult, config: MonitorConfig, since: float) -> None:
    version, live = result.version, result.live
    window = f"{result.rows} rows served by v{version}" + (
        " since the last trigger" if since else ""
    )
    drifted = result.dataset_drift or (result.prediction is not None and result.prediction.drifted)
    if drifted and result.rows < config.min_rows:
        result.notes.append(
            f"drift on {window} is not acted on below {config.min_rows} rows (monitor.min_rows)"
        )
    elif drifted and not config.retrain_on_drift:
        result.notes.append("drift does not retrain (monitor.retrain_on_drift: false)")
    elif drifted:
        what = []
        if result.dataset_drift:
            shown = [f.column for f in sorted(result.drifted, key=lambda f: -f.psi)]
            names = ", ".join(shown[:4]) + (", ..." if len(shown) > 4 else "")
            what.append(
                f"inputs drifted ({len(result.drifted)} of {len(result.drift)} features: {names})"
            )
        if result.prediction is not None and result.prediction.drifted:
            what.append(f"predictions drifted (PSI {result.prediction.psi:.2f})")
        result.triggers.append(Trigger(DRIFT, f"{' and '.join(what)} on {window}"))
    if live is not None and live.degraded and live.value is not None and live.bound is not None:
        relation = "below" if live.greater_is_better else "above"
        result.triggers.append(
            Trigger(
                PERFORMANCE,
                f"live {live.metric} {live.value:.4g} on {live.labels} labelled rows is {relation} "
                f"{live.bound:.4g} (gate score {live.gate_score:.4g}; monitor: thresholds)",
            )
        )
