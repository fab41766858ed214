"""Adjust a member's points or balance by hand (issue #19, protocol 1.3
``balance.adjust``): add points from a purchase amount (the agent computes them and
shows them before confirming) or directly, deduct points, grant or take back credit
and units, each with a reason and a note. The agent checks the permission, the
balance and the club's limits; this dialog only asks and shows."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Input, Label, Select, Static

from agent.errors import ApiError
from agent.localapi import LIMIT
from agent.tui.errors import error_logical
from agent.tui.i18n import N_, current, fill, money, number, parse_amount, tr
from agent.tui.labels import credit_name
from agent.tui.screens.base import ClubModal
from agent.tui.widgets.bidi import BidiText

#: The actions, in the order offered: (code, label).
ACTIONS = (("from_amount", N_("Add points: purchase amount")),
           ("add_points", N_("Add points")),
           ("deduct_points", N_("Deduct points")),
           ("grant", N_("Grant credit or units")),
           ("take", N_("Take back credit or units")))
REASON_NAMES = {
    "purchase_not_recorded": N_("Purchase not recorded"),
    "goodwill": N_("Goodwill"),
    "correction": N_("Correction"),
    "gift": N_("Gift"),
    "complaint": N_("Complaint"),
    "other": N_("Other"),
}
#: ``data.limit`` of a refusal → a sentence in the UI's language.
LIMIT_TEXTS = {
    "balance": N_("The member does not have that much to deduct (has {balance})."),
    "max_add": N_("More than the club allows at once (at most {max})."),
    "max_deduct": N_("More than the club allows to deduct at once (at most {max})."),
    "member_day": N_("This member's limit for today is reached ({left} left)."),
    "offline_staff_day": N_("Offline, your limit for today is reached ({left} left)."),
    "kind_not_grantable": N_("The club does not allow granting this balance."),
    "no_points": N_("That amount earns no points: type the points instead."),
    "balance_bound": N_("The balance would become too large."),
    "zero": N_("The amount must not be 0."),
    "adjust_off": N_("The club does not allow adjusting this balance by hand."),
}


def kind_name(kind: str) -> str:
    """A balance kind as a manager reads it (points, club credit, units.wash → wash)."""
    if kind == "points":
        return current().gettext("points")
    if kind.startswith("units."):
        return fill("{name} (units)", name=kind.removeprefix("units."))
    return credit_name(kind)


class AdjustDialog(ClubModal):
    """The action, kind, amount, reason and note. Enter in *Note* asks the agent for
    a preview (the points computed, the balance after); Enter again confirms. Answers
    the recorded result (a dict), or None (Esc)."""

    CSS_PATH = "adjust_dialog.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", N_("Back")),
    ]

    def __init__(self, member: dict[str, Any], info: dict[str, Any],
                 currency: str | None, minor_units: int) -> None:
        super().__init__()
        self.member = member
        self.info = info
        self.currency = currency
        self.minor_units = minor_units
        self.kinds = [str(k) for k in info.get("kinds") or []]
        self.pending: dict[str, Any] | None = None  # the previewed request, to confirm

    def compose(self) -> ComposeResult:
        actions = [(current().gettext(label), code) for code, label in ACTIONS
                   if self._offered(code)]
        with Vertical(classes="dialog"):
            yield Static(tr("Adjust points / balance: {name}",
                            name=self.member.get("name") or ""), classes="dialog-title")
            yield Static(self._balances(), id="adj-balances")
            with Horizontal(classes="field"):
                yield Label(tr("Action"), classes="field-label")
                yield Select(actions, id="adj-action", allow_blank=False, compact=True,
                             value=actions[0][1] if actions else Select.BLANK)
            with Horizontal(classes="field", id="adj-kind-row"):
                yield Label(tr("Balance"), classes="field-label")
                yield Select([(kind_name(k), k) for k in self.kinds], id="adj-kind",
                             allow_blank=False, compact=True,
                             value=self.kinds[0] if self.kinds else Select.BLANK)
            with Horizontal(classes="field"):
                yield Label(tr("Amount"), classes="field-label", id="adj-amount-label")
                yield Input(id="adj-amount", compact=True, max_length=16)
            with Horizontal(classes="field"):
                yield Label(tr("Reason"), classes="field-label")
                yield Select([(current().gettext(REASON_NAMES.get(r, r)), r)
                              for r in self.info.get("reasons") or REASON_NAMES],
                             id="adj-reason", allow_blank=False, compact=True)
            with Horizontal(classes="field"):
                yield Label(tr("Note"), classes="field-label")
                yield Input(id="adj-note", compact=True, max_length=500,
                            placeholder=tr("why, for the report"))
            yield Static("", id="adj-preview")
            yield Static("", id="adj-error", classes="error")
            yield Static(tr("Enter in Note: check · Enter again: record · Esc: back"),
                         classes="hint")
        yield Footer()

    def _offered(self, code: str) -> bool:
        if code == "from_amount":
            return bool(self.info.get("from_amount"))
        if code in ("add_points", "deduct_points"):
            return bool(self.info.get("points"))
        return bool(self.kinds)

    def _balances(self) -> str:
        parts = []
        for kind, amount in (self.member.get("balances") or {}).items():
            if kind == "points" or kind.startswith("units."):
                parts.append(fill("{kind}: {n}", kind=kind_name(kind), n=number(int(amount))))
            elif kind.startswith("credit."):
                parts.append(fill("{kind}: {n}", kind=kind_name(kind), n=self._money(int(amount))))
        return " · ".join(parts)

    def _money(self, amount: int) -> str:
        return money(amount, self.currency, self.minor_units)

    def _quantity(self, amount: int) -> str:
        """A limit's figure in the unit of the balance being adjusted: money for a
        credit (minor units on the wire), a number for points and units."""
        kind = "points"
        if self.action in ("grant", "take"):
            value = self.query_one("#adj-kind", Select).value
            kind = str(value) if isinstance(value, str) else kind
        return self._money(amount) if kind.startswith(("credit.", "value.")) else number(amount)

    def on_mount(self) -> None:
        self._show_fields()
        self.query_one("#adj-action", Select).focus()

    @property
    def action(self) -> str:
        value = self.query_one("#adj-action", Select).value
        return str(value) if isinstance(value, str) else ""

    def _show_fields(self) -> None:
        action = self.action
        self.query_one("#adj-kind-row").display = action in ("grant", "take")
        label = {"from_amount": tr("Purchase"), "add_points": tr("Points"),
                 "deduct_points": tr("Points")}.get(action, tr("Amount"))
        self.query_one("#adj-amount-label", Label).update(label)

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self.pending = None
        self.query_one("#adj-preview", Static).update("")
        self._show_fields()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.pending = None  # a change must be checked again before it is recorded

    def request(self) -> dict[str, Any] | str:
        """The ``balance.adjust`` params of the form, or what is wrong (translated)."""
        action, text = self.action, self.query_one("#adj-amount", Input).value.strip()
        kind = "points"
        if action in ("grant", "take"):
            value = self.query_one("#adj-kind", Select).value
            kind = str(value) if isinstance(value, str) else ""
            if not kind:
                return tr("Choose the balance.")
        money_kind = kind.startswith("credit.") or action == "from_amount"
        amount = parse_amount(text, self.minor_units if money_kind else 0)
        if not text or amount is None or amount <= 0:
            return tr("Type the amount (a whole number above 0).") if not money_kind else \
                tr("Type the amount, e.g. 12.50.")
        reason = self.query_one("#adj-reason", Select).value
        note = self.query_one("#adj-note", Input).value.strip()
        if self.info.get("require_note") and not note:
            return tr("Type a note first.")
        params: dict[str, Any] = {"member_id": self.member["member_id"], "kind": kind,
                                  "reason": str(reason)}
        if note:
            params["note"] = note
        if action == "from_amount":
            params["points_from_amount"] = amount
        else:
            params["amount"] = -amount if action in ("deduct_points", "take") else amount
        return params

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "adj-amount":
            self.query_one("#adj-reason", Select).focus()
            return
        self._check_or_record()

    def _check_or_record(self) -> None:
        error = self.query_one("#adj-error", Static)
        params = self.request()
        if isinstance(params, str):
            error.update(params)
            return
        error.update("")
        if self.pending is not None and self.pending == params:
            self.call_api("balance.adjust", params, on_done=self.done_record,
                          on_failed=self.failed, session=True)
            return
        self.call_api("balance.adjust", {**params, "preview": True},
                      on_done=self.done_preview, on_failed=self.failed, session=True)
        self._asked = params

    def done_preview(self, result: dict[str, Any]) -> None:
        self.pending = self._asked
        kind = str(result.get("kind"))
        show = self._money if kind.startswith("credit.") else number
        amount = int(result.get("amount") or 0)
        text = fill("{sign}{amount} {kind} · {before} → {after}",
                    sign="+" if amount > 0 else "−", amount=show(abs(amount)),
                    kind=kind_name(kind), before=show(int(result.get("balance") or 0)),
                    after=show(int(result.get("balance_after") or 0)))
        self.query_one("#adj-preview", Static).update(
            BidiText(text + "\n" + fill("Enter again to record it."), "bold"))

    def done_record(self, result: dict[str, Any]) -> None:
        self.dismiss(result)

    def failed(self, error: ApiError) -> bool:
        """Refusals are shown in the dialog (the form stays as typed)."""
        self.pending = None
        data = error.data if isinstance(error.data, dict) else {}
        limit = data.get("limit")
        if error.code == LIMIT and isinstance(limit, str) and limit in LIMIT_TEXTS:
            values = {k: self._quantity(int(v)) if isinstance(v, int) else v
                      for k, v in data.items() if k in ("balance", "max", "left")}
            text = current().gettext(LIMIT_TEXTS[limit]).format_map(
                {"balance": "?", "max": "?", "left": "?", **values})
        else:
            text = error_logical(error)
        # Wrapped in reading order, each line then in display order (RTL).
        self.query_one("#adj-error", Static).update(BidiText(text))
        self.query_one("#adj-preview", Static).update("")
        return True
