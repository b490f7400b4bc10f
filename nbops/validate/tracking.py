"""The ``validate_data`` stage's MLflow run, recorded through nbops' normal path.

The stage runs no notebook code, so there is no capture: the record is built here (thresholds
as params, the flat metrics, the data files with their md5 fingerprints, the reports as
outputs) and is written at once through the session's spool, as the other stages' runs are
(:mod:`nbops.pipeline.stage_run`). The tag ``nbops.validation.data`` carries the status for the
widgets and ``nbops run``. A store failure never fails the validation: the record stays in the
spool for ``nbops sync``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from nbops.record import DataRef, Role, RunRecord

if TYPE_CHECKING:
    from nbops.session import Session
    from nbops.validate.result import DataValidation

STEP = "validate_data"
TAG_STATUS = "nbops.validation.data"
PACKAGES = ("nbops", "pandas", "pandera", "scipy")  # their versions go into the run's context


def build_record(
    folder: Path, result: DataValidation, session: Session, start: float, error: str | None
) -> RunRecord:
    """The stage's run: a child of the pipeline run when ``nbops run`` started it."""
    from nbops.pipeline.stage_run import stage_record

    record = stage_record(folder, STEP, code=f"nbops validate data {folder}")
    record.tags[TAG_STATUS] = result.status
    record.start, record.end = start, time.time()
    record.status, record.error = ("FAILED" if error else "FINISHED"), error
    record.params = {f"drift.{k}": v for k, v in result.thresholds.to_dict().items()}
    record.metrics = result.metrics()
    root = session.config.project_root
    record.data = [_file_ref(folder / f, "input", root, session) for f in result.files]
    record.data += [_file_ref(folder / f, "output", root, session) for f in result.reports]
    record.context.packages = dict.fromkeys(PACKAGES, "")
    return record


def _file_ref(path: Path, role: Role, root: Path, session: Session) -> DataRef:
    from nbops.capture.namespace import relative_name
    from nbops.hashing.files import fingerprint_file

    ref = DataRef(name=relative_name(str(path), root), role=role, kind="file")
    try:
        ref.size = path.stat().st_size
        ref.fingerprint = fingerprint_file(path, session.file_cache)
    except OSError as exc:
        ref.note = f"unreadable: {exc.strerror or exc}"
    return ref


def record_run(
    folder: Path, result: DataValidation, session: Session, start: float, error: str | None
) -> str | None:
    """Write the run now; its MLflow run id, or None (with a warning) when the store failed."""
    from nbops.pipeline.stage_run import record_stage

    try:
        record = build_record(folder, result, session, start, error)
    except Exception as exc:  # recording must never turn a validation into a crash
        print(f"nbops: warning: the validate_data run was not recorded: {exc}", file=sys.stderr)
        return None
    return record_stage(session, record)  # never raises: a failed write stays in the spool
