"""What nbops needs from a tracking store, so capture, CLI and tests need not know MLflow.

The one implementation is :class:`nbops.store.mlflow_store.MlflowTracker`; tests and tools may
pass any object with these methods (for example a fake that fails on purpose).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from nbops.record import RunRecord
    from nbops.store.spool import SpoolEntry


@runtime_checkable
class Tracker(Protocol):
    """Writes spooled records to a tracking store and reads them back as :class:`RunRecord`."""

    def write(self, entry: SpoolEntry) -> str:
        """Store the entry; return the run id. Writing the same record again reuses its run."""
        ...

    def list_runs(self, experiment: str | None = None, max_results: int = 1000) -> list[RunRecord]:
        """Runs newest first, of one experiment or (None) of all experiments."""
        ...

    def get_run(self, ref: str) -> RunRecord:
        """The full record of a run id, a unique run-id prefix (>= 6 chars) or a run name
        (newest wins); raises RunNotFoundError, listing candidates when ambiguous."""
        ...
