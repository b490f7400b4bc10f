"""What serving and monitoring compare a model version with: the gate's holdout.

When the model gate passes a candidate it records, on the candidate's run, the rows it scored
the model on, in the model's input space (exactly what a prediction service receives), with
their labels and the pipeline's predictions (``nbops/serving/holdout.parquet``), and
``nbops/serving/reference.json``: the profile of those inputs and predictions (the PSI/KS
profile of ``validate_data``) and the gate's score with how it was computed. Serving
smoke-tests each version with its own holdout (the predictions must equal the pipeline's), and
the monitor measures drift and the live metric against it, whichever version is the champion.
Both are cached per version in the model's serving home, so the retrain trigger reads them
without MLflow.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from nbops.config import Config
    from nbops.serve.target import Target
    from nbops.validate.gate import GateConfig

ARTIFACT_DIR = "nbops/serving"
HOLDOUT, REFERENCE = "holdout.parquet", "reference.json"
LABEL, PREDICTION = "__label__", "__prediction__"
MAX_ROWS = 10_000  # a holdout beyond this is sampled: enough for a smoke test and a profile
CLASSIFICATION = {"accuracy_score", "balanced_accuracy_score", "f1_score", "precision_score",
                  "recall_score", "matthews_corrcoef", "cohen_kappa_score"}  # fmt: skip


@dataclass
class Reference:
    """A version's reference as :func:`log_reference` recorded it."""

    version: int
    columns: list[str]
    inputs: dict[str, Any]  # {column: profile}
    prediction: dict[str, Any]  # the profile of the predictions on the holdout
    prediction_kind: str  # "numeric" or "categorical" (class labels)
    metric: str
    score: float
    greater_is_better: bool
    function: str  # sklearn.metrics function the live metric is computed with
    kwargs: dict[str, Any] = field(default_factory=dict)
    holdout: Path | None = None  # the cached parquet, when fetched

    @classmethod
    def from_dict(cls, version: int, data: dict[str, Any]) -> Reference:
        return cls(
            version=version,
            columns=[str(c) for c in data["columns"]],
            inputs=dict(data["inputs"]),
            prediction=dict(data["prediction"]),
            prediction_kind=str(data.get("prediction_kind", "numeric")),
            metric=str(data["metric"]),
            score=float(data["score"]),
            greater_is_better=bool(data.get("greater_is_better", True)),
            function=str(data.get("function", "")),
            kwargs=dict(data.get("kwargs") or {}),
        )


# ---- recording, at the gate ------------------------------------------------------------------


def log_reference(
    config: Config, run_id: str, model: Any, X: Any, y: Any, gate: GateConfig, score: float
) -> str:
    """Record the holdout and its profile on ``run_id``; a warning instead of an exception
    (serving then says what it misses), because this must never fail the gate."""
    try:
        with tempfile.TemporaryDirectory(prefix="nbops-reference-") as tmp:
            _write(Path(tmp), model, X, y, gate, score)
            from mlflow.tracking import MlflowClient

            client = MlflowClient(tracking_uri=config.tracking_uri)
            client.log_artifacts(run_id, tmp, ARTIFACT_DIR)
    except Exception as exc:
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        message = (
            f"nbops: warning: the serving reference (holdout, profile) was not recorded on run "
            f"{run_id}: {detail}; `nbops serve` will smoke-test this version with its input "
            "example and `nbops monitor` will use the pipeline's reference/profile.json"
        )
        print(message, file=sys.stderr)
        return message
    return ""


