"""P3, P3f: what ``nbops run`` costs on a promoted 3-step pipeline, against DVC and papermill.

- P3: ``nbops run`` with nothing changed, against ``dvc repro`` with nothing changed (same
  pipeline, both after a first run): the parent MLflow run and the CLI around DVC.
- P3f: the first run of the pipeline (a fresh copy of the promoted folder: no artifacts,
  reports, metrics, ``dvc.lock`` or DVC cache) with ``nbops run``, against executing its three
  step notebooks in order with ``papermill`` (same parameters, same store) in another fresh copy.

The pipeline is the one tests/integration/test_promote_e2e.py promotes: wine data, load ->
train -> evaluate, in a temporary project (a folder with pyproject.toml, SQLite store).
Every command runs in its own process, as a user would start it.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
NBOPS = str(BIN / "nbops")
PAPERMILL = str(BIN / "papermill")

CELLS = [
    ([], "%load_ext nbops"),
    (["parameters"], "n_estimators = 20\nmax_depth = 4\ntest_size = 0.25"),
    (
        ["setup"],
        "import pandas as pd\nfrom sklearn.ensemble import RandomForestClassifier\n"
        "from sklearn.metrics import accuracy_score\n"
        "from sklearn.model_selection import train_test_split",
    ),
    (
        ["step:load"],
        'df = pd.read_csv("data/wine.csv")\nX = df.drop(columns="target")\ny = df["target"]',
    ),
    (
        ["step:train"],
        "X_train, X_test, y_train, y_test = train_test_split(\n"
        "    X, y, test_size=test_size, random_state=0)\n"
        "model = RandomForestClassifier(n_estimators=n_estimators, max_depth=max_depth, "
        "random_state=0)\nmodel.fit(X_train, y_train)",
    ),
    (
        ["step:evaluate"],
        "%%track --params n_estimators,max_depth,test_size\n"
        "accuracy = accuracy_score(y_test, model.predict(X_test))",
    ),
]
# a fresh copy leaves out what a run writes (and the DVC cache: .dvc/cache, .dvc/tmp)
RUN_OUTPUTS = ("artifacts", "reports", "metrics", "dvc.lock", ".nbops", "cache", "tmp")


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("NBOPS_") and k not in ("MLFLOW_TRACKING_URI", "JPY_SESSION_NAME")
    }
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    return env | {"DVC_NO_ANALYTICS": "1"} | extra


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env or _env(), capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed in {cwd}:\n{done.stdout}\n{done.stderr}")
    return elapsed


def _row(id_: str, what: str, nbops_s: float, anchor: str, anchor_s: float, limit: float) -> dict:
    ratio = nbops_s / anchor_s
    return {
        "id": id_,
        "what": what,
        "nbops_s": nbops_s,
        "anchor": anchor,
        "anchor_s": anchor_s,
        "ratio": ratio,
        "target": f"<= {limit}x",
        "met": ratio <= limit,
    }


def build(project: Path) -> Path:
    """Write the wine notebook and its data into ``project``, promote it, run it once."""
    import nbformat
    from sklearn.datasets import load_wine

    from nbops.promote import promote

    (project / "pyproject.toml").write_text('[project]\nname = "bench"\nversion = "0"\n')
    (project / "data").mkdir()
    load_wine(as_frame=True).frame.to_csv(project / "data" / "wine.csv", index=False)
    nb = nbformat.v4.new_notebook()
    for tags, source in CELLS:
        nb.cells.append(nbformat.v4.new_code_cell(source, metadata={"tags": tags}))
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, project / "wine.ipynb")
    pipeline = promote(str(project / "wine.ipynb")).out_dir
    _run([NBOPS, "run", str(pipeline)], project)
    return Path(pipeline)


def fresh_copy(pipeline: Path, dest: Path) -> Path:
    """The promoted folder as committed: no run outputs, no DVC cache."""
    shutil.copytree(pipeline, dest, ignore=shutil.ignore_patterns(*RUN_OUTPUTS))
    return dest


def p3(pipeline: Path, repeat: int) -> dict:
    """No-op runs: nothing changed since the first run. Interleaved, so drift hits both."""
    ours, theirs = [], []
    for _ in range(repeat):
        ours.append(_run([NBOPS, "run", str(pipeline)], pipeline))
        theirs.append(_run([sys.executable, "-m", "dvc", "repro"], pipeline))
    return _row(
        "P3",
        "nbops run, nothing changed",
        statistics.median(ours),
        "dvc repro, nothing changed",
        statistics.median(theirs),
        1.2,
    )


def papermill_steps(folder: Path, project: Path) -> float:
    """Each step notebook with papermill, in order, with the parameters ``nbops step`` injects
    and the store ``nbops run`` gives the steps; returns the total wall time."""
    import yaml

    from nbops.config import load_config
    from nbops.pipeline import layout
    from nbops.pipeline.step import step_name, step_parameters

    env = _env(
        MLFLOW_TRACKING_URI=load_config(project).tracking_uri, NBOPS_PROJECT_ROOT=str(project)
    )
    params = layout.read_params(folder)
    total = 0.0
    for notebook in sorted((folder / "steps").glob("*.ipynb")):
        values = step_parameters(layout.read_notebook(notebook), params, step_name(notebook))
        cmd = [PAPERMILL, f"steps/{notebook.name}", f"out_{notebook.name}", "--no-progress-bar"]
        total += _run([*cmd, "-y", yaml.safe_dump(values)], folder, env)
    return total


def p3f(pipeline: Path, project: Path, repeat: int) -> dict:
    ours, theirs = [], []
    for i in range(repeat):
        ours.append(_run([NBOPS, "run", "."], fresh_copy(pipeline, project / f"n{i}" / "wine")))
        theirs.append(papermill_steps(fresh_copy(pipeline, project / f"p{i}" / "wine"), project))
    return _row(
        "P3f",
        "nbops run, first run (3 steps)",
        statistics.median(ours),
        "papermill, 3 step notebooks",
        statistics.median(theirs),
        1.3,
    )


def rows(quick: bool = False) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp).resolve()
        pipeline = build(project)
        return [p3(pipeline, 3 if quick else 7), p3f(pipeline, project, 1 if quick else 3)]


if __name__ == "__main__":
    for row in rows(quick="--quick" in sys.argv):
        print(row)
