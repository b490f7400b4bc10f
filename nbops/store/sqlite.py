"""SQLite specifics of the MLflow store: what MLflow itself handles badly.

- A path that cannot hold a database: MLflow retries opening it for ~100 s; check it first.
- A new database file: MLflow migrates its schema on first use, and concurrent migrations from
  several processes break the file; serialize the set-up with a lock file next to it.
- "database is locked": SQLite allows one writer at a time; callers retry on it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from nbops.errors import StoreError

SETUP_LOCK_TIMEOUT = 60.0  # seconds to wait for another process setting up a new store


def check_usable(uri: str) -> None:
    """Fail fast on a SQLite path that cannot work: MLflow itself retries such a store for
    about 100 s before giving up."""
    path = db_path(uri)
    if path is None:
        return
    problem = None
    if path.is_dir():
        problem = f"{path} is a directory, not a SQLite file"
    else:
        existing = next((p for p in path.parents if p.exists()), None)
        if existing is not None and not existing.is_dir():
            problem = f"{existing} is a file, so {path} cannot be created"
        elif existing is not None and not os.access(existing, os.W_OK | os.X_OK):
            problem = f"{existing} is not writable"
    if problem:
        raise StoreError(
            f"the tracking store {uri} is unusable: {problem}",
            fix="point tracking_uri ([tool.nbops] or MLFLOW_TRACKING_URI) at a writable "
            "location; undelivered records stay in .nbops/spool until `nbops sync`",
            uri=uri,
        )


@contextlib.contextmanager
def setup_lock(uri: str, timeout: float = SETUP_LOCK_TIMEOUT) -> Iterator[None]:
    """Serialize MLflow's store set-up across processes. Its schema migrations on a new SQLite
    file are not safe to run concurrently: measured with 4 processes, every write then failed
    ("table _alembic_tmp_params already exists") and the file stayed broken."""
    db = db_path(uri)
    if db is None:
        yield
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(db.parent / f".{db.name}.nbops-init.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"another process has been setting up {uri} for over {timeout:.0f} s",
                        fix="wait for it (or end it) and run `nbops sync`",
                        uri=uri,
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


def create_if_missing(uri: str, build: Callable[[str], object]) -> None:
    """Create a new SQLite store under a temporary name and rename it into place.

    MLflow's first use migrates the schema in many steps; a process killed meanwhile (a kernel
    gets SIGTERM 2.5 s after a shutdown request) would leave a half-migrated file that no later
    write can use. Call under :func:`setup_lock`, so no other creator runs.
    """
    db = db_path(uri)
    if db is None or db.exists():
        return
    for leftover in db.parent.glob(f".{db.name}.creating-*"):  # from a killed creator
        leftover.unlink(missing_ok=True)
    tmp = db.with_name(f".{db.name}.creating-{os.getpid()}")
    build(f"sqlite:///{tmp}")
    os.replace(tmp, db)


def db_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    raw = uri[len("sqlite:///") :].split("?", 1)[0]
    return None if not raw or raw == ":memory:" else Path(raw)


def is_locked(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if "database is locked" in str(seen) or "database table is locked" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
