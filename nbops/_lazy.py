"""Lazy imports: package exports (PEP 562), so importing a package costs nothing until a name is
used (``%load_ext nbops`` and a step's kernel must not pay for mlflow, dvc or ipywidgets), and
nbformat without the optional import that makes it slow."""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Callable, Iterator
from typing import Any


def lazy_getattr(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` resolving ``name`` from ``exports[name]`` (a module path)."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return __getattr__


@contextlib.contextmanager
def without_slow_optional_imports() -> Iterator[None]:
    """``import nbformat`` pulls jsonschema, which builds rfc3987_syntax's grammar (~1 s per
    step) for a format check notebooks never use; jsonschema treats a failed import as "format
    unavailable". The block is lifted afterwards so others can still import the module."""
    blocked = "jsonschema" not in sys.modules and "rfc3987_syntax" not in sys.modules
    if blocked:
        sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if blocked and sys.modules.get("rfc3987_syntax", 0) is None:
            del sys.modules["rfc3987_syntax"]
