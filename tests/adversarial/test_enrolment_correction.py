"""A manager corrects a mis-typed enrolment (#15 item 10): ``member.profile`` names
the enrolment event, ``event.correct`` amends its name and phone; the till finds the
member by the corrected phone at once, the enrolment event stays as it was.

The real services, store and socket (``tests.agent.localapi.harness``).
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


def test_a_manager_corrects_the_name_and_phone_of_an_enrolment() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        cashier = await h.login()
        manager = await h.login("mg", "9999")
        enrol = await c.call("member.enrol", {"name": "CLUB-9999", "phone": "0935 111 2222",
                                              "session": cashier})
        other = await c.call("member.enrol", {"name": "Ali R.", "phone": "0935 333 4444",
                                              "session": cashier})
        profile = await c.call("member.profile", {"member_id": enrol["member_id"],
                                                  "session": cashier})
        enrolment = profile["enrolment"]
        enrol_event = next(e for e in h.outbox() if e["type"] == "member_enrol")
        assert enrolment["event_id"] == enrol_event["id"]
        assert enrolment["phone"].endswith("9351112222")
        before = h.outbox()
        base = {"event_id": enrolment["event_id"], "reason": "scanned the code into the name",
                "session": manager}
        for bad, code in [({**base, "name": "Sara J.", "session": cashier}, -32006),
                          ({**base, "name": "   "}, -32602),                 # empty name
                          ({**base, "name": "x" * 10_000}, -32602),          # huge
                          ({**base, "phone": "0935 333 4444"}, -32008),      # Ali's phone
                          ({**base, "phone": "4111 1111 1111 1111"}, -32602),  # a card
                          ({**base, "phone": "12"}, -32602),
                          ({**base, "amount": 700}, -32602)]:            # not an enrolment's
            err = await _refused(c.call("event.correct", bad))
            assert err.code == code, (bad, err)
        assert h.outbox() == before                      # nothing recorded when refused
        # Two managers' tills correct at once: both are recorded, none is lost.
        await asyncio.gather(
            h.client().call("event.correct", {**base, "name": "Sara Jafari"}),
            h.client().call("event.correct", {**base, "phone": "0935 111 2299"}))
        found = await c.call("member.identify", {"phone": "0935 111 2299"})
        assert (found["member_id"], found["name"]) == (enrol["member_id"], "Sara Jafari")
        err = await _refused(c.call("member.identify", {"phone": "0935 111 2222"}))
        assert err.code == -32001                        # the mistyped phone finds nobody
        ali = await c.call("member.identify", {"phone": "0935 333 4444"})
        assert ali["member_id"] == other["member_id"]
        events = h.outbox()
        assert events[: len(before)] == before           # the enrolment is unchanged
        fixes = [e for e in events if e["type"] == "correction"]
        assert sorted(str(sorted(f["changes"])) for f in fixes) == ["['name']", "['phone']"]
        assert {f["member_id"] for f in fixes} == {enrol["member_id"]}
        phone = next(f for f in fixes if "phone" in f["changes"])["changes"]["phone"]
        assert phone.startswith("tel:") and phone.endswith("9351112299")
        profile = await c.call("member.profile", {"member_id": enrol["member_id"],
                                                  "session": manager})
        assert profile["name"] == "Sara Jafari" and profile["enrolment"]["phone"] == phone[4:]
        print(f"figure: {len(fixes)} concurrent corrections recorded, "
              f"{len(events) - len(fixes)} other events unchanged")
    run(scenario)


def test_a_member_enrolled_elsewhere_has_no_enrolment_to_correct() -> None:
    import json

    from tests.agent.localapi.harness import GOLD

    async def scenario(h: Harness) -> None:
        h.store.members.import_snapshot([json.dumps({**GOLD, "member_id": "m-7",
                                                     "version": 9})], 11, False)
        session = await h.login("mg", "9999")
        profile = await h.client().call("member.profile", {"member_id": "m-7",
                                                           "session": session})
        assert profile["enrolment"] is None
    run(scenario)
