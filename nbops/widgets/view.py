"""The one anywidget behind both widgets (thin glue, imported on first display).

anywidget draws a widget from one ES module that ships with nbops (``static/widgets.js``), so
there is no frontend extension of nbops' own to install, and the same widget works in
JupyterLab, Notebook 7, VS Code and Colab. Its whole state is one trait, ``view``: the HTML the
Python side built (:mod:`nbops.widgets.render`) plus a few settings. Because that state is all
the view needs, a notebook saved with its widget state (JupyterLab's ``saveState``, which nbops
turns on: see ``jupyter-config/``) draws the last state again when reopened without the kernel,
with a note that it is a snapshot (``widgets.css``, keyed on ipywidgets'
``jupyter-widgets-disconnected`` class).

The frontend sends ``{"action": ..., ...}`` messages (clicks, changes); the owner handles them
and pushes a new ``view``. An answer to a message that changed nothing is a ``{"done": id}``
message, so the frontend knows the kernel has seen it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import traitlets

STATIC = Path(__file__).parent / "static"


class NbopsView(anywidget.AnyWidget):  # type: ignore[misc]
    """The frontend half of a RunBrowser or PromotionPanel."""

    _esm = (STATIC / "widgets.js").read_text(encoding="utf-8")
    _css = (STATIC / "widgets.css").read_text(encoding="utf-8")
    view = traitlets.Dict().tag(sync=True)

    def __init__(self, handle: Callable[[dict[str, Any]], bool], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._handle = handle
        self.on_msg(self._on_msg)

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        """``handle`` returns True when it pushed a new view; otherwise say "done"."""
        if not isinstance(content, dict) or "action" not in content:
            return
        if not self._handle(content):
            self.send({"done": content.get("id")})
