"""``nbops monitor [PIPELINE|MODEL]`` (also ``%nbops monitor``), and the triggers ``nbops retrain``
asks for.

The command asks a running server to write its request log to the end, checks the served
version (:mod:`nbops.monitor.analysis`), writes the reports and records the numbers in MLflow.
The retrain path checks the same way but records nothing, and only when a request log exists:
without one it costs a directory lookup (no pandas, no MLflow), so the weekly "nothing changed"
stays as quick as ``dvc status``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbops.monitor import state
from nbops.monitor.config import MonitorConfig
from nbops.monitor.result import MonitorResult, Trigger

if TYPE_CHECKING:
    from nbops.serve.target import Target


def monitor(
    target: str | Path = ".", *, days: int | None = None, record: bool = True
) -> MonitorResult:
    """Check what the service answered against the served version's reference."""
    from nbops.monitor import analysis, tracking
    from nbops.monitor.report import write_reports
    from nbops.serve.target import resolve

    resolved = resolve(target)
    _flush_running(resolved)
    config, thresholds = _settings(resolved)
    result = analysis.check(resolved, config, thresholds, _since(resolved), days)
    if record and result.rows:
        result.run_id = tracking.record(resolved, result, state.next_step(resolved, result.version))
    write_reports(resolved.reports_dir, result)
    return result


def retrain_triggers(folder: Path) -> tuple[list[Trigger], MonitorResult | None]:
    """The monitor's reasons to retrain the pipeline in ``folder`` ([] and None when nothing
    was served). :func:`acknowledge` them once the retrain ran: the next window starts then."""
    from nbops.serve.target import resolve

    try:
        target = resolve(folder)
    except Exception:  # no model gate: nothing is served from this pipeline
        return [], None
    if not any(target.log_dir.glob("*.sqlite")):
        return [], None
    from nbops.monitor import analysis

    _flush_running(target)
    config, thresholds = _settings(target)
    result = analysis.check(target, config, thresholds, _since(target))
    return result.triggers, result


def acknowledge(folder: Path, result: MonitorResult) -> None:
    """The retrain these triggers asked for ran: later checks look at later requests."""
    from nbops.serve.target import resolve

    state.mark_fired(resolve(folder), result.version, [t.name for t in result.triggers])


def _since(target: Target) -> Any:
    return lambda version: state.fired_at(target, version)


def _settings(target: Target) -> tuple[MonitorConfig, Any]:
    from nbops.validate.drift import DriftThresholds

    if target.pipeline is None:
        return MonitorConfig(), DriftThresholds()
    from nbops.pipeline.layout import read_params

    params = read_params(target.pipeline)
    return MonitorConfig.from_params(params), DriftThresholds.from_params(params)


def _flush_running(target: Target) -> None:
    """A running ``nbops serve`` writes its queued requests before we read them."""
    from nbops.serve import wire
    from nbops.serve.target import running_server

    server = running_server(target)
    if server is None:
        return
    with contextlib.suppress(OSError):  # it is stopping: what it wrote is what there is
        wire.request(str(server["url"]), "POST", "/nbops/flush", b"", timeout=30.0)
