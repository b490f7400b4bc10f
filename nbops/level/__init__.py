"""``nbops level``: where a project stands on Google's MLOps levels, and the next step.

Modules: ``scan`` (what a project folder's files say, read without a store, DVC or git),
``checks`` (the Level 1/2 items: those facts and two read-only store queries), ``report`` (the
checklist as text and JSON).
"""

from __future__ import annotations

from nbops.level.checks import assess
from nbops.level.report import LEVELS, Item, LevelReport

__all__ = ["LEVELS", "Item", "LevelReport", "assess"]
