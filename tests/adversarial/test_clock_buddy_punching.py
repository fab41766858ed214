"""Nobody clocks a colleague in or out without that person's badge or PIN (#15 item 9).

The real services, store and socket (``tests.agent.localapi.harness``): a client
that knows only staff ids tries to clock them; a cashier pretends to be a manager;
PIN guesses through ``staff.clock`` hit the same lock-out as sign-in.
"""

from __future__ import annotations

import asyncio

import pytest

from agent.errors import ApiError
from tests.agent.localapi.harness import Harness, run


async def _refused(call: object) -> ApiError:
    with pytest.raises(ApiError) as info:
        await call  # type: ignore[misc]
    return info.value


def _attendance(h: Harness) -> list[dict[str, object]]:
    return [e for e in h.outbox() if e["type"] == "attendance"]


def test_a_staff_id_alone_clocks_nobody() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        for sid in ("c1", "mg", "tech", "nobody"):
            err = await _refused(c.call("staff.clock", {"staff_id": sid, "action": "in"}))
            assert err.code == -32602 and err.data["reason"] == "pin_or_badge"
        # A cashier's session is no manager's: not a correction either.
        session = await h.login("c1", "1234")
        err = await _refused(c.call("staff.clock", {"staff_id": "mg", "action": "in",
                                                    "session": session, "reason": "x"}))
        assert err.code == -32006 and err.data["reason"] == "role"
        assert _attendance(h) == []
        print(f"figure: 5 attempts without PIN/badge, {len(_attendance(h))} recorded")
    run(scenario)


def test_clock_by_pin_and_wrong_pins_lock_out() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        await c.call("staff.clock", {"staff_id": "mg", "pin": "9999", "action": "in"})
        # Six guesses at once from six connections: at most 5 are checked.
        guesses = [h.client().call("staff.clock", {"staff_id": "c1", "pin": f"{i:04d}",
                                                   "action": "in"}) for i in range(6)]
        results = await asyncio.gather(*guesses, return_exceptions=True)
        reasons = sorted(r.data["reason"] for r in results if isinstance(r, ApiError))
        assert reasons.count("bad_credentials") == 5 and reasons.count("locked_out") == 1
        err = await _refused(c.call("staff.clock", {"staff_id": "c1", "pin": "1234",
                                                    "action": "in"}))
        assert err.data["reason"] == "locked_out"
        assert [(e["staff_id"], e["action"]) for e in _attendance(h)] == [("mg", "in")]
        print(f"figure: 6 concurrent PIN guesses -> {reasons}")
    run(scenario)


def test_a_managers_correction_is_recorded_as_such() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        session = await h.login("mg", "9999")
        err = await _refused(c.call("staff.clock", {"staff_id": "c1", "action": "in",
                                                    "session": session}))
        assert err.code == -32602 and err.data["param"] == "reason"
        err = await _refused(c.call("staff.clock", {"staff_id": "c1", "action": "in",
                                                    "session": session, "reason": "\x1b[2J"}))
        assert err.code == -32602
        r = await c.call("staff.clock", {"staff_id": "c1", "action": "in", "session": session,
                                         "reason": "forgot her badge at home"})
        assert r["corrected_by"] == "mg" and r["staff_id"] == "c1"
        [event] = _attendance(h)
        assert event["staff_id"] == "c1" and event["corrected_by"] == "mg"
        assert event["reason"] == "forgot her badge at home"
        assert event["identified_by"] is None
    run(scenario)
