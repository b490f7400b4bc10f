"""P5: ``nbops retrain`` with unchanged data, against ``dvc status`` on the same pipeline.

The trigger a schedule runs every week: most of the time nothing changed, and the answer should
cost no more than asking DVC. Both run in their own process after a first ``nbops run``
(the pipeline of bench_pipeline: wine, 3 steps and the two gates), interleaved.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

from bench_pipeline import NBOPS, _run, build
from common import row


def p5(pipeline: Path, repeat: int) -> dict:
    ours, theirs = [], []
    for _ in range(repeat):
        ours.append(_run([NBOPS, "retrain", str(pipeline)], pipeline))
        theirs.append(_run([sys.executable, "-m", "dvc", "status"], pipeline))
    return row(
        "P5",
        "nbops retrain, data unchanged",
        statistics.median(ours),
        "dvc status, same pipeline",
        statistics.median(theirs),
        1.2,
    )


def rows(quick: bool = False) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = build(Path(tmp).resolve())
        return [p5(pipeline, 3 if quick else 7)]
