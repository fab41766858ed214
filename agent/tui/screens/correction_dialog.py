"""A manager's correction of an entry (#15 item 10): the corrected values and a
reason. The agent records a ``correction`` event referring to the entry
(``event.correct``, docs/local-api.md); the entry itself stays in the history."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Input, Label, Static

from agent.tui.i18n import N_, tr
from agent.tui.screens.base import ClubModal

#: One field of the dialog: (key sent to the agent, label, value now, placeholder).
Field = tuple[str, str, str, str]


class CorrectionDialog(ClubModal):
    """The values to correct, prefilled with the entry's, and a reason.

    Enter moves to the next field; Enter in *Reason* answers ``(changes, reason)``
    with only the fields that changed (stripped), or says what is missing; Esc
    answers None.
    """

    CSS_PATH = "correction_dialog.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", N_("Back")),
    ]

    def __init__(self, title: str, fields: Sequence[Field]) -> None:
        super().__init__()
        self.heading = title
        self.fields = list(fields)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.heading, classes="dialog-title")
            for key, label, value, placeholder in self.fields:
                with Horizontal(classes="field"):
                    yield Label(label, classes="field-label")
                    yield Input(value, id=f"fix-{key}", compact=True, max_length=100,
                                placeholder=placeholder)
            with Horizontal(classes="field"):
                yield Label(tr("Reason"), classes="field-label")
                yield Input(id="fix-reason", compact=True, max_length=200,
                            placeholder=tr("why, e.g. typed 700 for 7"))
            yield Static("", id="fix-error", classes="error")
            yield Static(tr("Enter: next · Enter in Reason: correct · Esc: back"),
                         classes="hint")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def changes(self) -> dict[str, str]:
        """The fields whose value differs from the entry's."""
        out = {}
        for key, _label, value, _placeholder in self.fields:
            typed = self.query_one(f"#fix-{key}", Input).value.strip()
            if typed != value.strip():
                out[key] = typed
        return out

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        inputs = list(self.query(Input))
        if event.input.id != "fix-reason":
            inputs[inputs.index(event.input) + 1].focus()
            return
        changes = self.changes()
        error = self.query_one("#fix-error", Static)
        if not changes:
            error.update(tr("Nothing changed: change a value, or Esc."))
            inputs[0].focus()
            return
        if any(not v for v in changes.values()):
            error.update(tr("A value must not be empty."))
            return
        reason = event.value.strip()
        if not reason:
            error.update(tr("Type the reason first."))
            return
        self.dismiss((changes, reason))
