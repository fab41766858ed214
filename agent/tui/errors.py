"""Cashier-readable, translated text for local API errors."""

from __future__ import annotations

from agent.errors import ApiError
from agent.localapi import (
    CONFLICT,
    INVALID_PARAMS,
    LIMIT,
    MEMBER_NOT_ACTIVE,
    NOT_ALLOWED,
    NOT_FOUND,
    QUOTE_EXPIRED,
    STORAGE,
    UNKNOWN_MEMBER,
)
from agent.tui.i18n import N_, current, display, fill

# A translated headline per error code; the agent's own sentence follows it
# where it carries specifics (who is booked, which limit).
_HEADLINES = {
    UNKNOWN_MEMBER: N_("No member found."),
    MEMBER_NOT_ACTIVE: N_("This card is blocked or reported lost: no benefits."),
    LIMIT: N_("Over a limit."),
    QUOTE_EXPIRED: N_("The price has expired; it was checked again."),
    STORAGE: N_("Could not save: nothing was recorded. Call a technician."),
    NOT_ALLOWED: N_("Not allowed for your role, or your sign-in has ended."),
    NOT_FOUND: N_("Not found."),
    CONFLICT: N_("Refused: it clashes with what is already recorded."),
    INVALID_PARAMS: N_("Please check what was typed."),
}
# A whole translated sentence per machine-readable ``data.reason`` the agent
# gives (docs/local-api.md); it replaces the agent's English one.
_REASONS = {
    "bad_credentials": N_("Staff number or PIN not right."),
    "pin_or_badge": N_("Clocking needs that person's PIN or badge."),
    "role": N_("Not allowed for your role."),
    "no_session": N_("Please sign in first."),
    "session_expired": N_("Your sign-in has ended: please sign in again."),
    "staff_removed": N_("This staff member was removed."),
    "club_manages_staff": N_("The club manages the staff list: change it there."),
    "already_recorded": N_("This sale is already recorded."),
    "refunded": N_("This sale is already refunded."),
    "void_not_last": N_("Only the last sale can be voided; a manager can refund this one."),
    "void_other_staff": N_("Only its cashier or a manager can void this sale."),
    "void_too_late": N_("Too late to void (5 minutes); a manager can refund it."),
    "amount_too_large": N_("The amount is too large."),
    "control_character": N_("The text holds a character that cannot be stored."),
    "card_number": N_("That looks like a bank card number: never type one here."),
    "shutting_down": N_("The agent is restarting: try again in a moment."),
    # Refunds by line, tenders (protocol 1.1), products, printing, looked-up members.
    "over_refund": N_("More than is left to refund on that line."),
    "partly_refunded": N_("Part of this sale is already refunded: refund the rest by line."),
    "no_such_line": N_("That sale has no such line."),
    "tenders_short": N_("The payments add up to less than to pay."),
    "tenders_over": N_("Only cash can be more than to pay; the other payments are too much."),
    "bad_tenders": N_("The payments are not right: check each amount and method."),
    "unknown_product": N_("Unknown product: type its price."),
    "not_on_sale": N_("This product is not on sale now."),
    "weight_needed": N_("Weigh this product first: type its weight in grams."),
    "lookup_failed": N_("The club could not be asked about this card: try again."),
    "earn_only": N_("This member can only earn here while the club is not answering."),
    "no_printer": N_("No receipt printer is set up."),
    "printer_busy": N_("The printer is busy: try again in a moment."),
    "locked_out": N_("Too many wrong PINs: wait a moment, or ask a manager."),
    # (1.3) house accounts
    "account_not_authorised": N_("This customer may not buy on this account: ask for the "
                                 "account card or another payment."),
    "account_limit": N_("Over the account's credit limit: take another payment for the rest."),
    "account_offline_limit": N_("Offline, no more may be charged on this account: take "
                                "another payment."),
    "account_closed": N_("This house account is closed."),
    "account_unknown": N_("No such house account on this terminal."),
    "account_overpaid": N_("That is more than the account owes."),
    "account_card": N_("This is a house account's card: use it to pay on account."),
    "bad_account": N_("Name the house account to pay on."),
    # Visit packages (protocol 1.3).
    "package_used_up": N_("No visits are left on this package: sell a renewal."),
    "package_frozen": N_("This package is frozen today."),
    "package_expired": N_("This package has expired (grace days over): sell a renewal."),
    "package_not_started": N_("This package has not started yet."),
    "package_unknown": N_("This member holds no such package."),
    "package_offline_limit": N_("Offline: this member was checked in here today already."),
    "package_choice": N_("Several packages: choose one."),
    "package_none": N_("This member has no package to check in with."),
    "package_used": N_("The package this sale sold was used: it cannot be refunded "
                       "here; ask the club."),
    # Card lifecycle (protocol 1.3).
    "card_lost": N_("This card was reported lost: no benefits. Ask for the member's new card."),
    "card_taken": N_("This card already belongs to another member; it cannot be linked."),
    "card_linked": N_("This card is already this member's."),
    "not_members_card": N_("The lost card is not this member's."),
    "not_a_card": N_("Only a card, tag or printed code can be linked."),
    "bad_nid": N_("That national id is not right: check the number."),
    "nid_unavailable": N_("This terminal cannot use national ids yet."),
}
DISCONNECTED = -1


def error_text(error: ApiError) -> str:
    """What to show the cashier for ``error``, in the UI's language (display order)."""
    return display(error_logical(error))


def error_logical(error: ApiError) -> str:
    """:func:`error_text` in logical order, for a line that may wrap (RTL)."""
    if error.code == DISCONNECTED:
        return fill("The agent is not answering. Check that it is running.")
    if current().code == "en":
        # The agent's messages are English sentences written for cashiers.
        return str(error)
    data = error.data if isinstance(error.data, dict) else {}
    reason = data.get("reason")
    if isinstance(reason, str) and reason in _REASONS:
        return current().gettext(_REASONS[reason])
    if error.code not in _HEADLINES:
        return str(error)
    return fill(
        "{headline} ({detail})",
        headline=current().gettext(_HEADLINES[error.code]),
        detail=str(error),
    )
