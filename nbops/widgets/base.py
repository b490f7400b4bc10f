"""What both widgets share: display with a fallback, and errors shown instead of raised.

A widget object is a plain Python object that builds its ``ipywidgets`` tree on first display
in a kernel. Its MIME bundle carries the widget view *and* an HTML and a text rendering of the
same state, so JupyterLab, Notebook 7, VS Code and Binder show the live widget, while a
frontend without a widget manager (nbconvert, GitHub, a terminal) shows a readable table.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from nbops.errors import NbopsError
from nbops.widgets.render import message_html

MAX_ERROR = 600


def in_kernel() -> bool:
    """True in a Jupyter kernel (a frontend that may render widgets), False in a terminal."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def error_text(exc: BaseException) -> str:
    """An error as the panel shows it: nbops errors with their fix, others by type and text."""
    if isinstance(exc, NbopsError):
        return str(exc)
    detail = " ".join(str(exc).split())[:MAX_ERROR]
    return f"{type(exc).__name__}: {detail}"


class WidgetBase(ABC):
    """Display protocol and error handling; subclasses build ``_build()`` and render text/HTML."""

    _ui: Any = None
    message: str = ""
    message_kind: str = "info"

    # ---- subclasses ---------------------------------------------------------------------

    @abstractmethod
    def _build(self) -> Any:
        """The ipywidgets tree."""

    def _sync(self) -> None:  # noqa: B027  (optional hook: most subclasses override it)
        """Push the model's state into the widgets (no-op before they exist)."""

    @abstractmethod
    def to_html(self) -> str:
        """The fallback outside a widget frontend (and the browser-free view)."""

    @abstractmethod
    def to_text(self) -> str:
        """The plain-text fallback (a terminal IPython)."""

    # ---- shared -------------------------------------------------------------------------

    @property
    def widget(self) -> Any:
        """The ipywidgets tree (built on first use; ipywidgets is imported here, not before)."""
        if self._ui is None:
            self._ui = self._build()
            self._sync()
        return self._ui

    def say(self, text: str, kind: str = "info") -> None:
        self.message, self.message_kind = text, kind

    def message_html(self) -> str:
        return message_html(self.message, self.message_kind) if self.message else ""

    def guard(self, action: Callable[[], object]) -> Callable[..., None]:
        """A widget callback running ``action``; any error lands in the panel, not a traceback."""

        def handler(*_: Any) -> None:
            if self.message_kind == "error":  # a new action: the last error is stale
                self.say("")
            try:
                action()
            except Exception as exc:  # a callback's traceback would go to the log, unseen
                self.say(error_text(exc), "error")
            self._sync()

        return handler

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle: dict[str, Any] = {}
        if in_kernel():
            bundle.update(self.widget._repr_mimebundle_())
        bundle["text/html"] = self.to_html()
        bundle["text/plain"] = self.to_text()
        return bundle

    def _repr_html_(self) -> str:
        return self.to_html()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.to_text())

    def __repr__(self) -> str:
        return self.to_text()
