"""Dialogs of the sale screen: payment method, points to redeem, the receipt."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Input, Label, Static

from agent.localapi import receipt_number
from agent.tui.explain import discount_label
from agent.tui.i18n import (
    N_,
    ascii_digits,
    current,
    display,
    fill,
    filln,
    isolate,
    number,
    tr,
)
from agent.tui.labels import credit_name, payment_name
from agent.tui.screens.base import ClubModal
from agent.tui.widgets.bidi import BidiText
from agent.tui.widgets.kv import kv_row, kv_table


def balance_line(result: dict[str, Any], fmt: Callable[[int], str]) -> str:
    """(1.3) ``value.balance`` in one line: a gift card's value and expiry, or a
    member's stored-value balances (money formatted, units counted)."""
    rows = [r for r in result.get("balances") or [] if isinstance(r, dict)]
    if result.get("holder") == "gift_card":
        row = next((r for r in rows if r.get("kind") == "value.gift"), {})
        if result.get("expired"):
            return tr("Gift card: expired on {date}.", date=str(result.get("expires")))
        text = tr("Gift card: {amount} left", amount=fmt(int(row.get("spendable") or 0)))
        if result.get("expires"):
            text += " · " + tr("valid until {date}", date=str(result["expires"]))
        return text
    parts = []
    for r in rows:
        amount = int(r.get("spendable") or 0)
        shown = fmt(amount) if str(r.get("kind", "")).startswith("value.") \
            else f"{number(amount)} {r.get('unit') or ''}".strip()
        parts.append(f"{r.get('name')}: {shown}")
    if not parts:
        return tr("No stored value.")
    return ("، " if current().rtl else ", ").join(parts)


