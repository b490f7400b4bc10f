"""``PromotionPanel``: a model's champion, challenger and other versions, with promote, roll-back
and make-champion buttons behind a confirmation step.

Every alias change goes through :mod:`nbops.registry` (``promote`` and ``rollback``), the same
code path as ``nbops model promote/rollback``, so the history tags in MLflow are the same
whichever was used. A button that cannot apply (no challenger, no previous, the champion's own
"make champion") is disabled and its tooltip says why. While displayed, the frontend asks every
:attr:`POLL` seconds whether the registry changed elsewhere (the CLI, another notebook, the
pipeline) and the panel reloads itself when it did, so it never shows stale aliases for long.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from nbops import registry
from nbops.errors import UsageError
from nbops.widgets import versions as vm
from nbops.widgets.base import WidgetBase, error_text
from nbops.widgets.render import (
    box,
    button,
    html_table,
    message_html,
    snapshot_note,
    text_input,
    text_table,
)

if TYPE_CHECKING:
    from nbops.session import Session

PROMOTE, ROLLBACK, CHAMPION = "promote", "rollback", "champion"


@dataclass(frozen=True)
class Pending:
    """An action awaiting confirmation: what was asked, about which version, and the model's
    aliases when it was asked (Confirm refuses if they moved meanwhile)."""

    action: str
    question: str
    version: int | None
    aliases: tuple[tuple[str, int], ...]


class PromotionPanel(WidgetBase):
    """>>> PromotionPanel("wine")   # then: Promote challenger -> Confirm"""

    ACTIONS: ClassVar[dict[str, str]] = {
        "promote": "_on_promote",
        "rollback": "_on_rollback",
        "champion": "_on_champion",
        "confirm": "_on_confirm",
        "cancel": "_on_cancel",
        "reason": "_on_reason",
        "refresh": "_on_refresh",
        "check": "_on_check",
    }
    POLL = 5

    def __init__(
        self, model_name: str, *, session: Session | None = None, actor: str | None = None
    ) -> None:
        if session is None:
            from nbops.session import default_session

            session = default_session()
        self.session = session
        self.name = model_name
        self.actor = actor
        self.reason = ""
        self.model = vm.panel_model(model_name, [])
        self.pending: Pending | None = None
        self.change: registry.RegistryChange | None = None
        self._reset_reason = False
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

    def ask_champion(self, version: int) -> str:
        """Step one of "make champion" for any version."""
        self.model = self._load()
        return self._ask(CHAMPION, vm.champion_question(self.model, version), version)

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
        now = tuple(sorted(self.model.aliases.items()))
        if now != pending.aliases:
            self._sync()
            raise UsageError(
                f"model {self.name!r} changed since you asked ({_moved(pending.aliases, now)})",
                fix="look at the table again and click the button again",
            )
        reason, actor = self.reason, self.actor
        if pending.action == PROMOTE:
            change = registry.promote(
                self.session, self.name, challenger=True, reason=reason, actor=actor
            )
        elif pending.action == CHAMPION:
            change = registry.promote(
                self.session, self.name, pending.version, reason=reason, actor=actor
            )
        else:
            change = registry.rollback(self.session, self.name, reason=reason, actor=actor)
        self.change = change
        self.model = self._load()
        self.reason, self._reset_reason = "", True
        self.say(change.text(), "ok")
        self._sync()
        return change

    def check(self) -> bool:
        """Reload when the registry changed elsewhere since the panel last read it; True if
        it did. Cheap: one look at the aliases and version numbers."""
        try:
            from nbops.store.registry_store import open_model

            with open_model(self.session.config, self.name, "check the model") as model:
                aliases = model.aliases()
                numbers = sorted(int(mv.version) for mv in model.versions())
        except Exception:  # the panel keeps its state; Refresh shows the error
            return False
        if aliases == self.model.aliases and numbers == sorted(
            v.version for v in self.model.versions
        ):
            return False
        before = tuple(sorted(self.model.aliases.items()))
        self.model = self._load()
        moved = _moved(before, tuple(sorted(self.model.aliases.items())))
        self.say(f"updated: the registry changed elsewhere ({moved})", "info")
        return True

    def _ask(self, action: str, question: str, version: int | None) -> str:
        aliases = tuple(sorted(self.model.aliases.items()))
        self.pending = Pending(action, question, version, aliases)
        self.say("")
        self._sync()
        return question

    def _load(self) -> vm.PanelModel:
        model = vm.panel_model(self.name, registry.list_versions(self.session, self.name))
        self.stamp()
        return model

    # ---- the frontend's actions -------------------------------------------------------------

    def _on_promote(self, msg: dict[str, Any]) -> None:
        self.ask_promote()

    def _on_rollback(self, msg: dict[str, Any]) -> None:
        self.ask_rollback()

    def _on_champion(self, msg: dict[str, Any]) -> None:
        self.ask_champion(int(msg["version"]))

    def _on_confirm(self, msg: dict[str, Any]) -> None:
        self.confirm()

    def _on_cancel(self, msg: dict[str, Any]) -> None:
        self.cancel()

    def _on_reason(self, msg: dict[str, Any]) -> None:
        self.reason, self._reset_reason = str(msg.get("value", "")), False

    def _on_refresh(self, msg: dict[str, Any]) -> None:
        self.refresh()

    def _on_check(self, msg: dict[str, Any]) -> None:
        if self.pending is None:  # a pending question is checked by Confirm itself
            self.check()

    # ---- renderings -----------------------------------------------------------------------

    def table_html(self, live: bool = False) -> str:
        """The versions, long gate reasons folded (the full text one click away); ``live``
        adds a "make champion" button beside each version number."""
        model = self.model
        header, rows = vm.header(model), vm.rows(model)
        reasons = header.index("gate reasons")
        raw: tuple[int, ...] = (0, reasons)
        for row, version in zip(rows, model.versions, strict=True):
            row[reasons] = _reasons_html(row[reasons])
            row[0] = html.escape(row[0])
            if live:
                state = vm.champion_button(model, version.version)
                busy = self.pending is not None
                row[0] += " " + button(
                    "make champion",
                    "champion",
                    disabled=not state.enabled or busy,
                    title=state.why if not busy else "answer the question below first",
                    version=version.version,
                )
        marked = [vm.CHAMPION in v.aliases for v in model.versions]
        return html_table(header, rows, css_class="nbops-versions", marked=marked, raw_columns=raw)

    def view_html(self) -> str:
        model, busy = self.model, self.pending is not None
        promote, rollback = vm.promote_button(model), vm.rollback_button(model)
        wait = "answer the question below first"
        reason = text_input(
            "reason",
            self.reason,
            placeholder="reason (recorded with the change)",
            title="recorded in MLflow with the alias change",
        )
        if self._reset_reason:
            reason = reason.replace("<input", "<input data-reset", 1)
        bar = (
            '<div class="nbops-bar nbops-live">'
            + reason
            + button(
                "Promote challenger",
                "promote",
                disabled=not promote.enabled or busy,
                title=wait if busy else promote.why,
            )
            + button(
                "Roll back",
                "rollback",
                disabled=not rollback.enabled or busy,
                title=wait if busy else rollback.why,
            )
            + button("Refresh", "refresh", title="read the registry again")
            + "</div>"
        )
        parts = [
            snapshot_note("promotion panel", self.as_of),
            self._title(),
            self._holdout_note(),
            self.table_html(live=True),
            bar,
            self._question(),
            self.message_html(),
        ]
        return '<div class="nbops-root" data-kind="promotion">' + "".join(parts) + "</div>"

    def to_html(self) -> str:
        parts = [self._title(), self._holdout_note(), self.table_html(), self.message_html()]
        return box("nbops promotion", "".join(parts), "nbops-promotion-panel")

    def to_text(self) -> str:
        model = self.model
        lines = [vm.headline(model), text_table(vm.header(model), vm.rows(model))]
        if vm.holdout_note(model):
            lines.insert(1, vm.holdout_note(model))
        if self.pending is not None:
            lines.append(f"awaiting confirmation: {self.pending.question}")
        return "\n".join([*lines, self.message] if self.message else lines)

    def _title(self) -> str:
        return (
            f'<div class="nbops-title">{html.escape(vm.headline(self.model))} '
            f'<span class="nbops-asof">as of {html.escape(self.as_of)}</span></div>'
        )

    def _holdout_note(self) -> str:
        note = vm.holdout_note(self.model)
        return message_html(note, "warn") if note else ""

    def _question(self) -> str:
        if self.pending is None:
            return ""
        return (
            '<div class="nbops-bar nbops-live nbops-question">'
            f"<span>{html.escape(self.pending.question)}</span>"
            + button("Confirm", "confirm", title="make the change", css="nbops-danger")
            + button("Cancel", "cancel", title="change nothing")
            + "</div>"
        )


def _reasons_html(text: str) -> str:
    """Gate reasons in full: short ones as they are, long ones folded behind a preview."""
    escaped = html.escape(text)
    if len(text) <= vm.REASONS_PREVIEW:
        return escaped
    preview = html.escape(vm.preview(text))
    return (
        f'<details class="nbops-reasons"><summary>{preview}</summary>'
        f'<div style="white-space:normal;min-width:24em">{escaped}</div></details>'
    )


def _moved(before: tuple[tuple[str, int], ...], after: tuple[tuple[str, int], ...]) -> str:
    """``champion v2 -> v1, previous v1 -> none``; "new versions" when no alias moved."""
    old, new = dict(before), dict(after)
    parts = []
    for alias in sorted(old.keys() | new.keys()):
        if old.get(alias) != new.get(alias):
            a, b = (f"v{v}" if v else "none" for v in (old.get(alias), new.get(alias)))
            parts.append(f"{alias} {a} -> {b}")
    return ", ".join(parts) or "new versions"
