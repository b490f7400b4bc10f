"""What the monitor remembers between checks, in ``<home>/monitor.json``: per version, how many
checks were recorded (the MLflow step) and when a retrain was last triggered (the next window
starts there, so one drift triggers one retrain)."""

from __future__ import annotations

import time
from typing import Any

from nbops.serve.target import Target, read_json, write_json

FILE = "monitor.json"


def _load(target: Target) -> dict[str, Any]:
    return read_json(target.home / FILE)


def _version(data: dict[str, Any], version: int | None) -> dict[str, Any]:
    entry = data.setdefault("versions", {}).setdefault(str(version), {})
    return entry if isinstance(entry, dict) else {}


def fired_at(target: Target, version: int | None) -> float:
    value = _version(_load(target), version).get("fired_at")
    return float(value) if isinstance(value, int | float) else 0.0


def mark_fired(target: Target, version: int | None, triggers: list[str]) -> None:
    data = _load(target)
    entry = _version(data, version)
    entry.update(fired_at=time.time(), triggers=triggers)
    data["versions"][str(version)] = entry
    write_json(target.home / FILE, data)


def next_step(target: Target, version: int | None) -> int:
    """The MLflow step of this check (0, 1, 2, ... per version), counted."""
    data = _load(target)
    entry = _version(data, version)
    step = int(entry.get("checks", 0))
    entry["checks"] = step + 1
    data["versions"][str(version)] = entry
    write_json(target.home / FILE, data)
    return step