class PaymentDialog(ClubModal):
    """How the customer pays: choose 1 cash, 2 card, 3 other, 4 stored value, 5 a gift
    card or 6 on account, then Enter records.

    Recording takes two deliberate keys, so that digits meant for the amount
    field (typed while the dialog was opening) never record a sale: any other
    key clears the choice. An amount of ``confirm_above`` minor units or more
    asks for Enter a second time, naming the amount.

    A split payment (#15 item 7): choose a method, Tab, type the part it pays, then
    ``+``; the dialog shows what is paid and what is left, and the last method pays
    the rest with Enter (cash may be more: the change is shown). Esc drops the parts:
    nothing is recorded until the last Enter.
    """

    CSS_PATH = "sale_dialogs.tcss"
    TENDERS: ClassVar[dict[str, str]] = {
        # Persian and Arabic keyboards type their own digits on the number row.
        "1": "cash", "۱": "cash", "١": "cash",
        "2": "card", "۲": "card", "٢": "card",
        "3": "other", "۳": "other", "٣": "other",
        # (1.3) The member's stored value, a gift card.
        "4": "stored_value", "۴": "stored_value", "٤": "stored_value",
        "5": "gift_card", "۵": "gift_card", "٥": "gift_card",
        # (1.3) on the house account the customer may buy on (shown when there is one).
        "6": "account", "۶": "account", "٦": "account",
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "choose('cash')", N_("Cash")),
        Binding("2", "choose('card')", N_("Card")),
        Binding("3", "choose('other')", N_("Other")),
        Binding("۱,١", "choose('cash')", N_("Cash"), show=False),
        Binding("۲,٢", "choose('card')", N_("Card"), show=False),
        Binding("۳,٣", "choose('other')", N_("Other"), show=False),
        Binding("4,۴,٤", "choose('stored_value')", N_("Stored value"), show=False),
        Binding("5,۵,٥", "choose('gift_card')", N_("Gift card"), show=False),
        Binding("6,۶,٦", "choose('account')", N_("On account"), show=False),
        Binding("enter", "record", N_("Record")),
        Binding("tab", "tendered", N_("Tendered"), show=False),
        Binding("plus", "add_part", N_("Part"), priority=True),
        Binding("escape", "dismiss(None)", N_("Back")),
    ]

    def __init__(self, payable: str, *, large: bool = False, payable_minor: int | None = None,
                 fmt: Callable[[int], str] | None = None, minor_units: int = 2,
                 accounts: list[dict[str, Any]] | None = None,
                 stored_value: tuple[str, int] | None = None) -> None:
        super().__init__()
        # (1.3) House accounts the member may buy on (``account.status``); 6 pays on the
        # first, 6 again on the next.
        self.accounts = list(accounts or [])
        self.account_index = -1
        # (1.3) The member's stored value (kind, balance), and the gift card paying.
        self.stored_value = stored_value
        self.card_token: str | None = None
        self.payable = payable
        self.large = large
        self.choice: str | None = None
        self._large_confirmed = False
        # Cash tendered (optional, #15 item 7): Tab after 1 opens the field; the change
        # due is shown as it is typed. Needs the amount in minor units to compute.
        self.payable_minor = payable_minor
        self.fmt = fmt
        self.minor_units = minor_units
        self.tendered: int | None = None
        self.parts: list[tuple[str, int]] = []  # a split payment's parts so far

    @property
    def left(self) -> int:
        """What is still to pay after the parts of a split payment (minor units)."""
        return (self.payable_minor or 0) - sum(amount for _how, amount in self.parts)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(tr("To pay: {amount}", amount=self.payable), classes="dialog-title")
            yield Static(current().digits(tr("1  Cash\n2  Card\n3  Other")))
            yield Static(current().digits(tr("4  Stored value  5  Gift card")))
            with Horizontal(id="card-row"):
                yield Label(tr("Gift card"), classes="field-label")
                code = Input(id="card-code", compact=True, max_length=60,
                             placeholder=tr("tap, scan or type the code"))
                code.can_focus = False  # only after 5
                yield code
            if self.accounts and self.fmt is not None:
                first = self.accounts[0]
                yield Static(current().digits(tr(
                    "6  On account: {name} ({available} available)",
                    name=display(str(first.get("name") or first.get("account_id"))),
                    available=self.fmt(int(first.get("available") or 0)))),
                    id="account-line")
            with Horizontal(id="tendered-row"):
                yield Label(tr("Tendered"), classes="field-label")
                field = Input(id="tendered", compact=True, max_length=16,
                              restrict=r"[0-9۰-۹٠-٩.,٫]*")
                field.can_focus = False  # only after 1 (cash) and Tab
                yield field
            yield Static("", id="change")
            yield Static("", id="parts")
            yield Static(tr("Choose 1 to 6, then Enter. Esc: back to the sale"),
                         id="pay-hint", classes="hint")
        yield Footer()

    def action_tendered(self) -> None:
        """Cash chosen: type the amount the customer gave to see the change due; any
        other method: the part of a split payment it pays (then ``+``)."""
        if self.choice is None or self.payable_minor is None:
            return
        self.query_one("#tendered-row").display = True
        field = self.query_one("#tendered", Input)
        field.can_focus = True
        field.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        from agent.tui.i18n import parse_amount

        if event.input.id != "tendered" or self.payable_minor is None or self.fmt is None:
            return
        amount = parse_amount(event.value, self.minor_units) if event.value.strip() else None
        self.tendered = amount
        change = self.query_one("#change", Static)
        left = self.left
        if amount is None:
            change.update("")
        elif amount < left:
            change.update(tr("Tendered is less than to pay ({short} short).",
                             short=self.fmt(left - amount)))
            change.set_class(True, "error")
        elif self.choice != "cash" and amount > left:
            change.update(tr("More than left to pay ({amount}).", amount=self.fmt(left)))
            change.set_class(True, "error")
        else:
            change.update(tr("Change due: {amount}", amount=self.fmt(amount - left)))
            change.set_class(False, "error")

    def action_add_part(self) -> None:
        """``+``: the amount typed is one part of a split payment, by the method chosen."""
        if self.choice is None or self.tendered is None or self.fmt is None:
            self._hint(tr("Split: choose 1 to 6, Tab, type the part, then +."), error=True)
            return
        if not 0 < self.tendered < self.left:
            self._hint(tr("A part must be more than nothing and less than left to pay "
                          "({amount}).", amount=self.fmt(self.left)), error=True)
            return
        self.parts.append((self.choice, self.tendered))
        field = self.query_one("#tendered", Input)
        field.value = ""
        field.can_focus = False
        self.tendered = None
        self.choice = None
        self._large_confirmed = False
        self.query_one("#change", Static).update("")
        fmt = self.fmt
        paid = ("، " if current().rtl else ", ").join(
            f"{payment_name(how)} {fmt(amount)}" for how, amount in self.parts)
        self.query_one("#parts", Static).update(
            tr("Paid: {parts} · left to pay: {left}", parts=paid, left=fmt(self.left)))
        self._hint(tr("Choose how the rest ({amount}) is paid, then Enter.",
                      amount=fmt(self.left)))
        self.set_focus(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "card-code":
            if event.value.strip():
                self._gift_card("code:" + event.value.strip())
            return
        self.action_record()

    # ---------------------------------------------------------- (1.3) stored value

    def _value_part(self, method: str, available: int) -> None:
        """A stored balance of ``available`` pays what it can: all that is left (Enter
        records), or a part, the rest then paid another way."""
        fmt = self.fmt or str
        if available <= 0:
            self.choice = None
            self._hint(tr("Nothing left to spend on it; choose another payment."), error=True)
            return
        if available >= self.left:
            self.choice = method
            self._hint(tr("{method}: press Enter to record the sale of {amount}.",
                          method=payment_name(method), amount=fmt(self.left)))
            return
        self.choice = method
        self.tendered = available
        self.action_add_part()

    def _gift_card(self, token: str) -> None:
        """A gift card tapped, scanned or typed: ask its balance, then pay with it."""
        self.card_token = token
        self._hint(tr("Checking the gift card…"))
        self.call_api("value.balance", {"token": token}, on_done=self._card_balance,
                      on_failed=self._card_failed, session=True)

    def _card_balance(self, result: dict[str, Any]) -> None:
        if result.get("holder") != "gift_card":
            self.card_token = None
            self._hint(tr("That is a member's card, not a gift card."), error=True)
            return
        row: dict[str, Any] = next(
            (b for b in result.get("balances") or [] if b.get("kind") == "value.gift"), {})
        if result.get("expired"):
            self.card_token = None
            self._hint(tr("This gift card has expired."), error=True)
            return
        field = self.query_one("#card-code", Input)
        field.value = ""
        field.can_focus = False
        self.set_focus(None)
        self._value_part("gift_card", int(row.get("spendable") or 0))

    def _card_failed(self, error: Any) -> bool:
        self.card_token = None
        self._hint(tr("This gift card is not known here."), error=True)
        return True

    def on_card_read(self, message: Any) -> None:
        """A card tapped or a code scanned while paying: the gift card (after 5)."""
        if getattr(message, "staff_badge", False) or self.choice != "gift_card":
            return
        self._gift_card(str(message.token))

    def _hint(self, text: str, error: bool = False) -> None:
        hint = self.query_one("#pay-hint", Static)
        hint.update(text)
        hint.set_class(error, "error")

    @property
    def account(self) -> dict[str, Any] | None:
        """(1.3) The house account chosen with 6, or None."""
        if 0 <= self.account_index < len(self.accounts):
            return self.accounts[self.account_index]
        return None

    def _choose_account(self) -> bool:
        """6: the next house account the member may buy on; False (and why) when there
        is none. Past its available credit the hint says so (a part may go on it)."""
        if not self.accounts or self.fmt is None:
            self._hint(tr("No house account for this customer: identify an authorised "
                          "buyer first."), error=True)
            return False
        self.account_index = (self.account_index + 1) % len(self.accounts)
        account = self.accounts[self.account_index]
        name = display(str(account.get("name") or account.get("account_id")))
        available = int(account.get("available") or 0)
        left = self.left if self.payable_minor is not None else 0
        if left > available:
            self._hint(tr("{name}: only {available} available. Tab, type a part, + ; or "
                          "another payment.", name=name, available=self.fmt(available)),
                       error=True)
        else:
            self._hint(tr("On account {name} ({available} available): Enter records "
                          "{amount}.", name=name, available=self.fmt(available),
                          amount=self.fmt(left)))
        return True

    def action_choose(self, payment: str) -> None:
        """Choose how the customer pays (Enter then records it)."""
        if payment == "account":
            self._large_confirmed = False
            if self._choose_account():
                self.choice = payment
            return
        if payment == "stored_value":
            if self.stored_value is None:
                self._hint(tr("Stored value pays only for a member who has some."),
                           error=True)
                return
            self._large_confirmed = False
            self._value_part("stored_value", self.stored_value[1])
            return
        if payment == "gift_card":
            self.choice = payment
            self._large_confirmed = False
            self.query_one("#card-row").display = True
            code = self.query_one("#card-code", Input)
            code.can_focus = True
            code.focus()
            self._hint(tr("Tap or scan the gift card, or type its code and press Enter."))
            return
        self.choice = payment
        self._large_confirmed = False
        # After parts of a split payment, what the last method pays is what is left.
        amount = self.fmt(self.left) if self.parts and self.fmt else self.payable
        if payment == "cash" and self.payable_minor is not None:
            self._hint(tr("Cash: Enter records {amount}; Tab: amount tendered.",
                          amount=amount))
            return
        self._hint(tr("{method}: press Enter to record the sale of {amount}.",
                      method=payment_name(payment), amount=amount))

    def action_record(self) -> None:
        """Record the sale with the chosen payment (a large amount asks twice)."""
        if self.choice is None:
            self._hint(tr("Choose 1 to 6 first, then Enter."), error=True)
            return
        if self.tendered is not None and self.payable_minor is not None \
                and self.tendered < self.left:
            self._hint(tr("Tendered is less than to pay; correct it, clear it, or press + "
                          "to take it as part of a split payment."), error=True)
            return
        if self.choice != "cash" and self.tendered is not None and self.tendered > self.left:
            self._hint(tr("More than left to pay ({amount}).",
                          amount=self.fmt(self.left) if self.fmt else ""), error=True)
            return
        account = self.account if self.choice == "account" else None
        if self.choice == "account" and account is None:
            self._hint(tr("Choose the account with 6 first."), error=True)
            return
        if account is not None and self.fmt is not None \
                and (self.tendered if self.tendered is not None else self.left) \
                > int(account.get("available") or 0):
            self._hint(tr("Over the account's available credit ({amount}).",
                          amount=self.fmt(int(account.get("available") or 0))), error=True)
            return
        if self.large and not self._large_confirmed:
            self._large_confirmed = True
            self._hint(tr("Large amount: {amount}. Press Enter again to record it.",
                          amount=self.payable), error=True)
            return
        self.dismiss(self.choice)

    def tenders(self) -> list[dict[str, Any]] | None:
        """The ``tenders`` of ``sale.commit`` (protocol 1.1) when cash was handed over
        and typed: the agent records the cash and the change due. None: ``payment``."""
        rows = [self._row(how, amount) for how, amount in self.parts]
        if self.choice == "cash" and self.tendered is not None \
                and self.payable_minor is not None and self.tendered >= self.left:
            return [*rows, {"method": "cash", "amount": self.tendered}]
        if (rows or self.choice in ("account", "stored_value", "gift_card")) \
                and self.choice is not None:
            # the last method pays exactly the rest (on account, stored value, gift card:
            # always as tenders)
            return [*rows, self._row(self.choice, self.left)]
        return None

    def _row(self, method: str, amount: int) -> dict[str, Any]:
        """A tender row; (1.3) on account names the account (or its card), stored value
        its kind, a gift card its token."""
        row: dict[str, Any] = {"method": method, "amount": amount}
        account = self.account
        if method == "account" and account is not None:
            if isinstance(account.get("token"), str):  # the account card was shown
                row["account_token"] = account["token"]
            else:
                row["account_id"] = account["account_id"]
        elif method == "stored_value" and self.stored_value is not None:
            row["kind"] = self.stored_value[0]
        elif method == "gift_card" and self.card_token is not None:
            row["token"] = self.card_token
        return row

    def on_key(self, event: events.Key) -> None:
        if event.key in ("enter", "escape", "tab") or event.character in self.TENDERS:
            return
        if self.query_one("#tendered", Input).has_focus \
                or self.query_one("#card-code", Input).has_focus:
            return  # typed into the tendered amount (after 1 and Tab) or a gift card code
        if event.character and event.character.isprintable():
            # Something else was typed (an amount meant for the sale screen):
            # forget the choice rather than record by accident.
            event.stop()
            event.prevent_default()
            self.choice = None
            self._large_confirmed = False
            self._hint(tr("Nothing recorded. Choose 1 to 6, then Enter."), error=True)


class PointsDialog(ClubModal):
    """How many points to redeem; the limits are shown before asking."""

    CSS_PATH = "sale_dialogs.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", N_("Back")),
    ]

    def __init__(self, limits: dict[str, Any]) -> None:
        super().__init__()
        self.limits = limits

    def compose(self) -> ComposeResult:
        lim = self.limits
        with Vertical(classes="dialog"):
            yield Static(tr("Redeem points"), classes="dialog-title")
            yield Static(
                tr(
                    "Has {has} points. On this sale: at least {lo}, at most {hi}.",
                    has=number(lim["available"]),
                    lo=number(lim["min"]),
                    hi=number(lim["max"]),
                )
            )
            yield Input(
                id="points",
                compact=True,
                restrict=r"[0-9۰-۹a-zA-Z]*",
                placeholder=tr("points, or max; 0 for none"),
            )
            yield Static("", id="points-error", classes="error")
            yield Static(tr("Enter: use · Esc: back"), classes="hint")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#points", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = ascii_digits(event.value.strip().lower())
        if text in ("max", "m"):
            self.dismiss("max")
            return
        if not text.isdigit():
            self.query_one("#points-error", Static).update(tr("Type a number, or max."))
            return
        points = int(text)
        if points and not self.limits["min"] <= points <= self.limits["max"]:
            self.query_one("#points-error", Static).update(
                tr(
                    "Between {lo} and {hi}, please.",
                    lo=number(self.limits["min"]),
                    hi=number(self.limits["max"]),
                )
            )
            return
        self.dismiss(points)


