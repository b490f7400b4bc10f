"""nbops' own artifact downloads, without MLflow's progress bars.

MLflow draws a tqdm bar on stderr for every download (``Downloading artifacts: 100%``): six of
them under ``nbops model list``, and more in a notebook's output, for files of a few hundred
bytes that nbops reads for itself. The switch is MLflow's environment variable, set only while
nbops downloads, so the user's own downloads keep their bars.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

VARIABLE = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
_lock = threading.Lock()
_depth = 0
_saved: str | None = None


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """No progress bar while inside (re-entrant and thread-safe: the writer thread and the
    cell may both download)."""
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = os.environ.get(VARIABLE)
            os.environ[VARIABLE] = "false"
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                if _saved is None:
                    os.environ.pop(VARIABLE, None)
                else:
                    os.environ[VARIABLE] = _saved
