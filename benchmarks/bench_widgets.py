"""P4: rendering the run browser over 1,000 runs, against the MLflow query for them alone.

- nbops: ``RunBrowser(experiment)`` on a SQLite store holding 1,000 runs (10 params, 5
  metrics, data-fingerprint and code-hash tags each), up to the point where its widget (the
  anywidget) holds the view the frontend draws: the first page's table with sortable headers and
  checkboxes, the controls, and the chart of every run with a tooltip each: the spool check, the
  query through nbops' store layer, the mapping to records, columns, sorting and rendering.
- anchor: ``mlflow.search_runs`` for the same 1,000 runs (a DataFrame), nothing displayed.

Both run warm in one process (mlflow imported, the store's engine cached), medians of repeats.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from common import median_times, row

EXPERIMENT = "bench"


def _fill(uri: str, artifacts: Path, count: int) -> None:
    """``count`` runs written the fast way: one ``log_batch`` per run."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment(EXPERIMENT, artifacts.as_uri())
    start = int(time.time() * 1000) - count * 1000
    for i in range(count):
        run = client.create_run(experiment, start_time=start + i * 1000, run_name=f"run{i}")
        stamp = start + i * 1000 + 500
        params = [Param(f"p{k}", str((i + k) % 7)) for k in range(10)]
        metrics = [Metric(f"m{k}", (i * 7 + k) % 100 / 100, stamp, 0) for k in range(5)]
        tags = [
            RunTag("nbops.record_id", f"{i:032x}"),
            RunTag("nbops.code_hash", f"sha256:{i % 3}"),
            RunTag("nbops.data.in.X_train", f"xxh128:{i % 5:032x}"),
        ]
        client.log_batch(run.info.run_id, metrics=metrics, params=params, tags=tags)
        client.set_terminated(run.info.run_id, "FINISHED", end_time=stamp)


def p4(workdir: Path, count: int, repeat: int) -> dict:
    import mlflow

    from nbops.config import load_config
    from nbops.session import Session
    from nbops.widgets import RunBrowser

    (workdir / "pyproject.toml").write_text("[tool.nbops]\n")
    config = load_config(workdir)
    _fill(config.tracking_uri, workdir / "mlartifacts", count)
    session = Session(config)

    def render() -> None:
        browser = RunBrowser(EXPERIMENT, session=session)
        assert browser.widget is not None and len(browser.table.records) == count
        html = browser.widget.view["html"]
        assert "<table" in html and html.count("<circle") == count

    mlflow.set_tracking_uri(config.tracking_uri)  # this benchmark's process only

    def query() -> None:
        frame = mlflow.search_runs(experiment_names=[EXPERIMENT], max_results=count)
        assert len(frame) == count

    render()  # warm: ipywidgets imported, the store's engine created
    query()
    ours = median_times(render, repeat)
    theirs = median_times(query, repeat)
    return row(
        "P4",
        f"RunBrowser over {count:,} runs (first page)",
        ours,
        "mlflow.search_runs",
        theirs,
        1.5,
    )


def rows(quick: bool = False) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        return [p4(Path(tmp), 200 if quick else 1000, 3 if quick else 7)]


if __name__ == "__main__":
    for result in rows(quick="--quick" in sys.argv):
        print(result)
