"""How a :class:`RunRecord` maps onto MLflow params, metrics and tags, and back.

Pure functions without ``import mlflow`` (runs are read by attribute), so the mapping can be
tested and reasoned about apart from the store. Keys are sanitized to what MLflow accepts;
the exact original names stay in the ``nbops/record.json`` artifact.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterator
from typing import Any, TypeVar

from nbops.record import Context, DataRef, RunRecord
from nbops.store.datasets import refs_from_inputs

TAG_RECORD_ID = "nbops.record_id"
TAG_SOURCE = "nbops.source"
TAG_CODE_HASH = "nbops.code_hash"
TAG_ERROR = "nbops.error"
TAG_GIT_DIRTY = "nbops.git.dirty"
TAG_PARENT_RUN = "mlflow.parentRunId"
# The record id of the parent run (a pipeline's): the deliverer turns it into the parent's
# MLflow id, so a stage can name its parent before the parent is in MLflow.
TAG_PARENT_RECORD = "nbops.parent_record"
# Runs written by nbops before 0.2 name their data in tags; newer ones as MLflow dataset
# inputs (nbops.store.datasets). The tags are still read, never written.
TAG_DATA = {"input": "nbops.data.in.", "output": "nbops.data.out."}
UNHASHED = "unhashed"
TAG_DESCRIPTION = "mlflow.note.content"  # MLflow's run description

# MLflow's limits (mlflow.utils.validation)
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
MAX_ENTITIES_PER_BATCH = 1000
MAX_PARAM_LENGTH = 6000
MAX_TAG_LENGTH = 8000
MAX_KEY_LENGTH = 250

_BAD_KEY_CHARS = re.compile(r"[^\w\-. /]")  # MLflow also allows ':' except on Windows
T = TypeVar("T")
P = TypeVar("P")
M = TypeVar("M")


def millis(seconds: float) -> int:
    return round(seconds * 1000)


def safe_key(key: object) -> str:
    """A key MLflow accepts: allowed characters only, and no path that normalizes to another."""
    text = _BAD_KEY_CHARS.sub("_", str(key))[:MAX_KEY_LENGTH]
    if _not_unique(text):
        text = text.replace("/", "_")
    if _not_unique(text):
        text = ("_" + text)[:MAX_KEY_LENGTH]
    return text


def _not_unique(key: str) -> bool:
    norm = posixpath.normpath(key)
    return norm != key or norm == "." or norm.startswith(("..", "/"))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def param_value(value: Any) -> str:
    """Params are strings in MLflow: JSON for containers, ``str`` otherwise."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, list | tuple | dict | set | frozenset):
        container = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        text = json.dumps(container, default=str)
    else:
        text = str(value)
    return _clip(text, MAX_PARAM_LENGTH)


def params(record: RunRecord) -> dict[str, str]:
    return {safe_key(k): param_value(v) for k, v in record.params.items()}


def metrics(record: RunRecord) -> dict[str, float]:
    """Numeric metrics as floats (NaN and inf kept: MLflow stores them); others are skipped."""
    out = {}
    for key, value in record.metrics.items():
        try:
            out[safe_key(key)] = float(value)
        except (TypeError, ValueError):
            continue
    return out


def metric_points(
    record: RunRecord, values: dict[str, float], stamp: int
) -> list[tuple[str, float, int, int]]:
    """``(key, value, timestamp ms, step)`` to log for each metric in ``values`` (safe keys, as
    :func:`metrics` returns them): every point of a metric's history, else one point at step 0.
    When the run's value differs from the history's last point, it is logged last, at the
    highest step, so MLflow's "latest value" is the record's."""
    history = {safe_key(k): v for k, v in record.metric_history.items()}
    points = []
    for key, value in values.items():
        logged = [(key, float(v), int(t), int(s)) for s, v, t in history.get(key, ())]
        if logged and _same(logged[-1][1], value):
            points += logged
            continue
        top = max((p[3] for p in logged), default=0)
        points += [*logged, (key, value, max([stamp, *(p[2] + 1 for p in logged)]), top)]
    return points


def _same(a: float, b: float) -> bool:
    return a == b or (a != a and b != b)  # NaN equals NaN here


def identity_tags(record: RunRecord) -> dict[str, str]:
    """Tags set at ``create_run``, so a retry finds the run of this record."""
    return {TAG_RECORD_ID: record.record_id, TAG_SOURCE: record.source}


