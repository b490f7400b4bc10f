"""The run record: the one data model every part of nbops speaks.

A :class:`RunRecord` is what nbops knows about one tracked execution (a notebook cell, a
``with nbops.track()`` block, a pipeline step). Capture produces it, the store writes and reads
it, the summary, CLI and widgets display it. Its JSON form (``to_dict``/``from_dict``) is the
artifact ``nbops/record.json`` of every MLflow run and the unit of the local spool, so it must
stay stdlib-only and stable: add fields with defaults, never rename.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

SCHEMA_VERSION = 1
# A file identified by size and mtime only (too big to hash on the cell's thread): not content
STAT_PREFIX = "stat:"

Status = Literal["RUNNING", "FINISHED", "FAILED", "KILLED"]
Role = Literal["input", "output"]


@dataclass
class DataRef:
    """One piece of data a run read or produced: an in-memory object or a file."""

    name: str  # variable name, or a file path relative to the project root
    role: Role
    kind: str  # "DataFrame", "Series", "ndarray", "file", or another type name
    # "xxh128:..." (data), "md5:..." (files), "stat:<size>-<mtime_ns>" (a file too big to hash
    # on the cell's thread, see ``note``); None: could not be fingerprinted ("unhashed")
    fingerprint: str | None = None
    shape: list[int] | None = None
    columns: dict[str, str] | None = None  # column name -> dtype
    size: int | None = None  # bytes, for files
    note: str = ""  # why it is unhashed, for example
    # How the run used it, in MLflow's words: "training" (passed to fit), "evaluation"
    # (predict/score/a metric), else "input"/"output" (see nbops.capture.usage)
    context: str = ""
    source: str = ""  # the file it was read from (project-relative), for in-memory data

    @property
    def short(self) -> str:
        """The first 8 hex digits of the fingerprint, for summaries."""
        if not self.fingerprint:
            return "unhashed"
        if self.fingerprint.startswith(STAT_PREFIX):
            return "size+mtime"
        return self.fingerprint.split(":", 1)[-1][:8]


@dataclass
class ModelRef:
    """A model the run logged (``--model`` or the single fitted estimator)."""

    variable: str
    flavor: str  # "sklearn"
    class_name: str
    artifact_path: str = "model"
    logged: bool = False
    model_id: str | None = None  # the MLflow LoggedModel (``models:/<model_id>``), once logged


@dataclass
class Context:
    """Where the work ran: notebook, git state and environment. Never environment variables."""

    notebook: str | None = None
    notebook_source: str = ""  # how the notebook path was found (see capture.context)
    project_root: str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    git_branch: str | None = None
    python: str = ""
    packages: dict[str, str] = field(default_factory=dict)
    user: str = ""
    host: str = ""


@dataclass
class RunRecord:
    """Everything nbops records about one tracked execution."""

    record_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    name: str | None = None
    experiment: str | None = None
    status: Status = "RUNNING"
    start: float = 0.0  # epoch seconds
    end: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    # metrics logged with a step: name -> [[step, value, epoch milliseconds], ...] in the order
    # logged (``nbops.log_metric(name, value, step=)``, ``nbops.steps()``); ``metrics`` keeps
    # the last value. Stored as MLflow metric history.
    metric_history: dict[str, list[list[float]]] = field(default_factory=dict)
    data: list[DataRef] = field(default_factory=list)
    code: str = ""
    code_hash: str = ""
    context: Context = field(default_factory=Context)
    model: ModelRef | None = None
    error: str | None = None  # "ExceptionType: message" when the cell raised
    warnings: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)  # user tags and lineage
    description: str = ""  # one line: the cell's first comment, or the heading above it
    # Every setting of each estimator the run involved ({var: {"class": ..., "params": ...}});
    # ``params`` holds only the ones that mean something (see nbops.capture.params)
    estimators: dict[str, dict[str, Any]] = field(default_factory=dict)
    run_id: str | None = None  # the MLflow run id, once stored
    experiment_id: str = ""  # the MLflow experiment's id, once stored (for links to the UI)
    source: str = "cell"  # "cell", "block" (with nbops.track()), "step", "pipeline"
    # The tracking URI, fixed where the run happened (with ``experiment``, ``context.notebook``
    # and ``context.project_root``): whoever delivers the record later writes it there as is.
    # Empty in records spooled by nbops before 0.2: those are completed by the deliverer.
    store: str = ""
    schema: int = SCHEMA_VERSION

    @property
    def duration(self) -> float | None:
        return None if self.end is None else self.end - self.start

    def inputs(self) -> list[DataRef]:
        return [d for d in self.data if d.role == "input"]

    def outputs(self) -> list[DataRef]:
        return [d for d in self.data if d.role == "output"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True, default=_json_default)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunRecord:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in raw.items() if k in known}
        values["data"] = [_build(DataRef, d) for d in raw.get("data", [])]
        values["context"] = _build(Context, raw.get("context") or {})
        model = raw.get("model")
        values["model"] = _build(ModelRef, model) if model else None
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> RunRecord:
        return cls.from_dict(json.loads(text))


def _build(cls: type, raw: dict[str, Any]) -> Any:
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in raw.items() if k in known})


def _json_default(value: Any) -> Any:
    """Make numpy scalars and other odd values JSON-safe without importing numpy."""
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError):
            pass
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    return repr(value)
