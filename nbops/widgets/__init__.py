"""Notebook widgets: ``RunBrowser`` (runs side by side) and ``PromotionPanel`` (champion and
challenger, promote and roll back).

Attributes load on first use, so ``import nbops.widgets`` imports neither ipywidgets, anywidget
nor mlflow; each widget builds its anywidget when it is first displayed in a kernel, and shows
an HTML/text table where no widget frontend exists.
"""

from __future__ import annotations

from nbops._lazy import lazy_getattr

_LAZY = {
    "RunBrowser": "nbops.widgets.run_browser",
    "PromotionPanel": "nbops.widgets.promotion",
}

__all__ = list(_LAZY)


__getattr__ = lazy_getattr(__name__, _LAZY)
