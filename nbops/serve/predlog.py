"""The request log: what the service saw and answered, append-only, a SQLite file per day.

``<home>/log/YYYY-MM-DD.sqlite`` (UTC days) holds ``requests`` (time, request id, model and
version, HTTP status, latency, the request and response bodies as received and sent) and
``feedback`` (true labels that arrived later, by request id and row). Triggers make both tables
append-only: SQLite refuses an UPDATE or DELETE. A file per day keeps files small, lets a team
ship finished days elsewhere (object storage, the CI runner) and retire old ones.

Writing is off the request's path: the front server puts a tuple on a queue and a writer thread
inserts in batches (WAL, so ``nbops monitor`` reads while it writes). Bodies are stored raw and
parsed only when read (:mod:`nbops.serve.logread`). ``close()`` writes what is queued: nothing
acknowledged is lost on a normal stop (SIGINT, SIGTERM).
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    ts REAL NOT NULL, request_id TEXT NOT NULL, model TEXT NOT NULL, version INTEGER,
    status INTEGER NOT NULL, latency_ms REAL, content_type TEXT, request BLOB, response BLOB);
CREATE TABLE IF NOT EXISTS feedback (
    ts REAL NOT NULL, request_id TEXT NOT NULL, row INTEGER NOT NULL, label TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS requests_id ON requests (request_id);
CREATE TRIGGER IF NOT EXISTS requests_no_update BEFORE UPDATE ON requests
    BEGIN SELECT RAISE(ABORT, 'the request log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS requests_no_delete BEFORE DELETE ON requests
    BEGIN SELECT RAISE(ABORT, 'the request log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS feedback_no_update BEFORE UPDATE ON feedback
    BEGIN SELECT RAISE(ABORT, 'the request log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS feedback_no_delete BEFORE DELETE ON feedback
    BEGIN SELECT RAISE(ABORT, 'the request log is append-only'); END;
"""
FLUSH_EVERY = 0.2  # s


def day_file(folder: Path, ts: float) -> Path:
    return folder / f"{datetime.fromtimestamp(ts, UTC):%Y-%m-%d}.sqlite"


def connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30.0, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(SCHEMA)
    return conn


class PredictionLog:
    """The writer: ``request(...)`` and ``feedback(...)`` queue, a thread inserts."""

    def __init__(self, folder: Path, model: str) -> None:
        self.folder, self.model = folder, model
        self.queue: queue.SimpleQueue[tuple[str, tuple[Any, ...]] | None] = queue.SimpleQueue()
        self._wake = threading.Event()
        self.errors: list[str] = []
        self.written = 0
        self._conns: dict[Path, sqlite3.Connection] = {}
        self._thread = threading.Thread(target=self._run, name="nbops-predlog", daemon=True)
        self._thread.start()

    def request(
        self,
        ts: float,
        request_id: str,
        version: int | None,
        status: int,
        latency_ms: float,
        content_type: str,
        body: bytes,
        response: bytes,
    ) -> None:
        row = (
            ts,
            request_id,
            self.model,
            version,
            status,
            latency_ms,
            content_type,
            body,
            response,
        )
        self.queue.put(("requests", row))

    def feedback(self, request_id: str, labels: list[Any], rows: list[int] | None = None) -> int:
        """Queue true labels for the rows of one request (row i gets ``labels[i]``)."""
        now = time.time()
        for row, label in zip(rows or range(len(labels)), labels, strict=True):
            self.queue.put(("feedback", (now, request_id, int(row), json.dumps(label))))
        return len(labels)

    def flush(self, timeout: float = 30.0) -> bool:
        """Block until everything queued so far is written (``nbops monitor`` asks for this
        through ``/nbops/flush`` before it reads)."""
        done = threading.Event()
        self.queue.put(("flush", (done,)))
        self._wake.set()
        return done.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued, then stop the thread."""
        self.queue.put(None)
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        """Wake every FLUSH_EVERY seconds (not per request: the request threads must not
        wait for the GIL behind this one), write what came, commit."""
        stop = False
        while not stop:
            self._wake.wait(FLUSH_EVERY)
            self._wake.clear()
            batch, flushed = [], []
            while True:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                elif item[0] == "flush":
                    flushed.append(item[1][0])
                else:
                    batch.append(item)
            if batch:
                self._write(batch)
            for event in flushed:
                event.set()
        for conn in self._conns.values():
            conn.close()

    def _write(self, batch: list[tuple[str, tuple[Any, ...]]]) -> None:
        by_file: dict[tuple[Path, str], list[tuple[Any, ...]]] = {}
        for table, row in batch:
            by_file.setdefault((day_file(self.folder, row[0]), table), []).append(row)
        for (path, table), rows in by_file.items():
            marks = ",".join("?" * len(rows[0]))
            try:
                conn = self._conn(path)
                with conn:
                    conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
                self.written += len(rows)
            except sqlite3.Error as exc:  # reported by /nbops/status and on stderr at exit
                self.errors.append(f"{path}: {exc} ({len(rows)} {table} rows not written)")

    def _conn(self, path: Path) -> sqlite3.Connection:
        if path not in self._conns:
            for old in list(self._conns):  # yesterday's file is finished
                self._conns.pop(old).close()
            self._conns[path] = connect(path)
        return self._conns[path]


def write_feedback(folder: Path, request_id: str, labels: list[Any]) -> int:
    """Record labels without a running server (a batch of labels that arrived by file)."""
    now = time.time()
    rows = [(now, request_id, i, json.dumps(label)) for i, label in enumerate(labels)]
    conn = connect(day_file(folder, now))
    try:
        with conn:
            conn.executemany("INSERT INTO feedback VALUES (?,?,?,?)", rows)
    finally:
        conn.close()
    return len(rows)
