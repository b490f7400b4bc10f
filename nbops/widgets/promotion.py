"""``PromotionPanel``: a model's champion, challenger and other versions, with promote and
roll-back buttons behind a confirmation step.

Every alias change goes through :mod:`nbops.registry` (``promote(challenger=True)`` and
``rollback``), the same code path as ``nbops model promote/rollback``, so the history tags in
MLflow are the same whichever was used. The outcome is shown as the CLI prints it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nbops import registry
from nbops.errors import UsageError
from nbops.widgets import versions as vm
from nbops.widgets.base import WidgetBase, error_text
from nbops.widgets.render import box, html_table, text_table

if TYPE_CHECKING:
    from nbops.session import Session

PROMOTE, ROLLBACK = "promote", "rollback"


@dataclass(frozen=True)
class Pending:
    """An action awaiting confirmation, with the version it was asked about."""

    action: str
    question: str
    version: int | None  # the challenger (promote) or previous (rollback) when asked


class PromotionPanel(WidgetBase):
    """>>> PromotionPanel("wine")   # then: Promote challenger -> Confirm"""

    controls: Any = None  # the widgets by role, once built (nbops.widgets.promotion_ui)

    def __init__(
        self, model_name: str, *, session: Session | None = None, actor: str | None = None
    ) -> None:
        if session is None:
            from nbops.api import default_session

            session = default_session()
        self.session = session
        self.name = model_name
        self.actor = actor
        self.reason = ""
        self.model = vm.panel_model(model_name, [])
        self.pending: Pending | None = None
        self.change: registry.RegistryChange | None = None
        self.refresh()

    # ---- the model operations (the buttons call these) --------------------------------------

    def refresh(self) -> vm.PanelModel:
        """Read the versions again; a registry or store error is shown in the panel."""
        try:
            self.model = self._load()
        except Exception as exc:
            self.say(error_text(exc), "error")
        self._sync()
        return self.model

    def ask_promote(self) -> str:
        """Step one of "Promote challenger": the question Confirm answers."""
        self.model = self._load()
        return self._ask(PROMOTE, vm.promote_question(self.model), self.model.challenger)

    def ask_rollback(self) -> str:
        self.model = self._load()
        return self._ask(ROLLBACK, vm.rollback_question(self.model), self.model.previous)

    def cancel(self) -> None:
        self.pending = None
        self.say("cancelled: nothing changed")
        self._sync()

    def confirm(self) -> registry.RegistryChange | None:
        """Step two: make the change asked about, unless the registry moved meanwhile (then
        nothing changes and the panel asks again)."""
        pending, self.pending = self.pending, None
        if pending is None:
            raise UsageError(
                "nothing to confirm", fix="click 'Promote challenger' or 'Roll back' first"
            )
        self.model = self._load()
        now = self.model.challenger if pending.action == PROMOTE else self.model.previous
        if now != pending.version:
            self._sync()
            raise UsageError(
                f"model {self.name!r} changed since you asked (v{pending.version} -> v{now})",
                fix="look at the table again and click the button again",
            )
        if pending.action == PROMOTE:
            change = registry.promote(
                self.session, self.name, challenger=True, reason=self.reason, actor=self.actor
            )
        else:
            change = registry.rollback(
                self.session, self.name, reason=self.reason, actor=self.actor
            )
        from nbops.commands import change_text

        self.change = change
        self.model = self._load()
        self.say(change_text(change), "ok")
        self._sync()
        return change

    def _ask(self, action: str, question: str, version: int | None) -> str:
        self.pending = Pending(action, question, version)
        self.say("")
        self._sync()
        return question

    def _load(self) -> vm.PanelModel:
        return vm.panel_model(self.name, registry.list_versions(self.session, self.name))

    # ---- renderings -----------------------------------------------------------------------

    def table_html(self) -> str:
        marked = [vm.CHAMPION in v.aliases for v in self.model.versions]
        rows = vm.rows(self.model)
        return html_table(vm.header(self.model), rows, css_class="nbops-versions", marked=marked)

    def to_html(self) -> str:
        parts = [f"<div>{vm.headline(self.model)}</div>", self.table_html(), self.message_html()]
        return box("nbops promotion", "".join(parts), "nbops-promotion-panel")

    def to_text(self) -> str:
        lines = [vm.headline(self.model), text_table(vm.header(self.model), vm.rows(self.model))]
        if self.pending is not None:
            lines.append(f"awaiting confirmation: {self.pending.question}")
        return "\n".join([*lines, self.message] if self.message else lines)

    # ---- ipywidgets glue --------------------------------------------------------------------

    def _build(self) -> Any:
        from nbops.widgets.promotion_ui import build

        return build(self)

    def _sync(self) -> None:
        if self._ui is not None:
            from nbops.widgets.promotion_ui import sync

            sync(self)
