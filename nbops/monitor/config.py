"""The ``monitor:`` section of ``params.yaml``: when what the service sees should retrain.

Drift itself is judged with the pipeline's ``drift:`` thresholds (the same PSI/KS rules as the
``validate_data`` stage); this section says whether drift triggers a retrain, when the live
metric counts as degraded, and how much evidence each needs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from nbops.errors import ConfigError

KEY = "monitor"


@dataclass(frozen=True)
class MonitorConfig:
    retrain_on_drift: bool = True  # served inputs or predictions drift -> retrain
    metric_threshold: float | None = None  # live metric worse than this -> retrain
    max_drop: float | None = 0.1  # live metric this much worse than the gate score -> retrain
    min_rows: int = 50  # served rows before drift counts
    min_labels: int = 30  # labelled rows before the live metric counts
    window_days: int = 7  # days of the request log read

    @classmethod
    def from_params(cls, params: Mapping[str, Any], source: str = "params.yaml") -> MonitorConfig:
        section = params.get(KEY)
        if section is None:
            return cls()
        if not isinstance(section, Mapping):
            raise ConfigError(
                f"{source}: `{KEY}` must be a mapping, got {section!r}",
                fix="write e.g. `monitor: {retrain_on_drift: true, max_drop: 0.1, min_rows: 50}`",
            )
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in section.items():
            if key not in known:
                raise ConfigError(
                    f"{source}: unknown key `{KEY}.{key}`", fix=f"use one of {', '.join(known)}"
                )
            values[key] = _check(key, value, getattr(cls, key), source)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check(key: str, value: Any, default: Any, source: str) -> Any:
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        expected = "true or false"
    elif key in ("min_rows", "min_labels", "window_days"):
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        expected = "a whole number >= 1"
    else:  # metric_threshold, max_drop: a number or null
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if value is None or (number and math.isfinite(value) and (key != "max_drop" or value >= 0)):
            return None if value is None else float(value)
        expected = "a number >= 0 or null" if key == "max_drop" else "a number or null"
    raise ConfigError(
        f"{source}: `{KEY}.{key}` is {value!r}, which is not {expected}",
        fix=f"set `{KEY}.{key}` to {expected}, or delete it for the default {default!r}",
    )
