"""A run's model as an MLflow 3 LoggedModel: what the run page's "Logged models" box and the
experiment's Models tab show, and what registry versions point at.

The model is created as a LoggedModel of the run (its name the variable, its params the run's,
the run's metrics linked to it by the tracker's ``log_batch``), saved with the fast path nbops
always used (cloudpickle, pinned requirements: inferring them costs ~2.4 s per model), uploaded
to the LoggedModel's own artifact location and marked READY. The run names it as an output.
A model MLflow cannot save is noted in the record's warnings and its LoggedModel deleted:
retrying would fail again, and the record must still land.

Only ``MlflowClient`` is used (like the tracker), on the writer thread.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbops.record import ModelRef, RunRecord
from nbops.store import mapping

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from nbops.store.spool import SpoolEntry

_PICKLE_WARNING = "Saving scikit-learn models in the pickle or cloudpickle format"
MODELS_URI = "models:/{model_id}"


class ModelLogger:
    """Logs payloads as LoggedModels for one tracker (keeps the pinned requirements)."""

    def __init__(self) -> None:
        self._pip: list[str] | None = None

    def log(
        self,
        client: MlflowClient,
        experiment_id: str,
        run_id: str,
        entry: SpoolEntry,
        tmp: str,
        reused: bool = False,
    ) -> str | None:
        """The LoggedModel of ``entry``'s payload for run ``run_id`` (on a ``reused`` run, the
        one an earlier attempt finished, if any); its id, or None with a warning."""
        record = entry.record
        try:
            payload = entry.load_payload() or {}
            model = payload["model"]
        except Exception as exc:
            record.warnings.append(f"model not logged: its payload cannot be loaded ({exc})")
            return None
        if record.model is None:
            record.model = ModelRef("model", "sklearn", type(model).__name__)
        ref = record.model
        model_id = _earlier(client, run_id) if reused else None
        if model_id is None:
            model_id = self._create(client, experiment_id, run_id, record, model, payload, tmp)
        ref.model_id, ref.logged = model_id, model_id is not None
        return model_id

    def _create(
        self,
        client: MlflowClient,
        experiment_id: str,
        run_id: str,
        record: RunRecord,
        model: Any,
        payload: dict[str, Any],
        tmp: str,
    ) -> str | None:
        from mlflow.entities import LoggedModelOutput

        assert record.model is not None
        logged = client.create_logged_model(
            experiment_id,
            name=mapping.safe_key(record.model.variable),
            source_run_id=run_id,
            params=mapping.params(record),
            tags={mapping.TAG_RECORD_ID: record.record_id},
        )
        try:
            local = Path(tmp) / "model"
            self._save(model, payload.get("input_example"), local, logged, run_id)
            client.log_model_artifacts(logged.model_id, str(local))
            client.finalize_logged_model(logged.model_id, "READY")
        except Exception as exc:
            with contextlib.suppress(Exception):
                client.delete_logged_model(logged.model_id)
            record.warnings.append(f"model not logged: {type(exc).__name__}: {exc}")
            return None
        client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
        return logged.model_id

    def _save(self, model: Any, example: Any, target: Path, logged: Any, run_id: str) -> None:
        import mlflow.models
        import mlflow.sklearn

        from nbops.store.mlflow_packages import prime

        prime()  # MLflow's package map from nbops' disk copy, not a scan of site-packages
        signature = None
        if example is not None:
            example = example.iloc[:5] if hasattr(example, "iloc") else example[:5]
            try:
                signature = mlflow.models.infer_signature(example, model.predict(example))
            except Exception:  # no predict (a transformer) or it fails on the example
                signature = mlflow.models.infer_signature(example)
        meta = mlflow.models.Model(
            artifact_path=logged.artifact_location,
            model_uuid=logged.model_id,
            run_id=run_id,
            model_id=logged.model_id,
        )
        with quiet(logging.getLogger("mlflow.sklearn"), _PICKLE_WARNING):
            mlflow.sklearn.save_model(
                model,
                str(target),
                mlflow_model=meta,
                serialization_format="cloudpickle",  # skops (default) rejects RandomForest
                signature=signature,
                input_example=example,
                pip_requirements=self.pip_requirements(),  # inferring them costs ~2.4 s
            )

    def pip_requirements(self) -> list[str]:
        if self._pip is None:
            import mlflow.sklearn

            pins = list(mlflow.sklearn.get_default_pip_requirements())
            for dist in ("cloudpickle", "numpy", "pandas"):
                with contextlib.suppress(importlib.metadata.PackageNotFoundError):
                    pins.append(f"{dist}=={importlib.metadata.version(dist)}")
            self._pip = pins
        return self._pip


def run_model_id(client: MlflowClient, run_id: str) -> str | None:
    """The LoggedModel a run produced (its newest output), None for runs without one."""
    outputs = getattr(client.get_run(run_id), "outputs", None)
    models = list(getattr(outputs, "model_outputs", None) or [])
    return models[-1].model_id if models else None


def _earlier(client: MlflowClient, run_id: str) -> str | None:
    """A retry must not log the model twice: the LoggedModel an earlier attempt finished."""
    try:
        return run_model_id(client, run_id)
    except Exception:
        return None


@contextlib.contextmanager
def quiet(logger: logging.Logger, prefix: str) -> Iterator[None]:
    """Drop one known MLflow warning, from this thread only, while nbops saves a model
    (nbops chose cloudpickle on purpose; the warning would land in an unrelated cell)."""
    thread = threading.get_ident()

    def keep(rec: logging.LogRecord) -> bool:
        return not (rec.thread == thread and rec.getMessage().startswith(prefix))

    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)
