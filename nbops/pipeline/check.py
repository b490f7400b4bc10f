"""``nbops run --check``: does the pipeline reproduce the notebook it was promoted from?

Each metric of the pipeline (``metrics/*.json``) is compared with the newest ``%%track`` run of
the source notebook (experiment = the notebook's stem, from ``.nbops-promote.json``) that
reports that metric and whose parameters do not contradict ``params.yaml``. Runs recording
none of the pipeline's parameters are used only when no run records any, and the report says
so. Unseeded estimators and splits (the records' ``random_state`` warnings) explain most
mismatches, so they are listed with the table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbops import names
from nbops.errors import UsageError
from nbops.pipeline import layout
from nbops.record import RunRecord
from nbops.store.mapping import param_value

if TYPE_CHECKING:
    from nbops.session import Session
    from nbops.store.protocol import Tracker

TOLERANCE = 1e-9
NOTEBOOK_SOURCES = ("cell", "block")  # %%track cells (and nbops.track() blocks)
STATE_TAG = "nbops.state"  # nbops.capture.staleness: the tracked cell's verdict
MAX_RUNS = 1000


@dataclass
class MetricRow:
    name: str
    notebook: float | None
    pipeline: float | None
    run_id: str | None = None  # the notebook run the value comes from
    tolerance: float = TOLERANCE

    @property
    def compared(self) -> bool:
        """False when the notebook never reported the metric: nothing to compare with."""
        return self.notebook is not None and self.pipeline is not None

    @property
    def match(self) -> bool:
        a, b = self.notebook, self.pipeline
        if a is None or b is None:
            return False
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b or abs(a - b) <= self.tolerance


@dataclass
class CheckReport:
    """The comparison table plus what explains it (notes, seed warnings)."""

    pipeline: str
    experiment: str
    params: dict[str, Any]
    rows: list[MetricRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def mismatched(self) -> list[str]:
        """Metrics compared and found different (the check's failure)."""
        return [row.name for row in self.rows if row.compared and not row.match]

    @property
    def ok(self) -> bool:
        """At least one metric compared, and every compared metric matches."""
        compared = [row for row in self.rows if row.compared]
        return bool(compared) and all(row.match for row in compared)

    def text(self) -> str:
        header = ("metric", "notebook", "pipeline", "match")
        body = [(r.name, _fmt(r.notebook), _fmt(r.pipeline), _verdict(r)) for r in self.rows]
        widths = [max(len(line[i]) for line in [header, *body]) for i in range(4)]
        lines = [
            f"reproducibility of {self.pipeline} against notebook {self.experiment!r}:",
            *(
                " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True))
                for line in [header, *body]
            ),
        ]
        lines.insert(2, "-+-".join("-" * w for w in widths))
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def check_pipeline(
    folder: str | Path = ".",
    *,
    session: Session | None = None,
    metrics: dict[str, float] | None = None,
    tolerance: float = TOLERANCE,
) -> CheckReport:
    """Compare the pipeline's metrics (``metrics`` or ``metrics/*.json``) with the notebook's."""
    path = Path(folder).resolve()
    source = layout.read_manifest(path).get("source")
    if not isinstance(source, str) or not source:
        raise UsageError(
            f"{path / layout.MANIFEST} does not name the source notebook",
            fix="re-run `nbops promote NOTEBOOK --force` to regenerate the pipeline",
        )
    if session is None:
        from nbops.session import pipeline_session

        session = pipeline_session(path)
    tracker = session.reader()
    name = layout.pipeline_name(path)
    report = CheckReport(name, Path(source).stem, layout.read_params(path))
    if metrics is None:
        metrics = layout.read_metrics(path, layout.stage_names(path))
    if not metrics:
        report.notes.append("the pipeline has no metrics yet: run it first (`nbops run`)")
        return report
    runs = tracker.list_runs(report.experiment, MAX_RUNS)
    candidates = _candidates(runs, report.params)
    report.notes += _ambiguous(runs, report.params)
    used: dict[str, RunRecord] = {}
    for metric in sorted(metrics):
        run = _pick(candidates, metric, report)
        if run is not None and run.run_id:
            used[run.run_id] = run
        value = run.metrics.get(metric) if run is not None else None
        report.rows.append(
            MetricRow(metric, value, metrics[metric], run.run_id if run else None, tolerance)
        )
    missing = [row.name for row in report.rows if row.notebook is None]
    if missing:
        report.notes.append(
            f"no %%track run of {report.experiment!r} with these parameters reports "
            f"{', '.join(missing)}: run the notebook's tracked cells with params.yaml's values "
            "to compare them"
        )
    report.warnings = _seed_warnings(tracker, list(used), name)
    report.notes += [_run_state(tracker, run_id) for run_id in used]
    return report


def _candidates(runs: list[RunRecord], params: dict[str, Any]) -> list[tuple[RunRecord, int]]:
    """Notebook runs (newest first) without a conflicting parameter, with how many agree."""
    out = []
    for run in runs:
        if run.source not in NOTEBOOK_SOURCES or run.status != "FINISHED":
            continue
        pairs = [(k, v) for k in params for v in _recorded(run.params, k)]
        if all(_same(param_value(params[k]), v) for k, v in pairs):
            out.append((run, len({k for k, _ in pairs})))
    return out


def _recorded(run_params: dict[str, Any], key: str) -> list[str]:
    """What a run recorded for a parameter: ``key`` itself, else the estimator settings of
    that short name (``model.n_estimators``: a parameters-cell value passed to an estimator;
    see :mod:`nbops.names`)."""
    return [str(run_params[k]) for k in names.matches(run_params, key)]


def _ambiguous(runs: list[RunRecord], params: dict[str, Any]) -> list[str]:
    """A note per parameter that names several settings of one notebook run (``rf.max_depth``
    and ``gb.max_depth``): the run is used only if all of them agree with params.yaml."""
    notes = []
    for key in params:
        for run in runs:
            found = names.matches(run.params, key) if run.source in NOTEBOOK_SOURCES else []
            if len(found) > 1:
                notes.append(
                    f"params.yaml's {key!r} matches {', '.join(found)} in run "
                    f"{(run.run_id or '')[:8]}: it is compared with each; give the notebook's "
                    f"parameters cell a {key} that the cell passes on, to compare with one"
                )
                break
    return notes


def _pick(candidates: list[tuple[RunRecord, int]], metric: str, report: CheckReport) -> Any:
    having = [(run, n) for run, n in candidates if metric in run.metrics]
    verified = next((run for run, n in having if n > 0), None)
    if verified is not None or not having:
        return verified
    run = having[0][0]
    report.notes.append(
        f"{metric}: run {(run.run_id or '')[:8]} records none of the pipeline's parameters; "
        "matched by metric name only"
    )
    return run


def _same(a: str, b: str) -> bool:
    """Equal as text, or as numbers (params.yaml ``2`` and a notebook's ``2.0``)."""
    if a == b:
        return True
    try:
        return float(a) == float(b)
    except ValueError:
        return False


def _seed_warnings(tracker: Tracker, notebook_runs: list[str], pipeline: str) -> list[str]:
    """``random_state`` warnings of the notebook runs used and of the latest step runs."""
    sources = [(f"notebook run {run_id[:8]}", run_id) for run_id in notebook_runs]
    latest: dict[str, str] = {}
    for run in tracker.list_runs(pipeline, MAX_RUNS):
        if run.source == "step" and run.name and run.run_id:
            latest.setdefault(run.name, run.run_id)
    sources += [(f"step {step}", run_id) for step, run_id in latest.items()]
    found: list[str] = []
    for label, run_id in sources:
        try:
            record = tracker.get_run(run_id)
        except Exception:  # a deleted run: nothing to warn about
            continue
        for text in record.warnings:
            line = f"{label}: {text}"
            if ("random_state" in text or "seed" in text) and line not in found:
                found.append(line)
    return found


def _run_state(tracker: Tracker, run_id: str) -> str:
    """Whether the notebook run compared against ran on clean state (its ``nbops.state`` tag,
    written by the hidden-state check of the tracked cell)."""
    try:
        state = tracker.get_run(run_id).tags.get(STATE_TAG, "")
    except Exception:  # a deleted run: nothing to say
        state = ""
    head = f"notebook run {run_id[:8]}"
    verdict, _, reason = state.partition(": ")
    if verdict == "clean":
        return f"{head} was clean: its kernel ran the cells in order, top to bottom"
    if verdict in ("hidden state", "out of order"):
        return (
            f"{head} was NOT clean ({verdict}: {reason}); the pipeline runs the cells top to "
            "bottom, so a mismatch may come from the notebook's order: Restart & Run All, "
            "then check again"
        )
    if verdict == "unknown":
        return f"{head}: whether it ran top to bottom is unknown ({reason})"
    return f"{head}: recorded without the hidden-state check, so whether it was clean is unknown"


def _verdict(row: MetricRow) -> str:
    if not row.compared:
        return "n/a"
    return "yes" if row.match else "NO"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.10g}"
