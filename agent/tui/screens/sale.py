"""Sale: basket, member, every discount and why, redemption, payable, commit."""

from __future__ import annotations

import time as _time
from functools import partial
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Input, Label, Static

from agent.errors import ApiError
from agent.localapi import LIMIT, UNKNOWN_MEMBER
from agent.tui.basket import (
    Line,
    NeedsPrice,
    SetQuantity,
    add_line,
    last_price,
    line_index_after_add,
    parse_entry,
    scanned_product,
)
from agent.tui.errors import error_text
from agent.tui.i18n import N_, money, number, ordered, tr, trn
from agent.tui.messages import AgentReconnected, CardRead
from agent.tui.screens.members import MembersScreen
from agent.tui.screens.sale_checkout import SaleCheckout
from agent.tui.state import HeldBasket
from agent.tui.widgets.sale_panels import member_lines, quote_table, to_pay_line

PHONE_CHARS = set("+0123456789۰۱۲۳۴۵۶۷۸۹ -")


class SaleScreen(SaleCheckout):
    """The cashier's main screen."""

    CSS_PATH = "sale.tcss"
    MODE = "sale"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f8", "pay", N_("Pay"), priority=True),
        Binding("ctrl+p", "points", N_("Points")),
        Binding("ctrl+o", "credit", N_("Credit")),
        Binding("ctrl+r", "remove_line", N_("Remove")),
        Binding("ctrl+b", "no_member", N_("No member")),
        Binding("ctrl+n", "new_sale", N_("New")),
        Binding("f9", "recent_sales", N_("Sales"), priority=True),
        # Priority: an Input takes Ctrl+E (end of line) first.
        Binding("ctrl+e", "enrol_card", N_("Enrol card"), show=False, priority=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.lines: tuple[Line, ...] = ()
        self.member: dict[str, Any] | None = None
        self.member_token: str | None = None
        self.redeem_points: int | str | None = None
        self.use_credit = False
        self.quote: dict[str, Any] | None = None
        self.pending_sku: str | None = None
        self._quote_seq = 0
        self._committing = False
        self._typed_token: str | None = None
        self._staff_id: str | None = None
        # The highlighted basket line: the last one added or changed, unless the
        # cashier moved the highlight. Ctrl+R removes it, "*3" sets its quantity.
        self._selected = 0
        # A card no member holds, offered for enrolment (Ctrl+E).
        self._unknown_card: tuple[str, str | None] | None = None
        # Ctrl+O was pressed: say what the next price used, and why not more.
        self._credit_asked = False

    # ----------------------------------------------------------------- layout

    def compose_body(self) -> ComposeResult:
        yield Static(
            tr("OFFLINE: sales are still recorded and sent when the link is back."),
            id="offline-banner",
        )
        with Horizontal(id="sale-body"):
            with Vertical(id="sale-left"):
                with Horizontal(classes="field"):
                    yield Label(tr("Amount/item"), classes="field-label")
                    yield Input(id="entry", compact=True, placeholder=tr("12.50 · 3*2.50 · scan"))
                with Horizontal(classes="field"):
                    yield Label(tr("Member"), classes="field-label")
                    yield Input(
                        id="member-input",
                        compact=True,
                        placeholder=tr("tap card · phone · club code"),
                    )
                yield DataTable(id="basket", cursor_type="row", zebra_stripes=True)
            with Vertical(id="sale-right"):
                yield Static(id="member-panel")
                with VerticalScroll(id="quote-scroll"):
                    yield Static(id="quote-panel")
                # Narrow screens: the amount to take stays in sight below the
                # scrolling quote (#15 item 12).
                yield Static(id="to-pay")

    def on_mount(self) -> None:
        table = self.query_one("#basket", DataTable)
        table.add_columns(*ordered([tr("Item"), tr("Qty"), tr("Price"), tr("Total")]))
        self.watch(self.app, "agent_status", self._show_offline, init=True)
        self.query_one("#entry", Input).focus()
        staff = self.club_app.staff
        self._staff_id = staff.staff_id if staff is not None else None
        held = self.club_app.take_held_basket(self._staff_id) if self._staff_id else None
        if held is not None:
            self.lines = held.lines
            self.member, self.member_token = held.member, held.member_token
            self.say(trn("Your basket was kept: {n} line.", "Your basket was kept: {n} lines.",
                         len(self.lines), n=number(len(self.lines))), "ok")
            self._request_quote()
        self._redraw()

    def on_unmount(self) -> None:
        # Signed out (idle, the agent restarted, F10) with a half-made sale: keep it
        # for the same staff member, so the customer's basket is not rung up again.
        if self.lines and self._staff_id is not None:
            self.club_app.hold_basket(HeldBasket(
                self._staff_id, self.lines, self.member, self.member_token,
                _time.monotonic()))

    def on_agent_reconnected(self, _message: AgentReconnected) -> None:
        """The agent is back after a restart: price the basket again."""
        if self.lines and not self._committing:
            self.quote = None
            self.say(tr("The agent is back; pricing the sale again…"))
            self._request_quote()
            self._redraw()

    def fmt(self, amount: int) -> str:
        """An amount in the club currency (from the status, else the quote)."""
        status = self.club_app.agent_status
        currency = status.currency or (self.quote or {}).get("currency")
        minor = (
            status.minor_units
            if status.currency
            else int((self.quote or {}).get("minor_units", status.minor_units))
        )
        return money(amount, currency, minor)

    @property
    def minor_units(self) -> int:
        """Decimals of the club currency."""
        status = self.club_app.agent_status
        if status.currency:
            return status.minor_units
        return int((self.quote or {}).get("minor_units", status.minor_units))

    def _show_offline(self, _value: object = None) -> None:
        status = self.club_app.agent_status
        self.query_one("#offline-banner").display = status.known and not status.online

    def on_resize(self) -> None:
        self.call_after_refresh(self._redraw)

    def _redraw(self) -> None:
        table = self.query_one("#basket", DataTable)
        table.clear()
        for i, line in enumerate(self.lines):
            item = line.sku or tr("Amount")
            table.add_row(
                *ordered([item, number(line.qty), self.fmt(line.unit_price), self.fmt(line.total)]),
                key=str(i),
            )
        if self.lines:
            self._selected = min(self._selected, len(self.lines) - 1)
            table.move_cursor(row=self._selected, animate=False)
        quote = self.quote if self.lines else None
        points = ((quote or {}).get("redeem_limits") or {}).get("points") or {}
        self.query_one("#member-panel", Static).update(member_lines(
            (quote or {}).get("member") or self.member, self.fmt,
            int(points.get("value") or 0) or None))
        # Narrow screens pin TO PAY below the quote: once is enough.
        self.query_one("#quote-panel", Static).update(
            quote_table(self.quote if self.lines else None, self.fmt,
                        to_pay=not self.has_class("narrow"))
        )
        self.query_one("#to-pay", Static).update(to_pay_line(quote, self.fmt))
        entry = self.query_one("#entry", Input)
        entry.placeholder = (
            tr("price of {sku}", sku=self.pending_sku)
            if self.pending_sku
            else tr("12.50 · 3*2.50 · scan")
        )

    # ----------------------------------------------------------------- basket

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "entry":
            self._enter(event.value)
        elif event.input.id == "member-input":
            self._find_member(event.value)

    def _enter(self, text: str) -> None:
        entry = self.query_one("#entry", Input)
        if self.pending_sku and text.strip():
            text = f"{self.pending_sku} {text}"
        parsed = parse_entry(text, self.minor_units)
        if parsed is None:
            if not text.strip() and self.lines:
                self.action_pay()
                return
            self.say(tr("Not an amount. Type e.g. 12.50 or 3*2.50, or scan an item."), "error")
            return
        entry.value = ""
        if isinstance(parsed, NeedsPrice):
            self._product(parsed.sku)
            return
        if isinstance(parsed, SetQuantity):
            self._set_quantity(parsed.qty)
            return
        self.pending_sku = None
        self._selected = line_index_after_add(self.lines, parsed)
        self.lines = add_line(self.lines, parsed)
        self.say(tr("Added {amount}.", amount=self.fmt(parsed.total)), "ok")
        self._changed()

    def _product(self, sku: str) -> None:
        price = last_price(self.lines, sku)
        if price is not None:
            self._selected = line_index_after_add(self.lines, Line(sku, 1, price))
            self.lines = add_line(self.lines, Line(sku, 1, price))
            self.pending_sku = None
            self.say(tr("Added another {sku}.", sku=sku), "ok")
            self._changed()
            return
        self.pending_sku = sku
        self.say(tr("Scanned {sku}: type its price and press Enter.", sku=sku), "info")
        self._redraw()
        self.query_one("#entry", Input).focus()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "basket" and self.lines:
            self._selected = min(max(event.cursor_row, 0), len(self.lines) - 1)

    def action_remove_line(self) -> None:
        """Remove the highlighted basket line (the last one added, unless moved)."""
        if not self.lines:
            return
        row = min(max(self._selected, 0), len(self.lines) - 1)
        self.lines = self.lines[:row] + self.lines[row + 1 :]
        self._selected = max(0, min(row, len(self.lines) - 1))
        self.say(tr("Line removed."), "info")
        self._changed()

    def _set_quantity(self, qty: int) -> None:
        if not self.lines:
            self.say(tr("Add an amount or an item first."), "error")
            return
        row = min(max(self._selected, 0), len(self.lines) - 1)
        line = self.lines[row]
        self.lines = (*self.lines[:row], Line(line.sku, qty, line.unit_price),
                      *self.lines[row + 1 :])
        self.say(tr("Quantity set to {n}.", n=number(qty)), "ok")
        self._changed()

    def action_new_sale(self) -> None:
        """Start over: empty basket, no member, nothing redeemed."""
        self.lines = ()
        self._selected = 0
        self.member = None
        self.member_token = None
        self.redeem_points = None
        self.use_credit = False
        self.quote = None
        self.pending_sku = None
        self._unknown_card = None
        self._credit_asked = False
        self._quote_seq += 1
        self.query_one("#entry", Input).value = ""
        self.query_one("#member-input", Input).value = ""
        self.query_one("#entry", Input).focus()
        # What the last sale's keys said ("Credit not used.") is not this sale's.
        self.say("")
        self._redraw()

    # ----------------------------------------------------------------- member

    def handle_card(self, message: CardRead) -> None:
        sku = scanned_product(message.token)
        if sku is not None:
            self._product(sku)
            return
        self.say(tr("Card read, finding the member…"))
        self._typed_token = message.token
        self._unknown_card = (message.token, message.event.get("masked"))
        self.call_api("member.identify", {"token": message.token},
                      on_done=self.done_member, on_failed=self.failed_member)

    def _find_member(self, text: str) -> None:
        text = text.strip()
        if not text:
            return
        key = "phone" if set(text) <= PHONE_CHARS and len(text) >= 6 else "code"
        self.say(tr("Finding the member…"))
        # A club code's token is defined by the protocol ("code:" + the text);
        # a phone's needs the agent's normalisation and comes back with the answer.
        self._typed_token = "code:" + text if key == "code" else None
        self._unknown_card = None
        self.call_api("member.identify", {key: text},
                      on_done=self.done_member, on_failed=self.failed_member)

    def done_member(self, result: dict[str, Any]) -> None:
        self.member = result
        self.member_token = result.get("token") or self._typed_token
        self.redeem_points = None
        self.use_credit = False
        self._unknown_card = None
        self.query_one("#member-input", Input).value = ""
        self.say(tr("Member: {name}", name=result.get("name", "?")), "ok")
        self.query_one("#entry", Input).focus()
        self._changed()

    def failed_member(self, error: ApiError) -> bool:
        if error.code == UNKNOWN_MEMBER and self._unknown_card is not None:
            # A new customer's card: offer to enrol it (#15 item 14).
            self.say(tr("No member found for this card. Ctrl+E: enrol a new member with it."),
                     "error")
            return True
        self._unknown_card = None
        return False

    async def action_enrol_card(self) -> None:
        """Enrol a new member with the unknown card just read (on the Members screen)."""
        if self._unknown_card is None:
            self.say(tr("Tap the new customer's card first."), "error")
            return
        token, masked = self._unknown_card
        self._unknown_card = None
        await self.app.switch_mode("members")
        screen = self.app.screen
        if isinstance(screen, MembersScreen):
            screen.take_card(token, masked)

    def action_no_member(self) -> None:
        """Sell without a member."""
        self.member = None
        self.member_token = None
        self.redeem_points = None
        self.use_credit = False
        self._changed()

    # ------------------------------------------------------------------ quote

    def _changed(self) -> None:
        self.quote = None if not self.lines else self.quote
        self._redraw()
        if self.lines:
            self._request_quote()

    def _request_quote(self) -> None:
        self._quote_seq += 1
        params: dict[str, Any] = {"lines": [line.to_param() for line in self.lines]}
        if self.member_token:
            params["token"] = self.member_token
        if self.redeem_points:
            params["redeem_points"] = self.redeem_points
        if self.use_credit and self.quote:
            kinds = [c["kind"] for c in (self.quote.get("redeem_limits") or {}).get("credits", [])]
            if kinds:
                params["use_credit"] = kinds
        elif self.use_credit and self.member:
            params["use_credit"] = [
                k for k in (self.member.get("balances") or {}) if k.startswith("credit.")
            ]
        seq = self._quote_seq
        self.call_api("sale.quote", params, on_done=partial(self._quote_done, seq),
                      on_failed=partial(self._quote_failed, seq))

    # Each quote carries its basket's number: an answer to an older basket is dropped.
    def _quote_done(self, seq: int, result: dict[str, Any]) -> None:
        if seq == self._quote_seq:
            self.quote = result
            self._redraw()
            if self._credit_asked:
                self._credit_asked = False
                self._say_credit_used(result)

    def _quote_failed(self, seq: int, error: ApiError) -> bool:
        if seq != self._quote_seq:
            return True  # an answer to an older basket
        self.quote = None
        if error.code == LIMIT:
            # Drop the redemption that went over a limit and price again.
            self.redeem_points = None
            self.use_credit = False
            self._credit_asked = False
            self.say(error_text(error), "error")
            self._request_quote()
            return True
        return False
