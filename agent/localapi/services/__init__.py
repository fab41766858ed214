"""The local API's methods (``local-api.md``): the business behind each JSON-RPC call.

:class:`Services` validates parameters, enforces staff permissions, asks the rules
engine for quotes, records facts through the store's parts (answering only once
they are durable) and turns every failure into an :class:`ApiError` whose message a
cashier can read. Decisions the spec leaves open are written down in
``docs/local-api.md``. One module per family of methods:

- ``params``: request parameters, checked and typed (pure);
- ``core``: what every family shares (the view, the store's parts, sessions);
- ``quotes``: ``sale.quote``/``sale.commit`` (caps, expiry, commit at most once);
- ``catalogue``: ``catalogue.lookup``/``catalogue.search`` and a quote's catalogue lines;
- ``sales``: ``sale.list``/``sale.void``/``sale.refund``;
- ``staff``: ``staff.*`` (PIN throttle, badge taps, clocking);
- ``appointments``, ``members``, ``cash`` (expenses, cash receipts, corrections);
- ``reports``: ``agent.status``, ``day.summary``, ``day.close``.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from agent.errors import ApiError
from agent.localapi import METHOD_NOT_FOUND, NOT_ALLOWED
from agent.localapi.services.accounts import AccountMethods
from agent.localapi.services.adjust import AdjustMethods
from agent.localapi.services.appointments import AppointmentMethods
from agent.localapi.services.cash import CashMethods
from agent.localapi.services.core import AgentView, Caller
from agent.localapi.services.members import MEMBER_SEARCH_MAX, PROFILE_SALES, MemberMethods
from agent.localapi.services.packages import PackageMethods
from agent.localapi.services.params import MAX_LINE_TEXT, PAYMENTS, Params
from agent.localapi.services.quotes import (
    COMMITTED_KEEP_S,
    MAX_COMMITTED,
    MAX_QUOTE_LINES,
    MAX_QUOTES,
    MAX_QUOTES_PER_CONNECTION,
    QuoteMethods,
    StoredQuote,
)
from agent.localapi.services.receipts import ReceiptMethods
from agent.localapi.services.reports import ReportMethods, summarise_day
from agent.localapi.services.sales import SALE_LIST_MAX, SALE_LIST_SCAN, VOID_WINDOW_S
from agent.localapi.services.staff import StaffMethods

__all__ = [
    "COMMITTED_KEEP_S",
    "MAX_COMMITTED",
    "MAX_LINE_TEXT",
    "MAX_QUOTES",
    "MAX_QUOTES_PER_CONNECTION",
    "MAX_QUOTE_LINES",
    "MEMBER_SEARCH_MAX",
    "PAYMENTS",
    "PROFILE_SALES",
    "SALE_LIST_MAX",
    "SALE_LIST_SCAN",
    "VOID_WINDOW_S",
    "AgentView",
    "Services",
    "StoredQuote",
    "summarise_day",
]

Method = Callable[[Params, Caller | None], Awaitable[object]]


class Services(QuoteMethods, MemberMethods, StaffMethods, CashMethods, ReportMethods,
               AppointmentMethods, ReceiptMethods, AccountMethods,
               PackageMethods, AdjustMethods):
    """Every local-API method; one instance per agent (the server's ``Dispatcher``).

    Takes the store's parts separately (``outbox=``, ``members=``, ``records=``:
    the Protocols in ``agent.localapi.ports``; ``catalogue=`` optional), with the view,
    the store thread and the options of :class:`~agent.localapi.services.core.ServiceCore`.
    """

    @functools.cached_property
    def _methods(self) -> dict[str, Method]:
        """The JSON-RPC method table (names as in docs/local-api.md)."""
        return {
            "agent.status": self.agent_status,
            "events.subscribe": self.events_subscribe,
            "member.identify": self.member_identify,
            "member.enrol": self.member_enrol,
            "sale.quote": self.sale_quote,
            "sale.commit": self.sale_commit,
            "sale.refund": self.sale_refund,
            "staff.login": self.staff_login,
            "staff.logout": self.staff_logout,
            "staff.clock": self.staff_clock,
            "staff.create": self.staff_create,
            "expense.add": self.expense_add,
            "cash_receipt.add": self.cash_receipt_add,
            "day.summary": self.day_summary,
            "appointment.create": self.appointment_create,
            "appointment.update": self.appointment_update,
            "appointment.cancel": self.appointment_cancel,
            "appointment.list": self.appointment_list,
            "sale.list": self.sale_list,
            "sale.void": self.sale_void,
            "member.search": self.member_search,
            "member.profile": self.member_profile,
            "member.card_link": self.member_card_link,
            "event.correct": self.event_correct,
            "day.close": self.day_close,
            "receipt.print": self.receipt_print,
            "printer.status": self.printer_status,
            "catalogue.lookup": self.catalogue_lookup,
            "catalogue.search": self.catalogue_search,
            # (1.3) house accounts (services/accounts.py)
            "account.status": self.account_status,
            "account.pay": self.account_pay,
            "value.balance": self.value_balance,  # (1.3)
            "balance.adjust": self.balance_adjust,
            "balance.adjustments": self.balance_adjustments,
            "package.list": self.package_list,  # (1.3) visit packages
            "package.checkin": self.package_checkin,
            "package.freeze": self.package_freeze,
        }

    async def dispatch(self, method: str, params: Params, conn: Caller | None) -> object:
        """Run one method (the server's :class:`Dispatcher`)."""
        handler = self._methods.get(method)
        if handler is None:
            raise ApiError(METHOD_NOT_FOUND, f"The agent does not know the method {method!r}.")
        if not self.accepting and method not in ("agent.status", "events.subscribe",
                                                 "printer.status"):
            raise ApiError(NOT_ALLOWED, "The agent is shutting down; please try again in a moment.",
                           {"reason": "shutting_down"})
        return await handler(params, conn)
