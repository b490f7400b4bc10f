"""What an interrupted ``nbops run`` leaves behind, and how the next one deals with it.

* Ctrl-C reaches the whole foreground process group. DVC ignores SIGINT while a stage runs and
  exits about a second later, once the stage's ``nbops step`` has stopped. ``nbops run`` waits
  for it (:func:`dvc_stops_first`): returning earlier leaves DVC's lock held, so an immediate
  ``nbops run`` failed with "another DVC process is working".
* A ``nbops run`` killed outright (SIGKILL, the OOM killer, a cancelled CI job) cannot finish its
  pipeline's parent MLflow run, which stayed RUNNING forever. Every parent run names its owner
  (host, pid and process start time, tag ``nbops.owner``); the next ``nbops run`` of the
  pipeline marks runs whose owner is gone as KILLED, saying why (:func:`close_stale_runs`,
  right after the new parent run is written). Runs owned by another host, or written before
  owners were recorded, are left alone.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, cast

from nbops.store.mapping import TAG_ERROR

if TYPE_CHECKING:
    from nbops.record import RunRecord
    from nbops.session import Session

log = logging.getLogger(__name__)

OWNER_TAG = "nbops.owner"  # "<host>:<pid>:<process start time>" of the writing `nbops run`
STOP_TIMEOUT = 30.0  # seconds to let DVC stop after Ctrl-C
_SEARCH_LIMIT = 1000


@contextlib.contextmanager
def dvc_stops_first(proc: subprocess.Popen[str], timeout: float = STOP_TIMEOUT) -> Iterator[None]:
    """On Ctrl-C, wait (bounded; a second Ctrl-C stops waiting) until DVC has exited, reading
    its output so it never blocks on a full pipe, then let the interrupt go on."""
    try:
        yield
    except KeyboardInterrupt:
        with contextlib.suppress(subprocess.TimeoutExpired, KeyboardInterrupt, OSError, ValueError):
            proc.communicate(timeout=timeout)
        raise


def owner() -> str:
    """This process as ``<host>:<pid>:<start time>`` (the start time tells a reused pid)."""
    import psutil

    return f"{socket.gethostname()}:{os.getpid()}:{psutil.Process().create_time():.2f}"


def close_stale_runs(
    session: Session, record: RunRecord, echo: Callable[[str], None] = print
) -> list[str]:
    """Name this process as the owner of ``record`` (the parent run just written), then mark
    the RUNNING runs of its experiment whose ``nbops run`` is gone as KILLED.

    Returns the closed run ids, each also reported through ``echo``. Skipped when the parent
    run could not be written (the store is down: asking it again would only wait longer), and
    never raises: this is housekeeping, the pipeline runs either way.
    """
    if record.run_id is None:
        return []
    record.tags[OWNER_TAG] = owner()  # kept by the parent run's final write
    try:
        return _close(session.config.tracking_uri, record, echo)
    except Exception as exc:
        log.warning("nbops: could not look for runs left RUNNING: %s", exc)
        return []


def _close(uri: str, record: RunRecord, echo: Callable[[str], None]) -> list[str]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    client.set_tag(cast(str, record.run_id), OWNER_TAG, record.tags[OWNER_TAG])  # delivered
    found = client.get_experiment_by_name(record.experiment or "")
    if found is None:
        return []
    runs = client.search_runs(
        [found.experiment_id],
        filter_string="attributes.status = 'RUNNING'",
        max_results=_SEARCH_LIMIT,
    )
    closed = []
    for run in runs:
        who = run.data.tags.get(OWNER_TAG)
        if who is None or run.info.run_id == record.run_id or not is_gone(who):
            continue
        host, pid = who.rsplit(":", 2)[:2]
        why = f"its `nbops run` (pid {pid} on {host}) ended without finishing it (killed)"
        client.set_tag(run.info.run_id, TAG_ERROR, f"KILLED: {why}")
        with contextlib.redirect_stdout(io.StringIO()):  # a server store prints "View run at"
            client.set_terminated(run.info.run_id, "KILLED", end_time=round(time.time() * 1000))
        echo(f"nbops: run {run.info.run_id} was left RUNNING: {why}; marked KILLED")
        closed.append(run.info.run_id)
    return closed


def is_gone(who: str) -> bool:
    """Whether the process named by an owner tag has ended; False when that cannot be told
    (another host, no permission, a malformed tag)."""
    import psutil  # a DVC dependency, as in dvc_project

    try:
        host, pid_text, started_text = who.rsplit(":", 2)
        pid, started = int(pid_text), float(started_text)
    except ValueError:
        return False
    if host != socket.gethostname():
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return True
        return abs(proc.create_time() - started) > 1.0  # the pid now names another process
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False
