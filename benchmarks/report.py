"""How benchmarks/run.py shows and keeps results: the side-by-side table, the machine, the JSON.

Pure functions over the rows of :mod:`common` (plus :func:`machine`, which reads the host), so
the formatting is tested without timing anything (tests/unit/test_benchmarks.py).
"""

from __future__ import annotations

import json
import os
import platform
import re
import socket
import sys
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

SCHEMA = 1
PACKAGES = (
    "nbops",
    "mlflow",
    "dvc",
    "papermill",
    "pandas",
    "numpy",
    "pyarrow",
    "xxhash",
    "scikit-learn",
    "ipykernel",
    "jupyter_client",
    "ipywidgets",
)
HEADER = ("id", "nbops", "nbops time", "anchor (same run)", "anchor time", "ratio", "target", "met")
MET = {True: "yes", False: "NO", None: "-"}


def seconds(value: float) -> str:
    """A duration with 3 significant digits in a readable unit: ``52.9 ms``, ``1.70 s``."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(value) >= scale or unit == "µs":
            return f"{value / scale:.3g} {unit}"
    raise AssertionError("unreachable")


def ratio_text(row: dict[str, Any]) -> str:
    """``0.084x time`` (nbops time / anchor time) or ``32.1x speed`` (anchor / nbops time)."""
    kind = row.get("ratio_kind", "time")
    return f"{row['ratio']:.3g}x {'speed' if kind == 'speedup' else 'time'}"


def target_text(row: dict[str, Any]) -> str:
    """The target in the ratio's own words, ``-`` for an informative row."""
    target = str(row.get("target") or "")
    if not target or target == "informative":
        return "-"
    kind = "speed" if row.get("ratio_kind", "time") == "speedup" else "time"
    return target if target.endswith((kind, " s")) else f"{target} {kind}"


def table(rows: list[dict[str, Any]]) -> str:
    """Every row beside its anchor, with the ratio, the target and whether it is met."""
    lines = [HEADER]
    for r in rows:
        lines.append(
            (
                str(r["id"]),
                str(r["what"]),
                seconds(r["nbops_s"]),
                str(r["anchor"]),
                seconds(r["anchor_s"]),
                ratio_text(r),
                target_text(r),
                MET[r.get("met")],
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    lines.insert(1, tuple("-" * w for w in widths))
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def summary(rows: list[dict[str, Any]], errors: dict[str, str]) -> str:
    """One line per missed target or failed module, after a count of the targets met."""
    targeted = [r for r in rows if r.get("met") is not None]
    met = sum(1 for r in targeted if r["met"])
    lines = [f"{met} of {len(targeted)} targets met ({len(rows) - len(targeted)} informative rows)"]
    missed = [r for r in targeted if not r["met"]]
    lines += [f"  missed {r['id']}: {ratio_text(r)}, target {target_text(r)}" for r in missed]
    lines += [f"  {name} failed: {text}" for name, text in errors.items()]
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """What the figures depend on: CPU, cores, memory, OS, load, Python and package versions."""
    return {
        "host": socket.gethostname(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gb": _memory_gb(),
        "os": _os_name(),
        "platform": platform.platform(),
        "load_average": load_average(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": {name: _version(name) for name in PACKAGES},
    }


def machine_line(info: dict[str, Any], quick: bool) -> str:
    """The machine in one line, above the table: figures only mean something beside it."""
    load = f"load {info.get('load_average')} -> {info.get('load_average_end')}"
    sizes = "quick sizes" if quick else "full sizes"
    return (
        f"{info.get('cpu')}, {info.get('cpus')} cores, {info.get('memory_gb')} GB, "
        f"{info.get('os')}, {info.get('python')}, {load}, {sizes}"
    )


def document(
    rows: list[dict[str, Any]],
    machine_info: dict[str, Any],
    options: dict[str, Any],
    started: datetime,
    finished: datetime,
    errors: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The JSON kept for a run: rows, the machine, the options and when it ran."""
    return {
        "schema": SCHEMA,
        "started": started.isoformat(timespec="seconds"),
        "finished": finished.isoformat(timespec="seconds"),
        "duration_s": round((finished - started).total_seconds(), 1),
        "options": options,
        "machine": machine_info,
        "rows": rows,
        "errors": errors or {},
    }


def save(doc: dict[str, Any], folder: Path) -> Path:
    """Write ``doc`` as ``<folder>/<YYYYmmdd-HHMMSS>-<host>.json`` and return the path."""
    when = datetime.fromisoformat(doc["started"]).strftime("%Y%m%d-%H%M%S")
    host = re.sub(r"[^A-Za-z0-9._-]+", "_", str(doc["machine"].get("host") or "host"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{when}-{host}.json"
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> list[float] | None:
    """1/5/15-minute load: how busy others kept the cores while the figures were taken."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def _memory_gb() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _os_name() -> str:
    try:
        return platform.freedesktop_os_release().get("PRETTY_NAME", sys.platform)
    except OSError:
        return f"{platform.system()} {platform.release()}"


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
