"""Today's report: sales, discounts, points, credit, per staff (managers),
expenses and cash receipts, attendance."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Static

from agent.tui.i18n import N_, current, money, number, ordered, tr
from agent.tui.screens.base import ClubScreen
from agent.tui.widgets.kv import kv_row, kv_table


def refund_rows(summary: dict[str, Any], fmt: Any) -> list[tuple[str, str]]:
    """Refunds recorded on the day (of sales of any day) and what is left taken,
    when the agent reports them (``refunded``, ``net_sales``: docs/local-api.md)."""
    refunded = summary.get("refunded")
    if not isinstance(refunded, dict):
        return []
    rows = [(tr("Refunds (voids)"), tr("{n} ({voids})", n=number(int(summary.get("refunds") or 0)),
                                       voids=number(int(refunded.get("voids") or 0)))),
            (tr("Refunded"), "-" + fmt(int(refunded.get("payable") or 0))),
            (tr("Net taken"), fmt(int((summary.get("net_sales") or {}).get("payable") or 0)))]
    if refunded.get("unknown"):
        rows.append((tr("Refunds of sales not on this terminal"),
                     number(int(refunded["unknown"]))))
    return rows


def figures_table(summary: dict[str, Any], fmt: Any) -> Table:
    """The day's totals as label/value rows."""
    sales = summary.get("sales") or {}
    totals = summary.get("totals") or {}
    table = kv_table()
    rows = [
        (tr("Sales"), number(int(sales.get("count", 0)))),
        (tr("Gross"), fmt(int(sales.get("gross", 0)))),
        (tr("Discounts"), fmt(int(sales.get("discounts", 0)))),
        (tr("Taken (to pay)"), fmt(int(sales.get("payable", 0)))),
        *refund_rows(summary, fmt),
        (tr("Points given"), number(int(sales.get("points_given", 0)))),
        (tr("Points taken"), number(int(sales.get("points_taken", 0)))),
        (tr("Credit used"), fmt(int(sales.get("credit_used", 0)))),
        (tr("Cash receipts"), fmt(int(totals.get("income", 0)))),
        (tr("Expenses"), fmt(int(totals.get("expenses", 0)))),
        (tr("Net cash"), fmt(int(totals.get("net", 0)))),
    ]
    for label, value in rows:
        kv_row(table, label, Text(value, style="bold"))
    present = sum(1 for row in summary.get("attendance") or [] if row.get("present"))
    kv_row(table, tr("Staff in now"), Text(number(present), style="bold"))
    return table


class ReportScreen(ClubScreen):
    """The day at a glance; managers see it per staff member."""

    CSS_PATH = "report.tcss"
    MODE = "report"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "reload", N_("Refresh")),
        Binding("pageup", "day(-1)", N_("Day −"), priority=True),
        Binding("pagedown", "day(1)", N_("Day +"), priority=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.day: date | None = None
        self.summary: dict[str, Any] | None = None

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
        self.call_api("summary", "day.summary", {"date": self.day.isoformat()}, session=True)

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
                        row["name"],
                        number(int(row["count"])),
                        self.fmt(int(row["payable"])),
                        self.fmt(int(row["discounts"])),
                        number(int(row["points_given"])),
                        number(int(row["points_taken"])),
                    ]
                )
            )
