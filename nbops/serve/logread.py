"""Reading the request log back: the rows a model version was sent, its answers, the labels.

Bodies are parsed here, not when serving: MLflow's JSON formats (``dataframe_split``,
``dataframe_records``, ``inputs``/``instances`` as rows or as columns) and CSV. A request that
cannot be parsed is counted and skipped, never an error: the log keeps whatever clients sent.
"""

from __future__ import annotations

import io
import json
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Served:
    """What one version was sent in a window: one row per input row, with its answer."""

    version: int | None
    requests: int
    inputs: pd.DataFrame
    predictions: list[Any]
    request_ids: list[str]  # per row
    row_numbers: list[int]  # the row's position in its request
    start: float | None = None
    end: float | None = None
    skipped: int = 0  # requests whose bodies could not be parsed
    labels: dict[tuple[str, int], Any] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return len(self.inputs)


def files(folder: Path, days: int, now: float) -> list[Path]:
    """The day files of the last ``days`` days (and any newer), oldest first."""
    first = datetime.fromtimestamp(now, UTC).date() - timedelta(days=max(days, 1) - 1)
    found = []
    for path in sorted(folder.glob("*.sqlite")):
        try:
            day = datetime.strptime(path.stem, "%Y-%m-%d").date()
        except ValueError:
            continue
        if day >= first:
            found.append(path)
    return found


def requests(paths: list[Path], since: float = 0.0) -> list[tuple[Any, ...]]:
    """(ts, request_id, version, status, content_type, request, response) after ``since``,
    by time."""
    rows: list[tuple[Any, ...]] = []
    for path in paths:
        with _read(path) as conn:
            rows += conn.execute(
                "SELECT ts, request_id, version, status, content_type, request, response "
                "FROM requests WHERE ts > ?",
                (since,),
            ).fetchall()
    return sorted(rows, key=lambda r: r[0])


def feedback(paths: list[Path]) -> dict[tuple[str, int], Any]:
    """(request id, row) -> the latest label recorded for it."""
    labels: dict[tuple[str, int], Any] = {}
    for path in paths:
        with _read(path) as conn:
            for _, rid, row, label in conn.execute("SELECT * FROM feedback ORDER BY ts"):
                labels[(rid, int(row))] = json.loads(label)
    return labels


class _read:
    """A read-only connection (the writer may be running), closed on exit."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)

    def __enter__(self) -> sqlite3.Connection:
        return self.conn

    def __exit__(self, *_: object) -> None:
        self.conn.close()


def latest_version(folder: Path, days: int, now: float) -> int | None:
    """The version that answered the newest successful request (bodies are not read)."""
    for path in reversed(files(folder, days, now)):
        with _read(path) as conn:
            row = conn.execute(
                "SELECT version FROM requests WHERE status = 200 AND version IS NOT NULL "
                "ORDER BY ts DESC LIMIT 1"
            ).fetchone()
        if row is not None:
            return int(row[0])
    return None


def current_version(rows: list[tuple[Any, ...]]) -> int | None:
    """The version that answered the newest successful request."""
    for row in reversed(rows):
        if row[3] == 200 and row[2] is not None:
            return int(row[2])
    return None


def served(folder: Path, days: int, now: float, since: float = 0.0) -> Served:
    """The rows the currently served version answered in its current stint (since the last
    request another version answered) and after ``since``."""
    import pandas as pd

    paths = files(folder, days, now)
    rows = requests(paths, since)
    version = current_version(rows)
    others = [r[0] for r in rows if r[2] != version and r[3] == 200]
    start = max([since, *others[-1:]])
    window = [r for r in rows if r[2] == version and r[3] == 200 and r[0] > start]
    frames, predictions, ids, numbers, skipped = [], [], [], [], 0
    for _, rid, _, _, ctype, body, answer in window:
        try:
            frame = parse_inputs(body, ctype)
            answered = parse_predictions(answer)
        except (ValueError, TypeError, KeyError):
            skipped += 1
            continue
        if len(answered) != len(frame):
            skipped += 1
            continue
        frames.append(frame)
        predictions += answered
        ids += [rid] * len(frame)
        numbers += list(range(len(frame)))
    inputs = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return Served(
        version=version,
        requests=len(window) - skipped,
        inputs=inputs,
        predictions=predictions,
        request_ids=ids,
        row_numbers=numbers,
        start=window[0][0] if window else None,
        end=window[-1][0] if window else None,
        skipped=skipped,
        labels=feedback(paths),
    )


def parse_inputs(body: bytes, content_type: str | None) -> pd.DataFrame:
    """The rows of one request, as MLflow's scoring server reads its formats."""
    import pandas as pd

    if content_type and "csv" in content_type:
        return pd.read_csv(io.BytesIO(body))
    data = json.loads(body)
    if "dataframe_split" in data:
        split = data["dataframe_split"]
        return pd.DataFrame(split["data"], columns=split.get("columns"))
    if "dataframe_records" in data:
        return pd.DataFrame.from_records(data["dataframe_records"])
    for key in ("inputs", "instances"):
        if key in data:
            value = data[key]
            if isinstance(value, dict):  # columns -> values
                return pd.DataFrame({str(k): list(v) for k, v in value.items()})
            frame = pd.DataFrame(value)
            frame.columns = [str(c) for c in frame.columns]
            return frame
    raise KeyError("no dataframe_split, dataframe_records, inputs or instances")


def parse_predictions(body: bytes) -> list[Any]:
    data = json.loads(body)
    values = data["predictions"] if isinstance(data, dict) else data
    if isinstance(values, dict):  # a model returning named columns: the first one
        values = next(iter(values.values()))
    return [v[0] if isinstance(v, list) and len(v) == 1 else v for v in values]
