"""Make a record deliverable before it is spooled: MLflow refuses some values forever.

A record the store can never accept would sit in the spool failing on every attempt and, worse,
look like an outage that holds back the records behind it. So what MLflow is known to refuse is
fixed here, once, with a warning in the record that says what changed:

- text that cannot be encoded as UTF-8 (a lone surrogate such as ``"\\ud800"`` from a cell or
  a file name) gets U+FFFD in its place, in every string of the record;
- an experiment name that is empty or longer than MLflow's 500 characters is shortened (a hash
  keeps distinct long names distinct); a run name longer than 250 likewise.

Everything else MLflow may refuse is found at delivery: the deliverer quarantines such a record
with the reason (``nbops sync --retry-quarantined`` tries again) instead of retrying forever.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import fields, is_dataclass
from typing import Any

from nbops.record import RunRecord

MAX_EXPERIMENT_NAME = 500  # mlflow.utils.validation.MAX_EXPERIMENT_NAME_LENGTH
MAX_RUN_NAME = 250
_SURROGATE = re.compile("[\ud800-\udfff]")


def admit(record: RunRecord) -> RunRecord:
    """Fix, in place, what MLflow would refuse on every attempt; returns ``record``."""
    if _has_surrogate(record):
        _replace_surrogates(record)
        record.warnings.append(
            "some text of this run was not valid Unicode (a lone surrogate, e.g. '\\ud800'); "
            "it is stored with U+FFFD in its place"
        )
    if record.experiment is not None:
        name = record.experiment.strip()
        if not name or len(name) > MAX_EXPERIMENT_NAME:
            record.experiment = _shorten(name or "nbops", MAX_EXPERIMENT_NAME)
            record.warnings.append(
                f"experiment name {name[:40]!r}{'...' if len(name) > 40 else ''} is not one "
                f"MLflow accepts (1 to {MAX_EXPERIMENT_NAME} characters): stored in "
                f"experiment {record.experiment[:60]!r}"
            )
    if record.name is not None and len(record.name) > MAX_RUN_NAME:
        record.name = _shorten(record.name, MAX_RUN_NAME)
        record.warnings.append(f"run name shortened to {MAX_RUN_NAME} characters")
    return record


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{text[: limit - 10]}..{digest}"


def _has_surrogate(value: Any) -> bool:
    """Every string of the record is looked at: a few hundred, well under a millisecond."""
    return any(_SURROGATE.search(text) for text in _strings(value))


def _strings(value: Any) -> Any:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _strings(item)
    elif is_dataclass(value) and not isinstance(value, type):
        for spec in fields(value):
            yield from _strings(getattr(value, spec.name))


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_clean(v) for v in value)
    if is_dataclass(value) and not isinstance(value, type):
        _replace_surrogates(value)
    return value


def _replace_surrogates(obj: Any) -> None:
    for spec in fields(obj):
        setattr(obj, spec.name, _clean(getattr(obj, spec.name)))
