"""Run every benchmark, print nbops beside its anchor (measured in the same run), save JSON.

    python benchmarks/run.py            # full sizes (1 GB frame: needs ~3 GB free memory)
    python benchmarks/run.py --quick    # small sizes, for a smoke run

Each ``bench_*.py`` exposes ``rows(quick) -> list[dict]`` with keys ``id``, ``what``,
``nbops_s``, ``anchor``, ``anchor_s``, ``speedup`` (anchor_s / nbops_s, or the ratio the
target names), ``target`` and ``met``. Results go to ``benchmarks/results/<time>.json`` with a
description of the machine.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODULES = ("bench_fingerprint", "bench_track", "bench_pipeline")


def machine() -> dict[str, object]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def print_table(rows: list[dict]) -> None:
    header = ("id", "what", "nbops s", "anchor", "anchor s", "ratio", "target", "met")
    lines = [header]
    for r in rows:
        lines.append(
            (
                r["id"],
                r["what"],
                f"{r['nbops_s']:.4f}",
                r["anchor"],
                f"{r['anchor_s']:.4f}",
                f"{r['ratio']:.3g}x",
                r.get("target", ""),
                {True: "yes", False: "NO", None: "-"}[r.get("met")],
            )
        )
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--only", help="comma-separated module names, e.g. bench_track")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    wanted = args.only.split(",") if args.only else MODULES
    rows: list[dict] = []
    for name in wanted:
        module = importlib.import_module(name)
        rows.extend(module.rows(quick=args.quick))
    print_table(rows)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    path = out / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"machine": machine(), "quick": args.quick, "rows": rows}, indent=1))
    print(f"\nsaved {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