def _write(folder: Path, model: Any, X: Any, y: Any, gate: GateConfig, score: float) -> None:
    import pandas as pd

    from nbops.validate.profile import column_profile, infer_profile

    frame = as_frame(X)
    predictions = pd.Series(_flat(model.predict(X)), index=frame.index)
    classes = _is_classifier(model, gate.evaluate.function)
    holdout = frame.copy()
    holdout[LABEL] = _flat(y)
    holdout[PREDICTION] = predictions.to_numpy()
    if len(holdout) > MAX_ROWS:
        holdout = holdout.sample(MAX_ROWS, random_state=0)
    holdout.to_parquet(folder / HOLDOUT, index=False)
    function = gate.evaluate.function
    if function == "score":  # estimator.score: accuracy for classifiers, R^2 for regressors
        function = "accuracy_score" if classes else "r2_score"
    kwargs = gate.evaluate.kwargs if gate.evaluate.method == "predict" else {}
    reference = {
        "columns": list(frame.columns),
        "inputs": infer_profile(frame),
        "prediction": column_profile(prediction_series(predictions, classes)),
        "prediction_kind": "categorical" if classes else "numeric",
        "metric": gate.metric,
        "score": score,
        "greater_is_better": gate.greater_is_better,
        # a metric on probabilities cannot be computed from what the service returns
        "function": function if gate.evaluate.method == "predict" else "",
        "kwargs": kwargs,
        "rows": len(frame),
    }
    text = json.dumps(reference, allow_nan=False, default=_plain)
    (folder / REFERENCE).write_text(text + "\n", encoding="utf-8")


def as_frame(X: Any) -> pd.DataFrame:
    """The model's inputs as a DataFrame with string column names (a 2-D array's columns are
    named ``0``, ``1``, ... as MLflow's tensor inputs are)."""
    import pandas as pd

    frame = X.reset_index(drop=True) if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
    frame.columns = [str(c) for c in frame.columns]
    return frame


def prediction_series(values: Any, classes: bool) -> pd.Series:
    """Predictions as profiled and compared: class labels as categories, numbers as numbers."""
    import pandas as pd

    series = pd.Series(_flat(values), name="prediction")
    return series.astype(str) if classes else pd.to_numeric(series, errors="coerce")


def _flat(values: Any) -> Any:
    import numpy as np

    array = np.asarray(values)
    return array.ravel() if array.ndim > 1 and array.shape[1] == 1 else array


def _is_classifier(model: Any, function: str) -> bool:
    try:
        from sklearn.base import is_classifier

        if is_classifier(model):
            return True
    except ImportError:
        pass
    return function in CLASSIFICATION


def _plain(value: Any) -> Any:
    """numpy scalars (and anything else) for json.dumps."""
    return value.item() if hasattr(value, "item") else str(value)


# ---- reading, when serving and monitoring ----------------------------------------------------


def cached(target: Target, version: int) -> Reference | None:
    """The version's reference from the serving home, or None (not fetched yet). No MLflow."""
    folder = target.version_dir(version)
    try:
        data = json.loads((folder / REFERENCE).read_text(encoding="utf-8"))
        reference = Reference.from_dict(version, data)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    holdout = folder / HOLDOUT
    reference.holdout = holdout if holdout.is_file() else None
    return reference


def fetch(target: Target, version: int) -> Reference | None:
    """The version's reference: cached, else downloaded from its run into the cache. None when
    the run has none (a version registered by hand, or by an older nbops)."""
    found = cached(target, version)
    if found is not None:
        return found
    from nbops.store.downloads import quiet
    from nbops.store.registry_store import open_model

    with open_model(target.config, target.model, "read a version's serving reference") as model:
        run_id = model.version(version).run_id
        if not run_id or not model.call(model.client.list_artifacts, run_id, ARTIFACT_DIR):
            return None
        folder = target.version_dir(version)
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="nbops-reference-", dir=folder) as tmp, quiet():
            local = Path(model.call(model.client.download_artifacts, run_id, ARTIFACT_DIR, tmp))
            for name in (HOLDOUT, REFERENCE):  # the reference last: it marks a complete cache
                if (local / name).is_file():
                    shutil.move(str(local / name), folder / name)
    return cached(target, version)


def holdout_frame(reference: Reference) -> tuple[pd.DataFrame, Any]:
    """(inputs, the pipeline's predictions) of a fetched reference's holdout."""
    import pandas as pd

    if reference.holdout is None:
        raise FileNotFoundError(f"version {reference.version} has no cached holdout")
    frame = pd.read_parquet(reference.holdout)
    return frame[reference.columns], frame[PREDICTION].to_numpy()
