"""The ``validate_model`` stage: the candidate against the champion, then registration.

``nbops validate model`` (the stage's command, run in the pipeline folder) loads the candidate
model and the holdout the notebook evaluated it on (the train steps' artifacts), scores the
candidate and the registry's ``champion`` the same way (:mod:`nbops.validate.gate`), records the
decision as a child run of the pipeline run, and on a pass logs the model (signature, input
example, pinned requirements), loads it back through ``mlflow.pyfunc`` (the infrastructure
check), registers it and gives it ``challenger``, or ``champion`` with ``auto_promote``.
A rejected candidate is recorded with its reasons and nothing is registered; that is an
outcome, not an error: the stage succeeds and the champion stays.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from nbops.pipeline import layout
from nbops.pipeline.outcome import TAG_DATA, decision_tags, gate_lines
from nbops.pipeline_folder import DATA_STAGE, METRICS_DIR, MODEL_STAGE, REPORTS_DIR, report_file
from nbops.validate.gate import Decision, GateConfig, decide, score

if TYPE_CHECKING:
    from nbops.session import Session

STAGE = MODEL_STAGE
REPORT_JSON = report_file(STAGE, "json")
REPORT_MD = report_file(STAGE, "md")
DATA_REPORT_JSON = report_file(DATA_STAGE, "json")
TAG_PIPELINE_RUN = "nbops.pipeline.run"


@dataclass
class GateResult:
    """What the gate decided and did; written to ``reports/validate_model.json``."""

    model_name: str
    metric: str
    passed: bool
    candidate: float
    champion: float | None
    champion_version: int | None  # the champion before this run: the rollback pointer
    reasons: list[str]
    holdout: dict[str, Any] | None = None  # rows and fingerprint of what both were scored on
    registered_version: int | None = None
    aliases: list[str] = field(default_factory=list)
    run_id: str | None = None

    def summary(self) -> str:
        return "\n".join(gate_lines(asdict(self)))


def validate_model(folder: Path, session: Session | None = None) -> GateResult:
    """Run the gate for the pipeline in ``folder`` (see the module docstring)."""
    from nbops.session import default_session

    folder = layout.require_pipeline(folder, "nbops validate model")
    session = session or default_session()
    config = GateConfig.from_params(layout.read_params(folder))
    model, X, y = (_load(folder, config, role) for role in ("model", "X", "y"))
    candidate = score(config.evaluate, model, X, y)
    champion_version, champion, note = _champion(session, config, X, y)
    decision = decide(config, candidate, champion)
    if note:
        decision.reasons.insert(0, note)
    result = GateResult(
        config.model_name,
        config.metric,
        decision.passed,
        candidate,
        champion,
        champion_version,
        decision.reasons,
        _holdout(X, y),
    )
    record = _record(folder, config, result)
    _evaluated_on(record, config, model, X, y)
    payload = {"model": model, "input_example": X} if decision.passed else None
    _write(session, record, payload, result, decision)
    if decision.passed:  # before registering: serving reads it
        from nbops.serve.reference import log_reference

        log_reference(session.config, cast(str, result.run_id), model, X, y, config, candidate)
        _register(session, folder, config, result, X, decision)
    _write_reports(folder, result)
    return result


def _write(
    session: Session, record: Any, payload: dict[str, Any] | None, result: GateResult, d: Decision
) -> None:
    """Write the gate's run now (registration needs its id). If the store fails, a pass
    turns into a fail that says why, and the spooled run (delivered later) says so too."""
    from nbops.pipeline.stage_run import write_now

    why: list[str] = []
    result.run_id = write_now(session, record, payload, why=why)
    if result.run_id is not None or not d.passed:
        return
    result.passed = d.passed = False
    result.reasons.append(
        f"the run could not be written to MLflow ({'; '.join(why)}): nothing registered; "
        "`nbops sync` writes the run, then `nbops retrain` decides again"
    )
    spool = session.spool
    entry = spool.get(record.record_id)
    if entry is not None:
        with spool.claim(entry) as mine, contextlib.suppress(OSError):
            if mine:
                entry.record.tags.update(_gate_tags(result))
                spool.rewrite(entry)


def _load(folder: Path, config: GateConfig, role: str) -> Any:
    from nbops.pipeline import serializers

    producer, var = config.evaluate.artifact(role)
    return serializers.load(var, producer, STAGE, folder)


def _holdout(X: Any, y: Any) -> dict[str, Any] | None:
    """Rows and one fingerprint of the holdout (X and y): scores on different holdouts are not
    comparable, so the promotion panel labels each score with this."""
    from nbops.hashing.frames import fingerprint

    try:
        return {"rows": len(X), "fingerprint": fingerprint([fingerprint(X), fingerprint(y)])}
    except Exception:  # an X without len() or unhashable: the scores stay unlabelled
        return None


def _champion(
    session: Session, config: GateConfig, X: Any, y: Any
) -> tuple[int | None, float | None, str]:
    """(version, score on the same holdout, a note when it could not be scored)."""
    from nbops.registry import CHAMPION
    from nbops.store import sqlite
    from nbops.store.registry_store import open_model

    if not sqlite.exists(session.config.tracking_uri):  # no store yet: no champion either
        return None, None, ""
    with open_model(session.config, config.model_name, "look up the champion") as registered:
        if not registered.exists():
            return None, None, ""
        version = registered.aliases().get(CHAMPION)
        if version is None:
            return None, None, ""
        with tempfile.TemporaryDirectory(prefix="nbops-champion-") as tmp:
            try:
                import mlflow.sklearn

                local = registered.download(version, tmp)
                value = score(config.evaluate, mlflow.sklearn.load_model(local), X, y)
            except Exception as exc:  # a schema change it cannot read, a non-sklearn model
                detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
                return version, None, f"champion v{version} could not be scored ({detail})"
    return version, value, ""


def _record(folder: Path, config: GateConfig, result: GateResult) -> Any:
    from nbops.pipeline.stage_run import stage_record

    record = stage_record(folder, STAGE)
    record.params = config.as_params()
    record.metrics = {config.metric: result.candidate}
    if result.champion is not None:
        record.metrics[f"champion.{config.metric}"] = result.champion
    record.tags.update(_gate_tags(result))
    record.status, record.end = "FINISHED", time.time()
    return record


def _evaluated_on(record: Any, config: GateConfig, model: Any, X: Any, y: Any) -> None:
    """The holdout as the run's evaluation datasets (named and fingerprinted like the train
    step's outputs, so MLflow shows one dataset in both runs), and the model's name."""
    from nbops.capture.namespace import data_ref
    from nbops.record import ModelRef

    for role, value in (("X", X), ("y", y)):
        ref = data_ref(config.evaluate.artifact(role)[1], value, "input")
        ref.context = "evaluation"
        record.data.append(ref)
    variable = config.evaluate.artifact("model")[1]
    record.model = ModelRef(variable=variable, flavor="sklearn", class_name=type(model).__name__)


def _gate_tags(result: GateResult) -> dict[str, str]:
    return decision_tags(asdict(result))


def _register(
    session: Session, folder: Path, config: GateConfig, result: GateResult, X: Any, d: Decision
) -> None:
    """Infrastructure check, then registration; a failed check turns the pass into a fail."""
    from nbops import registry

    run_id = cast(str, result.run_id)  # written: validate_model registers nothing otherwise
    problem = _infra_check(session, run_id, X)
    if problem:
        result.passed = d.passed = False
        result.reasons.append(problem)
        _retag(session, result)
        return
    tags = {**_gate_tags(result), TAG_DATA: _data_status(folder)}
    if parent := _parent_run(session):
        tags[TAG_PIPELINE_RUN] = parent
    alias = registry.CHAMPION if config.auto_promote else registry.CHALLENGER
    why = "; ".join(result.reasons)
    info = registry.register(
        session.config,
        run_id,
        config.model_name,
        alias=alias,
        reason=why,
        actor=f"nbops pipeline {layout.pipeline_name(folder)}",
        tags=tags,
    )
    result.registered_version, result.aliases = info.version, info.aliases


def _infra_check(session: Session, run_id: str, X: Any) -> str:
    """Load the logged model back through ``mlflow.pyfunc`` and predict on a sample that
    matches its signature: what serving will do. An empty string when it works."""
    from nbops.store.registry_store import RegisteredModel

    sample = X.iloc[:5] if hasattr(X, "iloc") else X[:5]
    try:
        with tempfile.TemporaryDirectory(prefix="nbops-infra-") as tmp:
            registered = RegisteredModel(session.config, "")
            source = registered.model_source(run_id)  # the run's LoggedModel
            local = registered.download_source(source[0], run_id, tmp)
            import mlflow.pyfunc

            predictions = mlflow.pyfunc.load_model(local).predict(sample)
        if len(predictions) != len(sample):
            return f"infrastructure check failed: {len(predictions)} predictions for 5 rows"
    except Exception as exc:
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        return f"infrastructure check failed: the logged model does not load and predict ({detail})"
    return ""


def _retag(session: Session, result: GateResult) -> None:
    from mlflow.tracking import MlflowClient

    uri = session.config.tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    for key, value in _gate_tags(result).items():
        client.set_tag(cast(str, result.run_id), key, value)  # the gate's run, recorded


def _data_status(folder: Path) -> str:
    """The data validation status of this pipeline's data (``reports/validate_data.json``)."""
    try:
        report = json.loads((folder / DATA_REPORT_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "not run"
    status = report.get("status") if isinstance(report, dict) else None
    return status if isinstance(status, str) else "unknown"


def _parent_run(session: Session) -> str | None:
    """The MLflow id of the ``nbops run`` that started this stage, if any."""
    import os

    from nbops.pipeline.runtime import PARENT_ENV, PARENT_RECORD_ENV

    if os.environ.get(PARENT_ENV):
        return os.environ[PARENT_ENV]
    record_id = os.environ.get(PARENT_RECORD_ENV)
    if not record_id:
        return None
    try:  # the parent delivers its own run first: it is in MLflow by the time the gate runs
        return session.reader().get_run(record_id).run_id
    except Exception:
        return None


def _write_reports(folder: Path, result: GateResult) -> None:
    """The report (JSON + markdown) and ``metrics/validate_model.json`` for DVC."""
    reports, metrics = folder / REPORTS_DIR, folder / METRICS_DIR
    reports.mkdir(parents=True, exist_ok=True)
    metrics.mkdir(parents=True, exist_ok=True)
    text = json.dumps(asdict(result), indent=1, sort_keys=True) + "\n"
    (folder / REPORT_JSON).write_text(text, encoding="utf-8")
    (folder / REPORT_MD).write_text(f"# Model gate\n\n```\n{result.summary()}\n```\n", "utf-8")
    values: dict[str, float] = {
        f"gate.{result.metric}": result.candidate,
        "gate.passed": 1.0 if result.passed else 0.0,
    }
    if result.champion is not None:
        values[f"gate.champion.{result.metric}"] = result.champion
    text = json.dumps(values, indent=1, sort_keys=True) + "\n"
    (metrics / f"{STAGE}.json").write_text(text, encoding="utf-8")
