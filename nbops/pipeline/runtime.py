"""The part of a pipeline step that runs inside the step notebook's kernel.

The generated load cell calls :meth:`StepRun.start` (load inputs, begin the same capture as
``%%track``, source "step"); the save cell calls :meth:`StepRun.finish` (save outputs, write
``metrics/<step>.json``, record the run and wait until MLflow has it, because the kernel is
shut down right after). A cell that raises in between is recorded as a FAILED run by an
IPython ``post_run_cell`` hook, before papermill sees the error.

Importing this module stays light (no mlflow, dvc, pandas or papermill): it runs in every step.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbops.errors import NotebookError
from nbops.pipeline import layout, serializers
from nbops.store import mapping

if TYPE_CHECKING:
    from nbops.capture import Capture
    from nbops.record import RunRecord
    from nbops.session import Session

PARENT_ENV = "NBOPS_PARENT_RUN"  # the parent run's MLflow id (when known at start)
PARENT_RECORD_ENV = "NBOPS_PARENT_RECORD"  # its record id: the deliverer links the runs
NOTEBOOK_ENV = "NBOPS_NOTEBOOK"


def parent_tags() -> dict[str, str]:
    """The tags that make a stage's run a child of the ``nbops run`` that started it."""
    tags = {}
    if os.environ.get(PARENT_ENV):
        tags["mlflow.parentRunId"] = os.environ[PARENT_ENV]
    if os.environ.get(PARENT_RECORD_ENV):
        tags[mapping.TAG_PARENT_RECORD] = os.environ[PARENT_RECORD_ENV]
    return tags


