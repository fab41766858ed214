"""Manual balance adjustments (``balance_adjust``, protocol 1.3) recorded exactly.

The check and the append are ONE write transaction (as a sale's ``check_funds``):
the member's usable balance (a deduction never takes it below zero), what was
added to the member today and, while offline, what this staff member added today
(the bundle's limits, :func:`agent.rules.adjust.adjustment_problem`) are read in
the transaction that records the event, so no interleaving of tills, threads or
processes passes a limit or a balance. See docs/store.md "Manual adjustments".
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from agent.errors import LimitExceeded
from agent.offline_queue import events as ev
from agent.offline_queue.entries import StoredEvent
from agent.rules.adjust import AdjustmentsConfig, Allowance, adjustment_problem

if TYPE_CHECKING:
    from agent.offline_queue.outbox import Outbox


class AdjustmentRefused(LimitExceeded):
    """A ``balance_adjust`` the balance or the bundle's limits do not allow; nothing
    was recorded. ``limit`` is the reason code (``balance``, ``balance_bound``,
    ``adjust_off``, ``kind_not_grantable``, ``max_add``, ``max_deduct``,
    ``member_day``, ``offline_staff_day``); ``params`` what the limit is and what is left."""

    def __init__(self, limit: str, message: str, params: dict[str, Any] | None = None):
        super().__init__(limit, message)
        self.params = dict(params or {})


def allowance_in_tx(outbox: Outbox, member_id: str, kind: str, staff_id: str | None,
                    day: tuple[datetime, datetime]) -> Allowance:
    """What was added by hand today (not rejected): to this member on ``kind``, and
    while offline by ``staff_id`` on points (``kind`` points) or on all granted kinds."""
    start, end = ev.epoch_us(day[0]), ev.epoch_us(day[1])
    member = outbox.db.execute_sql(
        "SELECT coalesce(sum(json_extract(body, '$.amount')), 0) FROM events "
        "WHERE member_id = ? AND type = 'balance_adjust' AND state != 'rejected' "
        "AND at_us >= ? AND at_us < ? AND json_extract(body, '$.kind') = ? "
        "AND json_extract(body, '$.amount') > 0", (member_id, start, end, kind)).fetchone()[0]
    points = kind == ev.POINTS
    staff = outbox.db.execute_sql(
        "SELECT coalesce(sum(json_extract(body, '$.amount')), 0) FROM events "
        "WHERE recorded_by IS ? AND type = 'balance_adjust' AND state != 'rejected' "
        "AND at_us >= ? AND at_us < ? AND json_extract(body, '$.offline') = 1 "
        "AND (json_extract(body, '$.kind') = 'points') = ? "
        "AND json_extract(body, '$.amount') > 0", (staff_id, start, end, points)).fetchone()[0]
    return Allowance(member_added=int(member), staff_added_offline=int(staff))


_MESSAGES = {
    "adjust_off": "Manual adjustments of this balance are not enabled by the club.",
    "kind_not_grantable": "The club does not allow granting this kind of balance.",
    "max_add": "That is more than the club allows in one adjustment (at most {max}).",
    "max_deduct": "That is more than the club allows to deduct at once (at most {max}).",
    "member_day": "This member has reached today's limit of manual additions "
                  "({max}; {left} left).",
    "offline_staff_day": "While the terminal is offline you may add at most {max} by hand "
                         "per day ({left} left); try again when it is back online.",
    "zero": "The amount must not be 0.",
}


def append_adjustment(outbox: Outbox, body: dict[str, Any], *, at: datetime,
                      staff_id: str | None, offline: bool, config: AdjustmentsConfig | None,
                      day: tuple[datetime, datetime]) -> tuple[StoredEvent, dict[str, int]]:
    """Check and record one ``balance_adjust`` in one write transaction; return it
    with the member's usable balances after it.

    A body with ``request_id`` (the client's idempotency key) that this member
    already has is not recorded again: the earlier event is returned (a retry
    after a lost answer). Raises AdjustmentRefused (nothing recorded) when the
    bundle's limits refuse it (``config``; ``day`` is the club-local day [start,
    end) of ``at``), when a deduction is more than the usable balance (``balance``)
    or an addition would pass MAX_AMOUNT (``balance_bound``); InvalidEvent for a malformed body.
    """
    ev.validate_body("balance_adjust", body)
    at_text = ev.format_at(at)
    member_id = str(body["member_id"])
    request_id = body.get("request_id")
    with outbox.db.write("recording a balance adjustment"):
        if isinstance(request_id, str):
            # A retry of a request whose answer was lost (the agent restarted): the
            # adjustment recorded then, never a second one.
            done = outbox.event_for_request("balance_adjust", member_id, request_id)
            if done is not None:
                return done, outbox.members.usable_balances(member_id)
        check_in_tx(outbox, body, staff_id=staff_id, offline=offline, config=config, day=day)
        stored = outbox.append_in_tx("balance_adjust", body, at, at_text, staff_id, offline)
        balances = outbox.members.usable_balances(member_id)
    return stored, balances


def check_in_tx(outbox: Outbox, body: dict[str, Any], *, staff_id: str | None, offline: bool,
                config: AdjustmentsConfig | None, day: tuple[datetime, datetime]) -> int:
    """Raise AdjustmentRefused unless the limits and the usable balance allow ``body``
    now; return the balance of its kind before it. Inside the caller's transaction
    (the write one to record; a read one for a preview, which may then be overtaken)."""
    member_id, kind, amount = str(body["member_id"]), str(body["kind"]), int(body["amount"])
    allowance = allowance_in_tx(outbox, member_id, kind, staff_id, day)
    problem = adjustment_problem(config, kind, amount, offline=offline, allowance=allowance)
    if problem is not None:
        reason, params = problem
        raise AdjustmentRefused(reason, _MESSAGES[reason].format(**params), params)
    have = outbox.members.usable_balances(member_id).get(kind, 0)
    if amount < 0 and have + amount < 0:
        raise AdjustmentRefused("balance", f"The member has only {have} {kind}; at most "
                                f"{max(have, 0)} can be deducted. Nothing was recorded.",
                                {"balance": have})
    if have + amount > ev.MAX_AMOUNT:
        raise AdjustmentRefused("balance_bound", "The member's balance would become too "
                                "large to record; nothing was recorded.", {})
    return have


def preview_adjustment(outbox: Outbox, body: dict[str, Any], *, staff_id: str | None,
                       offline: bool, config: AdjustmentsConfig | None,
                       day: tuple[datetime, datetime]) -> int:
    """:func:`check_in_tx` as a read, recording nothing (no write lock: a preview may be
    overtaken; the append checks again): the balance of the kind before it, or
    AdjustmentRefused."""
    ev.validate_body("balance_adjust", body)
    with outbox.db.guard("checking a balance adjustment"):
        return check_in_tx(outbox, body, staff_id=staff_id, offline=offline, config=config,
                           day=day)
