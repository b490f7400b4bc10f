"""P3, P3f: what ``nbops run`` costs on a promoted 3-step pipeline, against DVC and papermill.

- P3: ``nbops run`` with nothing changed, against ``dvc repro`` with nothing changed (same
  pipeline, both after a first run): the parent MLflow run and the CLI around DVC.
- P3f: the first run of the pipeline (a fresh copy of the promoted folder: no artifacts,
  reports, metrics, ``dvc.lock`` or DVC cache) with ``nbops run``, against executing its stages
  in order in another fresh copy without DVC: the step notebooks with ``papermill`` (same
  parameters, same store), the gate stages (``nbops validate ...``) by their own command.

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

from common import row

BIN = Path(sys.executable).parent
NBOPS = str(BIN / "nbops")
PAPERMILL = str(BIN / "papermill")

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


def build(project: Path) -> Path:
    """Write the wine notebook and its data into ``project``, promote it, run it once."""
    from nbops.examples import write_wine_project
    from nbops.promote import promote

    (project / "pyproject.toml").write_text('[project]\nname = "bench"\nversion = "0"\n')
    pipeline = promote(str(write_wine_project(project))).out_dir
    _run([NBOPS, "run", str(pipeline)], project)
    return Path(pipeline)


def fresh_copy(pipeline: Path, dest: Path) -> Path:
    """The promoted folder as committed: no run outputs, no DVC cache."""
    shutil.copytree(pipeline, dest, ignore=shutil.ignore_patterns(*RUN_OUTPUTS))
    return dest


def repro_targets(pipeline: Path) -> list[str]:
    """No target (every stage) unless some stage is ``always_changed`` (the model gate: DVC
    re-runs it every time, ``nbops run`` counts it as up to date); then the other stages, so
    both sides do the same "nothing changed" check."""
    stages = dvc_stages(pipeline)
    steady = [name for name, stage in stages.items() if not stage.get("always_changed")]
    return [] if len(steady) == len(stages) else steady


def p3(pipeline: Path, repeat: int) -> dict:
    """No-op runs: nothing changed since the first run. Interleaved, so drift hits both."""
    targets = repro_targets(pipeline)
    anchor = [sys.executable, "-m", "dvc", "repro", *targets]
    ours, theirs = [], []
    for _ in range(repeat):
        ours.append(_run([NBOPS, "run", str(pipeline)], pipeline))
        theirs.append(_run(anchor, pipeline))
    return row(
        "P3",
        "nbops run, nothing changed",
        statistics.median(ours),
        "dvc repro, nothing changed" + (" (minus always_changed)" if targets else ""),
        statistics.median(theirs),
        1.2,
    )


def papermill_steps(folder: Path, project: Path) -> float:
    """Every stage of ``dvc.yaml`` in its order (promote writes run order) without DVC or
    ``nbops run``: step notebooks with papermill and the parameters ``nbops step`` injects,
    other stages (the data and model gates) by their own command; the store ``nbops run``
    gives its stages. Returns the total wall time."""
    import shlex

    import yaml

    from nbops.config import load_config
    from nbops.pipeline import layout
    from nbops.pipeline.step import step_name, step_parameters

    env = _env(
        MLFLOW_TRACKING_URI=load_config(project).tracking_uri, NBOPS_PROJECT_ROOT=str(project)
    )
    params = layout.read_params(folder)
    total = 0.0
    for stage in dvc_stages(folder).values():
        words = shlex.split(stage["cmd"])
        if words[:2] != ["nbops", "step"]:
            total += _run(words, folder, env)
            continue
        notebook = folder / words[2]
        values = step_parameters(layout.read_notebook(notebook), params, step_name(notebook))
        cmd = [PAPERMILL, words[2], f"out_{notebook.name}", "--no-progress-bar"]
        total += _run([*cmd, "-y", yaml.safe_dump(values)], folder, env)
    return total


def p3f(pipeline: Path, project: Path, repeat: int) -> dict:
    ours, theirs = [], []
    for i in range(repeat):
        ours.append(_run([NBOPS, "run", "."], fresh_copy(pipeline, project / f"n{i}" / "wine")))
        theirs.append(papermill_steps(fresh_copy(pipeline, project / f"p{i}" / "wine"), project))
    stages = [stage["cmd"] for stage in dvc_stages(pipeline).values()]
    notebooks = sum(1 for cmd in stages if cmd.startswith("nbops step "))
    others = len(stages) - notebooks
    return row(
        "P3f",
        f"nbops run, first run ({len(stages)} stages)",
        statistics.median(ours),
        f"papermill, {notebooks} step notebooks" + (f" + {others} gate commands" if others else ""),
        statistics.median(theirs),
        1.3,
    )


def dvc_stages(pipeline: Path) -> dict[str, dict]:
    """The stages of the pipeline's ``dvc.yaml``, in its order."""
    import yaml

    return yaml.safe_load((pipeline / "dvc.yaml").read_text())["stages"]


def rows(quick: bool = False) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp).resolve()
        pipeline = build(project)
        return [p3(pipeline, 3 if quick else 7), p3f(pipeline, project, 1 if quick else 3)]


if __name__ == "__main__":
    for row in rows(quick="--quick" in sys.argv):
        print(row)
