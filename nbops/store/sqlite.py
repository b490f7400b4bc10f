"""SQLite specifics of the MLflow store: what MLflow itself handles badly.

- A path that cannot hold a database: MLflow retries opening it for ~100 s; check it first.
- A new database file: MLflow migrates its schema on first use, in many steps: 3-12 s on a
  loaded 2-core machine, with INFO lines on stderr, and a process killed meanwhile (a kernel
  gets SIGTERM 2.5 s after a shutdown request) leaves a file no later write can use; concurrent
  migrations from several processes break it too. So nbops migrates once per MLflow version
  into a template in its cache folder and creates each store as a copy of it: a few
  milliseconds, nothing printed, and the copy appears at its final path atomically (a hard
  link), so there is no lock file and no half-made store in the user's folder, even after a kill.
- "database is locked": SQLite allows one writer at a time; callers retry on it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from nbops._pids import alive
from nbops.config import user_cache_dir
from nbops.errors import StoreError, causes

SETUP_LOCK_TIMEOUT = 120.0  # seconds to wait for another process building the template
_TMP_PREFIX = ".nbops-new-"  # a store being copied into place (lives for milliseconds)
_QUIET = ("alembic", "mlflow.store.db.utils", "mlflow.store.db.db_types")


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


def exists(uri: str) -> bool:
    """False only for a SQLite store whose file is not there yet (readers never create it)."""
    path = db_path(uri)
    return path is None or path.is_file()


def create_if_missing(uri: str, artifact_root: Path) -> bool:
    """Create the SQLite store of ``uri`` from the migrated template; True if it was created.

    ``artifact_root`` becomes the artifact location of MLflow's ``Default`` experiment (a
    store MLflow creates itself puts it under whatever the working directory was).
    """
    db = db_path(uri)
    if db is None or db.exists():
        return False
    db.parent.mkdir(parents=True, exist_ok=True)
    _clean_leftovers(db.parent)
    tmp = db.parent / f"{_TMP_PREFIX}{os.getpid()}-{db.name}"
    try:
        shutil.copyfile(template(), tmp)
        _adopt(tmp, (artifact_root / "0").as_uri())
        return _link_into_place(tmp, db)
    finally:
        tmp.unlink(missing_ok=True)


def template() -> Path:
    """The migrated empty store for the installed MLflow, built once per machine and version."""
    import mlflow

    folder = user_cache_dir()
    path = folder / f"mlflow-{mlflow.__version__}-empty.db"
    if path.is_file():
        return path
    with _lock(folder):
        if not path.is_file():
            for leftover in folder.glob(".mlflow-*.tmp*"):  # a builder killed before us
                leftover.unlink(missing_ok=True)
            _build(path)
    return path


def _build(path: Path) -> None:
    """Let MLflow create and migrate a store at a temporary name, then publish it."""
    from mlflow.tracking import MlflowClient

    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp")
    try:
        with _quiet_migrations():
            client = MlflowClient(tracking_uri=f"sqlite:///{tmp}", registry_uri=f"sqlite:///{tmp}")
            client.search_experiments(max_results=1)  # the schema exists once this answers
            client.search_registered_models(max_results=1)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _adopt(db: Path, default_location: str) -> None:
    """Make the copy this store's own: the Default experiment's artifacts and times."""
    now = int(time.time() * 1000)
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute(
            "UPDATE experiments SET artifact_location = ?, creation_time = ?, "
            "last_update_time = ? WHERE experiment_id = 0",
            (default_location, now, now),
        )


def _link_into_place(tmp: Path, db: Path) -> bool:
    """Publish ``tmp`` as ``db`` unless another process got there first (then keep theirs)."""
    try:
        os.link(tmp, db)
    except FileExistsError:
        return False
    except OSError:  # no hard links on this file system: a rename (a race only if concurrent)
        if db.exists():
            return False
        os.replace(tmp, db)
    return True


def _clean_leftovers(folder: Path) -> None:
    """Copies a killed process left (only possible in the milliseconds of a copy)."""
    for leftover in folder.glob(f"{_TMP_PREFIX}*"):
        pid = leftover.name[len(_TMP_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or not alive(int(pid)):
            leftover.unlink(missing_ok=True)
    for old in folder.glob(".*.nbops-init.lock"):  # earlier nbops versions left these
        old.unlink(missing_ok=True)
    for old in folder.glob(".*.creating-*"):
        pid = old.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or not alive(int(pid)):
            old.unlink(missing_ok=True)


@contextlib.contextmanager
def _lock(folder: Path, timeout: float = SETUP_LOCK_TIMEOUT) -> Iterator[None]:
    """One template builder per machine; the others wait for it. The lock is taken on the
    cache folder itself, so no lock file is left anywhere."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"another process has been setting up MLflow's schema in {folder} "
                        f"for over {timeout:.0f} s",
                        fix="wait for it (or end it) and run `nbops sync`",
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def _quiet_migrations() -> Iterator[None]:
    """MLflow and alembic log every migration step at INFO: not for the user's cell."""
    loggers = [logging.getLogger(name) for name in _QUIET]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def db_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    raw = uri[len("sqlite:///") :].split("?", 1)[0]
    return None if not raw or raw == ":memory:" else Path(raw)


def is_locked(exc: BaseException) -> bool:
    locked = ("database is locked", "database table is locked")
    return any(text in str(seen) for seen in causes(exc) for text in locked)
