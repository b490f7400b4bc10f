"""What both widgets share: display with a fallback, actions from the frontend, errors shown
instead of raised.

A widget object is a plain Python object. Its view is HTML it builds itself
(:meth:`WidgetBase.view_html`), drawn in a kernel by one anywidget (:mod:`nbops.widgets.view`,
created on first display) and sent again whenever the state changes. Its MIME bundle carries
that widget *and* an HTML and a text rendering of the same state, so JupyterLab, Notebook 7,
VS Code and Binder show the live widget, while a frontend without a widget manager (nbconvert,
GitHub, a terminal) shows a readable table.

The frontend sends ``{"action": name, ...}``; :meth:`WidgetBase.handle` looks the name up in
the subclass's :attr:`ACTIONS` table (action -> method name) and calls the method with the
message. Any error lands in the widget's message line with its fix, never as a traceback.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

from nbops.errors import NbopsError, UsageError
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
    """Display protocol, actions and error handling; subclasses build their HTML and text."""

    ACTIONS: ClassVar[dict[str, str]] = {}  # frontend action -> method(message) name
    POLL: ClassVar[int] = 0  # seconds between "check" messages from the frontend (0: none)
    _ui: Any = None
    message: str = ""
    message_kind: str = "info"
    as_of: str = ""  # when the shown state was read (the snapshot note says it)

    # ---- subclasses ---------------------------------------------------------------------

    @abstractmethod
    def view_html(self) -> str:
        """The live widget's HTML, controls included (:mod:`nbops.widgets.render`)."""

    @abstractmethod
    def to_html(self) -> str:
        """The fallback outside a widget frontend (no controls)."""

    @abstractmethod
    def to_text(self) -> str:
        """The plain-text fallback (a terminal IPython)."""

    # ---- shared -------------------------------------------------------------------------

    @property
    def widget(self) -> Any:
        """The anywidget (built on first use; anywidget and ipywidgets are imported here)."""
        if self._ui is None:
            from nbops.widgets.view import NbopsView

            self._ui = NbopsView(self.handle)
            self._sync()
        return self._ui

    def view_state(self) -> dict[str, Any]:
        """Everything the frontend draws; saved with the notebook as the widget's state."""
        return {"html": self.view_html(), "as_of": self.as_of, "poll": self.POLL}

    def _sync(self) -> None:
        """Push the state into the widget (no-op before it exists)."""
        if self._ui is not None:
            self._ui.view = self.view_state()

    def stamp(self) -> None:
        """The state was just read from the store."""
        self.as_of = time.strftime("%Y-%m-%d %H:%M:%S")

    def say(self, text: str, kind: str = "info") -> None:
        self.message, self.message_kind = text, kind

    def message_html(self) -> str:
        return message_html(self.message, self.message_kind) if self.message else ""

    def handle(self, message: dict[str, Any]) -> bool:
        """Run the frontend's action; True when the view was pushed again. An unknown action
        or any error is shown in the widget."""
        name = self.ACTIONS.get(str(message.get("action")))
        if self.message_kind == "error":  # a new action: the last error is stale
            self.say("")
        try:
            if name is None:
                raise UsageError(
                    f"unknown widget action {message.get('action')!r}",
                    fix="run the cell again (the widget and nbops versions differ)",
                )
            getattr(self, name)(message)
        except Exception as exc:  # a callback's traceback would go to the log, unseen
            self.say(error_text(exc), "error")
        if self._ui is None:
            return False
        state = self.view_state()
        if state == self._ui.view:  # what the frontend shows already
            return False
        self._ui.view = state
        return True

    def guard(self, action: Callable[[], object]) -> Callable[..., None]:
        """``action`` as a callback whose errors land in the widget, not a traceback."""

        def handler(*_: Any) -> None:
            try:
                action()
            except Exception as exc:
                self.say(error_text(exc), "error")
            self._sync()

        return handler

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle: dict[str, Any] = {}
        if in_kernel():
            data = self.widget._repr_mimebundle_()
            bundle.update(data[0] if isinstance(data, tuple) else data)
        bundle["text/html"] = self.to_html()
        bundle["text/plain"] = self.to_text()
        return bundle

    def _repr_html_(self) -> str:
        return self.to_html()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.to_text())

    def __repr__(self) -> str:
        return self.to_text()
