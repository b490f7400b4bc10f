"""P2, P2i, P2m: what ``%%track`` costs the user, against the MLflow calls it replaces.

- P2: added latency of ``%%track`` on a trivial cell, through a real kernel (warm), against
  the hand-written per-value MLflow calls that log the same record (warm store).
- P2i: ``%load_ext nbops`` against ``import mlflow``, each in a fresh interpreter.
- P2m: what ``%%track --model`` adds to a cell, against a default ``mlflow.sklearn.log_model``.
- P2h: a headless kernel (as papermill's): from the start of the first tracked cell to its run
  being readable in MLflow, against a cell of hand-written MLflow calls logging the same record,
  each in a fresh kernel after a cell that only sets up (``%load_ext nbops`` / nothing) and
  against an existing store.

P2 is the interactive path (a live front end: the write happens in the background); the
benchmark's kernel is started by this process, which nbops would take for a headless run, so P2
sets ``NBOPS_DELIVERY=async`` as JupyterLab's kernels get it by detection.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import median_times, row

TRIVIAL = "a = 1\nb = 2.0\nscore = a + b\n"


def p2(workdir: Path, repeat: int) -> dict:
    """Kernel round trips of a trivial cell with and without %%track."""
    from jupyter_client.manager import start_new_kernel

    (workdir / "pyproject.toml").write_text('[tool.nbops]\ndelivery = "async"\n')
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(workdir))
    try:

        def run(code: str) -> None:
            reply = kc.execute_interactive(code, timeout=60, output_hook=lambda msg: None)
            assert reply["content"]["status"] == "ok", reply["content"]

        run("%load_ext nbops")
        for _ in range(5):  # warm: mlflow imported on the writer thread, DB migrated
            run("%%track\n" + TRIVIAL)
        run("%nbops wait")
        # A user's cells are seconds apart: measure each cell with the writer idle, as then.
        settle = lambda: run("%nbops wait")  # noqa: E731
        plain = median_times(lambda: run(TRIVIAL), repeat, settle)
        tracked = median_times(lambda: run("%%track\n" + TRIVIAL), repeat, settle)
        run("%nbops wait")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    anchor = _handwritten(workdir, repeat)
    return row(
        "P2",
        "%%track added latency, trivial cell",
        tracked - plain,
        "hand-written MLflow calls",
        anchor,
        0.25,
    )


HANDWRITTEN_CELL = """
import hashlib, time
from mlflow.tracking import MlflowClient
from mlflow.entities import Metric, Param, RunTag
client = MlflowClient(tracking_uri={uri!r})
exp = client.get_experiment_by_name("anchor") or client.get_experiment(
    client.create_experiment("anchor", {art!r}))
run = client.create_run(exp.experiment_id, run_name="cell")
now = int(time.time() * 1000)
client.log_batch(run.info.run_id, metrics=[Metric("score", 3.0, now, 0)],
    params=[Param("a", "1"), Param("b", "2.0")],
    tags=[RunTag("code_hash", hashlib.sha256(b"x").hexdigest())])
