"""P2, P2i, P2m: what ``%%track`` costs the user, against the MLflow calls it replaces.

- P2: added latency of ``%%track`` on a trivial cell, through a real kernel (warm), against
  the hand-written per-value MLflow calls that log the same record (warm store).
- P2i: ``%load_ext nbops`` against ``import mlflow``, each in a fresh interpreter.
- P2m: what ``%%track --model`` adds to a cell, against a default ``mlflow.sklearn.log_model``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import median_times, row

TRIVIAL = "a = 1\nb = 2.0\nscore = a + b\n"


def p2(workdir: Path, repeat: int) -> dict:
    """Kernel round trips of a trivial cell with and without %%track."""
    from jupyter_client.manager import start_new_kernel

    (workdir / "pyproject.toml").write_text("[tool.nbops]\n")
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
        return [p2(work / "k", repeat), p2i(5 if quick else 9), p2m(work / "m", repeat)]


if __name__ == "__main__":
    for row in rows(quick="--quick" in sys.argv):
        print(row)