def tags(record: RunRecord) -> dict[str, str]:
    """User tags first, then nbops' own (which win on a clash)."""
    out = {safe_key(k): str(v) for k, v in record.tags.items()}
    out.update(identity_tags(record))
    ctx = record.context
    optional = {
        TAG_CODE_HASH: record.code_hash,
        TAG_ERROR: record.error,
        TAG_DESCRIPTION: record.description,
        "mlflow.source.name": ctx.notebook,
        "mlflow.source.type": "NOTEBOOK" if ctx.notebook else "LOCAL",
        "mlflow.source.git.commit": ctx.git_commit,
        "mlflow.source.git.branch": ctx.git_branch,
        TAG_GIT_DIRTY: None if ctx.git_dirty is None else str(ctx.git_dirty).lower(),
        "mlflow.user": ctx.user,
    }
    out.update({k: v for k, v in optional.items() if v})
    return {k: _clip(v, MAX_TAG_LENGTH) for k, v in out.items()}


def batches(
    param_list: list[P], metric_list: list[M], tag_list: list[T]
) -> Iterator[tuple[list[P], list[M], list[T]]]:
    """Split into ``log_batch`` calls within MLflow's limits (one call in the usual case)."""
    p, m, t = list(param_list), list(metric_list), list(tag_list)
    while p or m or t:
        p_now, p = p[:MAX_PARAMS_TAGS_PER_BATCH], p[MAX_PARAMS_TAGS_PER_BATCH:]
        t_now, t = t[:MAX_PARAMS_TAGS_PER_BATCH], t[MAX_PARAMS_TAGS_PER_BATCH:]
        room = min(MAX_METRICS_PER_BATCH, MAX_ENTITIES_PER_BATCH - len(p_now) - len(t_now))
        m_now, m = m[:room], m[room:]
        yield p_now, m_now, t_now


def equals_filter(attribute: str, value: str) -> str | None:
    """``attribute = 'value'`` for MLflow's search grammar; None if no quote style fits."""
    if "'" not in value:
        return f"{attribute} = '{value}'"
    if '"' not in value:
        return f'{attribute} = "{value}"'
    return None


def record_from_run(run: Any, experiment: str | None) -> RunRecord:
    """Rebuild a record from run data alone (listing; runs written without record.json)."""
    info, data = run.info, run.data
    run_tags: dict[str, str] = dict(data.tags)
    return RunRecord(
        record_id=run_tags.get(TAG_RECORD_ID, info.run_id),
        name=info.run_name,
        experiment=experiment,
        status=info.status,
        start=(info.start_time or 0) / 1000,
        end=info.end_time / 1000 if info.end_time else None,
        params=dict(data.params),
        metrics={k: float(v) for k, v in data.metrics.items()},
        data=_data_refs(run_tags) + refs_from_inputs(_dataset_inputs(run)),
        code_hash=run_tags.get(TAG_CODE_HASH, ""),
        context=_context(run_tags),
        error=run_tags.get(TAG_ERROR),
        description=run_tags.get(TAG_DESCRIPTION, ""),
        tags={k: v for k, v in run_tags.items() if not k.startswith(("mlflow.", "nbops."))},
        run_id=info.run_id,
        experiment_id=str(info.experiment_id or ""),
        source=run_tags.get(TAG_SOURCE, "cell"),
    )


def _dataset_inputs(run: Any) -> list[Any]:
    inputs = getattr(run, "inputs", None)
    return list(getattr(inputs, "dataset_inputs", None) or [])


def _data_refs(run_tags: dict[str, str]) -> list[DataRef]:
    refs = []
    for key, value in sorted(run_tags.items()):
        for role, prefix in TAG_DATA.items():
            if key.startswith(prefix):
                fingerprint = None if value == UNHASHED else value
                refs.append(DataRef(key[len(prefix) :], role, "unknown", fingerprint))  # type: ignore[arg-type]
    return refs


def _context(run_tags: dict[str, str]) -> Context:
    dirty = run_tags.get(TAG_GIT_DIRTY)
    return Context(
        notebook=run_tags.get("mlflow.source.name"),
        git_commit=run_tags.get("mlflow.source.git.commit"),
        git_branch=run_tags.get("mlflow.source.git.branch"),
        git_dirty=None if dirty is None else dirty == "true",
        user=run_tags.get("mlflow.user", ""),
    )
