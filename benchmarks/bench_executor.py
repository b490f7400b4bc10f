"""P6: ``nbops run`` with its warm executor, against the notebook it came from and the cold path.

- P6o: per-step overhead: a step's wall time (DVC's "Running stage" to its next event) minus its
  cells' own time (papermill's per-cell durations), median over the wine pipeline's steps, on a
  first run; anchor: the same figure on the cold path (``nbops run --cold``: every stage a new
  process, as a plain ``dvc repro``), same run. Target: <= 0.5 s (the ratio is informative).
- P6w: the first ``nbops run`` of the promoted wine pipeline (5 stages: the data gate, 3 steps,
  the model gate) against executing its source notebook headless (nbclient, one kernel).
- P6f: the same for the fan-out/fan-in example (load, features, five models, a comparison, the
  two gates: 10 stages).
- P6c: the first run of the wine pipeline, warm against cold (informative).

A first run is a fresh copy of the promoted folder (no outputs, no DVC cache, as committed); the
store is shared (the model gate compares with a champion from the second repetition on, on both
sides). Commands run in their own processes, as a user starts them.
"""

from __future__ import annotations

import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_pipeline import NBOPS, _env, _run, fresh_copy
from common import row

_DONE = re.compile(
    r"^\s+done\s+(?P<step>\S+) \((?P<wall>[\d.]+) s, its cells (?P<cells>[\d.]+) s\)"
)


def promote_project(project: Path, write: str) -> Path:
    """An example project promoted (not run): returns the pipeline folder."""
    from nbops import examples
    from nbops.promote import promote

    project.mkdir(parents=True, exist_ok=True)
    (project / "pyproject.toml").write_text('[project]\nname = "bench"\nversion = "0"\n')
    notebook = getattr(examples, write)(project)
    return Path(promote(str(notebook)).out_dir)


def first_run(pipeline: Path, dest: Path, cold: bool = False) -> tuple[float, list[float]]:
    """Wall time of a first ``nbops run`` in a fresh copy, and each step's overhead."""
    import subprocess

    folder = fresh_copy(pipeline, dest)
    cmd = [NBOPS, "run", ".", *(["--cold"] if cold else [])]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=folder, env=_env(), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")
    overheads = []
    for line in done.stdout.splitlines():
        match = _DONE.match(line)
        if match:
            overheads.append(float(match.group("wall")) - float(match.group("cells")))
    return wall, overheads


def headless(project: Path, notebook: str) -> float:
    """The source notebook top to bottom in one kernel (nbclient), in its project folder."""
    code = (
        "import sys, nbformat\nfrom nbclient import NotebookClient\n"
        "nb = nbformat.read(sys.argv[1], as_version=4)\n"
        "NotebookClient(nb, kernel_name='python3', resources={'metadata': {'path': '.'}})"
        ".execute()\n"
    )
    return _run([sys.executable, "-c", code, notebook], project)


def rows(quick: bool = False) -> list[dict]:
    repeat = 1 if quick else 3
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp).resolve()
        wine = promote_project(base / "wine", "write_wine_project")
        fan = promote_project(base / "fan", "write_fanout_project")
        warm, cold, notebook, fan_warm, fan_notebook = [], [], [], [], []
        warm_over: list[float] = []
        cold_over: list[float] = []
        for i in range(repeat):  # interleaved, so load drift hits every side
            wall, over = first_run(wine, base / "wine" / f"w{i}" / "p")
            warm.append(wall)
            warm_over += over
            wall, over = first_run(wine, base / "wine" / f"c{i}" / "p", cold=True)
            cold.append(wall)
            cold_over += over
            notebook.append(headless(base / "wine", "wine_pipeline.ipynb"))
            fan_warm.append(first_run(fan, base / "fan" / f"w{i}" / "p")[0])
            fan_notebook.append(headless(base / "fan", "fanout_pipeline.ipynb"))
    overhead, cold_overhead = statistics.median(warm_over), statistics.median(cold_over)
    p6o = row(
        "P6o",
        "per-step overhead, warm (wall - cells, median)",
        overhead,
        "the same, cold path (nbops run --cold)",
        cold_overhead,
        1.0,
    )
    p6o |= {"target": "<= 0.5 s", "met": overhead <= 0.5}
    return [
        p6o,
        row(
            "P6w",
            "nbops run, first run, wine (5 stages)",
            statistics.median(warm),
            "its notebook headless (nbclient)",
            statistics.median(notebook),
            2.5,
        ),
        row(
            "P6f",
            "nbops run, first run, fan-out (10 stages)",
            statistics.median(fan_warm),
            "its notebook headless (nbclient)",
            statistics.median(fan_notebook),
            3.0,
        ),
        row(
            "P6c",
            "nbops run, first run, wine, warm",
            statistics.median(warm),
            "the same, cold (--cold)",
            statistics.median(cold),
            1.0,
        )
        | {"target": "", "met": None},
    ]


if __name__ == "__main__":
    for result in rows(quick="--quick" in sys.argv):
        print(result)
