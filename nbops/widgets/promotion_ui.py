"""The ipywidgets tree of :class:`~nbops.widgets.promotion.PromotionPanel` (thin glue).

Imported only when a panel is first displayed in a kernel (or ``.widget`` is used). The
Confirm/Cancel row is hidden until a button asks a question; errors go to the message line.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING

import ipywidgets as w

if TYPE_CHECKING:
    from nbops.widgets.promotion import PromotionPanel


@dataclass
class Controls:
    """The panel's widgets, by role (``panel.controls``)."""

    root: w.VBox
    headline: w.HTML
    table: w.HTML
    reason: w.Text
    promote: w.Button
    rollback: w.Button
    refresh: w.Button
    question: w.HTML
    confirm: w.Button
    cancel: w.Button
    confirm_row: w.HBox
    message: w.HTML


def build(panel: PromotionPanel) -> w.VBox:
    auto = w.Layout(width="auto")
    c = Controls(
        root=w.VBox(),
        headline=w.HTML(),
        table=w.HTML(),
        reason=w.Text(
            placeholder="reason (recorded with the change)", layout=w.Layout(width="360px")
        ),
        promote=w.Button(
            description="Promote challenger", button_style="warning", icon="arrow-up", layout=auto
        ),
        rollback=w.Button(description="Roll back", icon="undo", layout=auto),
        refresh=w.Button(description="Refresh", icon="refresh", layout=auto),
        question=w.HTML(),
        confirm=w.Button(description="Confirm", button_style="danger", layout=auto),
        cancel=w.Button(description="Cancel", layout=auto),
        confirm_row=w.HBox(),
        message=w.HTML(),
    )
    panel.controls = c
    c.confirm_row.children = [c.question, c.confirm, c.cancel]
    c.reason.observe(lambda change: setattr(panel, "reason", change["new"]), names="value")
    c.promote.on_click(panel.guard(panel.ask_promote))
    c.rollback.on_click(panel.guard(panel.ask_rollback))
    c.refresh.on_click(panel.guard(panel.refresh))
    c.confirm.on_click(panel.guard(panel.confirm))
    c.cancel.on_click(panel.guard(panel.cancel))
    c.root.children = [
        c.headline,
        c.table,
        w.HBox([c.reason, c.promote, c.rollback, c.refresh]),
        c.confirm_row,
        c.message,
    ]
    c.root.add_class("nbops-promotion-panel")
    return c.root


def sync(panel: PromotionPanel) -> None:
    """Render the panel's state into its widgets."""
    from nbops.widgets import versions as vm

    c: Controls = panel.controls
    c.headline.value = f"<b>{vm.headline(panel.model)}</b>"
    c.table.value = panel.table_html()
    pending = panel.pending
    question = html.escape(pending.question) if pending else ""
    c.question.value = f"<span style='padding-right:8px'>{question}</span>"
    c.confirm_row.layout.display = None if pending else "none"
    for button in (c.promote, c.rollback):
        button.disabled = pending is not None
    c.message.value = panel.message_html()
