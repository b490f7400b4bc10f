"""What changed between two runs: params, metrics, data fingerprints and code.

Pure stdlib on :class:`RunRecord` (never imports mlflow), so the CLI, the widgets and tests use
it on records from any source. Values compare by their text form, so a record read from
``record.json`` (typed params) and one listed from MLflow (string params) agree.
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from nbops import names
from nbops.record import DataRef, RunRecord


@dataclass
class MetricDelta:
    a: float
    b: float
    delta: float = field(init=False)  # b - a: positive means the second run is higher

    def __post_init__(self) -> None:
        self.delta = self.b - self.a

    @property
    def changed(self) -> bool:
        if math.isnan(self.a) or math.isnan(self.b):
            return math.isnan(self.a) != math.isnan(self.b)
        return self.a != self.b


@dataclass
class DataChange:
    name: str
    role: str  # "input" / "output"
    a: str | None  # fingerprint in the first run (None: absent or unhashed)
    b: str | None


@dataclass
class RunDiff:
    """Differences from run ``a`` to run ``b``; ``metrics`` holds every shared metric."""

    a_label: str
    b_label: str
    params_changed: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    params_added: dict[str, Any] = field(default_factory=dict)
    params_removed: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, MetricDelta] = field(default_factory=dict)
    metrics_added: dict[str, float] = field(default_factory=dict)
    metrics_removed: dict[str, float] = field(default_factory=dict)
    data_changed: list[DataChange] = field(default_factory=list)
    data_added: list[DataChange] = field(default_factory=list)
    data_removed: list[DataChange] = field(default_factory=list)
    data_unhashed: list[str] = field(default_factory=list)  # in both runs, not comparable
    code_changed: bool = False
    code_diff: list[str] = field(default_factory=list)  # unified diff lines (no newlines)
    notes: list[str] = field(default_factory=list)  # params told apart by their long names

    def text(self) -> str:
        return format_diff(self)

    def to_json(self) -> str:
        import json
        from dataclasses import asdict

        return json.dumps(asdict(self), indent=1, default=str)

    @property
    def metrics_changed(self) -> dict[str, MetricDelta]:
        return {k: v for k, v in self.metrics.items() if v.changed}

    @property
    def is_empty(self) -> bool:
        return not (
            self.params_changed
            or self.params_added
            or self.params_removed
            or self.metrics_changed
            or self.metrics_added
            or self.metrics_removed
            or self.data_changed
            or self.data_added
            or self.data_removed
            or self.code_changed
        )


def diff_records(a: RunRecord, b: RunRecord) -> RunDiff:
    """Compare two records; see :class:`RunDiff` for what is reported."""
    result = RunDiff(_label(a), _label(b))
    _diff_params(result, a.params, b.params)
    _diff_metrics(result, a.metrics, b.metrics)
    _diff_data(result, a.data, b.data)
    if a.code_hash and b.code_hash:
        result.code_changed = a.code_hash != b.code_hash
    else:
        result.code_changed = a.code != b.code
    if result.code_changed and (a.code or b.code):
        result.code_diff = list(
            difflib.unified_diff(
                a.code.splitlines(),
                b.code.splitlines(),
                fromfile=result.a_label,
                tofile=result.b_label,
                lineterm="",
            )
        )
    return result


def _label(record: RunRecord) -> str:
    ident = (record.run_id or record.record_id)[:8]
    return f"{record.name} ({ident})" if record.name else ident


def _text(value: Any) -> str:
    """The form MLflow stores a param in, so typed and string params compare equal."""
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, default=str)
    return str(value)


def _diff_params(result: RunDiff, a: dict[str, Any], b: dict[str, Any]) -> None:
    for key in sorted(a.keys() | b.keys()):
        if key not in b:
            result.params_removed[key] = a[key]
        elif key not in a:
            result.params_added[key] = b[key]
        elif _text(a[key]) != _text(b[key]):
            result.params_changed[key] = (a[key], b[key])
    _pair_short_names(result)


def _pair_short_names(result: RunDiff) -> None:
    """``max_depth`` in one run and ``model.max_depth`` in the other are one param (a literal
    in a cell, an estimator's setting in a loop): compared under the short name when each
    run has exactly one (see :mod:`nbops.names`); otherwise a note says which names match."""
    removed, added = result.params_removed, result.params_added
    for name in sorted({names.short(k) for k in removed} & {names.short(k) for k in added}):
        left = [k for k in removed if names.short(k) == name]
        right = [k for k in added if names.short(k) == name]
        if len(left) != 1 or len(right) != 1:
            result.notes.append(
                f"{name}: {', '.join(left)} in {result.a_label} and {', '.join(right)} in "
                f"{result.b_label}; compared by their full names"
            )
            continue
        before, after = removed.pop(left[0]), added.pop(right[0])
        if _text(before) != _text(after):
            result.params_changed[name] = (before, after)


def _diff_metrics(result: RunDiff, a: dict[str, float], b: dict[str, float]) -> None:
    for key in sorted(a.keys() | b.keys()):
        if key not in b:
            result.metrics_removed[key] = a[key]
        elif key not in a:
            result.metrics_added[key] = b[key]
        else:
            result.metrics[key] = MetricDelta(float(a[key]), float(b[key]))


def _diff_data(result: RunDiff, a: list[DataRef], b: list[DataRef]) -> None:
    left = {(d.role, d.name): d.fingerprint for d in a}
    right = {(d.role, d.name): d.fingerprint for d in b}
    for role, name in sorted(left.keys() | right.keys()):
        key = (role, name)
        if key not in right:
            result.data_removed.append(DataChange(name, role, left[key], None))
        elif key not in left:
            result.data_added.append(DataChange(name, role, None, right[key]))
        elif left[key] is None and right[key] is None:
            result.data_unhashed.append(name)
        elif left[key] != right[key]:
            result.data_changed.append(DataChange(name, role, left[key], right[key]))


def format_diff(diff: RunDiff) -> str:
    """Plain text for terminals and logs: ``~`` changed, ``+`` only in b, ``-`` only in a."""
    lines = [f"{diff.a_label} -> {diff.b_label}"]
    if diff.is_empty:
        return "\n".join([*lines, "  no differences", *_unhashed_note(diff)])
    params = [f"  ~ {k}: {_short(x)} -> {_short(y)}" for k, (x, y) in diff.params_changed.items()]
    params += [f"  + {k}: {_short(v)}" for k, v in diff.params_added.items()]
    params += [f"  - {k}: {_short(v)}" for k, v in diff.params_removed.items()]
    metrics = [
        f"  ~ {k}: {_num(m.a)} -> {_num(m.b)} ({m.delta:+.4g})"
        for k, m in diff.metrics_changed.items()
    ]
    metrics += [f"  + {k}: {_num(v)}" for k, v in diff.metrics_added.items()]
    metrics += [f"  - {k}: {_num(v)}" for k, v in diff.metrics_removed.items()]
    data = [f"  ~ {_role(c)} {c.name}: {_fp(c.a)} -> {_fp(c.b)}" for c in diff.data_changed]
    data += [f"  + {_role(c)} {c.name}: {_fp(c.b)}" for c in diff.data_added]
    data += [f"  - {_role(c)} {c.name}: {_fp(c.a)}" for c in diff.data_removed]
    code = ["  " + line for line in diff.code_diff] or (["  changed"] if diff.code_changed else [])
    for title, body in (("params", params), ("metrics", metrics), ("data", data), ("code", code)):
        if body:
            lines += [f"{title}:", *body]
    return "\n".join([*lines, *_unhashed_note(diff)])


def _unhashed_note(diff: RunDiff) -> list[str]:
    notes = [f"  note: {text}" for text in diff.notes]
    if not diff.data_unhashed:
        return notes
    return [*notes, f"  (not comparable, unhashed: {', '.join(diff.data_unhashed)})"]


def _role(change: DataChange) -> str:
    return "in" if change.role == "input" else "out"


def _fp(fingerprint: str | None) -> str:
    return fingerprint.split(":", 1)[-1][:8] if fingerprint else "unhashed"


def _num(value: float) -> str:
    return f"{value:.6g}"


def _short(value: Any, limit: int = 60) -> str:
    text = _text(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
