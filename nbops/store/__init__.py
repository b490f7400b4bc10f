"""Getting records into MLflow and back: spool -> writer -> tracker, and ``sync`` for leftovers.

Importing this package never imports mlflow; that happens on the writer thread at first write.
"""

from nbops.store.mlflow_store import MlflowTracker
from nbops.store.protocol import Tracker
from nbops.store.spool import Spool, SpoolEntry
from nbops.store.sync import SyncReport, deliver, sync
from nbops.store.writer import Writer

__all__ = [
    "MlflowTracker",
    "Spool",
    "SpoolEntry",
    "SyncReport",
    "Tracker",
    "Writer",
    "deliver",
    "sync",
]
