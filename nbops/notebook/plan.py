"""The pipeline plan: what ``nbops promote`` reads out of a tagged notebook.

Parsing (:mod:`nbops.notebook.parse`) and dataflow (:mod:`nbops.notebook.dataflow`) produce a
:class:`Plan`; the emitter (:mod:`nbops.promote`) turns it into step notebooks, ``params.yaml``
and ``dvc.yaml``; the pipeline runner reads the same plan back from the emitted files. Plain
dataclasses, stdlib only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from nbops.errors import NotebookError

CellKind = Literal["code", "markdown", "raw"]


@dataclass
class Cell:
    """One notebook cell as promote sees it (index is 0-based in the source notebook)."""

    index: int
    kind: CellKind
    source: str
    tags: list[str] = field(default_factory=list)
    line_offset: int = 0  # lines promote removed above ``source`` (``%%track``, blank lines)
    cache: bool = False  # ``%%track --cache`` in the notebook: its step may reuse the entry

    @property
    def first_line(self) -> str:
        return next((ln.strip() for ln in self.source.splitlines() if ln.strip()), "")

    @property
    def where(self) -> str:
        """How errors name the cell: number (1-based, as Jupyter shows position) and first line
        (with any secret on it replaced: errors end up in terminals and CI logs)."""
        from nbops.capture.redact import redact_code

        return f"cell {self.index + 1} ({redact_code(self.first_line)[:60]!r})"


@dataclass
class Artifact:
    """A variable produced by one step and read by later ones."""

    name: str
    producer: str  # step name
    serializer: str = ""  # "parquet" | "npy" | "joblib" | "pickle": decided when saved

    def path(self, fmt: str) -> str:
        return f"artifacts/{self.producer}/{self.name}.{fmt}"


@dataclass
class Step:
    name: str
    cells: list[Cell] = field(default_factory=list)
    upstream: list[str] = field(default_factory=list)  # inferred + prev:, in pipeline order
    explicit_upstream: list[str] = field(default_factory=list)  # from prev: tags
    inputs: list[Artifact] = field(default_factory=list)  # artifacts it loads
    outputs: list[str] = field(default_factory=list)  # variables it saves (read downstream)
    params: list[str] = field(default_factory=list)  # pipeline parameters it uses
    files: list[str] = field(default_factory=list)  # files it reads (DVC deps), project-relative
    metrics: list[str] = field(default_factory=list)  # metric names reported by this step
    ignored_tags: list[str] = field(default_factory=list)  # Kale resource tags seen

    @property
    def code(self) -> str:
        return "\n\n".join(c.source for c in self.cells if c.kind == "code")


@dataclass
class DataRead:
    """A call that reads data (``pd.read_csv(...)``), kept for the data gate's notes."""

    cell: Cell
    step: str
    call: str  # as written, shortened
    path: str | None  # what its path argument folds to; None when promote cannot tell
    file: str | None = None  # the dependency it became (relative to the notebook), if any


@dataclass
class Plan:
    name: str  # the pipeline's name: the notebook stem, slugified
    notebook: str  # the source notebook path, as given (relative when possible)
    parameters: dict[str, Any] = field(default_factory=dict)  # literal values, in order
    parameters_cell: Cell | None = None
    setup: list[Cell] = field(default_factory=list)  # copied into every step
    steps: list[Step] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)  # the pipeline's reported metrics
    notes: list[str] = field(default_factory=list)  # things promote tells the user
    skipped: list[Cell] = field(default_factory=list)  # left out: skip-tagged (+ markdown above)
    metrics_cells: list[Cell] = field(default_factory=list)  # Kale pipeline-metrics: not run
    data_reads: list[DataRead] = field(default_factory=list)  # filled by dataflow

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)


def cell_error(notebook: str, cell: Cell, problem: str, fix: str, **fields: Any) -> NotebookError:
    """A :class:`NotebookError` that names the notebook and the cell (number and first line)."""
    return NotebookError(
        f"{notebook}, {cell.where}: {problem}", fix=fix, path=notebook, cell=cell.where, **fields
    )
