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
from agent.tui.screens.correction_dialog import CorrectionDialog
from agent.tui.screens.recent_sales import RefundDialog


class CashScreen(ClubScreen):
    """Money in and out of the till that is not a sale."""

    CSS_PATH = "cash.tcss"
    MODE = "cash"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f8", "add('expense')", N_("Save expense"), priority=True),
        Binding("f9", "add('cash_receipt')", N_("Save receipt"), priority=True),
        # Hidden from the footer (the list reloads after each change) so that the
        # corrections fit 80 columns.
        Binding("ctrl+r", "reload", N_("Refresh"), show=False),
        Binding("ctrl+z", "void", N_("Void entry")),
        Binding("ctrl+t", "amend", N_("Correct")),
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
        self._rows = {}
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
    _rows: dict[str, dict[str, Any]]  # the day's entries by event id (on_mount)

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
        self._rows = {}
        tz = self.club_app.now().tzinfo
        for row, kind, sign in rows:
            at = datetime.fromisoformat(row["at"]).astimezone(tz)
            voided = bool((row.get("correction") or {}).get("void"))
            amount = self.fmt(sign * int(row["amount"]))
            table.add_row(
                *ordered(
                    [
                        current().time(at),
                        kind,
                        row.get("category", ""),
                        row.get("note", ""),
                        tr("{amount} (void)", amount=amount) if voided
                        else tr("{amount} (corrected)", amount=amount) if row.get("correction")
                        else amount,
                    ]
                ),
                key=str(row.get("event_id")),
            )
            self._rows[str(row.get("event_id"))] = {**row, "kind": kind, "voided": voided}
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

    # ------------------------------------------------------------ corrections

    def _chosen(self) -> tuple[str, dict[str, Any]] | None:
        """The highlighted entry a manager may correct, or None (and why, said)."""
        staff = self.club_app.staff
        if staff is None or not staff.is_manager:
            self.say(tr("Only a manager can correct an entry."), "error")
            return None
        table = self.query_one("#cash-table", DataTable)
        if table.row_count == 0:
            self.say(tr("There is no entry to correct today."), "error")
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        row = self._rows.get(str(key))
        if row is None:
            return None
        if row["voided"]:
            self.say(tr("This entry is void already."), "error")
            return None
        return str(key), row

    def action_amend(self) -> None:
        """A manager corrects the chosen entry's amount, category or note: a
        correction event with the new values; the entry stays in the history."""
        chosen = self._chosen()
        if chosen is None:
            return
        key, row = chosen
        minor = self._minor
        amount = int(row["amount"])
        typed = (f"{amount // 10**minor}.{amount % 10**minor:0{minor}d}" if minor
                 else str(amount))
        what = f"{row['kind']} {self.fmt(amount)} {row.get('category', '')}"
        self.app.push_screen(
            CorrectionDialog(tr("Correct {what}", what=what), [
                ("amount", tr("Amount"), typed, tr("e.g. 12.50")),
                ("category", tr("Category"), str(row.get("category") or ""), ""),
                ("note", tr("Note"), str(row.get("note") or ""), tr("optional")),
            ]),
            lambda answer: self._amend(key, answer))

    def _amend(self, event_id: str, answer: tuple[dict[str, str], str] | None) -> None:
        if answer is None:
            return
        changes, reason = answer
        params: dict[str, Any] = {"event_id": event_id, "reason": reason}
        if "amount" in changes:
            amount = parse_amount(changes["amount"], self._minor)
            if not amount:
                self.say(tr("Type the amount, e.g. 12.50."), "error")
                return
            params["amount"] = amount
        for key in ("category", "note"):
            if key in changes:
                params[key] = changes[key]
        self.call_api("event.correct", params, on_done=self.done_amend, session=True)

    def done_amend(self, result: dict[str, Any]) -> None:
        self.say(tr("Entry corrected; the original stays in the history."), "ok")
        self.action_reload()

    def action_void(self) -> None:
        """A manager voids the chosen entry: a correction event, the entry stays in
        the history (#15 item 10)."""
        chosen = self._chosen()
        if chosen is None:
            return
        key, row = chosen
        what = f"{row['kind']} {self.fmt(int(row['amount']))} {row.get('category', '')}"
        self.app.push_screen(
            RefundDialog(what, title=tr("Void {what}", what=what),
                         hint=tr("Enter: void · Esc: back")),
            lambda reason: self._void(str(key), reason))

    def _void(self, event_id: str, reason: str | None) -> None:
        if reason:
            self.call_api("event.correct",
                          {"event_id": event_id, "void": True, "reason": reason},
                          on_done=self.done_void, session=True)

    def done_void(self, result: dict[str, Any]) -> None:
        self.say(tr("Entry voided; it stays in the history."), "ok")
        self.action_reload()
