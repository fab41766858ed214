"""Sale: basket, member, every discount and why, redemption, payable, commit."""

from __future__ import annotations

import time as _time
from dataclasses import replace
from functools import partial
from typing import Any, ClassVar

from rich.cells import cell_len, set_cell_size
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
    catalogue_line,
    last_price,
    line_index_after_add,
    parse_entry,
    scanned_product,
)
from agent.tui.errors import error_text
from agent.tui.i18n import (
    N_,
    ascii_digits,
    current,
    display,
    fill,
    money,
    number,
    ordered,
    parse_amount,
    tr,
    trn,
)
from agent.tui.messages import AgentReconnected, CardRead
from agent.tui.screens.members import MembersScreen
from agent.tui.screens.sale_checkout import SaleCheckout
from agent.tui.screens.sale_dialogs import balance_line
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
        # Priority: an Input takes Ctrl+F (delete the next word) first.
        Binding("ctrl+f", "find_product", N_("Find"), priority=True),
        Binding("ctrl+b", "no_member", N_("No member")),
        Binding("ctrl+n", "new_sale", N_("New")),
        Binding("f9", "recent_sales", N_("Sales"), priority=True),
        # Priority: an Input takes Ctrl+E (end of line) first.
        Binding("ctrl+e", "enrol_card", N_("Enrol card"), show=False, priority=True),
        # (1.3) the house account page (owed, limit, buyers, take a payment)
        Binding("ctrl+k", "account", N_("Account"), show=False, priority=True),
        # (1.3) The member's stored value and its expiries.
        Binding("ctrl+v", "balance", N_("Balance"), show=False, priority=True),
        # (1.3) Check in with the member's visit package or membership.
        Binding("ctrl+y", "checkin", N_("Check in"), show=False, priority=True),
        Binding("ctrl+u", "pay_in_units", N_("Units"), show=False, priority=True),
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
        # A weighed product of the catalogue waiting for its weight in grams.
        self.pending_weight: Line | None = None
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
        # (1.3) A house account's card shown for this sale: 4 in Pay charges it.
        self.account_token: str | None = None

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
        self._basket_columns(self.query_one("#basket", DataTable))
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

    @staticmethod
    def _basket_columns(table: DataTable[Any]) -> None:
        table.add_columns(*ordered([tr("Item"), tr("Qty"), tr("Price"), tr("Total")]))

    def _redraw(self) -> None:
        table = self.query_one("#basket", DataTable)
        # The columns too: a column keeps the widest cell it ever had, and a line
        # cut to fit must narrow it again.
        table.clear(columns=True)
        self._basket_columns(table)
        quote_lines = (self.quote or {}).get("lines") or []
        details = (self.quote or {}).get("line_details") or []
        priced = len(quote_lines) == len(self.lines) == len(details)
        rows: list[tuple[str, list[str], str, str, str]] = []
        for i, line in enumerate(self.lines):
            # Logical order (a product's name is as the catalogue has it); each
            # line of the cell is put in display order once composed.
            item = line.name or line.sku or fill("Amount")
            qty = tr("{n} g", n=number(line.qty)) if line.weighed else number(line.qty)
            unit, total = line.unit_price, line.total
            shares: list[str] = []
            if line.catalogue and priced:
                # The agent's price (a member price, a weight's price) and the
                # line's own benefits (the shares of the sale's).
                unit = int(quote_lines[i]["unit_price"])
                total = unit * int(quote_lines[i]["qty"])
                unit = line.unit_price if line.weighed else unit
                benefits = details[i].get("benefits") or {}
                if benefits.get("discount"):
                    shares.append(fill("−{amount}", amount=self.fmt(int(benefits["discount"]))))
                if benefits.get("points"):
                    shares.append(fill("+{n} pts", n=number(int(benefits["points"]))))
            rows.append((item, shares, qty, self.fmt(unit), self.fmt(total)))
        room = _item_room(table, [r[2:] for r in rows])
        for i, (item, shares, qty, unit_text, total_text) in enumerate(rows):
            if cell_len(" ".join([item, *shares])) <= room:
                cell, height = _in_order([item, *shares]), 1
            else:
                # Too wide beside the money: the benefits go under the name, so the
                # price and total stay in sight and nothing is cut that fits.
                cell, height = display(_clip(item, room)), 1
                if shares:
                    cell += "\n" + _in_order([_clip(" ".join(shares), room - 2)], indent=2)
                    height = 2
            table.add_row(*ordered([cell, qty, unit_text, total_text]), key=str(i),
                          height=height)
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
            else tr("amount of {name}", name=self.pending_weight.name or "")
            if self.pending_weight is not None and self.pending_weight.open_amount
            else tr("grams of {name}", name=self.pending_weight.name or "")
            if self.pending_weight is not None
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
        if self.pending_weight is not None and self.pending_weight.open_amount \
                and text.strip():
            amount = parse_amount(text.strip(), self.minor_units)
            if not amount:
                self.say(tr("Type the amount, e.g. 25.00."), "error")
                return
            entry.value = ""
            self._add(replace(self.pending_weight, unit_price=amount))
            return
        if self.pending_weight is not None and text.strip():
            grams = ascii_digits(text.strip())
            if not grams.isdigit() or not 1 <= int(grams) <= 1_000_000:
                self.say(tr("Type the weight in grams, e.g. 250."), "error")
                return
            entry.value = ""
            self._add(Line(self.pending_weight.sku, int(grams), self.pending_weight.unit_price,
                           self.pending_weight.name, catalogue=True, weighed=True))
            return
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

    def _add(self, line: Line) -> None:
        """Add a line (a known product again: one more of it)."""
        self.pending_sku = None
        self.pending_weight = None
        self._selected = line_index_after_add(self.lines, line)
        self.lines = add_line(self.lines, line)
        self.say(tr("Added {item}.", item=line.name or line.sku or ""), "ok")
        self._changed()

    def _catalogue_product(self, product: dict[str, Any]) -> None:
        """A product of the club's catalogue: added (a weighed one asks its weight)."""
        if product.get("active") is False:
            self.say(tr("{item} is not on sale now.", item=catalogue_line(
                product, current().code).name or ""), "error")
            return
        line = catalogue_line(product, current().code)
        if line.open_amount:  # (1.3) a top-up / gift card: the amount is typed
            self.pending_sku = None
            self.pending_weight = line
            self.say(tr("{item}: type the amount and press Enter.", item=line.name or ""),
                     "info")
            self._redraw()
            self.query_one("#entry", Input).focus()
            return
        if line.weighed:
            self.pending_sku = None
            self.pending_weight = line
            self.say(tr("{item}: type its weight in grams and press Enter.",
                        item=line.name or ""), "info")
            self._redraw()
            self.query_one("#entry", Input).focus()
            return
        self._add(line)

    def _product(self, sku: str, product: dict[str, Any] | None = None) -> None:
        """A product number scanned or typed: the catalogue's product, else a price."""
        if product is not None:
            self._catalogue_product(product)
            return
        known = [ln for ln in self.lines if ln.sku == sku and ln.catalogue]
        if known:
            self._add(known[-1])
            return
        if last_price(self.lines, sku) is None:
            # An agent without a catalogue (or that cannot look) gets the price typed.
            self.call_api("catalogue.lookup", {"barcode": sku},
                          on_done=partial(self._looked_up, sku),
                          on_failed=partial(self._lookup_failed, sku))
            return
        self._unknown_product(sku)

    def _lookup_failed(self, sku: str, _error: ApiError) -> bool:
        self._unknown_product(sku)
        return True

    def _looked_up(self, sku: str, result: dict[str, Any]) -> None:
        product = result.get("product")
        if isinstance(product, dict):
            self._catalogue_product(product)
        else:
            self._unknown_product(sku)

    def action_find_product(self) -> None:
        """Find a product of the catalogue by the name typed in the item field."""
        text = self.query_one("#entry", Input).value.strip()
        if not text:
            self.say(tr("Type a product's name in the item field, then press Ctrl+F."), "info")
            self.query_one("#entry", Input).focus()
            return
        self.call_api("catalogue.search", {"text": text, "limit": 6},
                      on_done=partial(self._found, text))

    def _found(self, text: str, result: dict[str, Any]) -> None:
        products = [p for p in result.get("products") or [] if isinstance(p, dict)]
        lang = current().code
        exact = [p for p in products
                 if text.casefold() in (str(n).casefold() for n in (p.get("names") or {}).values())]
        if len(products) == 1 or len(exact) == 1:
            self.query_one("#entry", Input).value = ""
            self._catalogue_product((exact or products)[0])
            return
        if not products:
            self.say(tr("No product is called {text}.", text=text), "error")
            return
        names = ", ".join(catalogue_line(p, lang).name or "" for p in products[:5])
        self.say(tr("Which one? {names}", names=names), "info")

    def _unknown_product(self, sku: str) -> None:
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

    def action_pay_in_units(self) -> None:
        """(1.3) The highlighted product is paid with the member's units (again: money)."""
        if not self.lines:
            self.say(tr("Add an amount or an item first."), "error")
            return
        row = min(max(self._selected, 0), len(self.lines) - 1)
        line = self.lines[row]
        if not line.catalogue or line.weighed or line.open_amount:
            self.say(tr("Only a product of the catalogue can be paid in units."), "error")
            return
        self.lines = (*self.lines[:row], replace(line, units=not line.units),
                      *self.lines[row + 1:])
        self.say(tr("{item}: paid in units.", item=line.name or line.sku or "")
                 if not line.units else tr("{item}: paid in money.",
                                           item=line.name or line.sku or ""), "info")
        self._changed()

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
        self.lines = (*self.lines[:row], Line(line.sku, qty, line.unit_price, line.name,
                                              line.catalogue, line.weighed),
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
        self.pending_weight = None
        self._unknown_card = None
        self._credit_asked = False
        self.account_token = None
        self._quote_seq += 1
        self.query_one("#entry", Input).value = ""
        self.query_one("#member-input", Input).value = ""
        self.query_one("#entry", Input).focus()
        # What the last sale's keys said ("Credit not used.") is not this sale's.
        self.say("")
        self._redraw()

    # ----------------------------------------------------------------- member

    def handle_card(self, message: CardRead) -> None:
        product = message.event.get("product")
        if message.event.get("kind") == "product" and isinstance(product, dict):
            self._catalogue_product(product)
            return
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
        data = error.data if isinstance(error.data, dict) else {}
        if data.get("reason") == "account_card":
            # (1.3) A house account's card, not a member's: Pay offers it with 6.
            self.account_token = (self._unknown_card[0] if self._unknown_card
                                  else self._typed_token)
            self._unknown_card = None
            self.say(tr("House account card: F8, then 6 puts the sale on the account."),
                     "ok")
            return True
        if isinstance(error.data, dict) and error.data.get("reason") == "gift_card" \
                and self._typed_token is not None:
            # (1.3) A gift card tapped or typed: show what it holds (pay with it: F8, 5).
            self._unknown_card = None
            self.call_api("value.balance", {"token": self._typed_token},
                          on_done=self.done_balance, session=True)
            return True
        if error.code == UNKNOWN_MEMBER and self._unknown_card is not None:
            # A new customer's card: offer to enrol it (#15 item 14).
            self.say(tr("No member found for this card. Ctrl+E: enrol a new member with it."),
                     "error")
            return True
        self._unknown_card = None
        return False

    def done_balance(self, result: dict[str, Any]) -> None:
        """(1.3) ``value.balance`` of a tapped gift card or of the member: one line."""
        self.say(balance_line(result, self.fmt), "ok")

    def action_balance(self) -> None:
        """(1.3) The stored value of the member identified (its balances, expiries)."""
        if self.member_token is None:
            self.say(tr("Tap a member's card or a gift card to see its balance."), "info")
            return
        self.call_api("value.balance", {"token": self.member_token},
                      on_done=self.done_balance, session=True)

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

    def action_checkin(self) -> None:
        """(1.3) The identified member's packages; Enter uses a visit."""
        from agent.tui.screens.checkin_dialog import CheckInDialog

        if self.member is None:
            self.say(tr("Tap the member's card first, then Ctrl+Y checks them in."), "error")
            return
        self.app.push_screen(CheckInDialog(self.member_token,
                                           str(self.member["member_id"])))

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
        reason = error.data.get("reason") if isinstance(error.data, dict) else None
        if reason in ("member_needed", "over_max_balance", "insufficient_value",
                      "not_spendable"):
            # (1.3) Stored value or units the sale cannot have: say why; units asked
            # for are dropped and the sale priced again in money (never a loop).
            self.say(error_text(error), "error")
            if reason == "insufficient_value" and any(line.units for line in self.lines):
                self.lines = tuple(replace(line, units=False) for line in self.lines)
                self._request_quote()
            return True
        if error.code == LIMIT:
            # Drop the redemption that went over a limit and price again.
            self.redeem_points = None
            self.use_credit = False
            self._credit_asked = False
            self.say(error_text(error), "error")
            self._request_quote()
            return True
        return False


def _item_room(table: DataTable[Any], rows: list[tuple[str, str, str]]) -> int:
    """Cells the basket's Item column may take so that quantity, price and total
    (``rows``) stay in sight: a long name is cut, never the money."""
    headers = [tr("Qty"), tr("Price"), tr("Total")]
    others = sum(max([cell_len(h)] + [cell_len(r[k]) for r in rows]) + 2
                 for k, h in enumerate(headers))
    # 2 cells of padding for the Item column, 1 for a vertical scrollbar.
    return max(8, table.size.width - others - 3) if table.size.width else 10_000


def _in_order(parts: list[str], indent: int = 0) -> str:
    """Logical ``parts`` (a name, each benefit) on one line in display order: each
    part ordered on its own and the parts placed right to left in an RTL locale."""
    return " " * indent + " ".join(ordered([display(part) for part in parts]))


def _clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` cells with an ellipsis when longer."""

    if cell_len(text) <= width:
        return text
    return set_cell_size(text, width - 1).rstrip() + "…"
