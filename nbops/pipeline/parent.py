"""The pipeline's parent MLflow run: spooled when ``nbops run`` starts, finished after DVC.

It is spooled RUNNING at once and delivered by the run's :class:`~nbops.pipeline.deliverer.
Deliverer` while DVC starts (``import mlflow`` and a new store's set-up are not paid before the
first stage); the stages name it by its record id (``NBOPS_PARENT_RECORD``). When the parent is
in MLflow, the runs an earlier, killed ``nbops run`` left RUNNING are closed
(:func:`~nbops.pipeline.interrupted.close_stale_runs`). :meth:`ParentRun.end` first lets the
deliverer deliver every stage's run, then writes the parent's end synchronously.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbops.pipeline import interrupted, layout
from nbops.pipeline.deliverer import Deliverer
from nbops.pipeline.runtime import PARENT_RECORD_ENV
from nbops.record import Context, RunRecord

if TYPE_CHECKING:
    from nbops.executor.forks import Zygote
    from nbops.session import Session


TAG_TRIGGER = "nbops.pipeline.trigger"
TAG_DATA = "nbops.pipeline.data"  # the short fingerprint of the data the run read


class ParentRun:
    """The pipeline's parent run and the thread that delivers its stages' runs."""

    def __init__(self, session: Session, folder: Path, name: str, trigger: str = "") -> None:
        self.session = session
        self.name = name
        self.warnings: list[str] = []
        dvc_yaml = folder / layout.DVC_YAML
        code = dvc_yaml.read_text(encoding="utf-8")
        trigger = trigger or detect_trigger()
        data = data_fingerprint(folder, session)
        self.record = RunRecord(
            name=f"{name} · {trigger} · data {data}",  # three runs of one pipeline, told apart
            experiment=name,
            code=code,
            code_hash="sha256:" + hashlib.sha256(code.encode()).hexdigest(),
            source="pipeline",
            params=layout.read_params(folder),
            tags={"nbops.pipeline": name, TAG_TRIGGER: trigger, TAG_DATA: data},
            context=Context(notebook=str(dvc_yaml), notebook_source="pipeline"),
            description=f"pipeline {name}, {trigger} run, on data {data} (DVC md5 of its files)",
        )
        self.deliverer = Deliverer(session, self._delivered)
        self._echo: Callable[[str], None] = print

    @property
    def run_id(self) -> str | None:
        return self.record.run_id

    @property
    def env(self) -> dict[str, str]:
        """What the stages need to record their runs as its children."""
        return {PARENT_RECORD_ENV: self.record.record_id}

    def begin(self, echo: Callable[[str], None] = print) -> None:
        """Spool the RUNNING run (never waits for MLflow); :meth:`deliver` starts delivering."""
        self._echo = echo
        self.record.start = time.time()
        with contextlib.suppress(Exception):  # the owner tag marks it KILLED if we die
            self.record.tags[interrupted.OWNER_TAG] = interrupted.owner()
        self.session.identify(self.record)
        try:
            self.session.spool.put(self.record)
        except Exception as exc:
            self.warnings.append(f"the pipeline run could not be spooled ({exc})")

    def deliver(self, zygote: Zygote | None = None) -> None:
        """Start the deliverer (through ``zygote``'s children when there is one)."""
        env = {
            "MLFLOW_TRACKING_URI": self.session.config.tracking_uri,
            "NBOPS_PROJECT_ROOT": str(self.session.config.project_root),
        }
        self.deliverer.start(self.record, zygote, env)

    def _delivered(self, record: RunRecord) -> None:
        """On the deliverer's thread, once the parent is in MLflow."""
        interrupted.close_stale_runs(self.session, record, self._echo)

    def end(
        self, status: str, steps: Sequence[Any], metrics: dict[str, float], error: str | None
    ) -> None:
        """Finish the parent with the pipeline's outcome; the deliverer writes it after every
        stage's run (from a zygote child with the warm executor: no MLflow here)."""
        from nbops.session import complete_context

        record = self.record
        record.status = status  # type: ignore[assignment]
        record.end = time.time()
        record.metrics = dict(metrics)
        record.error = error.splitlines()[0] if error else None
        for step in steps:
            prefix = f"nbops.step.{step.name}."
            record.tags[prefix + "status"] = step.state
            for key in ("start", "end", "duration", "cells"):
                value = getattr(step, key, None)
                if value is not None:
                    record.tags[prefix + key] = f"{value:.3f}"
        with contextlib.suppress(Exception):
            complete_context(record, self.session.config)
        for name, reason in self.deliverer.finish(record):
            self.warnings.append(f"run {name!r} is kept in the spool: {reason}")
        if record.run_id is None:
            self.warnings.append(
                f"the pipeline run was not written to MLflow; it is kept in "
                f"{self.session.spool.root} and `nbops sync` delivers it"
            )


# What started ``nbops run``, when the caller does not say: CI systems set these variables
_TRIGGERS = (("GITHUB_EVENT_NAME", "ci {}"), ("GITLAB_CI", "ci"), ("CI", "ci"))


def detect_trigger() -> str:
    """``ci push`` / ``ci schedule`` in a GitHub workflow, ``ci`` elsewhere in CI, else
    ``manual`` (``nbops retrain`` says ``retrain``, ``--force`` ``forced``)."""
    import os

    for variable, text in _TRIGGERS:
        value = os.environ.get(variable, "")
        if value and value.lower() not in ("0", "false"):
            return text.format(value)
    return "manual"


def data_fingerprint(folder: Path, session: Session) -> str:
    """8 hex digits naming the pipeline's data: the md5 of its one data file, or of the files'
    md5s; ``none`` when it reads no file promote copied. Cached like every file hash."""
    from nbops.hashing.files import fingerprint_file
    from nbops.pipeline.retrain import data_files

    parts = []
    for rel in data_files(folder):
        try:
            parts.append(fingerprint_file(folder / rel, session.file_cache).split(":", 1)[-1])
        except OSError:
            parts.append("missing")
    if not parts:
        return "none"
    if len(parts) == 1:
        return parts[0][:8]
    return hashlib.md5("\n".join(parts).encode()).hexdigest()[:8]