class StepRun:
    """One execution of one step; create it with :meth:`start`."""

    def __init__(
        self,
        name: str,
        root: Path,
        capture: Capture,
        session: Session,
        outputs: list[str],
        metrics: list[str],
    ) -> None:
        self.name = name
        self.root = root
        self.capture = capture
        self.session = session
        self.outputs = outputs
        self.metrics = metrics
        self.record: RunRecord | None = None
        self.saved: dict[str, Path] = {}

    @classmethod
    def start(
        cls,
        name: str,
        ns: MutableMapping[str, Any],
        inputs: Mapping[str, str] | None = None,
        outputs: Iterable[str] = (),
        params: Iterable[str] = (),
        metrics: Iterable[str] = (),
    ) -> StepRun:
        """Load ``inputs`` ({variable: producing step}) into ``ns`` and begin the capture."""
        from nbops.capture import CaptureOptions
        from nbops.session import default_session

        root = Path.cwd()  # every step runs with the pipeline folder as working directory
        inputs = dict(inputs or {})
        for var, producer in inputs.items():
            ns[var] = serializers.load(var, producer, name, root)
        pipeline = layout.pipeline_name(root)
        tags = {"nbops.step": name, "nbops.pipeline": pipeline, **parent_tags()}
        outputs, metrics = list(outputs), list(metrics)
        notebook = os.environ.get(NOTEBOOK_ENV) or None
        options = CaptureOptions(
            name=name,
            experiment=pipeline,
            params=list(params),
            metrics=metrics,
            data=[*inputs, *outputs],
            notebook=notebook,
            source="step",
            tags=tags,
        )
        cells = step_cells(notebook)
        raw = "\n\n".join(cells)
        session = default_session()
        capture = session.capture("\n\n".join(map(_python, cells)), ns, options, raw=raw)
        capture.begin()
        run = cls(name, root, capture, session, outputs, metrics)
        run._watch_failures()
        if '"cache": true' in _raw_text(notebook):  # cells the notebook ran with --cache
            from nbops.pipeline.step_cache import StepCache

            StepCache.install(_ipython(), run, notebook)
        return run

    def finish(self, ns: Mapping[str, Any]) -> None:
        """Save outputs and metrics, record the run and wait until it is written."""
        self.capture.ns = ns  # type: ignore[assignment]  # read-only from here on
        folder = self.root / serializers.ARTIFACTS_DIR / self.name
        if self.outputs:
            folder.mkdir(parents=True, exist_ok=True)  # the stage's DVC out
        for var in self.outputs:
            if var not in ns:
                raise NotebookError(
                    f"step {self.name!r} did not define {var!r}, which later steps read",
                    fix=f"make the step's cells assign {var!r} (edit the source notebook and "
                    "re-run `nbops promote`)",
                    variable=var,
                    step=self.name,
                )
            self.saved[var], _ = serializers.save(ns[var], var, self.name, folder)
        record = self._commit(None)
        self._write_metrics(record.metrics)
        self._show(record, self.session)

    @staticmethod
    def _show(record: RunRecord, session: Session) -> None:
        """The same compact summary ``%%track`` shows, under the save cell of the report."""
        if _ipython() is None:
            return
        from IPython.display import display

        from nbops.display import Summary
        from nbops.links import ui_address

        state = "saved" if record.run_id else "local"
        if not record.run_id and os.environ.get("NBOPS_DELIVERY") == "spool":
            state = "saving"  # `nbops run` delivers it when the step ends
        display(Summary(record, state, ui=ui_address(session.config)))

    def _write_metrics(self, values: Mapping[str, float]) -> None:
        """``metrics/<step>.json``: the metrics the step's run recorded (declared by the
        ``metrics`` tag or captured like ``%%track`` does), for DVC and ``nbops run --check``."""
        missing = [name for name in self.metrics if name not in values]
        for name in missing:
            print(f"nbops: step {self.name!r}: metric {name!r} is not a number", file=sys.stderr)
        path = self.root / layout.METRICS_DIR / f"{self.name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(dict(values), indent=1, sort_keys=True) + "\n"
        path.write_text(text, encoding="utf-8")

    def _commit(self, error: BaseException | None) -> RunRecord:
        """Spool and write the record now: the kernel is shut down as soon as the cell ends."""
        if self.record is not None:
            return self.record
        record, _ = self.session.commit(self.capture, error)
        self.record = record
        failures = self.session.flush(self.session.config.flush_timeout)
        for failed, exc in failures:
            if failed is record:
                print(
                    f"nbops: the run of step {self.name!r} is kept in {self.session.spool.root} "
                    f"(MLflow write failed: {exc}); `nbops sync` delivers it",
                    file=sys.stderr,
                )
        return record

    def _watch_failures(self) -> None:
        """Record a FAILED run when a later cell raises (the save cell will not run then)."""
        shell = _ipython()
        if shell is None:
            return

        def on_post_run(result: Any) -> None:
            error = getattr(result, "error_in_exec", None)
            if self.record is None and error is None:
                return
            shell.events.unregister("post_run_cell", on_post_run)
            if self.record is None:
                self._commit(error)

        shell.events.register("post_run_cell", on_post_run)


def step_cells(notebook: str | None) -> list[str]:
    """The step's own code cells (tag ``nbops-step``) of the executing notebook; [] if unknown."""
    if not notebook:
        return []
    try:
        nb = layout.read_notebook(Path(notebook))
    except NotebookError:
        return []
    return [src.rstrip("\n") for src in layout.tagged_code(nb, layout.TAG_STEP)]


def _raw_text(notebook: str | None) -> str:
    """The step notebook's text ("" if unknown): the cache is imported only when it is used."""
    try:
        return Path(notebook).read_text(encoding="utf-8") if notebook else ""
    except OSError:
        return ""


def _ipython() -> Any:
    module = sys.modules.get("IPython")
    get = getattr(module, "get_ipython", None) if module is not None else None
    return get() if get is not None else None


def _python(code: str) -> str:
    """IPython syntax (magics, ``!cmd``) as Python, so the capture's AST scan can read it."""
    shell = _ipython()
    if shell is None or not code:
        return code
    try:
        return shell.transform_cell(code)
    except Exception:  # the scan then records a syntax warning; the step itself is unaffected
        return code