def earned_rows(sale: dict[str, Any], fmt: Callable[[int], str], point_value: int) -> list[str]:
    """What a sale (quote or receipt) earns: points with their value, cashback
    credit, lottery entries; one translated line each, in logical order (show
    each as a :class:`BidiText`: it may wrap)."""
    rows = []
    earned = sale.get("points_earned")
    if isinstance(earned, list):
        earned = sum(int(p.get("points", 0)) for p in earned)
    if earned:
        points = int(earned)
        rows.append(filln("Earns {n} point (worth {amount})", "Earns {n} points (worth {amount})",
                        points, amount=fmt(points * point_value)) if point_value
                    else filln("Earns {n} point", "Earns {n} points", points))
    for credit in sale.get("credits_earned") or []:
        rows.append(fill("Earns {amount} {kind}", amount=fmt(int(credit.get("amount", 0))),
                       kind=credit_name(str(credit.get("kind")))))
    lottery = int(sale.get("lottery_entries") or 0)
    if lottery:
        rows.append(filln("Earns {n} lottery entry", "Earns {n} lottery entries", lottery))
    return rows


def receipt_table(
    receipt: dict[str, Any], fmt: Callable[[int], str], tz: tzinfo | None = None
) -> Table:
    """The receipt as the customer would read it, its time in ``tz`` (the club's).

    Its number is :func:`agent.localapi.receipt_number` of the sale id (what a
    cashier types to find it again), not the outbox ``seq``.
    """
    loc = current()
    table = kv_table()
    sale_id = str(receipt.get("sale_id") or "")
    try:
        at = datetime.fromisoformat(str(receipt.get("at")).replace("Z", "+00:00"))
        if tz is not None and at.tzinfo is not None:
            at = at.astimezone(tz)
        kv_row(
            table,
            # Date and time as separate runs: in RTL the year must not
            # join the time into one number run (#15 item 11).
            Text(display(f"{isolate(loc.date(at.date()))} {isolate(loc.time(at))}"),
                 style="dim"),
            Text(tr("No. {n}", n=receipt_number(sale_id)) if sale_id else "", style="dim"),
        )
    except ValueError:
        pass
    if receipt.get("reprint"):
        kv_row(table, Text(tr("COPY (reprint)"), style="bold"))
    refund = receipt.get("refund")
    if refund:
        kv_row(table, Text(tr("VOIDED") if refund.get("void") else
                           tr("REFUNDED: {why}", why=display(str(refund.get("reason") or ""))),
                           style="bold red"))
    if receipt.get("member"):
        member = receipt["member"]
        who = member.get("name") or ""
        if member.get("masked"):
            who = f"{who}  {member['masked']}"
        kv_row(table, tr("Member: {who}", who=who))
    for line in receipt.get("lines", []):
        names = line.get("names") if isinstance(line.get("names"), dict) else {}
        item = names.get(loc.code) or names.get("en") or line.get("sku") \
            or loc.gettext("Amount")
        qty = int(line.get("qty", 1))
        label = display(f"{item} × {number(qty)}" if qty != 1 else str(item))
        kv_row(table, label, fmt(qty * int(line.get("unit_price", 0))))
    kv_row(table, Text(tr("Total"), style="bold"), fmt(int(receipt.get("gross", 0))))
    for discount in receipt.get("discounts", []):
        kv_row(
            table,
            BidiText(discount_label(discount)),
            "-" + fmt(int(discount["amount"])),
        )
    if receipt.get("redeemed_points"):
        kv_row(
            table,
            tr("Points used: {n}", n=number(receipt["redeemed_points"])),
            "-" + fmt(int(receipt.get("redeemed_value", 0))),
        )
    for used in receipt.get("credits_used", []):
        kv_row(table, display(credit_name(str(used["kind"]))), "-" + fmt(int(used["amount"])))
    kv_row(
        table,
        Text(tr("PAID"), style="bold reverse"),
        Text(fmt(int(receipt.get("payable", 0))), style="bold reverse"),
    )
    tenders = [t for t in receipt.get("tenders") or [] if isinstance(t, dict)]
    if int(receipt.get("payable") or 0) and len(tenders) > 1:
        # A split payment: a row per method with its amount (protocol 1.1 tenders),
        # short enough never to wrap, in any language.
        for t in tenders:
            kv_row(table, tr("Paid by: {how}", how=payment_name(str(t.get("method")))),
                   fmt(int(t.get("amount") or 0)))
    elif int(receipt.get("payable") or 0):
        how = str(tenders[0].get("method")) if len(tenders) == 1 else str(receipt.get("payment"))
        kv_row(table, tr("Paid by: {how}", how=payment_name(how)))
    else:
        kv_row(table, tr("Nothing to pay."))
    if int(receipt.get("change_due") or 0):
        # The cash handed over: the cash kept (the tenders) plus the change given back.
        cash = sum(int(t.get("amount") or 0) for t in tenders if t.get("method") == "cash")
        kv_row(table, tr("Cash tendered {given} · change {change}",
                         given=fmt(cash + int(receipt["change_due"])),
                         change=fmt(int(receipt["change_due"]))))
    for row in earned_rows(receipt, fmt, int(receipt.get("point_value") or 0)):
        kv_row(table, BidiText(row, "cyan"))
    # (1.3) Stored value bought, and each gift card sold with its code (to hand over).
    for top in receipt.get("topups") or []:
        kv_row(table, BidiText(tr("Top-up: +{amount}", amount=fmt(int(top["amount"]))),
                               "cyan"))
    for card in receipt.get("gift_cards_issued") or []:
        code = str(card.get("token", ""))
        kv_row(table, BidiText(tr("Gift card {code}: {amount}",
                                  code=isolate(code[5:] if code.startswith("code:") else code),
                                  amount=fmt(int(card["amount"]))), "cyan"))
    if receipt.get("offline"):
        kv_row(table, Text(tr("Recorded offline; sent when the link is back."), style="yellow"))
    if receipt.get("staff_name"):
        kv_row(table, Text(tr("Served by {name}", name=receipt["staff_name"]), style="dim"))
    return table


