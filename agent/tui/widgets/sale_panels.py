"""The sale screen's panels: the member, the quote with every discount and why,
and the one-line TO PAY of narrow screens. Pure rendering of the agent's answers
(rich renderables), no Textual widgets, so each is tested on its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from agent.tui.explain import discount_label, limit_reason, note_text, why_not
from agent.tui.i18n import N_, current, display, fill, filln, number, plain, tr
from agent.tui.labels import credit_name, tier_name
from agent.tui.screens.sale_dialogs import earned_rows
from agent.tui.widgets.bidi import BidiText, tr_block
from agent.tui.widgets.kv import kv_row, kv_table
from agent.tui.widgets.member_progress import progress_lines

# Explanation steps shown as notes above the totals, and how.
NOTE_STYLES = {"rules": "bold red", "limit": "yellow", "member": "dim"}

def gettext(message: str) -> str:
    """``message`` translated, for text whose values are already plain (logical order)."""
    return current().gettext(message)


def member_lines(member: dict[str, Any] | None, fmt: Callable[[int], str],
                 point_value: int | None = None) -> Group | Text:
    """The member panel: name, tier, masked card, balances (one translated line each);
    points with their money value when ``point_value`` (minor units) is known.

    Each line wraps on its own, in reading order right to left too, and never
    between a money value and its sign (:class:`BidiText`)."""
    if member is None:
        return Text(tr("No member. Tap a card, or type a phone or club code."), style="dim")
    tier = member.get("tier")
    # A member enrolled offline has no tier until the club answers.
    lines = [BidiText(fill("{name} · {tier}", name=member.get("name") or "?",
                           tier=tier_name(str(tier))) if tier
                      else str(plain(str(member.get("name") or "?"))), "bold")]
    if member.get("masked"):
        lines.append(BidiText(fill("Card {masked}", masked=member["masked"])))
    balances = member.get("balances") or {}
    if member.get("pool_id"):  # (1.3) the balances below are the family's
        lines.append(BidiText(fill("Family pool")))
    if "points" in balances:
        points = int(balances["points"])
        lines.append(BidiText(fill("Points: {n} (worth {amount})", n=number(points),
                                   amount=fmt(points * point_value)) if point_value
                              else fill("Points: {n}", n=number(points))))
    for kind, amount in balances.items():
        if kind.startswith("credit."):
            lines.append(BidiText(fill("{kind}: {amount}", kind=credit_name(kind),
                                       amount=fmt(int(amount)))))
    lines.extend(progress_lines(member, fmt))  # (1.3) next tier, referrals
    return Group(*lines)


def quote_table(quote: dict[str, Any] | None, fmt: Callable[[int], str],
                to_pay: bool = True) -> Table | Text:
    """The quote panel: gross, each discount and why, redemption, payable, limits.

    ``to_pay=False`` leaves the TO PAY row out (narrow screens pin it below)."""
    if quote is None:
        return Text(tr("Type an amount, or scan items."), style="dim")
    table = kv_table()
    kv_row(table, tr("Total"), fmt(quote["gross"]))
    for item in quote.get("explain", []):
        # Notes of the agent (no rule: stale rules, an offline limit) matter to
        # the cashier; the other notes repeat rows shown below.
        if "rule" not in item and item.get("step") in NOTE_STYLES:
            kv_row(table, BidiText(note_text(item, quote), NOTE_STYLES[item["step"]]))
            continue
        if "rule" not in item:
            continue
        if not item.get("applied"):
            # Every rule not applied and why (tier, day, basket, group …), of
            # every kind: the customer asks why there was no cashback too.
            kv_row(table, BidiText(gettext(N_("✗ {why}")).format(why=why_not(item, quote, fmt)),
                                   "dim"))
        elif item.get("kind") == "discount":
            kv_row(
                table,
                BidiText(gettext(N_("✓ {label}")).format(label=discount_label(item)), "green"),
                Text("-" + fmt(int(item.get("amount", 0))), style="green"),
            )
    kv_row(table, Text(tr("Net"), style="bold"), Text(fmt(quote["net"]), style="bold"))
    if quote.get("redeemed_points"):
        kv_row(
            table,
            tr("Points used: {n}", n=number(quote["redeemed_points"])),
            "-" + fmt(quote["redeemed_value"]),
        )
    for used in quote.get("credits_used", []):
        kv_row(table, display(credit_name(str(used["kind"]))), "-" + fmt(used["amount"]))
    if to_pay:
        kv_row(
            table,
            Text(tr("TO PAY"), style="bold reverse"),
            Text(fmt(quote["payable"]), style="bold reverse"),
        )
    limits = quote.get("redeem_limits") or {}
    points = limits.get("points")
    value = int((points or {}).get("value") or 0)
    for row in earned_rows(quote, fmt, value):
        kv_row(table, BidiText(row, "cyan"))
    if points and points.get("max"):
        kv_row(table, tr_block("Points usable: {lo}–{hi} (up to {amount})",
                              lo=number(points["min"]), hi=number(points["max"]),
                              amount=fmt(int(points["max"]) * value), style="yellow"))
        if limits.get("held_by") not in (None, "balance") \
                and int(points["max"]) < int(points.get("available") or 0):
            kv_row(table, tr_block("  not more: {why}", why=limit_reason(limits["held_by"]),
                                   style="dim"))
    elif points and quote.get("redeemed_points"):
        pass  # all that may be redeemed is redeemed (shown above)
    elif points and int(points.get("available") or 0) > 0:
        why = limits.get("held_by")
        kv_row(table, Text(tr("No points usable now: {why}", why=limit_reason(why))
                           if why not in (None, "balance") else tr("No points usable now"),
                           style="dim"))
    used = {str(c["kind"]): int(c["amount"]) for c in quote.get("credits_used") or []}
    for credit in limits.get("credits", []):
        kind = str(credit["kind"])
        usable, has = int(credit["max"]), int(credit.get("available") or 0)
        if kind in used:
            continue  # used: the row above says how much
        if usable:
            usable_row = tr_block("Usable {kind}: {amount} of {has}", kind=credit_name(kind),
                           amount=fmt(usable), has=fmt(has), style="yellow") if usable < has \
                else tr_block("Usable {kind}: {amount}", kind=credit_name(kind),
                              amount=fmt(usable), style="yellow")
            kv_row(table, usable_row)
        else:
            kv_row(table, tr_block("No {kind} usable now ({has})", kind=credit_name(kind),
                                   has=fmt(has), style="dim"))
        if credit.get("held_by") and usable < has:
            kv_row(table, tr_block("  not more: {why}", why=limit_reason(credit["held_by"]),
                                   style="dim"))
    # The rules the agent did not look at (another tier, day, product …), last: the
    # customer may ask why a promotion is missing (#15 item 15).
    for item in quote.get("explain", []):
        if item.get("step") == "index" and int(item.get("rules") or 0) > 0:
            kv_row(table, BidiText(filln(
                "{n} other rule does not fit this sale (tier, day, time, product, card)",
                "{n} other rules do not fit this sale (tier, day, time, product, card)",
                int(item["rules"])), "dim"))
    return table


def to_pay_line(quote: dict[str, Any] | None, fmt: Callable[[int], str]) -> Table | Text:
    """One line, ``TO PAY  €48.01``, shown under the quote on narrow screens."""
    if quote is None:
        return Text("")
    table = kv_table()
    kv_row(table, Text(tr("TO PAY"), style="bold reverse"),
           Text(fmt(quote["payable"]), style="bold reverse"))
    return table
