"""A record's data as MLflow datasets: what the run page's "Datasets" box shows.

Every :class:`~nbops.record.DataRef` becomes a dataset input of the run, with MLflow's context
tag (``training``, ``evaluation``, ``input``, ``output``; MLflow has no dataset outputs, so an
output is an input whose context says ``output``). Its digest is the nbops fingerprint (the
full content: MLflow's own digest hashes the first 10,000 rows only), its schema MLflow's
column spec, its profile the shape with the full fingerprint and, for data read from a file,
that file's md5 (DVC's). A dataset is one row per experiment and (name, digest), so a pipeline
step's output and the next step's input, with the same content, are the same dataset.

Pure functions without ``import mlflow`` (datasets are read back by attribute), like
:mod:`nbops.store.mapping`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from nbops.record import STAT_PREFIX, DataRef, RunRecord

CONTEXT_TAG = "mlflow.data.context"  # MLflow's tag on a dataset input
FINGERPRINT = "nbops_fingerprint"  # profile keys
DVC_MD5 = "dvc_md5"
UNHASHED = "unhashed"
MAX_NAME = 500  # MLflow's limits
MAX_DIGEST = 36
MAX_SOURCE = 65_535
# pandas dtype (a prefix of its name) -> MLflow column type; the first match wins
_COLUMN_TYPES = (
    ("float32", "float"),
    ("float", "double"),
    ("Float", "double"),
    ("int32", "integer"),
    ("int16", "integer"),
    ("int8", "integer"),
    ("uint", "long"),
    ("int", "long"),
    ("Int", "long"),
    ("bool", "boolean"),
    ("datetime", "datetime"),
    ("bytes", "binary"),
)


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset input of a run, as MLflow's ``Dataset`` + context tag take it."""

    name: str
    digest: str
    source_type: str
    source: str
    schema: str | None
    profile: str
    context: str


def specs(record: RunRecord) -> list[DatasetSpec]:
    """The record's data as datasets, in record order (one per name and digest)."""
    files = {d.name: d.fingerprint for d in record.data if d.kind == "file"}
    out: dict[tuple[str, str], DatasetSpec] = {}
    for ref in record.data:
        spec = _spec(ref, record, files)
        out.setdefault((spec.name, spec.digest), spec)
    return list(out.values())


def digest(fingerprint: str | None) -> str:
    """The nbops fingerprint in MLflow's 36 characters: the hex of xxh128/md5 (32)."""
    if not fingerprint:
        return UNHASHED
    if fingerprint.startswith(STAT_PREFIX):  # size+mtime, not content: says so
        return "stat-" + hashlib.md5(fingerprint.encode()).hexdigest()[:16]
    return fingerprint.split(":", 1)[-1][:MAX_DIGEST]


def evaluation_dataset(record: RunRecord) -> DatasetSpec | None:
    """The dataset a model's metrics were computed on: the evaluation features (a 2-D frame
    first), else the first evaluation dataset; None when the record has none."""
    shapes = {d.name: d.shape or [] for d in record.data}
    candidates = [s for s in specs(record) if s.context == "evaluation"]
    candidates.sort(key=lambda s: len(shapes.get(s.name, [])) != 2)  # stable: else in order
    return candidates[0] if candidates else None


def refs_from_inputs(dataset_inputs: Iterable[Any]) -> list[DataRef]:
    """A listed run's data, rebuilt from its dataset inputs (read by attribute)."""
    refs = []
    for item in dataset_inputs or []:
        dataset = item.dataset
        tags = {t.key: t.value for t in item.tags or []}
        context = tags.get(CONTEXT_TAG, "input")
        profile = _json(dataset.profile)
        kind = str(profile.get("kind", "file" if _is_file(dataset) else "unknown"))
        fingerprint = profile.get(FINGERPRINT)
        if not isinstance(fingerprint, str):
            fingerprint = None if dataset.digest == UNHASHED else dataset.digest
        ref = DataRef(dataset.name, "output" if context == "output" else "input", kind)
        ref.fingerprint, ref.context = fingerprint, context
        shape = profile.get("shape")
        ref.shape = shape if isinstance(shape, list) else None
        refs.append(ref)
    return refs


def _spec(ref: DataRef, record: RunRecord, files: dict[str, str | None]) -> DatasetSpec:
    profile: dict[str, Any] = {"kind": ref.kind}
    if ref.shape:
        profile["shape"] = ref.shape
        profile["num_rows"] = ref.shape[0]
        elements = 1
        for n in ref.shape:
            elements *= n
        profile["num_elements"] = elements
    if ref.fingerprint:
        profile[FINGERPRINT] = ref.fingerprint
    md5 = ref.fingerprint if ref.kind == "file" else files.get(ref.source) if ref.source else None
    if md5 and md5.startswith("md5:"):
        profile[DVC_MD5] = md5.split(":", 1)[1]
    if ref.size is not None:
        profile["size_bytes"] = ref.size
    path = ref.name if ref.kind == "file" else ref.source
    if path:
        source_type, source = "local", json.dumps({"uri": path})
    else:
        tags = {"mlflow.source.name": record.context.notebook or "", "nbops.variable": ref.name}
        source_type, source = "code", json.dumps({"tags": tags})
    return DatasetSpec(
        name=ref.name[:MAX_NAME],
        digest=digest(ref.fingerprint),
        source_type=source_type,
        source=source[:MAX_SOURCE],
        schema=_schema(ref),
        profile=json.dumps(profile, sort_keys=True),
        context=ref.context or ref.role,
    )


def _schema(ref: DataRef) -> str | None:
    """MLflow's column spec for tables (the UI lists it); None for other data."""
    if not ref.columns or ref.kind not in ("DataFrame", "Series"):
        return None
    spec = [
        {"type": _column_type(dtype), "name": name, "required": True}
        for name, dtype in ref.columns.items()
    ]
    return json.dumps({"mlflow_colspec": spec})


def _column_type(dtype: str) -> str:
    return next((kind for prefix, kind in _COLUMN_TYPES if dtype.startswith(prefix)), "string")


def _is_file(dataset: Any) -> bool:
    return dataset.source_type == "local" and "nbops.variable" not in str(dataset.source)


def _json(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
