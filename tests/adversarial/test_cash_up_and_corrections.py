"""Cash-up by tender, the Z report and manager corrections (#15 items 7 and 10).

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


async def _sell(h: Harness, session: str, amount: int, payment: str) -> None:
    c = h.client()
    q = await c.call("sale.quote", {"amount": amount})
    await c.call("sale.commit", {"quote_id": q["quote_id"], "payment": payment,
                                 "session": session})


def test_net_cash_counts_cash_sales_and_splits_by_tender() -> None:
    # Seen: "Net cash" was receipts − expenses; the cash sales were not in it.
    async def scenario(h: Harness) -> None:
        c = h.client()
        session = await h.login()
        await _sell(h, session, 1000, "cash")
        await _sell(h, session, 2500, "cash")
        await _sell(h, session, 4000, "card")
        await _sell(h, session, 300, "other")
        await c.call("cash_receipt.add", {"amount": 5000, "category": "float",
                                          "session": session})
        await c.call("expense.add", {"amount": 700, "category": "milk", "session": session})
        s = await c.call("day.summary", {})
        assert s["by_tender"] == {"cash": {"count": 2, "payable": 3500},
                                  "card": {"count": 1, "payable": 4000},
                                  "other": {"count": 1, "payable": 300}}
        # #15 item 3 "refunds in every total": cash refunded is a key of its own (0 here).
        assert s["cash"] == {"sales": 3500, "receipts": 5000, "expenses": 700, "refunds": 0,
                             "net": 7800}
        assert s["totals"] == {"income": 5000, "expenses": 700, "net": 4300}  # unchanged
    run(scenario)


def test_day_close_is_for_managers_and_numbered() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        cashier = await h.login()
        manager = await h.login("mg", "9999")
        await _sell(h, cashier, 1000, "cash")
        err = await _refused(c.call("day.close", {"session": cashier}))
        assert err.code == -32006 and err.data["reason"] == "role"
        err = await _refused(c.call("day.close", {}))
        assert err.code == -32006
        # Two managers' tills close at once: two numbered closes, none lost.
        first, second = await asyncio.gather(
            h.client().call("day.close", {"session": manager}),
            h.client().call("day.close", {"session": manager}))
        assert sorted([first["close_no"], second["close_no"]]) == [1, 2]
        assert first["totals"]["cash"]["net"] == 1000 and first["closed_by"] == "mg"
        closes = [e for e in h.outbox() if e["type"] == "day_close"]
        assert len(closes) == 2 and closes[0]["totals"]["by_tender"]["cash"]["count"] == 1
        assert closes[0]["staff_id"] == "mg" and closes[0]["date"] == "2026-11-25"
        print(f"figure: 2 concurrent closes -> close_no {first['close_no']}, "
              f"{second['close_no']}")
    run(scenario)


def test_corrections_are_new_events_for_managers_only() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        cashier = await h.login()
        manager = await h.login("mg", "9999")
        exp = await c.call("expense.add", {"amount": 70000, "category": "milk",
                                           "session": cashier})      # meant 7.00
        rec = await c.call("cash_receipt.add", {"amount": 500, "category": "float",
                                                "session": cashier})
        enrol = await c.call("member.enrol", {"name": "CLUB-9999", "phone": "0935 111 2222",
                                              "session": cashier})
        enrol_id = next(e["id"] for e in h.outbox() if e["type"] == "member_enrol")
        before = h.outbox()
        base = {"event_id": exp["event_id"], "amount": 700, "reason": "typo",
                "session": manager}
        for bad, code in [({**base, "session": cashier}, -32006),          # cashier
                          ({**base, "reason": ""}, -32602),                # no reason
                          ({**base, "reason": "x\x1b[2J"}, -32602),        # control chars
                          ({**base, "amount": 0}, -32602),                 # void instead
                          ({**base, "void": True}, -32602),                # both
                          ({**base, "amount": None}, -32602),              # nothing
                          ({**base, "name": "Eve"}, -32602),               # not an expense's
                          ({**base, "event_id": "nope"}, -32007),           # not found
                          ({**base, "void": "yes", "amount": None}, -32602)]:
            err = await _refused(c.call("event.correct", bad))
            assert err.code == code, (bad, err)
        assert h.outbox() == before          # nothing recorded by a refused correction
        await c.call("event.correct", base)
        await c.call("event.correct", {"event_id": rec["event_id"], "void": True,
                                       "reason": "entered twice", "session": manager})
        fix = await c.call("event.correct", {"event_id": enrol_id, "name": "Sara Jafari",
                                             "reason": "scanned the code into the name",
                                             "session": manager})
        # A correction of a correction, or of a sale, is refused: correct the original.
        err = await _refused(c.call("event.correct", {"event_id": fix["event_id"],
                                                      "void": True, "reason": "x",
                                                      "session": manager}))
        assert err.code == -32007
        s = await c.call("day.summary", {})
        [expense] = s["expenses"]
        assert expense["amount"] == 700 and expense["correction"]["reason"] == "typo"
        assert s["cash_receipts"][0]["correction"]["void"] is True
        assert s["totals"] == {"income": 0, "expenses": 700, "net": -700}
        events = h.outbox()
        # History stays: the original events are unchanged, corrections refer to them.
        assert events[: len(before)] == before
        corrections = [e for e in events if e["type"] == "correction"]
        assert [(e["ref_type"], e["action"], e["staff_id"]) for e in corrections] == [
            ("expense", "amend", "mg"), ("cash_receipt", "void", "mg"),
            ("member_enrol", "amend", "mg")]
        assert corrections[2]["member_id"] == enrol["member_id"]
        assert corrections[2]["changes"] == {"name": "Sara Jafari"}
    run(scenario)


def test_club_codes_are_found_whatever_their_case() -> None:
    # Seen: "club-1002" found nobody. #15 item 13.
    import json

    from tests.agent.localapi.harness import GOLD

    async def scenario(h: Harness) -> None:
        coded = {**GOLD, "member_id": "m-7", "version": 9,
                 "identifiers": ["code:CLUB-1002"], "name": "Reza M."}
        qr = {**GOLD, "member_id": "m-8", "version": 9, "identifiers": ["code:Qr-xY"],
              "name": "Case Sensitive"}
        h.store.members.import_snapshot([json.dumps(coded), json.dumps(qr)], 11, False)
        c = h.client()
        for typed in ("club-1002", "Club-1002", " CLUB-1002 "):
            found = await c.call("member.identify", {"code": typed})
            assert found["member_id"] == "m-7" and found["token"] == "code:CLUB-1002"
        found = await c.call("member.identify", {"token": "code:club-1002"})
        assert found["member_id"] == "m-7"
        # An exact (mixed-case) payload is kept as read; no folding the other way.
        assert (await c.call("member.identify", {"code": "Qr-xY"}))["member_id"] == "m-8"
        err = await _refused(c.call("member.identify", {"code": "qr-xy"}))
        assert err.code == -32001
        q = await c.call("sale.quote", {"amount": 1000, "token": found["token"]})
        assert q["member"]["member_id"] == "m-7"
    run(scenario)
