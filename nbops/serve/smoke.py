"""The smoke test a version passes before it receives traffic: the rows the model gate scored
it on, sent to its MLflow scoring server, must come back with the pipeline's predictions.

A version registered by hand has no recorded holdout: it is then sent its MLflow input example
(``serving_input_example.json``, logged with the model) and its answers are compared with the
model loaded in this process through ``mlflow.pyfunc`` (what the server itself loads).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbops.serve import wire
from nbops.serve.reference import Reference, holdout_frame

RTOL, ATOL = 1e-9, 1e-12  # JSON carries floats exactly; this only forgives BLAS reordering


@dataclass
class SmokeResult:
    ok: bool
    rows: int
    source: str  # "holdout", "input example"
    detail: str

    def text(self) -> str:
        return f"smoke test: {self.detail}"


def smoke_test(
    url: str, reference: Reference | None, model_uri: str, tracking_uri: str
) -> SmokeResult:
    """Send the version's holdout (or input example) to the scoring server at ``url``."""
    if reference is not None and reference.holdout is not None:
        inputs, expected = holdout_frame(reference)
        payload, source = wire.dataframe_split(inputs), "holdout"
        what = f"{len(inputs)} holdout rows of the model gate"
    else:
        source, what = "input example", "the model's input example (no gate holdout recorded)"
        try:
            payload, expected = _input_example(model_uri, tracking_uri)
        except FileNotFoundError as exc:
            detail = (
                f"not smoke-tested ({exc}; no gate holdout either): only /ping was checked; "
                "register versions through the pipeline's gate, or log models with an input_example"
            )
            return SmokeResult(True, 0, "none", detail)
        except Exception as exc:
            return SmokeResult(False, 0, source, f"{what}: the model does not load here ({exc})")
    try:
        status, _, body = wire.post_json(url, "/invocations", payload, timeout=120.0)
    except OSError as exc:
        return SmokeResult(False, 0, source, f"{what}: the server did not answer ({exc})")
    if status != 200 or not isinstance(body, dict) or "predictions" not in body:
        return SmokeResult(False, 0, source, f"{what}: HTTP {status}: {str(body)[:300]}")
    answered = body["predictions"]
    problem = compare(answered, expected)
    rows = len(expected)
    if problem:
        return SmokeResult(False, rows, source, f"{what}: {problem}")
    truth = "the pipeline's" if source == "holdout" else "the model's loaded here"
    return SmokeResult(True, rows, source, f"{what}: predictions equal {truth}")


def compare(answered: Any, expected: Any) -> str:
    """An empty string when the served predictions equal ``expected``, else what differs."""
    import numpy as np

    got, want = np.asarray(answered), np.asarray(expected)
    if got.ndim > 1 and got.shape[-1] == 1:
        got = got.reshape(len(got))
    if got.shape != want.shape:
        return f"{got.shape[0] if got.ndim else 0} predictions for {len(want)} rows"
    same = got.astype(str) == want.astype(str)
    numbers = want.dtype.kind in "fc" or got.dtype.kind in "fc"
    with contextlib.suppress(TypeError, ValueError):  # labels that only look numeric: as text
        if numbers:
            same = np.isclose(got.astype(float), want.astype(float), RTOL, ATOL, equal_nan=True)
    if same.all():
        return ""
    first = int(np.flatnonzero(~same)[0])
    return (
        f"{int((~same).sum())} of {len(want)} predictions differ (row {first}: served "
        f"{got[first]!r}, expected {want[first]!r})"
    )


def _input_example(model_uri: str, tracking_uri: str) -> tuple[dict[str, Any], Any]:
    """(the payload of ``serving_input_example.json``, the local model's predictions on it)."""
    import mlflow.pyfunc
    from mlflow.artifacts import download_artifacts
    from mlflow.pyfunc import scoring_server

    from nbops.store.downloads import quiet

    with tempfile.TemporaryDirectory(prefix="nbops-smoke-") as tmp, quiet():
        local = Path(download_artifacts(model_uri, dst_path=tmp, tracking_uri=tracking_uri))
        example = local / "serving_input_example.json"
        if not example.is_file():
            raise FileNotFoundError(
                f"{model_uri} has no serving_input_example.json to smoke-test it with"
            )
        payload = json.loads(example.read_text(encoding="utf-8"))
        model = mlflow.pyfunc.load_model(str(local))
        data = scoring_server.infer_and_parse_data(payload, model.metadata.get_input_schema())
        expected = model.predict(data[0] if isinstance(data, tuple) else data)
    return payload, expected