class ReceiptDialog(ClubModal):
    """The receipt of the sale just recorded (or a reprint).

    A printable key typed while it is open closes it and is handed back
    (``dismiss(character)``): the cashier is already typing the next sale.
    """

    CSS_PATH = "sale_dialogs.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "dismiss(None)", N_("Next sale")),
        Binding("ctrl+p", "print_receipt", N_("Print")),
        Binding("escape", "dismiss(None)", N_("Close"), show=False),
    ]

    def __init__(self, receipt: dict[str, Any], fmt: Callable[[int], str]) -> None:
        super().__init__()
        self.receipt = receipt
        self.fmt = fmt

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog receipt"):
            yield Static(tr("Receipt"), classes="dialog-title")
            yield Static(
                receipt_table(self.receipt, self.fmt, self.club_app.now().tzinfo), id="receipt"
            )
        yield Footer()

    def on_key(self, event: events.Key) -> None:
        if event.character and event.character.isprintable() and event.key != "space":
            event.stop()
            event.prevent_default()
            self.dismiss(event.character)

    def action_print_receipt(self) -> None:
        """Ctrl+P: print this sale's receipt (again) on the receipt printer (#16)."""
        sale_id = self.receipt.get("sale_id")
        if sale_id:
            self.call_api("receipt.print", {"sale_id": sale_id}, on_done=self.done_print,
                          session=True)

    def done_print(self, result: dict[str, Any]) -> None:
        self.notify(tr("Receipt sent to the printer."))
