"""Recording a run written outside a kernel: the pipeline's parent run and its gate stages.

Steps record through a Capture in their kernel; the parent run and the ``validate_*`` stages
build their :class:`~nbops.record.RunRecord` themselves and write it synchronously, through the
same spool: a failed write stays in ``.nbops/spool`` for ``nbops sync`` and never fails the
pipeline (the warning says so).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbops.pipeline import layout
from nbops.pipeline.runtime import parent_tags
from nbops.record import Context, RunRecord

if TYPE_CHECKING:
    from nbops.session import Session
    from nbops.store.protocol import Tracker


def stage_record(folder: Path, name: str, code: str = "") -> RunRecord:
    """A record for stage ``name`` of the pipeline in ``folder``: a child of the pipeline run
    when ``nbops run`` started it (``NBOPS_PARENT_RUN``)."""
    pipeline = layout.pipeline_name(folder)
    tags = {"nbops.step": name, "nbops.pipeline": pipeline, **parent_tags()}
    return RunRecord(
        name=name,
        experiment=pipeline,
        start=time.time(),
        source="step",
        code=code,
        tags=tags,
        context=Context(notebook=str(folder / layout.DVC_YAML), notebook_source="pipeline"),
    )


def record_stage(session: Session, record: RunRecord) -> str | None:
    """Record a stage's run: spooled only when ``nbops run`` delivers its stages' runs
    (``delivery = spool``), else written now (see :func:`write_now`)."""
    if session.config.delivery == "spool":
        try:
            session.identify(record)
            session.spool.put(record)
        except Exception as exc:
            print(f"nbops: the run {record.name!r} could not be spooled ({exc})", file=sys.stderr)
        return None
    return write_now(session, record)


def write_now(
    session: Session,
    record: RunRecord,
    payload: dict[str, Any] | None = None,
    tracker: Tracker | None = None,
    why: list[str] | None = None,
) -> str | None:
    """Spool ``record`` (with its model ``payload``) and deliver it now; the run id, or None
    with a warning on stderr (and the cause in ``why``) when the store failed (the record stays
    in the spool). The entry is claimed before it is visible: a sweep of the spool meanwhile
    (``nbops run``'s deliverer) would otherwise deliver it and leave this caller without the id
    it needs."""
    from nbops.store.sync import deliver

    try:
        session.identify(record)
        with session.spool.put_claimed(record, payload) as entry:
            return deliver(session.spool, entry, tracker or session.tracker(), claimed=True)
    except Exception as exc:
        if why is not None:
            why.append(" ".join(f"{type(exc).__name__}: {exc}".split())[:300])
        print(
            f"nbops: the run {record.name!r} was not written to MLflow ({exc}); it is kept in "
            f"{session.spool.root} and `nbops sync` delivers it",
            file=sys.stderr,
        )
        return None
