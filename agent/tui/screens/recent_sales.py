"""Recent sales of this terminal (F9 on the sale screen): search, reprint, void the
last sale, refund (a manager). The agent decides who may do what (``sale.list``,
``sale.void``, ``sale.refund`` in docs/local-api.md); this dialog only asks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Footer, Input, Static

from agent.errors import ApiError
from agent.tui.errors import error_text
from agent.tui.i18n import N_, current, display, isolate, ordered, tr
from agent.tui.screens.base import ClubModal, MessageLine
from agent.tui.screens.sale_dialogs import ReceiptDialog

PAGE = 20
VOID_REFUSALS = {
    "void_not_last": N_("Only the last sale can be voided; a manager can refund this one."),
    "void_other_staff": N_("Only its cashier or a manager can void this sale."),
    "void_too_late": N_("Too late to void (5 minutes); a manager can refund it."),
    "refunded": N_("This sale is already refunded."),
}


def receipt_of(sale: dict[str, Any]) -> dict[str, Any]:
    """A ``sale.list`` item as a receipt to reprint."""
    member = {"name": sale.get("member_name") or sale.get("member_id")} \
        if sale.get("member_id") else None
    return {**sale, "member": member, "reprint": True}


def sale_state(sale: dict[str, Any]) -> str:
    """What became of a sale, in a word or two."""
    refund = sale.get("refund")
    if refund:
        return tr("voided") if refund.get("void") else tr("refunded")
    if sale.get("fully_refunded"):
        return tr("refunded")
    if any(sale.get("refunded_lines") or ()):
        return tr("partly refunded")
    if sale.get("state") == "rejected":
        return tr("rejected by the club")
    return tr("not sent yet") if sale.get("state") in ("pending", "sent") else tr("sent")


class ConfirmDialog(ClubModal):
    """A yes/no question: Enter says yes, Esc no."""

    CSS_PATH = "recent_sales.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "dismiss(True)", N_("Yes")),
        Binding("escape", "dismiss(False)", N_("Back")),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, classes="dialog-title")
            yield Static(tr("Enter: yes · Esc: back"), classes="hint")
        yield Footer()


class RefundDialog(ClubModal):
    """Why a whole sale is refunded; Enter records, Esc goes back.

    ``lines`` is the hook for a refund of single lines: None (the whole sale) until
    protocol.md defines a partial refund; then the chosen lines go here and on to
    ``sale.refund``.
    """

    CSS_PATH = "recent_sales.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", N_("Back")),
    ]

    def __init__(self, what: str, lines: list[int] | None = None, *,
                 title: str | None = None, hint: str | None = None) -> None:
        super().__init__()
        self.what = what
        self.lines = lines
        # The same question serves every correction that needs a reason (a void).
        self.heading = title or tr("Refund the whole sale {what}", what=what)
        self.hint = hint or tr("Enter: refund · Esc: back")

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.heading, classes="dialog-title")
            yield Input(id="refund-reason", compact=True, max_length=200,
                        placeholder=tr("reason, e.g. returned broken"))
            yield Static("", id="refund-error", classes="error")
            yield Static(self.hint, classes="hint")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#refund-reason", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        reason = event.value.strip()
        if not reason:
            self.query_one("#refund-error", Static).update(tr("Type the reason first."))
            return
        self.dismiss(reason)


def line_label(line: dict[str, Any], index: int) -> str:
    """A sale line as the list names it: its product's name in the UI's language
    (catalogue lines, from ``sale.list``), its sku or category, else "Amount N"."""
    names = line.get("names")
    if not isinstance(names, dict):
        names = {}
    name = names.get(current().code) or names.get("en") or line.get("sku") \
        or line.get("category")
    return display(str(name)) if name else tr("Amount {n}", n=index + 1)


class LinesRefundDialog(RefundDialog):
    """A refund of a sale, whole or by line (#15 item 3, protocol 1.1 ``refund_lines``).

    The reason has the focus, as for a whole refund; Tab goes to the sale's lines,
    where + and − (or a digit) set how many of the highlighted line go back, ``a``
    takes all that is left. Nothing chosen refunds all that is left. Dismisses with
    ``(reason, lines)``: ``lines`` ``[{line, qty}]`` or None for all.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", N_("Back")),
        Binding("tab", "switch", N_("Lines"), show=False),
    ]

    def __init__(self, what: str, sale: dict[str, Any], fmt: Callable[[int], str]) -> None:
        super().__init__(what, title=tr("Refund {what}", what=what),
                         hint=tr("Tab: choose lines (+ − or a number) · Enter: refund · "
                                 "Esc: back"))
        self.fmt = fmt
        self.sale_lines = [x if isinstance(x, dict) else {} for x in sale.get("lines") or []]
        done = list(sale.get("refunded_lines") or [])
        self.left = [max(0, int(x.get("qty", 1)) - int(done[i] if i < len(done) else 0))
                     for i, x in enumerate(self.sale_lines)]
        self.chosen = [0] * len(self.sale_lines)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.heading, classes="dialog-title")
            yield DataTable(id="refund-lines", cursor_type="row", zebra_stripes=True)
            yield Static("", id="refund-choice")
            yield Input(id="refund-reason", compact=True, max_length=200,
                        placeholder=tr("reason, e.g. returned broken"))
            yield Static("", id="refund-error", classes="error")
            yield Static(self.hint, classes="hint")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#refund-lines", DataTable)
        table.add_columns(*ordered([tr("Item"), tr("Price"), tr("Left"), tr("Refund")]))
        for i in range(len(self.sale_lines)):
            table.add_row(*self._row(i), key=str(i))
        self._show_choice()
        # RefundDialog.on_mount (Textual runs it too) focuses the reason.

    def _row(self, i: int) -> list[str]:
        return ordered([line_label(self.sale_lines[i], i),
                        self.fmt(int(self.sale_lines[i].get("unit_price") or 0)),
                        current().number(self.left[i]), current().number(self.chosen[i])])

    def _show_choice(self) -> None:
        units = sum(self.chosen)
        worth = sum(q * int(self.sale_lines[i].get("unit_price") or 0)
                    for i, q in enumerate(self.chosen))
        text = (tr("All that is left goes back.") if not units else
                tr("Going back: {n} (worth {amount} before discounts).",
                   n=current().number(units), amount=self.fmt(worth)))
        self.query_one("#refund-choice", Static).update(text)

    def _set(self, qty: int) -> None:
        table = self.query_one("#refund-lines", DataTable)
        i = table.cursor_row
        if not 0 <= i < len(self.chosen):
            return
        self.chosen[i] = min(max(qty, 0), self.left[i])
        for col, value in enumerate(self._row(i)):
            table.update_cell_at(Coordinate(i, col), value)
        self._show_choice()

    def action_switch(self) -> None:
        table = self.query_one("#refund-lines", DataTable)
        field = self.query_one("#refund-reason", Input)
        (field if table.has_focus else table).focus()

    def on_key(self, event: events.Key) -> None:
        table = self.query_one("#refund-lines", DataTable)
        if not table.has_focus or not 0 <= table.cursor_row < len(self.chosen):
            return
        i = table.cursor_row
        if event.character in ("+", "="):
            self._set(self.chosen[i] + 1)
        elif event.character == "-":
            self._set(self.chosen[i] - 1)
        elif event.character == "a":
            self._set(self.left[i])
        elif event.character and event.character.isdigit():
            self._set(int(event.character))
        else:
            return
        event.stop()
        event.prevent_default()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.query_one("#refund-reason", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.prevent_default()  # Textual would run RefundDialog's handler too
        reason = event.value.strip()
        if not reason:
            self.query_one("#refund-error", Static).update(tr("Type the reason first."))
            return
        lines = [{"line": i, "qty": q} for i, q in enumerate(self.chosen) if q]
        self.dismiss((reason, lines or None))


class RecentSalesDialog(ClubModal):
    """This terminal's sales, newest first; type to search, keys act on the
    highlighted sale."""

    CSS_PATH = "recent_sales.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+p", "reprint", N_("Reprint")),
        Binding("ctrl+z", "void", N_("Void last")),
        Binding("ctrl+f", "refund", N_("Refund")),
        Binding("pagedown", "older", N_("Older"), priority=True),
        Binding("escape", "dismiss(None)", N_("Back")),
    ]

    def __init__(self, fmt: Callable[[int], str]) -> None:
        super().__init__()
        self.fmt = fmt
        self.sales: list[dict[str, Any]] = []
        self.next_before: int | None = None
        self.query_text = ""
        self._refunding = ""
        # What to say once the list is loaded again (after a void or refund).
        self._notice: tuple[str, str] | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog sales"):
            yield Static(tr("Recent sales"), classes="dialog-title")
            yield Input(id="sales-query", compact=True, max_length=64,
                        placeholder=tr("receipt no., member name or amount; Enter"))
            yield DataTable(id="sales", cursor_type="row", zebra_stripes=True)
            yield MessageLine(id="message")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#sales", DataTable)
        table.add_columns(*ordered([tr("No."), tr("Time"), tr("Member"), tr("Paid"),
                                    tr("State")]))
        self.query_one("#sales", DataTable).focus()
        self.load()

    def load(self, before: int | None = None) -> None:
        """Ask for a page of sales (older than ``before``)."""
        params: dict[str, Any] = {"limit": PAGE}
        if self.query_text:
            params["query"] = self.query_text
        if before is not None:
            params["before"] = before
        self.call_api("sale.list", params, on_done=self.done_sales, session=True)

    def done_sales(self, result: dict[str, Any]) -> None:
        self.sales = list(result.get("sales") or [])
        self.next_before = result.get("next_before")
        table = self.query_one("#sales", DataTable)
        table.clear()
        loc = current()
        tz = self.club_app.now().tzinfo
        for i, sale in enumerate(self.sales):
            try:
                at = datetime.fromisoformat(str(sale["at"]).replace("Z", "+00:00")).astimezone(tz)
                # Today's sales by time only (the Status column stays in sight
                # at 60 columns); the date and the time as separate runs, so
                # right to left the year does not join the time (#15 item 11).
                when = (loc.time(at) if at.date() == self.club_app.now().date()
                        else display(f"{isolate(loc.date(at.date()))} {isolate(loc.time(at))}"))
            except (KeyError, ValueError):
                when = ""
            table.add_row(*ordered([sale.get("receipt_no") or "", when,
                                    display(str(sale.get("member_name") or "")),
                                    self.fmt(int(sale.get("payable") or 0)), sale_state(sale)]),
                          key=str(i))
        if self._notice is not None:
            self.say(*self._notice)
            self._notice = None
        elif not self.sales:
            self.say(tr("No sales found."), "info")
        else:
            self.say(tr("↑↓ choose · Ctrl+P reprint · Ctrl+Z void the last · Ctrl+F refund"))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_text = event.value.strip()
        self.load()
        self.query_one("#sales", DataTable).focus()

    def on_key(self, event: events.Key) -> None:
        # Typing in the list goes on with the search.
        field = self.query_one("#sales-query", Input)
        if event.character and event.character.isprintable() and not field.has_focus:
            event.stop()
            field.focus()
            field.insert_text_at_cursor(event.character)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_reprint()

    def _selected(self) -> dict[str, Any] | None:
        if not self.sales:
            self.say(tr("No sale chosen."), "error")
            return None
        row = self.query_one("#sales", DataTable).cursor_row
        return self.sales[min(max(row, 0), len(self.sales) - 1)]

    def action_older(self) -> None:
        """The next page of older sales."""
        if self.next_before is None:
            self.say(tr("There are no older sales on this terminal."), "info")
            return
        self.load(self.next_before)

    def action_reprint(self) -> None:
        """Show the highlighted sale's receipt again, marked as a copy."""
        sale = self._selected()
        if sale is not None:
            self.app.push_screen(ReceiptDialog(receipt_of(sale), self.fmt))

    def action_void(self) -> None:
        """Void the highlighted sale if it is the last one (asks first)."""
        sale = self._selected()
        if sale is None:
            return
        if not sale.get("voidable"):
            why = VOID_REFUSALS.get(str(sale.get("void_refusal")))
            self.say(tr(why) if why else tr("This sale cannot be voided."), "error")
            return
        question = tr("Void sale {no} of {amount}?", no=sale.get("receipt_no") or "",
                      amount=self.fmt(int(sale.get("payable") or 0)))
        self.app.push_screen(ConfirmDialog(question), lambda yes: self._void(sale, yes))

    def _void(self, sale: dict[str, Any], yes: bool | None) -> None:
        if yes:
            self.call_api("sale.void", {"sale_id": sale["sale_id"]},
                          on_done=self.done_void, on_failed=self.failed_void, session=True)

    def done_void(self, result: dict[str, Any]) -> None:
        self._notice = (tr("Sale {no} voided: give back the money.",
                           no=result.get("receipt_no") or ""), "ok")
        self.load()

    def action_refund(self) -> None:
        """Refund the highlighted sale as a whole (a manager; asks for the reason)."""
        sale = self._selected()
        if sale is None:
            return
        staff = self.club_app.staff
        if staff is None or not staff.is_manager:
            self.say(tr("Only a manager can refund; ask a manager to sign in."), "error")
            return
        if sale.get("refund") or sale.get("fully_refunded"):
            self.say(tr("This sale is already refunded."), "error")
            return
        what = tr("{no} of {amount}", no=sale.get("receipt_no") or "",
                  amount=self.fmt(int(sale.get("payable") or 0)))
        self.app.push_screen(LinesRefundDialog(what, sale, self.fmt),
                             lambda answer: self._refund(sale, answer))

    def _refund(self, sale: dict[str, Any], answer: tuple[str, Any] | None) -> None:
        if answer:
            reason, lines = answer
            params: dict[str, Any] = {"sale_id": sale["sale_id"], "reason": reason}
            if lines:
                params["lines"] = lines  # a refund by line (protocol 1.1)
            self.call_api("sale.refund", params, on_done=self.done_refund,
                          on_failed=self.failed_refund, session=True)
            self._refunding = sale.get("receipt_no") or ""

    def done_refund(self, result: dict[str, Any]) -> None:
        if result.get("whole") is False and result.get("payable") is not None:
            self._notice = (tr("Sale {no}: give back {amount}.", no=self._refunding,
                               amount=self.fmt(int(result["payable"]))), "ok")
        else:
            self._notice = (tr("Sale {no} refunded: give back the money.",
                               no=self._refunding), "ok")
        self.load()

    def failed_void(self, error: ApiError) -> bool:
        self._notice = (error_text(error), "error")
        self.load()
        return True

    def failed_refund(self, error: ApiError) -> bool:
        return self.failed_void(error)
