"""``%nbops runs`` and ``%nbops promotion MODEL`` as widgets.

In a Jupyter kernel ``%nbops runs`` shows the :class:`RunBrowser` (its MIME bundle carries an
HTML table for frontends without widgets); in a terminal it stays the text table of
``nbops runs``. ``%nbops promotion MODEL`` shows the :class:`PromotionPanel` (as text in a
terminal, where there are no buttons: use ``nbops model promote/rollback`` there).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nbops.errors import UsageError

if TYPE_CHECKING:
    from nbops.session import Session

USAGE = "%nbops runs [EXPERIMENT]  |  %nbops promotion MODEL"


def widget_magic(session: Session, shell: Any, words: list[str]) -> bool:
    """Display the widget ``words`` ask for; False leaves the command to the text magic."""
    from IPython.display import display

    command, *rest = words
    if command == "runs" and len(rest) <= 1 and hasattr(shell, "kernel"):
        from nbops.widgets.run_browser import RunBrowser

        display(RunBrowser(rest[0] if rest else None, session=session))
        return True
    if command == "promotion":
        if len(rest) != 1:
            raise UsageError("%nbops promotion takes one argument: the model name", fix=USAGE)
        from nbops.widgets.promotion import PromotionPanel

        display(PromotionPanel(rest[0], session=session))
        return True
    return False
