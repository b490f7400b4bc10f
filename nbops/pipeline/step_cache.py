"""A pipeline step reusing the notebook's cache: the cells that were ``%%track --cache`` in the
source notebook (promote marks them: cell metadata ``nbops.cache``) go through the same key and
the same entries in the step's kernel, so a cell the notebook already ran with the same inputs
is restored instead of run again (and a step's result serves the notebook later).

The keys agree when the computation is the same: the same code (promote copies the cell
verbatim; comments and spacing do not count), inputs with the same content (parameters from
``params.yaml``, variables loaded from the previous steps' artifacts, the setup cells'
functions by their code), files with the same md5 (the pipeline's copies of the data) and the
same package versions. Anything else gives another key, and the cell runs. ``--cache=force``
is a notebook's choice only: a step never reuses what a forced cell stored.

How: papermill runs every cell, so the step's marked cells are rewritten as they are run (an
IPython input transformer) into the ``%%nbops_cache`` cell magic, which does what
``%%track --cache`` does without a run of its own: the step's run records the whole step.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbops.pipeline import layout
from nbops.pipeline_folder import SOURCE_KEY

if TYPE_CHECKING:
    from nbops.pipeline.runtime import StepRun

MAGIC = "nbops_cache"
NOTE_TAG = "nbops.cache.note"


def cached_cells(notebook: str | None) -> dict[str, int]:
    """The step's cells marked ``cache`` by promote: source -> its number in the notebook."""
    if not notebook:
        return {}
    try:
        nb = layout.read_notebook(Path(notebook))
    except Exception:
        return {}
    found = {}
    for cell in nb.get("cells", []):
        meta = (cell.get("metadata") or {}).get(SOURCE_KEY) or {}
        if layout.TAG_STEP in layout.cell_tags(cell) and meta.get("cache") is True:
            found[layout.cell_source(cell).strip()] = int(meta.get("cell") or 0)
    return found


class StepCache:
    """Serves a step's marked cells from the cache; installed by :meth:`StepRun.start`."""

    def __init__(self, shell: Any, run: StepRun, cells: dict[str, int]) -> None:
        self.shell = shell
        self.run = run
        self.cells = cells
        self.notes: list[str] = []
        self._inside = False  # our own transform_cell call must not wrap the cell again

    @classmethod
    def install(cls, shell: Any, run: StepRun, notebook: str | None) -> StepCache | None:
        cells = cached_cells(notebook)
        if shell is None or not cells:
            return None
        cache = cls(shell, run, cells)
        shell.register_magic_function(cache.magic, "cell", MAGIC)
        shell.input_transformers_cleanup.append(cache.transform)
        return cache

    def transform(self, lines: list[str]) -> list[str]:
        if self._inside or "".join(lines).strip() not in self.cells:
            return lines
        return [f"%%{MAGIC}\n", *lines]

    def magic(self, line: str, cell: str) -> Any:
        from nbops.cache.cell import CellCache
        from nbops.cache.store import CacheStore
        from nbops.capture.execute import run_code
        from nbops.capture.scan import scan_cell

        session = self.run.session
        self._inside = True
        try:
            code = self.shell.transform_cell(cell)
        finally:
            self._inside = False
        config = session.config
        cache = CellCache(
            CacheStore(config.cache_dir, int(config.cache_max_mb * 2**20)),
            self.shell.user_ns,
            root=config.project_root,
            record=self.run.capture.record,
            shell=self.shell,
            file_cache=session.file_cache,
            source="step",
        )
        try:
            return cache.run(code, lambda: run_code(self.shell, code, cell), scan_cell(code))
        finally:
            number = self.cells.get(cell.strip(), 0)
            if cache.note:
                self.notes.append(f"cell {number}: {cache.note}")
                self.run.capture.record.tags[NOTE_TAG] = "; ".join(self.notes)
                print(f"nbops: cell {number} of the notebook: {cache.note}")
