"""nbops: from MLOps Level 0 to Level 1 without leaving the notebook.

``%load_ext nbops`` registers ``%%track`` and ``%nbops``. Everything else is imported on first
use (module ``__getattr__``), so loading the extension stays cheap: no mlflow, dvc, ipywidgets,
pandas or numpy at import time.
"""

from __future__ import annotations

from typing import Any

from nbops._lazy import lazy_getattr
from nbops._version import __version__ as __version__

_LAZY = {
    "track": "nbops.api",
    "default_session": "nbops.session",
    "log_param": "nbops.capture.collector",
    "log_params": "nbops.capture.collector",
    "log_metric": "nbops.capture.collector",
    "log_metrics": "nbops.capture.collector",
    "set_tag": "nbops.capture.collector",
    "steps": "nbops.capture.collector",
    "fingerprint": "nbops.hashing",
    "fingerprint_file": "nbops.hashing",
    "RunRecord": "nbops.record",
    "NbopsError": "nbops.errors",
}

__all__ = [*_LAZY, "load_ipython_extension", "unload_ipython_extension"]


__getattr__ = lazy_getattr(__name__, _LAZY)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext nbops``: register ``%%track`` and ``%nbops``."""
    from nbops.magics import NbopsMagics, flush_on_kernel_shutdown, warm_session, watch_state

    ipython.register_magics(NbopsMagics)
    flush_on_kernel_shutdown(ipython)
    watch_state(ipython)
    warm_session(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Deliver what is pending before the magics go away; stop watching cells."""
    from nbops.capture.state import unwatch
    from nbops.session import default_session

    unwatch(ipython)
    if default_session.cache_info().currsize:  # only if this process tracked something
        default_session().flush(timeout=5.0)
