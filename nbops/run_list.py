"""A list of runs as ``nbops runs`` and ``%nbops runs`` show it: a table, CSV or JSON."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

from nbops.record import RunRecord

FORMATS = ("table", "json", "csv")


@dataclass
class RunList:
    """Runs newest first; ``where`` names what was listed (an experiment or the store)."""

    records: Sequence[RunRecord]
    where: str

    def to_json(self) -> str:
        return json.dumps([r.to_dict() for r in self.records], indent=1, default=str)

    def text(self) -> str:
        """One row a run; metrics always, params only where the runs differ."""
        if not self.records:
            return f"no runs in {self.where}; put %%track on a cell to record one"
        records = self.records
        metrics = _varying(records, "metrics", 6)
        params = _varying(records, "params", 5)
        header = ["run", "name", "experiment", "status", "started", "secs", *metrics, *params]
        rows = [header]
        for r in records:
            rows.append(
                [
                    (r.run_id or "")[:8],
                    r.name or "",
                    r.experiment or "",
                    r.status,
                    time.strftime("%Y-%m-%d %H:%M", time.localtime(r.start)) if r.start else "",
                    f"{r.duration:.2f}" if r.duration is not None else "",
                    *[_num(r.metrics.get(m)) for m in metrics],
                    *[_short(r.params.get(p)) for p in params],
                ]
            )
        widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
        lines = [
            "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows
        ]
        return "\n".join(line.rstrip() for line in lines)

    def csv(self) -> str:
        import csv
        import io

        records = self.records
        params = sorted({k for r in records for k in r.params})
        metrics = sorted({k for r in records for k in r.metrics})
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(
            ["run_id", "name", "experiment", "status", "start", "duration"]
            + [f"params.{p}" for p in params]
            + [f"metrics.{m}" for m in metrics]
        )
        for r in records:
            writer.writerow(
                [r.run_id, r.name, r.experiment, r.status, r.start, r.duration]
                + [r.params.get(p, "") for p in params]
                + [r.metrics.get(m, "") for m in metrics]
            )
        return out.getvalue().rstrip("\n")


def _varying(records: Sequence[RunRecord], attr: str, limit: int) -> list[str]:
    """Keys worth a column: metrics always; params only where runs differ."""
    keys: dict[str, set[str]] = {}
    for record in records:
        for key, value in getattr(record, attr).items():
            keys.setdefault(key, set()).add(repr(value))
    wanted = [
        k for k, vals in keys.items() if attr == "metrics" or len(vals) > 1 or len(records) == 1
    ]
    return sorted(wanted)[:limit]


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _short(value: object) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= 18 else text[:17] + "…"
