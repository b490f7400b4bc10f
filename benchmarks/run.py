"""Run every benchmark, print nbops beside its anchor (measured in the same run), save JSON.

    make bench                                 # = python benchmarks/run.py (full sizes)
    python benchmarks/run.py --quick           # small sizes, for a smoke run (~2 min)
    python benchmarks/run.py --full            # also time MLflow's digest on the whole 1 GB
    python benchmarks/run.py --only bench_track,bench_pipeline

Full sizes need ~3 GB of free memory (a 1 GB frame). Results go to
``benchmarks/results/<YYYYmmdd-HHMMSS>-<host>.json`` (gitignored: figures belong to a machine)
with the machine's description; docs/benchmarks.md keeps a reference run.

Adding a benchmark is one line in ``MODULES``: a module here exposing ``rows(quick: bool) ->
list[dict]`` built with :func:`common.row` or :func:`common.speedup_row` (it may also accept
``full: bool``). Each module runs in its own process; one that fails is reported and the others
still run.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import subprocess
import sys
import tempfile
import traceback
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CHILD = "--child"  # run.py --child MODULE FOLDER OUT OPTIONS: one module in its own process
MODULES = (
    "bench_fingerprint",
    "bench_track",
    "bench_pipeline",
    "bench_executor",
    "bench_widgets",
    "bench_retrain",
    "bench_serve",
    "bench_cache",
)


def run_module(name: str, options: dict[str, Any], folder: Path) -> list[dict[str, Any]]:
    """The rows of module ``name`` (in ``folder``), computed in a fresh interpreter: modules set
    process-wide state (MLflow's tracking URI and cached SQLite engines, imported kernels) that
    must not leak into the next one. What the module prints goes to stderr."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        args = [CHILD, name, str(folder), str(out), json.dumps(options)]
        done = subprocess.run([sys.executable, __file__, *args], stdout=2, check=False)
        result = json.loads(out.read_text()) if out.is_file() else {}
    if "error" in result:
        raise RuntimeError(result["error"])
    if done.returncode != 0 or "rows" not in result:
        raise RuntimeError(f"the benchmark process exited with code {done.returncode}")
    return result["rows"]


def child(name: str, folder: str, out: str, options: str) -> int:
    """In the fresh interpreter: import module ``name`` and write its rows (or its error) to
    ``out``, passing only the options its ``rows`` accepts."""
    sys.path[:0] = [folder, str(HERE)]
    try:
        rows_fn = importlib.import_module(name).rows
        accepted = inspect.signature(rows_fn).parameters
        wanted = json.loads(options)
        result: dict[str, Any] = {
            "rows": rows_fn(**{k: v for k, v in wanted.items() if k in accepted})
        }
    except Exception as exc:  # reported by the parent, beside the other modules' figures
        traceback.print_exc()
        result = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    Path(out).write_text(json.dumps(result))
    return 0


def collect(
    names: list[str], options: dict[str, Any], folder: Path | None = None
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Rows of every module in order, and the error of each module that failed."""
    rows: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        try:  # one broken benchmark must not hide the others' figures
            rows.extend(run_module(name, options, folder or HERE))
        except RuntimeError as exc:
            errors[name] = str(exc)
    return rows, errors


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, fewer repetitions")
    parser.add_argument(
        "--full", action="store_true", help="MLflow digest on the whole frame, not a slice"
    )
    parser.add_argument("--only", help=f"comma-separated modules (default: {','.join(MODULES)})")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="results folder")
    args = parser.parse_args(argv)
    args.modules = args.only.split(",") if args.only else list(MODULES)
    unknown = [m for m in args.modules if not (HERE / f"{m}.py").is_file()]
    if unknown:
        parser.error(f"no benchmark module {', '.join(unknown)} in {HERE}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(HERE))
    import report

    machine = report.machine()  # before the run: the load average others put on the machine
    started = datetime.now().astimezone()
    rows, errors = collect(args.modules, {"quick": args.quick, "full": args.full}, HERE)
    finished = datetime.now().astimezone()
    machine["load_average_end"] = report.load_average()
    options = {"quick": args.quick, "full": args.full, "modules": args.modules}
    doc = report.document(rows, machine, options, started, finished, errors)
    print(f"\n{report.machine_line(machine, args.quick)}\n")
    print(report.table(rows))
    print("\n" + report.summary(rows, errors))
    print(f"\nsaved {report.save(doc, args.out)}")
    return 1 if errors else 0


if __name__ == "__main__":
    if sys.argv[1:2] == [CHILD]:
        sys.exit(child(*sys.argv[2:6]))
    sys.exit(main())