client.log_text(run.info.run_id, {code!r}, "cell.py")
client.set_terminated(run.info.run_id, "FINISHED")
"""


def p2h(workdir: Path, repeat: int) -> dict:
    """Headless: a fresh kernel per sample, the tracked cell timed until its reply (nbops then
    has the run in MLflow; checked), against the same record logged by hand in the cell."""
    from jupyter_client.manager import start_new_kernel
    from mlflow.tracking import MlflowClient

    (workdir / "pyproject.toml").write_text("[tool.nbops]\n")
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    anchor_cell = HANDWRITTEN_CELL.format(
        uri=f"sqlite:///{workdir / 'anchor.db'}",
        art=(workdir / "anchor_art").as_uri(),
        code=TRIVIAL,
    )

    def first_cell(setup: str, cell: str) -> float:
        km, kc = start_new_kernel(kernel_name="python3", cwd=str(workdir))
        try:

            def run(code: str) -> None:
                reply = kc.execute_interactive(code, timeout=120, output_hook=lambda msg: None)
                assert reply["content"]["status"] == "ok", reply["content"]

            run(setup)
            t0 = time.perf_counter()
            run(cell)
            return time.perf_counter() - t0
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)

    first_cell("%load_ext nbops", "%%track\n" + TRIVIAL)  # the stores exist (steady state)
    first_cell("pass", anchor_cell)
    ours = statistics.median(
        first_cell("%load_ext nbops", "%%track\n" + TRIVIAL) for _ in range(repeat)
    )
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == repeat + 1 and {r.info.status for r in runs} == {"FINISHED"}
    theirs = statistics.median(first_cell("pass", anchor_cell) for _ in range(repeat))
    return row(
        "P2h",
        "headless: tracked cell start -> run in MLflow",
        ours,
        "hand-written MLflow calls in the cell",
        theirs,
        1.1,
    )


def _handwritten(workdir: Path, repeat: int) -> float:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{workdir / 'anchor.db'}")
    exp = client.create_experiment("anchor", (workdir / "anchor_art").as_uri())

    def log() -> None:
        run = client.create_run(exp)
        rid = run.info.run_id
        client.log_param(rid, "a", 1)
        client.log_param(rid, "b", 2.0)
        client.log_metric(rid, "score", 3.0)
        client.set_tag(rid, "nbops.code_hash", "sha256:0")
        client.log_text(rid, TRIVIAL, "nbops/cell.py")
        client.set_terminated(rid, "FINISHED")

    log()
    return median_times(log, repeat)


def p2i(repeat: int) -> dict:
    load = (
        "import time;from IPython.core.interactiveshell import InteractiveShell;"
        "s=InteractiveShell.instance();t=time.perf_counter();s.run_line_magic('load_ext','nbops');"
        "print(time.perf_counter()-t)"
    )
    anchor = "import time;t=time.perf_counter();import mlflow;print(time.perf_counter()-t)"

    def fresh(code: str) -> float:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        return float(out.stdout.strip().splitlines()[-1])

    ours = statistics.median(fresh(load) for _ in range(repeat))
    theirs = statistics.median(fresh(anchor) for _ in range(repeat))
    return row("P2i", "%load_ext nbops", ours, "import mlflow", theirs, 0.1)


def p2m(workdir: Path, repeat: int) -> dict:
    """In-process shell: a cell naming a fitted forest with --model, vs mlflow's log_model."""
    import mlflow
    from IPython.core.interactiveshell import InteractiveShell
    from sklearn.datasets import load_wine
    from sklearn.ensemble import RandomForestClassifier

    from nbops.config import load_config
    from nbops.magics import NbopsMagics
    from nbops.session import Session

    X, y = load_wine(return_X_y=True, as_frame=True)
    model = RandomForestClassifier(n_estimators=50, random_state=0).fit(X, y)
    shell = InteractiveShell.instance()
    shell.user_ns.update(model=model, X=X)
    session = Session(load_config(workdir))
    shell.register_magics(NbopsMagics(shell, session=session))
    cell = "pred = model.predict(X.head())\n"
    shell.run_cell("%%track --no-model\n" + cell)
    session.flush()
    settle = session.flush
    without = median_times(lambda: shell.run_cell("%%track --no-model\n" + cell), repeat, settle)
    with_model = median_times(
        lambda: shell.run_cell("%%track --model model\n" + cell), repeat, settle
    )
    session.flush()

    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'anchor_model.db'}")
    experiment = mlflow.create_experiment("anchor", (workdir / "anchor_art").as_uri())

    def default_log() -> None:
        with mlflow.start_run(experiment_id=experiment):
            mlflow.sklearn.log_model(model, name="model", serialization_format="cloudpickle")

    anchor = median_times(default_log, max(3, repeat // 5))
    return row(
        "P2m",
        "%%track --model (added)",
        max(with_model - without, 1e-6),
        "mlflow.sklearn.log_model",
        anchor,
        0.05,
    )


def rows(quick: bool = False) -> list[dict]:
    repeat = 10 if quick else 30
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "k").mkdir()
        (work / "m").mkdir()
        (work / "m" / "pyproject.toml").write_text("[tool.nbops]\n")
        (work / "h").mkdir()
        return [
            p2(work / "k", repeat),
            p2h(work / "h", 3 if quick else 7),
            p2i(5 if quick else 9),
            p2m(work / "m", repeat),
        ]


if __name__ == "__main__":
    for row in rows(quick="--quick" in sys.argv):
        print(row)
