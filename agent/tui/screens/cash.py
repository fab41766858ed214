"""Expenses and cash receipts: add with amount, category, note; the day's list
and totals (income = cash receipts, expenses, net = income − expenses)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import DataTable, Input, Label, Static

from agent.tui.i18n import N_, current, money, ordered, parse_amount, tr
from agent.tui.screens.base import ClubScreen


class CashScreen(ClubScreen):
    """Money in and out of the till that is not a sale."""

    CSS_PATH = "cash.tcss"
    MODE = "cash"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f8", "add('expense')", N_("Save expense"), priority=True),
        Binding("f9", "add('cash_receipt')", N_("Save receipt"), priority=True),
        Binding("ctrl+r", "reload", N_("Refresh")),
    ]

    def compose_body(self) -> ComposeResult:
        with Horizontal(classes="field"):
            yield Label(tr("Amount"), classes="field-label")
            yield Input(id="cash-amount", compact=True, placeholder=tr("e.g. 12.50"))
        with Horizontal(classes="field"):
            yield Label(tr("Category"), classes="field-label")
            yield Input(
                id="cash-category", compact=True, placeholder=tr("e.g. supplies, cleaning, float")
            )
        with Horizontal(classes="field"):
            yield Label(tr("Note"), classes="field-label")
            yield Input(id="cash-note", compact=True, placeholder=tr("optional"))
        yield DataTable(id="cash-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="cash-totals")

    def on_mount(self) -> None:
        table = self.query_one("#cash-table", DataTable)
        table.add_columns(
            *ordered([tr("Time"), tr("Kind"), tr("Category"), tr("Note"), tr("Amount")])
        )
        self.query_one("#cash-amount", Input).focus()
        self.action_reload()

    def fmt(self, amount: int) -> str:
        """An amount in the club currency."""
        status = self.club_app.agent_status
        return money(amount, status.currency or self._currency, self._minor)

    _currency: str | None = None
    _minor = 2

    def action_reload(self) -> None:
        """Fetch the day's entries."""
        self.call_api(
            "day.summary", {"date": self.club_app.now().date().isoformat()},
            on_done=self.done_summary, session=True
        )

    def done_summary(self, result: dict[str, Any]) -> None:
        self._currency = result.get("currency")
        self._minor = int(result.get("minor_units", self.club_app.agent_status.minor_units))
        rows = [(r, tr("Expense"), -1) for r in result.get("expenses", [])]
        rows += [(r, tr("Receipt"), 1) for r in result.get("cash_receipts", [])]
        rows.sort(key=lambda item: str(item[0]["at"]))
        table = self.query_one("#cash-table", DataTable)
        table.clear()
        tz = self.club_app.now().tzinfo
        for row, kind, sign in rows:
            at = datetime.fromisoformat(row["at"]).astimezone(tz)
            table.add_row(
                *ordered(
                    [
                        current().time(at),
                        kind,
                        row.get("category", ""),
                        row.get("note", ""),
                        self.fmt(sign * int(row["amount"])),
                    ]
                )
            )
        totals = result.get("totals") or {}
        self.query_one("#cash-totals", Static).update(
            tr(
                "Income {income}   Expenses {expenses}   Net {net}",
                income=self.fmt(int(totals.get("income", 0))),
                expenses=self.fmt(int(totals.get("expenses", 0))),
                net=self.fmt(int(totals.get("net", 0))),
            )
        )

    def action_add(self, kind: str) -> None:
        """Record the form as an expense or a cash receipt."""
        minor = self.club_app.agent_status.minor_units
        amount = parse_amount(self.query_one("#cash-amount", Input).value, minor)
        category = self.query_one("#cash-category", Input).value.strip()
        note = self.query_one("#cash-note", Input).value.strip()
        if not amount:
            self.say(tr("Type the amount, e.g. 12.50."), "error")
            self.query_one("#cash-amount", Input).focus()
            return
        if not category:
            self.say(tr("Type a category."), "error")
            self.query_one("#cash-category", Input).focus()
            return
        method = "expense.add" if kind == "expense" else "cash_receipt.add"
        on_done = self.done_expense if kind == "expense" else self.done_cash_receipt
        self.call_api(
            method, {"amount": amount, "category": category, "note": note},
            on_done=on_done, session=True
        )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        order = ["cash-amount", "cash-category", "cash-note"]
        if event.input.id in order[:-1]:
            self.query_one(f"#{order[order.index(event.input.id) + 1]}", Input).focus()

    def _saved(self, text: str) -> None:
        for name in ("cash-amount", "cash-category", "cash-note"):
            self.query_one(f"#{name}", Input).value = ""
        self.query_one("#cash-amount", Input).focus()
        self.say(text, "ok")
        self.action_reload()

    def done_expense(self, result: dict[str, Any]) -> None:
        self._saved(tr("Expense saved."))

    def done_cash_receipt(self, result: dict[str, Any]) -> None:
        self._saved(tr("Cash receipt saved."))
