"""Notebook widgets: ``RunBrowser`` (runs side by side) and ``PromotionPanel`` (champion and
challenger, promote and roll back).

Attributes load on first use, so ``import nbops.widgets`` imports neither ipywidgets nor
mlflow; each widget builds its ipywidgets tree when it is first displayed in a kernel, and
shows an HTML/text table where no widget frontend exists.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "RunBrowser": "nbops.widgets.run_browser",
    "PromotionPanel": "nbops.widgets.promotion",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nbops.widgets' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
