"""This terminal's recorded sales: ``sale.list``, ``sale.void`` and ``sale.refund``.

A void is a refund with reason ``"void"`` of this terminal's newest sale, by the
cashier who recorded it or a manager, within ``VOID_WINDOW_S`` of recording it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from agent.errors import ApiError
from agent.localapi import CONFLICT, INVALID_PARAMS, NOT_ALLOWED, NOT_FOUND, receipt_number
from agent.localapi.services.core import AgentView, Caller
from agent.localapi.services.params import Params, _p, _text
from agent.localapi.services.value import ValueMethods
from agent.localapi.sessions import Session
from agent.rules.refund import refunded_units, sold_units
from agent.rules.stored_value import has_value_rows
from agent.staff import permissions as perm

if TYPE_CHECKING:
    from agent.offline_queue import OutboxEntry, StoredEvent
    from agent.rules import Quote
    from agent.rules.tenders import Settlement

# sale.list: most sales per answer, and most sales looked at per call while
# searching (the rest is reached with ``before``).
SALE_LIST_MAX = 50
SALE_LIST_SCAN = 2000
VOID_REASON = "void"
# sale.refund: most line items in one refund by line.
REFUND_LINES_MAX = 500
VOID_WINDOW_S = 300.0
SALE_KEYS = (
    "gross", "discounts", "redeemed_points", "redeemed_value", "credits_used", "payable",
    "points_earned", "credits_earned", "lottery_entries", "rules_version",
)
# Issue 21's sale keys: recorded only when the quote has them (docs/rules.md).
PROMOTION_KEYS = ("rewards", "codes_used", "fees", "referral_rewards", "coupons_issued",
                  "uses")


def sale_receipt(quote: Quote, stored: StoredEvent, view: AgentView, session: Session,
                 settled: Settlement, *, lines: list[dict[str, Any]],
                 member: dict[str, Any] | None) -> dict[str, Any]:
    """The receipt of a sale just recorded (``sale.commit``'s ``receipt``).

    ``member`` is the member summary after the sale (its balances are printed).
    """
    wire = quote.to_dict()
    # A discount's receipt row: the rule's name (bundle) and percentage when known.
    described = {x.get("rule"): {k: x[k] for k in ("name", "percent_bps") if k in x}
                 for x in quote.explain if x.get("rule") and x.get("applied")}
    bundle = view.bundle()
    return {
        "sale_id": stored.id,
        "seq": stored.seq,
        "at": stored.at,
        "terminal_id": view.terminal_id,
        "merchant_id": view.merchant_id,
        "staff_id": session.staff_id,
        "staff_name": session.name,
        "offline": not view.online(),
        "member": member,
        "lines": lines,
        "gross": quote.gross,
        "discounts": [{**d, **described.get(d.get("rule"), {}),
                       "label": described.get(d.get("rule"), {}).get("name", d.get("rule"))}
                      for d in wire["discounts"]],
        "net": quote.net,
        "redeemed_points": quote.redeemed_points,
        "redeemed_value": quote.redeemed_value,
        "credits_used": wire["credits_used"],
        "payable": quote.payable,
        "payment": settled.payment,
        # (1.1) how it was paid: the tenders recorded (summing to payable), what was
        # handed over and the change given back.
        "tenders": settled.wire(),
        "tendered": settled.tendered,
        "change_due": settled.change_due,
        "points_earned": quote.total_points,
        "credits_earned": wire["credits_earned"],
        "lottery_entries": quote.lottery_entries,
        "rules_version": quote.rules_version,
        # Issue 21: vouchers to print (coupons_issued), rewards, fees … when present.
        **quote.extra_keys(),
        "balances_after": member["balances"] if member else None,
        "currency": bundle.currency if bundle is not None else None,
        "minor_units": bundle.minor_units if bundle is not None else None,
    }


def restored_receipt(event: Mapping[str, Any], view: AgentView) -> dict[str, Any]:
    """The receipt of a sale recorded by an earlier agent run, from its event."""
    receipt = {k: event.get(k) for k in (*SALE_KEYS, "member_id", "lines", "payment",
                                         "tenders")}
    # (1.3) A retried commit still gets the gift cards' codes to print.
    receipt.update({k: event[k] for k in ("topups", "gift_cards_issued", "units_used")
                    if event.get(k)})
    receipt.update({"sale_id": event["id"], "seq": event["seq"], "at": event.get("at"),
                    "terminal_id": view.terminal_id, "merchant_id": view.merchant_id,
                    "staff_id": event.get("staff_id"), "restored": True})
    return receipt


def left_to_refund(sale: OutboxEntry, parts: list[OutboxEntry]) -> list[int]:
    """Units of each line of ``sale`` not refunded by the refunds by line ``parts``."""
    units = sold_units(sale.event)
    done = refunded_units(sale.event, [
        [(int(x["line"]), int(x["qty"])) for x in p.event.get("lines") or []
         if isinstance(x, dict)] for p in parts])
    return [max(0, u - d) for u, d in zip(units, done, strict=True)]


class SaleMethods(ValueMethods):
    """``sale.refund``, ``sale.list`` and ``sale.void``."""

    async def _append_refund(self, entry: OutboxEntry, reason: str | None,
                             staff_id: str | None) -> StoredEvent:
        """A whole refund (or void) of ``entry``; (1.3) a sale that moved stored value
        gets its companion ``gift_card_redeem`` events in the same transaction, and the
        store checks the top-ups and cards it takes back (docs/protocol/club.md)."""
        body = {"sale_id": entry.id, "reason": reason}
        if not has_value_rows(entry.event):
            return await self._append("refund", body, staff_id)
        return await self._record("a refund", self.outbox.append_linked, "refund", body,
                                  await self.refund_companions(entry), at=self.clock(),
                                  staff_id=staff_id, offline=not self.view.online(),
                                  value_check=self._value_check())

    async def sale_refund(self, params: Params, conn: Caller | None) -> dict[str, Any]:
        """``sale.refund`` (manager): record a refund of a sale this terminal holds.

        Without ``lines``, the whole sale (a v1 ``refund`` event) — or, when lines
        were refunded before, every unit that is left (a ``refund_lines`` event that
        completes the sale). With ``lines`` (``[{line, qty}]``, line index from 0):
        a ``refund_lines`` event; the store computes the reversal
        (agent/rules/refund.py) in the transaction that records it.
        """
        session = await self._session(params, perm.REFUND)
        sale_id = _text(params, "sale_id", max_len=64)
        reason = _text(params, "reason", max_len=500)
        lines = params.get("lines")
        if lines is not None and (not isinstance(lines, list) or not lines
                                  or len(lines) > REFUND_LINES_MAX):
            raise ApiError(INVALID_PARAMS, f"lines must list 1 to {REFUND_LINES_MAX} lines "
                           "to refund.", {"param": "lines", "reason": "bad_lines"})

        def read() -> tuple[OutboxEntry | None, list[OutboxEntry]]:
            return (self.outbox.event(sale_id),
                    self.outbox.line_refunds_of([sale_id]).get(sale_id, []))

        entry, parts = await self.db.read(read)
        if entry is None or entry.type != "sale":
            raise ApiError(NOT_FOUND, "There is no such sale on this terminal.",
                           {"reason": "no_such_sale", "sale_id": sale_id})
        if lines is None and not parts:
            stored = await self._append_refund(entry, reason, session.staff_id)
            return {"refund_id": stored.id, "sale_id": sale_id, "whole": True}
        if lines is None:
            lines = [{"line": i, "qty": q} for i, q in enumerate(left_to_refund(entry, parts))
                     if q > 0]
            if not lines:
                raise ApiError(CONFLICT, "This sale has already been refunded.",
                               {"reason": "refunded"})
        stored = await self._append("refund_lines",
                                    {"sale_id": sale_id, "reason": reason, "lines": lines},
                                    session.staff_id)
        body = stored.body
        return {"refund_id": stored.id, "sale_id": sale_id, "whole": False,
                "lines": body.get("lines"), "gross": body.get("gross"),
                "payable": body.get("payable"), "completes": body.get("completes")}

    def _void_refusal(self, entry: OutboxEntry, newest_id: str | None, refunded: bool,
                      session: Session) -> tuple[str, str] | None:
        """Why ``session`` may not void the sale ``entry`` (reason code, sentence), or None."""
        if refunded:
            return "refunded", "This sale has already been refunded or voided."
        if entry.id != newest_id:
            return ("void_not_last", "Only the last sale of this terminal can be voided; "
                    "a manager can refund this one.")
        if perm.VOID not in session.permissions \
                and entry.event.get("staff_id") != session.staff_id:
            return ("void_other_staff", "Only the cashier who recorded the sale, or a "
                    "manager, can void it.")
        at = datetime.fromisoformat(str(entry.at).replace("Z", "+00:00"))
        if (self.clock() - at).total_seconds() > VOID_WINDOW_S:
            return ("void_too_late", f"A sale can be voided only within "
                    f"{int(VOID_WINDOW_S // 60)} minutes; a manager can refund it.")
        return None

    def _amount_query(self, text: str) -> int | None:
        """``12.50`` / ``12,50`` / ``1250`` as minor units, or None if not an amount."""
        bundle = self.view.bundle()
        minor = bundle.minor_units if bundle is not None else 2
        whole, sep, frac = text.replace(",", ".").partition(".")
        if not whole.isdigit() or len(whole) > 12 or (sep and (not frac.isdigit()
                                                                or len(frac) > minor)):
            return None
        return int(whole) * int(10**minor) + int((frac or "0").ljust(minor, "0")[:minor])

    def _sale_item(self, entry: OutboxEntry, member_name: str | None, staff_name: str | None,
                   refund: OutboxEntry | None, voidable: tuple[str, str] | None,
                   parts: list[OutboxEntry] | None = None) -> dict[str, Any]:
        e = entry.event
        parts = parts or []
        left = left_to_refund(entry, parts)
        return {
            "sale_id": entry.id, "seq": entry.seq, "receipt_no": receipt_number(entry.id),
            "at": entry.at, "state": entry.state, "offline": e.get("offline"),
            "staff_id": e.get("staff_id"), "staff_name": staff_name,
            "member_id": e.get("member_id"), "member_name": member_name,
            "lines": e.get("lines"), "gross": e.get("gross"),
            "discounts": e.get("discounts"), "redeemed_points": e.get("redeemed_points"),
            "redeemed_value": e.get("redeemed_value"), "credits_used": e.get("credits_used"),
            "payable": e.get("payable"), "payment": e.get("payment"),
            "tenders": e.get("tenders"),
            "points_earned": sum(int(p.get("points", 0)) for p in e.get("points_earned") or []),
            "credits_earned": e.get("credits_earned"),
            "lottery_entries": e.get("lottery_entries"),
            "refund": None if refund is None else {
                "refund_id": refund.id, "at": refund.at, "reason": refund.event.get("reason"),
                "staff_id": refund.event.get("staff_id"),
                "void": refund.event.get("reason") == VOID_REASON},
            "voidable": voidable is None,
            "void_refusal": None if voidable is None else voidable[0],
            # (1.1) refunds by line: units refunded per line, the money they gave back,
            # and whether nothing is left to refund.
            "refunded_lines": [int(q) - n for q, n in zip(
                [x.get("qty", 1) if isinstance(x, dict) else 0 for x in e.get("lines") or []],
                left, strict=True)],
            "refunded_payable": sum(int(p.event.get("payable") or 0) for p in parts),
            "fully_refunded": refund is not None or (bool(parts) and not any(left)),
        }

    async def _recent_sales(self, session: Session, before: int | None, limit: int,
                            query: str, member_id: str | None
                            ) -> tuple[list[dict[str, Any]], int | None]:
        """Sales of this terminal newest first matching ``query``/``member_id``, at
        most ``limit``, looking at most SALE_LIST_SCAN; and where to go on from."""
        needle = query.casefold()
        amount = self._amount_query(query) if query else None
        bare = needle.replace("-", "")

        def scan() -> tuple[list[OutboxEntry], dict[str, str | None], int | None, str | None,
                            dict[str, OutboxEntry]]:
            found: list[OutboxEntry] = []
            names: dict[str, str | None] = {}
            cursor, scanned, more = before, 0, True
            while len(found) < limit and scanned < SALE_LIST_SCAN and more:
                page = self.outbox.sales_before(cursor, min(200, SALE_LIST_SCAN - scanned))
                more = bool(page)
                for entry in page:
                    scanned += 1
                    cursor = entry.seq
                    mid = entry.event.get("member_id")
                    if isinstance(mid, str) and mid not in names:
                        record = self.members.member(mid)
                        names[mid] = (record or {}).get("name")
                    if member_id is not None and mid != member_id:
                        continue
                    if needle and not (
                            bare in entry.id.replace("-", "").casefold()
                            or bare in receipt_number(entry.id).replace("-", "").casefold()
                            or (isinstance(mid, str)
                                and needle in str(names.get(mid) or "").casefold())
                            or (amount is not None and amount in (entry.event.get("payable"),
                                                                  entry.event.get("gross")))):
                        continue
                    found.append(entry)
                    if len(found) >= limit:
                        break
            newest = self.outbox.sales_before(None, 1)
            refunds = self.outbox.refunds_of([e.id for e in found])
            parts.update(self.outbox.line_refunds_of([e.id for e in found]))
            go_on = cursor if (more and (len(found) >= limit or scanned >= SALE_LIST_SCAN)) \
                else None
            return found, names, go_on, newest[0].id if newest else None, refunds

        parts: dict[str, list[OutboxEntry]] = {}
        found, names, go_on, newest_id, refunds = await self.db.read(scan)
        staff = await self._staff_names({e.event.get("staff_id") for e in found})
        items = []
        for entry in found:
            mid = entry.event.get("member_id")
            refund = refunds.get(entry.id)
            items.append(self._sale_item(
                entry, names.get(mid) if isinstance(mid, str) else None,
                staff.get(str(entry.event.get("staff_id"))), refund,
                self._void_refusal(entry, newest_id,
                                   refund is not None or entry.id in parts, session),
                parts.get(entry.id)))
        return items, go_on

    async def sale_list(self, params: Params, conn: Caller | None) -> dict[str, Any]:
        """``sale.list`` (cashier, manager): this terminal's sales, newest first.

        ``limit`` (1–50, default 20), ``before`` (a ``seq``: older ones), ``query``
        (receipt number, sale id, member name or amount), ``member_id``. Answers
        ``{sales, next_before}``; ``next_before`` is null when nothing older is left.
        """
        session = await self._session(params, perm.SALE_VIEW)
        limit = _p(params, "limit", int, required=False, default=20)
        if not 1 <= limit <= SALE_LIST_MAX:
            raise ApiError(INVALID_PARAMS, f"The limit must be 1 to {SALE_LIST_MAX}.",
                           {"param": "limit"})
        before = _p(params, "before", int, required=False)
        if before is not None and before < 1:
            raise ApiError(INVALID_PARAMS, "before must be a positive seq.", {"param": "before"})
        query = _text(params, "query", required=False, max_len=64) or ""
        member_id = _text(params, "member_id", required=False, max_len=100)
        items, go_on = await self._recent_sales(session, before, limit, query, member_id)
        from agent.localapi.services.receipts import name_lines

        for item in items:  # (1.2) catalogue lines carry their product's names
            if isinstance(item.get("lines"), list):
                item["lines"] = await name_lines(self, item["lines"])
        return {"sales": items, "next_before": go_on}

    async def sale_void(self, params: Params, conn: Caller | None) -> dict[str, Any]:
        """``sale.void``: undo this terminal's newest sale within VOID_WINDOW_S, by the
        cashier who recorded it or a manager. On the wire: a ``refund`` with reason
        ``"void"``."""
        session = await self._session(params, perm.SELL)
        sale_id = _text(params, "sale_id", max_len=64)
        assert sale_id is not None

        def read() -> tuple[OutboxEntry | None, str | None, bool]:
            newest = self.outbox.sales_before(None, 1)
            return (self.outbox.event(sale_id), newest[0].id if newest else None,
                    bool(self.outbox.refunds_of([sale_id])))

        entry, newest_id, refunded = await self.db.read(read)
        if entry is None or entry.type != "sale":
            raise ApiError(NOT_FOUND, "There is no such sale on this terminal.")
        refusal = self._void_refusal(entry, newest_id, refunded, session)
        if refusal is not None:
            code = CONFLICT if refusal[0] == "refunded" else NOT_ALLOWED
            raise ApiError(code, refusal[1], {"reason": refusal[0]})
        stored = await self._append_refund(entry, VOID_REASON, session.staff_id)
        return {"refund_id": stored.id, "sale_id": sale_id,
                "receipt_no": receipt_number(sale_id)}

