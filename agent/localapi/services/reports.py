"""Reports: ``agent.status``, ``day.summary`` and ``day.close`` (the Z report).

:func:`summarise_day` is pure: a local day's events in, the totals out (shape in
docs/local-api.md), with refunds, corrections, cash-up and attendance.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from agent import __version__
from agent.localapi.ports import event_dict
from agent.localapi.services.adjust import adjust_info, adjustment_report
from agent.localapi.services.core import Caller, ServiceCore
from agent.localapi.services.params import PAYMENTS, Params, _iso, _parse_date
from agent.rules.refund import refund_tenders, sale_tenders
from agent.staff import permissions as perm


class ReportMethods(ServiceCore):
    """``agent.status``, ``events.subscribe``, ``day.summary`` and ``day.close``."""

    async def agent_status(self, params: Params, conn: Caller | None) -> dict[str, Any]:
        """``agent.status``."""
        bundle = self.view.bundle()
        stats = await self.db.read(self.outbox.queue_stats)
        members_version = await self.db.read(self.members.members_version)
        catalogue = (await self.db.read(self.catalogue.catalogue_info)
                     if self.catalogue is not None else {})
        return {
            "terminal_id": self.view.terminal_id,
            "merchant_id": self.view.merchant_id,
            "online": bool(self.view.online()),
            "rules_version": bundle.version if bundle is not None else None,
            "rules_problem": self.view.rules_problem(),
            "members_version": members_version,
            "catalogue_version": catalogue.get("version"),
            "catalogue_products": catalogue.get("products", 0),
            "catalogue_problem": catalogue.get("problem"),
            "queue": {
                "pending": stats.pending,
                "oldest_at": _iso(stats.oldest_at),
                "rejected": stats.rejected,
            },
            "readers": [
                {"name": r.get("name"), "kind": r.get("kind"), "state": r.get("state")}
                for r in self.view.readers()
            ],
            "agent_version": __version__,
            "link_since": _iso(self.view.link_since()),
            "broker": self.view.link_broker(),
            **self._money_info(bundle),
            "uptime_s": round(time.monotonic() - self.view.started, 1),
            # The receipt printer (docs/receipts.md); None without one.
            "printer": self.view.printer.status() if self.view.printer is not None else None,
            # (1.3) manual adjustments the bundle allows (None: off).
            "adjustments": adjust_info(bundle.adjustments if bundle is not None else None),
        }

    async def events_subscribe(self, params: Params, conn: Caller | None) -> bool:
        """``events.subscribe``: this connection gets ``event`` notifications from now on."""
        if conn is not None:
            conn.subscribed = True
        return True

    async def day_summary(self, params: Params, conn: Caller | None) -> dict[str, Any]:
        """``day.summary``: the terminal's totals of one local day (shape in docs).

        Open without a session (as local-api.md has it); with a session that is
        not a manager's, the per-staff figures are left out.
        """
        day = _parse_date(params["date"]) if params.get("date") else self._today()
        session = None
        if params.get("session") is not None:
            session = await self._session(params, perm.REPORT)
        events, end = await self._day_events(day)
        # A correction made on a later day still corrects this day's entry.
        later = await self.db.read(self.outbox.events_between, end,
                                   max(end, self.clock()) + timedelta(days=1), ("correction",))
        events += [event_dict(e) for e in later if e.get("_state") != "rejected"]
        refunded = await self._refunded_sales(events)
        bundle = self.view.bundle()
        summary = summarise_day(
            day, events, await self._staff_names(
                {e.get("staff_id") for e in [*events, *refunded.values()]}),
            now=self.clock(), day_end=end, tz_name=str(self._tz()),
            currency=bundle.currency if bundle is not None else None,
            minor_units=bundle.minor_units if bundle is not None else None,
            refunded_sales=refunded)
        if session is not None and perm.STAFF_FIGURES not in session.permissions:
            summary["per_staff"] = None
        # (1.3) Manual points and granted credit of the day, as rows per staff member;
        # the per-user figures only for whom may see the adjustments report.
        adjustments = adjustment_report(events, await self._staff_names(
            {e.get("recorded_by") for e in events if e.get("type") == "balance_adjust"}))
        if session is None or perm.ADJUST_REPORT not in session.permissions:
            adjustments["per_staff"], adjustments["rows"] = None, None
        summary["adjustments"] = adjustments
        return summary

    async def _refunded_sales(self, events: Iterable[Mapping[str, Any]]
                              ) -> dict[str, dict[str, Any]]:
        """The sales the day's refunds name, by id (from any day, while this terminal
        still holds them; rejected sales left out)."""
        ids = [str(e["sale_id"]) for e in events
               if e.get("type") in ("refund", "refund_lines")
               and isinstance(e.get("sale_id"), str)]

        def read() -> dict[str, dict[str, Any]]:
            out = {}
            for sale_id in ids:
                entry = self.outbox.event(sale_id)
                if entry is not None and entry.type == "sale" and entry.state != "rejected":
                    out[sale_id] = dict(entry.event)
            return out

        return await self.db.read(read) if ids else {}

    async def day_close(self, params: Params, conn: Caller | None) -> dict[str, Any]:
        """``day.close`` (manager): the Z report. Records a ``day_close`` event with the
        day's totals and answers them; each close of a date gets the next number."""
        session = await self._session(params, perm.DAY_CLOSE)
        # One close at a time: two tills closing at once must not both be number 1.
        async with self._close_lock:
            return await self._day_close(params, conn, session.staff_id)

    async def _day_close(self, params: Params, conn: Caller | None,
                         manager: str) -> dict[str, Any]:
        summary = await self.day_summary({k: v for k, v in params.items() if k != "session"},
                                         conn)
        events, _end = await self._day_events(_parse_date(summary["date"]))
        close_no = 1 + sum(1 for e in events if e.get("type") == "day_close"
                           and e.get("date") == summary["date"])
        totals = {"sales": summary["sales"], "by_tender": summary["by_tender"],
                  "cash": summary["cash"], "refunds": summary["refunds"],
                  "expenses": len(summary["expenses"]),
                  "cash_receipts": len(summary["cash_receipts"])}
        body = {"date": summary["date"], "close_no": close_no, "totals": totals,
                "currency": summary["currency"], "minor_units": summary["minor_units"]}
        stored = await self._append("day_close", body, manager)
        return {"event_id": stored.id, "at": stored.at,
                "closed_by": manager, **body}

