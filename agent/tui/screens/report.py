"""Today's report: sales, discounts, points, credit, per staff (managers),
expenses and cash receipts, attendance."""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path
from typing import Any, ClassVar

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Static

from agent.tui.i18n import N_, current, money, number, ordered, tr
from agent.tui.labels import payment_name
from agent.tui.screens.base import ClubScreen
from agent.tui.widgets.bidi import tr_block
from agent.tui.widgets.kv import kv_row, kv_table


def refund_rows(summary: dict[str, Any], fmt: Any) -> list[tuple[str, str]]:
    """Refunds recorded on the day (of sales of any day) and what is left taken,
    when the agent reports them (``refunded``, ``net_sales``: docs/local-api.md)."""
    refunded = summary.get("refunded")
    if not isinstance(refunded, dict):
        return []
    rows = [(tr("Refunds (voids)"), tr("{n} ({voids})", n=number(int(summary.get("refunds") or 0)),
                                       voids=number(int(refunded.get("voids") or 0)))),
            (tr("Refunded"), ("-" if refunded.get("payable") else "")
             + fmt(int(refunded.get("payable") or 0))),
            (tr("Net taken"), fmt(int((summary.get("net_sales") or {}).get("payable") or 0)))]
    if refunded.get("unknown"):
        rows.append((tr("Refunds of sales not on this terminal"),
                     number(int(refunded["unknown"]))))
    return rows


def figures_table(summary: dict[str, Any], fmt: Any) -> Table:
    """The day's totals as label/value rows."""
    sales = summary.get("sales") or {}
    table = kv_table()
    rows: list[tuple[RenderableType, str]] = [
        (tr("Sales"), number(int(sales.get("count", 0)))),
        (tr("Gross"), fmt(int(sales.get("gross", 0)))),
        (tr("Discounts"), fmt(int(sales.get("discounts", 0)))),
        (tr_block("Taken (to pay)"), fmt(int(sales.get("payable", 0)))),
        *refund_rows(summary, fmt),
        (tr("Points given"), number(int(sales.get("points_given", 0)))),
        (tr("Points taken"), number(int(sales.get("points_taken", 0)))),
        (tr("Credit used"), fmt(int(sales.get("credit_used", 0)))),
        *tender_rows(summary, fmt),
        *adjustment_rows(summary),
    ]
    for label, value in rows:
        kv_row(table, label, Text(value, style="bold"))
    present = sum(1 for row in summary.get("attendance") or [] if row.get("present"))
    kv_row(table, tr("Staff in now"), Text(number(present), style="bold"))
    return table


def adjustment_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """(1.3) Points added and deducted by hand today, and per staff member when the
    agent gives them (a manager: ``day.summary.adjustments``)."""
    adj = summary.get("adjustments")
    if not isinstance(adj, dict) or not adj.get("count"):
        return []
    rows = [(tr("Points added by hand"), number(int(adj.get("points_added") or 0))),
            (tr("Points deducted by hand"), number(int(adj.get("points_deducted") or 0)))]
    for row in adj.get("per_staff") or []:
        rows.append((tr("  {name}", name=str(row.get("name") or "?")),
                     f"+{number(int(row.get('points_added') or 0))} "
                     f"−{number(int(row.get('points_deducted') or 0))}"))
    return rows


def tender_rows(summary: dict[str, Any], fmt: Any) -> list[tuple[str, str]]:
    """Takings by tender and the cash the drawer should hold (#15 item 7): cash sales +
    cash receipts − cash refunds − expenses (an older agent without ``cash``: receipts −
    expenses)."""
    totals = summary.get("totals") or {}
    tenders = summary.get("by_tender") or {}
    cash = summary.get("cash") or {"sales": 0, "receipts": totals.get("income", 0),
                                   "expenses": totals.get("expenses", 0),
                                   "net": totals.get("net", 0)}
    rows = [(tr("{method} sales ({n})", method=payment_name(kind),
                n=number(int(tenders[kind].get("count", 0)))),
             fmt(int(tenders[kind].get("payable", 0))))
            for kind in ("cash", "card", "credit", "voucher", "other") if kind in tenders]
    refunded = [(tr("Cash refunds"), fmt(int(cash["refunds"])))] \
        if int(cash.get("refunds") or 0) else []  # (1.1) refunds paid out in cash
    return [*rows,
            (tr("Cash receipts"), fmt(int(cash.get("receipts", 0)))),
            *refunded,
            (tr("Expenses"), fmt(int(cash.get("expenses", 0)))),
            (tr("Net cash"), fmt(int(cash.get("net", 0))))]


