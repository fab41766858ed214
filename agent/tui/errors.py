"""Cashier-readable, translated text for local API errors."""

from __future__ import annotations

from string import Formatter

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
from agent.tui.i18n import N_, agent_date, current, display, fill, number

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
    # (1.3) Package freezes: ``bad_freeze`` says ``why`` (``reason:why`` keys); the
    # figures come from ``data`` (dates in the UI's calendar, numbers in its digits).
    "bad_freeze": N_("This freeze is not possible: check its dates."),
    "bad_freeze:ends_before_start": N_("The freeze ends ({until}) before it starts ({from})."),
    "bad_freeze:in_past": N_("A freeze cannot start in the past ({from}): the earliest is "
                             "today, {today}."),
    "bad_freeze:overlap": N_("This package is already frozen from {frozen_from} to "
                             "{frozen_until}."),
    "freeze_too_long": N_("This package may be frozen {freezable_days} days in all (used: "
                          "{used}, asked: {days})."),
    "out_of_range": N_("Please check what was typed."),
    # (1.3) Manual adjustments (over-limit ones: adjust_dialog.LIMIT_TEXTS).
    "adjust_off": N_("The club does not allow manual adjustments on this terminal."),
    "no_earn_rate": N_("No points rate for amounts here: type the points instead."),
    "bad_kind": N_("This balance cannot be adjusted here."),
    "bad_reason": N_("Choose one of the listed reasons."),
    "member_not_active": N_("This card is blocked or reported lost: no benefits."),
    "unknown_member": N_("No member found."),
    # (1.3) Stored value and gift cards.
    "gift_card": N_("This is a gift card: use it in Pay, not as a member's card."),
    "gift_card_empty": N_("This gift card has no value left."),
    "gift_card_expired": N_("This gift card has expired."),
    "gift_card_unknown": N_("This gift card is not known here."),
    "gift_card_spent": N_("The gift card sold with this sale has been spent: the sale cannot "
                          "be refunded whole."),
    "gift_card_token_taken": N_("This card already belongs to a member or a gift card: use "
                                "a new card."),
    "insufficient_value": N_("Not enough stored value left: take another payment for the "
                             "rest."),
    "offline_value_limit": N_("Offline, this card or member has reached today's limit for "
                              "stored value: take another payment."),
    "member_needed": N_("Identify the member first."),
    "over_max_balance": N_("The balance would pass the most it may hold."),
    "not_spendable": N_("This balance cannot pay a sale here."),
    "amount_needed": N_("This product has an open price: type its amount."),
    "no_units_price": N_("This product cannot be paid in units."),
    "bad_value_line": N_("A top-up or gift card line is not right: check its amount."),
    "unknown_value_kind": N_("The club's rules do not know this balance: it cannot be sold."),
    "too_many_cards": N_("Too many gift cards in one sale (at most {max})."),
    "refund_whole_value": N_("A sale with top-ups or gift cards can only be refunded whole."),
    # Typed values, refunds, payments, appointments, sign-in. (A malformed request the
    # UI does not send — missing_param, wrong_type, bad_param — keeps the headline and
    # the agent's sentence, which names the parameter for a technician.)
    "empty": N_("Please fill this in."),
    "too_long": N_("That text is too long (at most {max_chars} characters)."),
    "bad_amount": N_("That amount is not right: check it."),
    "bad_time": N_("That time is not right: check it."),
    "time_without_offset": N_("That time is not right: check it."),
    "bad_date": N_("That date is not right: check it."),
    "bad_minutes": N_("The length must be {min} to {max} minutes."),
    "bad_lines": N_("Choose the lines to refund and how many of each."),
    "bad_method": N_("That payment method is not accepted here."),
    "no_such_sale": N_("There is no such sale on this terminal."),
    "unknown_sale": N_("There is no such sale on this terminal."),
    "appointment_overlap": N_("This staff member is already booked then."),
    "too_many_attempts": N_("Too many wrong PINs on this terminal: wait a minute or use your "
                            "badge."),
    "badge_not_tapped": N_("This badge is not known here, or was not tapped on this "
                           "terminal: tap your staff badge."),
    "badge_tap_expired": N_("The badge tap has expired: tap your badge again."),
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
    if isinstance(reason, str):
        key = f"{reason}:{data.get('why')}"  # bad_freeze:overlap
        sentence = _REASONS.get(key) or _REASONS.get(reason)
        if sentence is not None:
            return reason_sentence(sentence, data)
    if error.code not in _HEADLINES:
        return str(error)
    return fill(
        "{headline} ({detail})",
        headline=current().gettext(_HEADLINES[error.code]),
        detail=str(error),
    )


def reason_sentence(message: str, data: dict[str, object]) -> str:
    """``message`` translated, its ``{figures}`` taken from ``data``: a whole number
    in the UI's digits, an ISO date in its calendar; a figure the agent did not give
    is shown as ``?`` rather than the sentence being lost."""
    names = {name for _, name, _, _ in Formatter().parse(message) if name}
    return fill(message, **{name: _figure(data.get(name)) for name in names})


def _figure(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        return number(value)
    if isinstance(value, str):
        return agent_date(value) if len(value) == 10 else value
    return "?"
