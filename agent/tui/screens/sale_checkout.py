"""The sale screen's checkout: points and credit redemption, payment, the receipt,
recent sales. A base of :class:`agent.tui.screens.sale.SaleScreen`, which owns
the basket, the member and the quote; kept apart so each module stays small."""

from __future__ import annotations

from typing import Any

from textual.widgets import Input

from agent.errors import ApiError
from agent.localapi import QUOTE_EXPIRED
from agent.tui.basket import Line
from agent.tui.explain import limit_reason
from agent.tui.i18n import tr
from agent.tui.screens.base import ClubScreen
from agent.tui.screens.recent_sales import RecentSalesDialog
from agent.tui.screens.sale_dialogs import PaymentDialog, PointsDialog, ReceiptDialog


class SaleCheckout(ClubScreen):
    """Redemption and payment on the sale screen's state (set by SaleScreen)."""

    lines: tuple[Line, ...]
    member: dict[str, Any] | None
    redeem_points: int | str | None
    use_credit: bool
    quote: dict[str, Any] | None
    _committing: bool
    _credit_asked: bool
    account_token: str | None  # (1.3) a house account's card shown for this sale

    def fmt(self, amount: int) -> str:
        """An amount in the club currency (SaleScreen formats it)."""
        raise NotImplementedError

    def _changed(self) -> None:
        """The basket or redemption changed: price again (SaleScreen)."""
        raise NotImplementedError

    def _request_quote(self) -> None:
        """Ask the agent for a price (SaleScreen)."""
        raise NotImplementedError

    def action_new_sale(self) -> None:
        """Start the next sale (SaleScreen)."""
        raise NotImplementedError

    # ------------------------------------------------------------- redemption

    def action_points(self) -> None:
        """Ask how many points to redeem, showing the limits first."""
        limits = ((self.quote or {}).get("redeem_limits") or {}).get("points")
        if self.member is None or not limits:
            self.say(tr("Identify a member first."), "error")
            return
        if not limits.get("max"):
            self.say(tr("No points can be redeemed on this sale."), "error")
            return
        self.app.push_screen(PointsDialog(limits), self._points_chosen)

    def _points_chosen(self, value: int | str | None) -> None:
        if value is None:
            return
        self.redeem_points = value or None
        self._changed()

    def action_credit(self) -> None:
        """Use (or stop using) the member's credit."""
        credits = ((self.quote or {}).get("redeem_limits") or {}).get("credits")
        if not self.use_credit and not credits:
            self.say(tr("This member has no credit to use here."), "error")
            return
        self.use_credit = not self.use_credit
        if not self.use_credit:
            self.say(tr("Credit not used."))
        elif not any(int(c.get("max") or 0) for c in credits or []):
            self.use_credit = False
            why = next((c.get("held_by") for c in credits or [] if c.get("held_by")), None)
            self.say(tr("No credit can be used on this sale: {why}.", why=limit_reason(why))
                     if why else tr("No credit can be used on this sale."), "error")
            return
        else:
            self._credit_asked = True
            self.say(tr("Using credit…"))
        self._changed()

    def _say_credit_used(self, quote: dict[str, Any]) -> None:
        """After Ctrl+O: how much credit the price used, and what held more back."""
        used = sum(int(c["amount"]) for c in quote.get("credits_used") or [])
        held = [c for c in (quote.get("redeem_limits") or {}).get("credits", [])
                if c.get("held_by")]
        if not used:
            self.say(tr("No credit could be used."), "error")
        elif held:
            self.say(tr("Credit used: {amount} (not more: {why}).", amount=self.fmt(used),
                        why=limit_reason(held[0]["held_by"])), "ok")
        else:
            self.say(tr("Credit used: {amount}.", amount=self.fmt(used)), "ok")

    # ---------------------------------------------------------------- payment

    def action_pay(self) -> None:
        """Take the payment: choose how, then record the sale."""
        if not self.lines:
            self.say(tr("Add an amount or an item first."), "error")
            return
        if self.quote is None:
            # The last price may have failed (the agent was away): ask again.
            self._request_quote()
            self.say(tr("Still pricing… press F8 again in a moment."), "info")
            return
        token = self.account_token
        if token is not None:  # (1.3) the account card shown: that account, any buyer
            self.call_api("account.status", {"token": token}, on_done=self._pay_on_card,
                          on_failed=self._pay_no_accounts, session=True)
            return
        if self.member is not None:  # (1.3) the house accounts this member may buy on
            self.call_api("account.status", {"member_id": self.member["member_id"]},
                          on_done=self._pay_dialog, on_failed=self._pay_no_accounts,
                          session=True)
            return
        self._pay_dialog({"accounts": []})

    def _pay_on_card(self, status: dict[str, Any]) -> None:
        token = self.account_token
        self._pay_dialog({"accounts": [{**a, "token": token}
                                       for a in status.get("accounts") or []]})

    def _pay_no_accounts(self, _error: ApiError) -> bool:
        self._pay_dialog({"accounts": []})
        return True

    def _pay_dialog(self, status: dict[str, Any]) -> None:
        if self.quote is None:
            return
        limit = self.club_app.confirm_above
        large = limit > 0 and int(self.quote["payable"]) >= limit
        payable = int(self.quote["payable"])
        # (1.3) The member's stored value (the first value.* balance above 0).
        balances = ((self.quote.get("member") or {}).get("balances") or {})
        wallet = next(((k, int(v)) for k, v in sorted(balances.items())
                       if k.startswith("value.") and int(v) > 0), None)
        dialog = PaymentDialog(self.fmt(payable), large=large, payable_minor=payable,
                               fmt=self.fmt, minor_units=int(self.quote.get("minor_units") or 2),
                               accounts=[a for a in status.get("accounts") or []
                                         if a.get("status") == "active"],
                               stored_value=wallet)
        self.app.push_screen(dialog, lambda payment: self._paid(payment, dialog.tenders()))

    def action_account(self) -> None:
        """(1.3) The house account page: the member's account, or one found by its card."""
        from agent.tui.screens.account_dialog import AccountDialog

        minor = int((self.quote or {}).get("minor_units") or 2)
        self.app.push_screen(AccountDialog(
            self.fmt, member_id=self.member["member_id"] if self.member else None,
            minor_units=minor))

    def _paid(self, payment: str | None, tenders: list[dict[str, Any]] | None = None) -> None:
        if payment is None or self.quote is None or self._committing:
            return
        self._committing = True
        self.say(tr("Recording the sale…"))
        params: dict[str, Any] = {"quote_id": self.quote["quote_id"], "payment": payment}
        if payment in ("stored_value", "gift_card"):
            del params["payment"]  # (1.3) paid by the tenders, which name the balance
        if tenders:  # cash handed over, typed: the agent records it and the change (1.1)
            params["tenders"] = tenders
        self.call_api(
            "sale.commit",
            params,
            on_done=self.done_commit, on_failed=self.failed_commit,
            session=True,
        )

    def done_commit(self, result: dict[str, Any]) -> None:
        self._committing = False
        receipt = dict(result.get("receipt") or {})
        points = ((self.quote or {}).get("redeem_limits") or {}).get("points") or {}
        receipt["point_value"] = int(points.get("value") or 0)
        # Catalogue lines carry their product's names in the quote (line_details):
        # the receipt shows "Croissant", not the sku.
        details = (self.quote or {}).get("line_details") or []
        receipt["lines"] = [
            {**line, "names": details[i]["names"]}
            if i < len(details) and isinstance(details[i], dict)
            and isinstance(details[i].get("names"), dict) else line
            for i, line in enumerate(receipt.get("lines") or [])]
        self.action_new_sale()
        self.say(tr("Sale recorded."), "ok")
        self.app.push_screen(ReceiptDialog(receipt, self.fmt), self._receipt_closed)

    def _receipt_closed(self, typed: str | None) -> None:
        """The receipt closed; a key typed over it starts the next sale's entry."""
        if typed:
            entry = self.query_one("#entry", Input)
            entry.focus()
            entry.insert_text_at_cursor(typed)

    # ------------------------------------------------------------ recent sales

    def action_recent_sales(self) -> None:
        """This terminal's recent sales: search, reprint, void the last, refund."""
        self.app.push_screen(RecentSalesDialog(self.fmt))

    def failed_commit(self, error: ApiError) -> bool:
        self._committing = False
        if error.code == QUOTE_EXPIRED:
            self.quote = None
            self._request_quote()
            self.say(tr("The price was checked again. Look at the total and press F8."), "error")
            return True
        return False
