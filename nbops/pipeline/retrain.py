"""``nbops retrain [DIR]``: run the pipeline only when its data says so (the Level 1 trigger).

A schedule or a push runs this; most of the time nothing changed, and the answer must be quick
and must not touch MLflow. The data's identity is DVC's: the md5 of each file the pipeline
reads, compared with what ``dvc.lock`` recorded for the last successful run (the lock only
records stages that succeeded); a push that changed a step's code or ``params.yaml`` is seen
the same way, from the lock's file deps and params. When something changed the pipeline runs
(``dvc repro`` also updates a data file's ``.dvc``, so a new batch becomes a data version); its
``validate_data`` stage reports drift against the reference, and the model gate decides.
``--force`` runs every stage whatever changed.

It also fires on what the served champion sees (:mod:`nbops.monitor`): drift of the served
inputs or predictions, or a live metric worse than ``params.yaml`` ``monitor:`` allows, then
naming the trigger. With the data unchanged the pipeline still runs, but DVC keeps every stage
it has already run on that data (a training on the same data gives the same model): the model
gate judges the last model against the current champion (which a rollback may have changed).
Retraining on what the service saw needs that data in the pipeline's data files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbops.errors import UsageError
from nbops.pipeline import layout
from nbops.pipeline_folder import DVC_LOCK

if TYPE_CHECKING:
    from nbops.pipeline.run import Echo, PipelineResult
    from nbops.session import Session


@dataclass
class RetrainResult:
    ran: bool
    reasons: list[str] = field(default_factory=list)
    pipeline: PipelineResult | None = None
    triggers: list[str] = field(default_factory=list)  # monitor triggers that fired

    @property
    def ok(self) -> bool:
        return self.pipeline is None or self.pipeline.status == "FINISHED"


def retrain(
    folder: str | Path = ".",
    force: bool = False,
    *,
    session: Session | None = None,
    echo: Echo = print,
) -> RetrainResult:
    """Run the pipeline in ``folder`` if its data changed since the last successful run (or
    ``force``); print why it ran or why it did nothing."""
    path = Path(folder).resolve()
    if not (path / layout.DVC_YAML).is_file():
        raise UsageError(
            f"{path} has no {layout.DVC_YAML}: it is not a promoted pipeline",
            fix="run `nbops promote NOTEBOOK` first, or pass the pipeline folder",
        )
    reasons = ["--force: every stage runs"] if force else changes(path)
    triggers, monitored, checked = ([], "", None) if force else _monitor(path)
    if not reasons and not triggers:
        echo(f"pipeline {layout.pipeline_name(path)} is up to date: its data is unchanged since "
             "the last successful run; nothing to retrain")  # fmt: skip
        if monitored:
            echo(f"  {monitored}")
        return RetrainResult(ran=False)
    echo("retraining because:")
    for reason in reasons:
        echo(f"  - {reason}")
    for trigger in triggers:
        echo(f"  - trigger {trigger.name}: {trigger.reason}")
    again = bool(triggers) and not reasons
    if again:
        echo("  the data and code are unchanged since the last run: DVC keeps what it produced "
             "(training on the same data gives the same model) and the model gate judges that "
             "model against the current champion")  # fmt: skip
    from nbops.pipeline.run import run_pipeline

    # what changed is known: DVC's own check (`dvc status`, ~0.5-1 s) would only say it again
    result = run_pipeline(
        path, force=force, session=session, echo=echo, gates=True, trigger="retrain"
    )
    if triggers and checked is not None and result.status == "FINISHED":
        from nbops.monitor.api import acknowledge

        acknowledge(path, checked)
    fired = [t.name for t in triggers]
    return RetrainResult(ran=True, reasons=reasons, pipeline=result, triggers=fired)


def _monitor(folder: Path) -> tuple[list[Any], str, Any]:
    """The monitor's triggers (drift, performance), a line about what it saw and the check
    (for acknowledging); nothing when the pipeline's model was never served. A store that
    fails is reported, not fatal."""
    from nbops.errors import ConfigError, NbopsError
    from nbops.monitor.api import retrain_triggers

    try:
        triggers, result = retrain_triggers(folder)
    except ConfigError:
        raise
    except NbopsError as exc:
        return [], f"monitor: not checked ({exc.message})", None
    if result is None:
        return [], "", None
    if not result.rows:
        return triggers, "monitor: nothing served since its last check", result
    line = f"monitor: no trigger ({result.status}; {result.rows} rows served by v{result.version})"
    return triggers, line, result


def changes(folder: Path) -> list[str]:
    """Why the pipeline differs from its last successful run; [] when it does not: a data
    file changed (first, as that is what retraining is for), a step's code, the contract or a
    parameter changed, or a stage has not completed since."""
    lock = layout.read_yaml(folder / DVC_LOCK)
    if not isinstance(lock, dict) or not isinstance(lock.get("stages"), dict):
        return [f"no {DVC_LOCK}: the pipeline has not completed a run yet"]
    locked: dict[str, dict] = {k: v for k, v in lock["stages"].items() if isinstance(v, dict)}
    md5s = {
        str(dep["path"]): str(dep["md5"])
        for stage in locked.values()
        for dep in stage.get("deps") or []
        if isinstance(dep, dict) and dep.get("path") and dep.get("md5")
    }
    data = data_files(folder)
    reasons = [r for rel in data if (r := _file_change(folder, rel, md5s.get(rel), "data"))]
    for rel, md5 in md5s.items():
        if rel not in data and not md5.endswith(".dir"):  # a folder is another stage's output
            reasons += [r for r in [_file_change(folder, rel, md5, "code")] if r]
    reasons += _param_changes(folder, locked)
    missing = [name for name in layout.stage_names(folder) if name not in locked]
    if missing:
        reasons.append(f"stage(s) {', '.join(missing)} have not completed since they changed")
    return reasons


def _file_change(folder: Path, rel: str, recorded: str | None, kind: str) -> str | None:
    current = _md5(folder / rel)
    if current is None:
        return f"{rel} is missing"
    if recorded is None:
        return f"{rel} has not been through a successful run yet"
    if current != recorded:
        return f"{rel} changed (md5 {recorded[:8]} -> {current[:8]})"
    return None


def _param_changes(folder: Path, locked: dict[str, dict]) -> list[str]:
    params = layout.read_params(folder)
    changed: dict[str, str] = {}
    for stage in locked.values():
        values = (stage.get("params") or {}).get(layout.PARAMS) or {}
        for key, old in values.items():
            new = params.get(key)
            if new != old:
                changed[key] = f"params.yaml: {key} changed ({old!r} -> {new!r})"
    return list(changed.values())


def data_files(folder: Path) -> list[str]:
    """The data files the pipeline reads: promote's copies (the manifest), files under them."""
    listed = layout.read_manifest(folder).get("data") or []
    files: list[str] = []
    for rel in (str(item) for item in listed):
        target = folder / rel
        if target.is_dir():
            found = sorted(p for p in target.rglob("*") if p.is_file())
            files += [p.relative_to(folder).as_posix() for p in found]
        else:
            files.append(rel)
    return files


def _md5(path: Path) -> str | None:
    from nbops.hashing.files import fingerprint_file

    try:
        return fingerprint_file(path).removeprefix("md5:")
    except OSError:
        return None
