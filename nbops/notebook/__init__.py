"""Reading a tagged notebook into a pipeline plan (``nbops promote``'s front half).

:func:`parse_notebook` groups cells into steps by their tags, :func:`infer_dataflow` finds the
variables and files that flow between steps. Both are imported on first use so that importing
this package stays cheap (and nbformat is imported only while reading a notebook).
"""

from __future__ import annotations

from nbops._lazy import lazy_getattr

_LAZY = {
    "parse_notebook": "nbops.notebook.parse",
    "infer_dataflow": "nbops.notebook.dataflow",
    "classify": "nbops.notebook.tags",
    "slugify": "nbops.notebook.tags",
    "vocabulary_markdown": "nbops.notebook.tags",
    "Plan": "nbops.notebook.plan",
    "Step": "nbops.notebook.plan",
    "Cell": "nbops.notebook.plan",
    "Artifact": "nbops.notebook.plan",
}

__all__ = list(_LAZY)


__getattr__ = lazy_getattr(__name__, _LAZY)
