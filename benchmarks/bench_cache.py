"""C1-C4: what ``%%track --cache`` costs and saves, against the cell's own run time (same run).

One cell trains a 200-tree random forest on 100k rows (quick: 50 trees on 20k rows), tracked
with ``--cache``, in an in-process IPython shell whose runs are only spooled (MLflow's write
happens off the cell's thread in a real front end).

- C1: a cache hit (the key, restoring the forest and the predictions, replaying the printed
  line, the run's record) against the cell's run time.
- C2: the key computation on the miss (fingerprints of the inputs, the code, files, package
  versions) against the same run time.
- C3: storing what the miss left (the forest through joblib, the arrays) against it.
- C4: the hidden-state watch on a trivial cell (two IPython events: a parse and a pass over
  the namespace's names) against IPython running the same cell unwatched.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from common import median_times, row

CELL = """%%track --cache --name forest
model = RandomForestClassifier(n_estimators=N_TREES, random_state=0, n_jobs=2).fit(X, y)
proba = model.predict_proba(X)[:, 1]
print(f"mean probability {proba.mean():.4f}")
"""


def cache_rows(workdir: Path, rows_n: int, trees: int, repeat: int) -> list[dict]:
    from IPython.core.interactiveshell import InteractiveShell
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    from nbops.config import load_config
    from nbops.magics import NbopsMagics
    from nbops.session import Session

    (workdir / "pyproject.toml").write_text("[tool.nbops]\n")
    X, y = make_classification(n_samples=rows_n, n_features=20, n_informative=10, random_state=0)
    shell = InteractiveShell.instance()
    shell.user_ns.update(X=X, y=y, N_TREES=trees, RandomForestClassifier=RandomForestClassifier)
    session = Session(replace(load_config(workdir), delivery="spool", cache_max_mb=4096))
    magics = NbopsMagics(shell, session=session)
    shell.register_magics(magics)
    caches = []
    original = session.cached

    def keep(*args: object, **kwargs: object) -> object:
        cache = original(*args, **kwargs)  # type: ignore[arg-type]
        caches.append(cache)
        return cache

    session.cached = keep  # type: ignore[method-assign]
    from nbops.capture.context import package_versions

    package_versions(())  # primed at %load_ext in a kernel
    t0 = time.perf_counter()
    shell.run_cell(CELL, store_history=True)
    miss_total = time.perf_counter() - t0
    miss = caches[-1]
    assert miss.status == "stored", miss.note
    manifest = miss.store.get(miss.key.digest).manifest
    run_s, key_s = float(manifest["seconds"]), miss.key.seconds
    store_s = max(miss_total - run_s - key_s, 1e-6)

    def hit() -> None:
        shell.run_cell(CELL, store_history=True)
        assert caches[-1].status == "hit", caches[-1].note

    hit_s = median_times(hit, repeat)
    what = f"{trees}-tree forest on {rows_n // 1000}k rows"
    return [
        row("C1", f"%%track --cache hit, {what}", hit_s, "the cell's run", run_s, 0.05),
        row("C2", f"cache key on a miss, {what}", key_s, "the cell's run", run_s, 0.1),
        row("C3", f"storing its outputs on a miss, {what}", store_s, "the cell's run", run_s, 0.1),
    ]


def watch_row(repeat: int) -> dict:
    """C4: the hidden-state watch's two events on a trivial cell, per cell."""
    from IPython.core.interactiveshell import InteractiveShell

    from nbops.capture.state import unwatch, watch

    shell = InteractiveShell.instance()
    shell.user_ns.update({f"v{i}": i for i in range(200)})  # a namespace of a real notebook
    cell = "a = 1\nb = a + 2\nscore = a * b\n"

    def run() -> None:
        shell.run_cell(cell, store_history=True)

    unwatch(shell)
    plain = median_times(run, repeat)
    watch(shell)
    watched = median_times(run, repeat)
    unwatch(shell)
    return row(
        "C4",
        "hidden-state watch, per cell (trivial cell)",
        max(watched - plain, 1e-7),
        "IPython running the cell",
        plain,
        1.0,
    )


def rows(quick: bool = False) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sizes = (20_000, 50, 5) if quick else (100_000, 200, 7)
        found = cache_rows(work, *sizes)
    return [*found, watch_row(200 if quick else 1000)]


if __name__ == "__main__":
    for result in rows(quick="--quick" in sys.argv):
        print(result)