def _attendance_rows(events: Iterable[Mapping[str, Any]], staff_names: Mapping[str, str],
                     now: datetime, day_end: datetime) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for e in events:
        if e.get("type") != "attendance":
            continue
        sid = str(e.get("staff_id"))
        at = e["at"]
        row = rows.setdefault(sid, {"staff_id": sid, "name": staff_names.get(sid, sid),
                                    "entries": [], "present": False, "minutes": 0})
        row["entries"].append({"action": e.get("action"), "at": at.isoformat()})
        row["present"] = e.get("action") == "in"
    for row in rows.values():
        seconds = 0.0
        opened: datetime | None = None
        for entry in row["entries"]:
            at = datetime.fromisoformat(entry["at"])
            if entry["action"] == "in":
                opened = opened or at
            elif opened is not None:
                seconds += (at - opened).total_seconds()
                opened = None
        if opened is not None:
            seconds += max(0.0, (min(now, day_end) - opened).total_seconds())
        row["minutes"] = int(seconds // 60)
    return sorted(rows.values(), key=lambda r: str(r["name"]))


def summarise_day(day: date, events: Iterable[Mapping[str, Any]],
                  staff_names: Mapping[str, str], *, now: datetime, day_end: datetime,
                  currency: str | None = None, minor_units: int | None = None,
                  tz_name: str = "UTC",
                  refunded_sales: Mapping[str, Mapping[str, Any]] | None = None
                  ) -> dict[str, Any]:
    """Totals of one local day's events (a pure function; shape in docs/local-api.md).

    ``events`` are flat event dicts (wire keys and the type's own keys) whose
    ``at`` is a datetime within the day. ``refunded_sales`` are the sales the
    day's refunds name, by id: a refund counts on its own day, with the amounts
    of its sale (which may be of an earlier day).
    """
    todays = sorted(events, key=lambda e: e.get("seq") or 0)
    sales = [e for e in todays if e.get("type") == "sale"]
    refunds = [e for e in todays if e.get("type") in ("refund", "refund_lines")]
    known = refunded_sales or {}
    # (what went back, its sale) for each refund whose sale this terminal holds: a
    # whole refund gives back its sale's amounts, a refund by line (1.1) the part's
    # amounts it carries (agent/rules/refund.py).
    undone = [(r if r.get("type") == "refund_lines" else known[str(r.get("sale_id"))],
               known[str(r.get("sale_id"))]) for r in refunds
              if str(r.get("sale_id")) in known]

    def totals(rows: list[Mapping[str, Any]]) -> dict[str, Any]:
        return {
            # A refund by line counts as a sale undone only when it completes it.
            "count": sum(1 for r in rows
                         if r.get("type") != "refund_lines" or r.get("completes")),
            "gross": sum(int(r.get("gross") or 0) for r in rows),
            "discounts": sum(int(d.get("amount", 0)) for r in rows
                             for d in r.get("discounts") or []),
            "payable": sum(int(r.get("payable") or 0) for r in rows),
            "points_given": sum(int(p.get("points", 0)) for r in rows
                                for p in r.get("points_earned") or []),
            "points_taken": sum(int(r.get("redeemed_points") or 0) for r in rows),
            "credit_used": sum(int(c.get("amount", 0)) for r in rows
                               for c in r.get("credits_used") or []),
            "credit_given": sum(int(c.get("amount", 0)) for r in rows
                                for c in r.get("credits_earned") or []),
        }

    def minus(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
        return {k: int(a[k]) - int(b.get(k, 0)) for k in a}

    sold = totals(sales)
    refunded: dict[str, Any] = totals([back for back, _sale in undone])
    refunded["unknown"] = len(refunds) - len(undone)
    refunded["voids"] = sum(1 for r in refunds if r.get("reason") == "void")
    refunded["by_line"] = sum(1 for r in refunds if r.get("type") == "refund_lines")
    by_payment: dict[str, int] = {}
    for back, sale in undone:
        for how, amount in refund_tenders(sale_tenders(sale),
                                          int(back.get("payable") or 0)).items():
            by_payment[how] = by_payment.get(how, 0) + amount
    refunded["by_payment"] = by_payment

    per_staff = []
    # A refund is taken off the figures of who made the sale.
    sellers = {str(s.get("staff_id")) for s in sales if s.get("staff_id")} | {
        str(sale.get("staff_id")) for _r, sale in undone if sale.get("staff_id")}
    for staff_id in sorted(sellers):
        row: dict[str, Any] = totals([s for s in sales if s.get("staff_id") == staff_id])
        back = totals([b for b, sale in undone if sale.get("staff_id") == staff_id])
        row.update(staff_id=staff_id, name=staff_names.get(staff_id, staff_id),
                   refunds=back["count"], refunded=back["payable"],
                   net_payable=row["payable"] - back["payable"])
        per_staff.append(row)

    # Corrections (#15 item 10): the latest one of each event wins; the row shows the
    # corrected values and says so, a voided row counts nothing.
    latest = {str(e.get("ref_id")): e for e in todays if e.get("type") == "correction"}

    def money_rows(kind: str) -> list[dict[str, Any]]:
        rows = []
        for e in todays:
            if e.get("type") != kind:
                continue
            row = {"event_id": e.get("id"), "at": e["at"].isoformat(), "amount": e.get("amount"),
                   "category": e.get("category"), "note": e.get("note"),
                   "staff_id": e.get("staff_id")}
            fix = latest.get(str(e.get("id")))
            if fix is not None:
                row.update(fix.get("changes") or {})
                row["correction"] = {"event_id": fix.get("id"), "by": fix.get("staff_id"),
                                     "reason": fix.get("reason"),
                                     "void": fix.get("action") == "void"}
            rows.append(row)
        return rows

    def counted(rows: list[dict[str, Any]]) -> int:
        return sum(int(r["amount"] or 0) for r in rows
                   if not (r.get("correction") or {}).get("void"))

    expenses = money_rows("expense")
    receipts = money_rows("cash_receipt")
    income = counted(receipts)
    spent = counted(expenses)
    by_tender, cash = _cash_up(sales, income, spent, int(by_payment.get("cash", 0)))
    # (1.3) payments of what house accounts owe: their cash is in the drawer too.
    account_paid: dict[str, int] = {}
    for e in todays:
        if e.get("type") == "account_payment":
            method = str(e.get("method"))
            account_paid[method] = account_paid.get(method, 0) + int(e.get("amount") or 0)
    if account_paid:
        cash["account_payments"] = account_paid.get("cash", 0)
        cash["net"] += cash["account_payments"]
    return {
        "account_payments": {"count": sum(1 for e in todays
                                          if e.get("type") == "account_payment"),
                             "by_method": account_paid},
        "date": day.isoformat(),
        "timezone": tz_name,
        "currency": currency,
        "minor_units": minor_units,
        "sales": sold,
        "per_staff": per_staff,
        "refunds": len(refunds),
        "refunded": refunded,
        "net_sales": minus(sold, refunded),
        "expenses": expenses,
        "cash_receipts": receipts,
        "totals": {"income": income, "expenses": spent, "net": income - spent},
        "by_tender": by_tender,
        "cash": cash,
        "attendance": _attendance_rows(todays, staff_names, now, day_end),
    }


# ---- cash-up (#15 item 7): takings split by tender, and the cash the drawer should hold.
def _cash_up(sales: list[Mapping[str, Any]], income: int, spent: int, cash_refunded: int
             ) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """``by_tender`` (count and amount per tender method, from each sale's ``tenders``;
    v1's three methods always present, ``credit`` and ``voucher`` when used) and
    ``cash``: cash sales + cash receipts − expenses − cash refunded = what the drawer
    should hold beyond its float. A sale without ``tenders`` or ``payment`` was cash."""
    by_tender = {kind: {"count": 0, "payable": 0} for kind in PAYMENTS}
    for sale in sales:
        for kind, amount in sale_tenders(sale).items():
            row = by_tender.setdefault(kind, {"count": 0, "payable": 0})
            row["count"] += 1
            row["payable"] += amount
    cash_sales = by_tender["cash"]["payable"]
    cash = {"sales": cash_sales, "receipts": income, "expenses": spent,
            "refunds": cash_refunded, "net": cash_sales + income - spent - cash_refunded}
    return by_tender, cash