def z_report_text(close: dict[str, Any], fmt: Any, day: str) -> str:
    """The Z report as plain text, for a printer or a file (logical order)."""
    loc = current()
    totals = close.get("totals") or {}
    sales: dict[str, Any] = totals.get("sales") or {}
    summary = {"sales": sales, "by_tender": totals.get("by_tender") or {},
               "cash": totals.get("cash"), "totals": {}}
    rows = [(loc.gettext("Sales"), str(int(sales.get("count", 0)))),
            (loc.gettext("Gross"), fmt(int(sales.get("gross", 0)))),
            (loc.gettext("Discounts"), fmt(int(sales.get("discounts", 0)))),
            (loc.gettext("Taken (to pay)"), fmt(int(sales.get("payable", 0))))]
    rows += tender_rows(summary, fmt)
    head = [loc.gettext("Z report {n}").format(n=close.get("close_no")), day,
            loc.gettext("Closed at {at} by {who}").format(at=close.get("at"),
                                                         who=close.get("closed_by")), ""]
    width = max(len(label) for label, _ in rows) + 2
    return "\n".join(head + [f"{label:<{width}}{value:>14}" for label, value in rows]) + "\n"


def export_dir() -> Path:
    """Where Z reports are saved: ``$CLUBTERM_EXPORT_DIR``, else ~/clubterm-reports."""
    return Path(os.environ.get("CLUBTERM_EXPORT_DIR") or Path.home() / "clubterm-reports")


class ReportScreen(ClubScreen):
    """The day at a glance; managers see it per staff member."""

    CSS_PATH = "report.tcss"
    MODE = "report"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "reload", N_("Refresh")),
        Binding("pageup", "day(-1)", N_("Day −"), priority=True),
        Binding("pagedown", "day(1)", N_("Day +"), priority=True),
        Binding("f9", "close_day", N_("Close day"), priority=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.day: date | None = None
        self.summary: dict[str, Any] | None = None
        self.last_export: Path | None = None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        staff = self.club_app.staff
        if action == "close_day":
            return bool(staff and staff.is_manager)
        return True

    def action_close_day(self) -> None:
        """Close the shown day: the agent records the Z report; it is saved as text."""
        assert self.day is not None
        self.say(tr("Closing the day…"))
        self.call_api("day.close", {"date": self.day.isoformat()},
                      on_done=self.done_close, session=True)

    def done_close(self, result: dict[str, Any]) -> None:
        assert self.day is not None
        text = z_report_text(result, self.fmt, current().date(self.day))
        n = number(int(result.get("close_no", 0)))
        try:
            folder = export_dir()
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"z-report-{result.get('date')}-{result.get('close_no')}.txt"
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            self.say(tr("Z report {n} recorded; it could not be saved ({error}).", n=n,
                        error=exc.strerror or str(exc)), "error")
        else:
            self.last_export = path
            self.say(tr("Z report {n} recorded; saved as {path}.", n=n, path=str(path)), "ok")
        self.action_reload()

    def compose_body(self) -> ComposeResult:
        yield Static(id="report-title", classes="title")
        with Horizontal(id="report-body"):
            with VerticalScroll(id="report-figures"):
                yield Static(id="figures")
            yield DataTable(id="per-staff", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.day = self.club_app.now().date()
        table = self.query_one("#per-staff", DataTable)
        table.add_columns(
            *ordered(
                [tr("Staff"), tr("Sales"), tr("To pay"), tr("Disc."), tr("Pts +"), tr("Pts −")]
            )
        )
        staff = self.club_app.staff
        table.display = staff is not None and staff.is_manager
        self.action_reload()

    def fmt(self, amount: int) -> str:
        """An amount in the club currency."""
        status = self.club_app.agent_status
        summary = self.summary or {}
        return money(
            amount,
            status.currency or summary.get("currency"),
            int(summary.get("minor_units", status.minor_units)),
        )

    def action_reload(self) -> None:
        """Fetch the day's summary."""
        assert self.day is not None
        self.call_api("day.summary", {"date": self.day.isoformat()},
                      on_done=self.done_summary, session=True)

    def action_day(self, delta: int) -> None:
        """Show another day."""
        assert self.day is not None
        self.day += timedelta(days=delta)
        self.action_reload()

    def done_summary(self, result: dict[str, Any]) -> None:
        assert self.day is not None
        self.summary = result
        self.query_one("#report-title", Static).update(
            tr("Report for {day}", day=current().date(self.day))
        )
        self.query_one("#figures", Static).update(figures_table(result, self.fmt))
        table = self.query_one("#per-staff", DataTable)
        table.clear()
        per_staff = result.get("per_staff")
        staff = self.club_app.staff
        table.display = bool(staff and staff.is_manager and per_staff is not None)
        for row in per_staff or []:
            table.add_row(
                *ordered(
                    [
                        tr("{name}", name=row["name"]),
                        number(int(row["count"])),
                        self.fmt(int(row["payable"])),
                        self.fmt(int(row["discounts"])),
                        number(int(row["points_given"])),
                        number(int(row["points_taken"])),
                    ]
                )
            )
        if current().rtl and current().visual_bidi:
            # Mirrored, the names are the right-hand column: a table wider than
            # its panel must show that end, not cut names to two letters.
            table.call_after_refresh(
                lambda: table.scroll_to(x=table.max_scroll_x, animate=False))
