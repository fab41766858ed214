"""What the store refuses reaches the client as a cashier's message, cause kept.

Attacks: two tills booking one slot at once, two managers refunding one sale at
once, a disk that fails under a sale. Exactly one write wins; the loser's
ApiError says what to do and keeps the store's exception as ``__cause__``
(matched by type, never by class name).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from agent.errors import ApiError, StorageError
from agent.localapi import CONFLICT, STORAGE
from agent.offline_queue import AlreadyRefunded, AppointmentConflict
from tests.agent.localapi.harness import Harness, run


async def _outcomes(*coros: Awaitable[object]) -> tuple[list[object], list[ApiError]]:
    done = await asyncio.gather(*coros, return_exceptions=True)
    errors = [d for d in done if isinstance(d, ApiError)]
    assert all(isinstance(d, ApiError | dict) for d in done), done
    return [d for d in done if not isinstance(d, ApiError)], errors


def test_two_tills_booking_one_slot_at_once_get_one_booking_and_one_named_conflict() -> None:
    async def scenario(h: Harness) -> None:
        session = await h.login("mg", "9999")
        base = {"customer": "m-1", "service": "haircut", "staff_id": "mg",
                "start": "2026-11-24T10:00:00+01:00", "minutes": 30, "session": session}
        for trial in range(5):
            start = f"2026-11-2{4 + trial}T10:00:00+01:00"
            won, lost = await _outcomes(
                h.services.appointment_create({**base, "start": start}, None),
                h.services.appointment_create(
                    {**base, "start": start.replace("T10:00", "T10:10")}, None))
            assert len(won) == 1 and len(lost) == 1
            err = lost[0]
            assert err.code == CONFLICT and "already booked" in str(err)
            assert isinstance(err.__cause__, AppointmentConflict)
            # #17: every error carries data.reason.
            assert err.data == {"appointment_id": err.__cause__.other_id,
                                "reason": "appointment_overlap"}
        print("figure: 5 of 5 double bookings: one booked, one -32008 naming it")
    run(scenario)


def test_two_managers_refunding_one_sale_at_once_record_one_refund() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        cashier, manager = await h.login(), await h.login("mg", "9999")
        q = await c.call("sale.quote", {"amount": 1000})
        sale = await c.call("sale.commit", {"quote_id": q["quote_id"], "session": cashier})
        ask = {"sale_id": sale["sale_id"], "reason": "broken", "session": manager}
        won, lost = await _outcomes(*(h.services.sale_refund(dict(ask), None) for _ in range(4)))
        assert len(won) == 1 and len(lost) == 3
        assert all(e.code == CONFLICT and isinstance(e.__cause__, AlreadyRefunded) for e in lost)
        refunds = [e for e in h.outbox() if e["type"] == "refund"]
        assert len(refunds) == 1
        print(f"figure: 4 refunds of one sale at once: {len(refunds)} recorded, "
              f"{len(lost)} answered -32008")
    run(scenario)


def test_a_disk_failing_under_a_sale_says_nothing_was_recorded_and_keeps_the_cause() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        cashier = await h.login()
        q = await c.call("sale.quote", {"amount": 1000})
        h.flaky.fail_appends = True
        try:
            await h.services.sale_commit({"quote_id": q["quote_id"], "session": cashier}, None)
        except ApiError as exc:
            err = exc
        else:
            raise AssertionError("the commit did not fail")
        assert err.code == STORAGE and "nothing was recorded" in str(err)
        assert isinstance(err.__cause__, StorageError)
        h.flaky.fail_appends = False
        sale = await c.call("sale.commit", {"quote_id": q["quote_id"], "session": cashier})
        assert [e["id"] for e in h.outbox() if e["type"] == "sale"] == [sale["sale_id"]]
        print("figure: a failed write answered -32005 with its cause; the retry recorded 1 sale")
    run(scenario)
