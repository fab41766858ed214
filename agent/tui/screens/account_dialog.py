"""(1.3) A house account at the till: what it owes, its limit, who may buy on it, and a
payment of what it owes (``account.status``, ``account.pay``; docs/tui.md)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Footer, Input, Static

from agent.errors import ApiError
from agent.tui.errors import error_text
from agent.tui.i18n import N_, display, parse_amount, tr
from agent.tui.screens.base import ClubModal

#: Buyers named on the page; more are counted ("+3").
BUYERS_SHOWN = 4


def account_lines(account: dict[str, Any], fmt: Callable[[int], str]) -> list[str]:
    """The page's lines for one account (pure; display order), each short enough for 60
    columns: name, owed, limit and available, the buyers."""
    buyers = [str(b.get("name") or b.get("member_id")) for b in account.get("authorised") or []]
    shown = ", ".join(buyers[:BUYERS_SHOWN]) + (f" +{len(buyers) - BUYERS_SHOWN}"
                                                if len(buyers) > BUYERS_SHOWN else "")
    lines = [display(str(account.get("name") or account.get("account_id"))),
             tr("Owed: {amount}", amount=fmt(int(account.get("owed") or 0))),
             tr("Limit: {limit} · available: {available}",
                limit=fmt(int(account.get("credit_limit") or 0)),
                available=fmt(int(account.get("available") or 0))),
             tr("May buy: {names}", names=display(shown) if shown else "—")]
    if account.get("status") not in (None, "active"):
        lines.append(tr("This account is closed."))
    return lines


class AccountDialog(ClubModal):
    """The house account of the member on the sale (or found by its card's code): type
    an amount, Enter takes it in cash, Ctrl+D by card; Esc goes back."""

    CSS_PATH = "account_dialog.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+d", "pay('card')", N_("Card payment"), priority=True),
        Binding("ctrl+n", "next_account", N_("Next account"), show=False),
        Binding("escape", "dismiss(None)", N_("Back")),
    ]

    def __init__(self, fmt: Callable[[int], str], *, member_id: str | None = None,
                 minor_units: int = 2) -> None:
        super().__init__()
        self.fmt = fmt
        self.member_id = member_id
        self.minor_units = minor_units
        self.accounts: list[dict[str, Any]] = []
        self.index = 0
        # The key of the payment being typed: Enter pressed twice takes it once.
        self.payment_id = uuid.uuid4().hex

    @property
    def account(self) -> dict[str, Any] | None:
        return self.accounts[self.index] if self.accounts else None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(tr("House account"), classes="dialog-title")
            yield Input(id="account-find", compact=True, max_length=64,
                        placeholder=tr("account card or code"))
            yield Static("", id="account-info")
            yield Input(id="account-amount", compact=True, max_length=16,
                        restrict=r"[0-9۰-۹٠-٩.,٫]*", placeholder=tr("amount paid"))
            yield Static("", id="account-error", classes="error")
            yield Static(tr("Enter: cash payment · Ctrl+D: card · Esc: back"),
                         id="account-hint", classes="hint")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#account-amount", Input).display = False
        if self.member_id is not None:
            self.query_one("#account-find", Input).display = False
            self.call_api("account.status", {"member_id": self.member_id},
                          on_done=self.done_status, on_failed=self.failed, session=True)
        else:
            self.query_one("#account-find", Input).focus()

    def find(self, text: str) -> None:
        """Find the account by its card's code (or a token read by a reader)."""
        text = text.strip()
        if not text:
            return
        token = text if ":" in text else "code:" + text
        self.call_api("account.status", {"token": token}, on_done=self.done_status,
                      on_failed=self.failed, session=True)

    def done_status(self, result: dict[str, Any]) -> None:
        self.accounts = list(result.get("accounts") or [])
        self.index = min(self.index, max(0, len(self.accounts) - 1))
        self._show()

    def _show(self) -> None:
        info = self.query_one("#account-info", Static)
        amount = self.query_one("#account-amount", Input)
        account = self.account
        if account is None:
            info.update(tr("No house account found."))
            amount.display = False
            return
        lines = account_lines(account, self.fmt)
        if len(self.accounts) > 1:
            lines.append(tr("Ctrl+N: next account ({n} of {count})", n=self.index + 1,
                            count=len(self.accounts)))
        info.update("\n".join(lines))
        amount.display = True
        amount.focus()

    def action_next_account(self) -> None:
        if len(self.accounts) > 1:
            self.index = (self.index + 1) % len(self.accounts)
            self._show()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "account-find":
            self.find(event.value)
        else:
            self.action_pay("cash")

    def action_pay(self, method: str) -> None:
        """Take a payment of what the account owes by ``method``."""
        account = self.account
        error = self.query_one("#account-error", Static)
        if account is None:
            return
        amount = parse_amount(self.query_one("#account-amount", Input).value,
                              self.minor_units)
        if not amount:
            error.update(tr("Type the amount paid first."))
            return
        if amount > int(account.get("owed") or 0):
            error.update(tr("That is more than the account owes."))
            return
        error.update("")
        self.call_api("account.pay", {"account_id": account["account_id"], "amount": amount,
                                      "method": method, "payment_id": self.payment_id},
                      on_done=self.done_pay, on_failed=self.failed, session=True)

    def done_pay(self, result: dict[str, Any]) -> None:
        account = result.get("account")
        if isinstance(account, dict) and self.accounts:
            self.accounts[self.index] = account
        self.query_one("#account-amount", Input).value = ""
        self.payment_id = uuid.uuid4().hex  # the next payment is a new one
        self._show()
        self.query_one("#account-error", Static).update(
            tr("Payment recorded. Owed now: {amount}",
               amount=self.fmt(int((account or {}).get("owed") or 0))))

    def failed(self, error: ApiError) -> bool:
        self.query_one("#account-error", Static).update(error_text(error))
        return True
