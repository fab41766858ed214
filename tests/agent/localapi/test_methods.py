"""The local-API methods: results, errors and roles (local-api.md)."""

from __future__ import annotations

import asyncio

import pytest

from agent.errors import ApiError
from tests.agent.localapi.harness import Harness, run


async def expect(code: int, coro: object) -> ApiError:
    with pytest.raises(ApiError) as info:
        await coro  # type: ignore[misc]
    assert info.value.code == code, (info.value.code, str(info.value))
    assert str(info.value).endswith((".", "?", "!"))
    return info.value


def test_identify_by_token_phone_code() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        m = await c.call("member.identify", {"token": "nfc:04A1B2"})
        assert m == {"member_id": "m-1", "name": "Sara K.", "tier": "gold", "status": "active",
                     "balances": {"points": 1200, "credit.club": 5000}, "masked": None,
                     "token": "nfc:04A1B2"}
        by_phone = await c.call("member.identify", {"phone": "+98 912 123 4567"})
        assert by_phone["member_id"] == "m-1" and by_phone["token"] == "tel:+989121234567"
        await expect(-32001, c.call("member.identify", {"code": "NOPE-1"}))
        err = await expect(-32002, c.call("member.identify", {"token": "pan:" + "b" * 32}))
        assert err.data["status"] == "blocked" and err.data["member_id"] == "m-2"
        await expect(-32602, c.call("member.identify", {}))
        await expect(-32602, c.call("member.identify", {"token": "x", "phone": "0912"}))
    run(scenario)


def test_card_read_masked_shows_in_summary() -> None:
    async def scenario(h: Harness) -> None:
        h.services.note_card("pan:" + "a" * 32, "411111******1111", "411111")
        m = await h.client().call("member.identify", {"token": "pan:" + "a" * 32})
        assert m["masked"] == "411111******1111"
    run(scenario)


def test_quote_commit_and_receipt() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        session = await h.login()
        q = await c.call("sale.quote", {"amount": 12000, "token": "nfc:04A1B2",
                                        "redeem_points": 1000})
        # gold10: 1200 off; 1000 points redeemed; 98 points and 196 cashback earned.
        assert q["net"] == 10800 and q["payable"] == 9800 and q["quote_id"].startswith("q-")
        assert q["points_earned"] == [{"rule": "base-points", "points": 98}]
        assert q["member"]["member_id"] == "m-1" and q["expires_at"] > "2000"
        assert q["redeem_limits"]["points"] == {"available": 1200, "min": 100, "max": 1200,
                                                "value": 1}
        assert q["currency"] == "EUR" and q["rules_version"] == 42
        assert q["lines"] == [{"sku": None, "category": None, "qty": 1, "unit_price": 12000}]
        r = await c.call("sale.commit", {"quote_id": q["quote_id"], "payment": "cash",
                                         "session": session})
        ev = h.outbox()[0]
        assert r["seq"] == 1 and r["sale_id"] == ev["id"]
        assert ev["type"] == "sale" and ev["staff_id"] == "c1" and ev["member_id"] == "m-1"
        assert ev["payable"] == 9800 and ev["identified_by"] == "nfc:04A1B2"
        assert ev["lines"] == [{"sku": None, "category": None, "qty": 1, "unit_price": 12000}]
        assert ev["discounts"] == [{"rule": "gold10", "amount": 1200}]
        assert r["receipt"]["balances_after"]["points"] == 1200 - 1000 + 98
        assert r["receipt"]["balances_after"]["credit.club"] == 5000 + 196
        assert r["receipt"]["points_earned"] == 98
        assert r["receipt"]["staff_name"] == "Cara"
        # The store was written from the store thread, never from the event loop.
        assert all(t.startswith("clubterm-db") for t in h.flaky.append_threads)
        # Committing the same quote again answers the same sale, records nothing new.
        again = await c.call("sale.commit", {"quote_id": q["quote_id"], "payment": "cash",
                                             "session": session})
        assert again == r and len(h.outbox()) == 1
    run(scenario)


def test_anonymous_sale_and_lines() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        session = await h.login()
        q = await c.call("sale.quote", {"lines": [
            {"sku": "esp", "category": "coffee", "qty": 2, "unit_price": 250},
            {"sku": "cake", "category": "bakery", "qty": 1, "unit_price": 4550}]})
        assert q["gross"] == 5050 and q["member"] is None
        await c.call("sale.commit", {"quote_id": q["quote_id"], "payment": "card",
                                     "session": session})
        assert h.outbox()[0]["member_id"] is None and h.outbox()[0]["payable"] == 5050
        await expect(-32602, c.call("sale.quote", {"lines": [{"qty": 0, "unit_price": 1}]}))
        await expect(-32602, c.call("sale.quote", {"amount": 1, "lines": []}))
        await expect(-32602, c.call("sale.quote", {"amount": -5}))
        await expect(-32602, c.call("sale.quote", {"amount": True}))
        await expect(-32003, c.call("sale.quote", {"amount": 100, "redeem_points": 5}))
        await expect(-32001, c.call("sale.quote", {"amount": 100, "token": "tel:+1555"}))
        await expect(-32002, c.call("sale.quote", {"amount": 100, "token": "pan:" + "b" * 32}))
    run(scenario)


def test_limit_error_names_the_limit() -> None:
    async def scenario(h: Harness) -> None:
        err = await expect(-32003, h.client().call(
            "sale.quote", {"amount": 1000, "token": "nfc:04A1B2", "redeem_points": 900}))
        # #17: every error carries data.reason.
        assert err.data == {"limit": "max_redeem_share_bps", "reason": "limit"}
    run(scenario)


def test_quote_expires_and_unknown_quote() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        session = await h.login()
        q = await c.call("sale.quote", {"amount": 500})
        await asyncio.sleep(0.3)
        await expect(-32004, c.call("sale.commit", {"quote_id": q["quote_id"], "payment": "cash",
                                                    "session": session}))
        await expect(-32004, c.call("sale.commit", {"quote_id": "q-nothing", "payment": "cash",
                                                    "session": session}))
        assert h.outbox() == []
    run(scenario, quote_ttl_s=0.2)


def test_storage_error_records_nothing_and_quote_stays() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        session = await h.login()
        q = await c.call("sale.quote", {"amount": 500})
        h.flaky.fail_appends = True
        h.flaky.append_threads = []
        err = await expect(-32005, c.call("sale.commit", {"quote_id": q["quote_id"],
                                                          "payment": "cash", "session": session}))
        assert "nothing was recorded" in str(err)
        assert h.outbox() == []
        h.flaky.fail_appends = False
        r = await c.call("sale.commit", {"quote_id": q["quote_id"], "payment": "cash",
                                         "session": session})
        assert r["seq"] == 1
    run(scenario)


def test_roles() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        cashier = await h.login()
        tech = await h.login("tech", "0000")
        # A badge signs in through the reference of a tap on the reader (#22 item 6).
        manager = (await c.call("staff.login", {"token": await h.tap("nfc:BEEF")}))["session"]
        q = await c.call("sale.quote", {"amount": 500})
        err = await expect(-32006, c.call("sale.commit", {"quote_id": q["quote_id"],
                                                          "payment": "cash", "session": tech}))
        assert err.data["reason"] == "role"
        await expect(-32006, c.call("sale.commit", {"quote_id": q["quote_id"], "payment": "cash"}))
        await expect(-32006, c.call("sale.commit", {"quote_id": q["quote_id"], "payment": "cash",
                                                    "session": "s-forged"}))
        sale = await c.call("sale.commit", {"quote_id": q["quote_id"], "payment": "cash",
                                            "session": cashier})
        await expect(-32006, c.call("sale.refund", {"sale_id": sale["sale_id"], "reason": "x",
                                                    "session": cashier}))
        refund = await c.call("sale.refund", {"sale_id": sale["sale_id"], "reason": "broken",
                                              "session": manager})
        assert refund["refund_id"] == h.outbox()[-1]["id"]
        await expect(-32008, c.call("sale.refund", {"sale_id": sale["sale_id"], "reason": "x",
                                                    "session": manager}))
        await expect(-32007, c.call("sale.refund", {"sale_id": "nope", "reason": "x",
                                                    "session": manager}))
        await expect(-32006, c.call("expense.add", {"amount": 100, "category": "milk",
                                                    "note": "", "session": tech}))
        await expect(-32006, c.call("staff.login", {"staff_id": "c1", "pin": "wrong"}))
        await expect(-32006, c.call("staff.login", {"staff_id": "ghost", "pin": "1234"}))
        await expect(-32007, c.call("staff.login", {"token": "nfc:0000"}))
        await expect(-32602, c.call("staff.login", {"staff_id": "c1"}))
    run(scenario)


def test_session_expires_when_idle() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        h.services.sessions.idle_s = 0.2
        session = await h.login()
        await c.call("expense.add", {"amount": 100, "category": "milk", "session": session})
        await asyncio.sleep(0.3)
        err = await expect(-32006, c.call("expense.add", {"amount": 100, "category": "milk",
                                                          "session": session}))
        assert err.data["reason"] == "session_expired"
    run(scenario)


def test_clock_expense_receipt_and_day_summary() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        session = await h.login()
        clock = await c.call("staff.clock", {"token": await h.tap("nfc:CA5E"), "action": "in"})
        assert clock["event_id"] == h.outbox()[0]["id"] and "T" in clock["at"]
        await c.call("staff.clock", {"staff_id": "mg", "pin": "9999", "action": "in"})
        await expect(-32602, c.call("staff.clock", {"staff_id": "mg", "pin": "9999",
                                                    "action": "sideways"}))
        await c.call("expense.add", {"amount": 700, "category": "milk", "note": "2 l",
                                     "session": session})
        await c.call("cash_receipt.add", {"amount": 5000, "category": "float", "note": "",
                                          "session": session})
        await expect(-32602, c.call("expense.add", {"amount": 0, "category": "milk",
                                                    "session": session}))
        q = await c.call("sale.quote", {"amount": 12000, "token": "nfc:04A1B2",
                                        "redeem_points": 1000})
        await c.call("sale.commit", {"quote_id": q["quote_id"], "payment": "cash",
                                     "session": session})
        mg = {"staff_id": "mg", "pin": "9999"}
        await expect(-32008, c.call("staff.clock", {**mg, "action": "in"}))
        await c.call("staff.clock", {"staff_id": "mg", "pin": "9999", "action": "out"})
        await expect(-32008, c.call("staff.clock", {**mg, "action": "out"}))
        s = await c.call("day.summary", {})
        sales = {"count": 1, "gross": 12000, "discounts": 1200, "payable": 9800,
                 "points_given": 98, "points_taken": 1000, "credit_used": 0,
                 "credit_given": 196}
        assert s["sales"] == sales
        # #15 item 3: each row also says what was refunded of that staff's sales.
        assert s["per_staff"] == [{**sales, "staff_id": "c1", "name": "Cara", "refunds": 0,
                                   "refunded": 0, "net_payable": 9800}]
        assert [e["amount"] for e in s["expenses"]] == [700]
        assert s["totals"] == {"income": 5000, "expenses": 700, "net": 4300}
        assert [(a["staff_id"], a["present"], [x["action"] for x in a["entries"]])
                for a in s["attendance"]] == [("c1", True, ["in"]), ("mg", False, ["in", "out"])]
        assert (await c.call("day.summary", {"session": session}))["per_staff"] is None
        empty = await c.call("day.summary", {"date": "2001-01-01"})
        assert empty["sales"]["count"] == 0 and empty["attendance"] == []
        await expect(-32602, c.call("day.summary", {"date": "yesterday"}))
    run(scenario)


def test_appointments_overlap_and_list() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        session = await h.login()
        base = {"customer": "m-1", "service": "haircut", "staff_id": "mg",
                "start": "2026-11-24T10:00:00+01:00", "minutes": 30, "session": session}
        a1 = (await c.call("appointment.create", base))["appointment_id"]
        err = await expect(-32008, c.call("appointment.create",
                                          {**base, "start": "2026-11-24T10:29:00+01:00"}))
        assert err.data["appointment_id"] == a1
        a2 = (await c.call("appointment.create", {**base, "start": "2026-11-24T10:30:00+01:00",
                                                  "customer": "0912 123 4567"}))["appointment_id"]
        await c.call("appointment.create", {**base, "staff_id": "c1"})  # other staff: fine
        await expect(-32008, c.call("appointment.update", {"appointment_id": a2,
                                                           "start": "2026-11-24T10:15:00+01:00",
                                                           "session": session}))
        await c.call("appointment.cancel", {"appointment_id": a1, "session": session})
        await c.call("appointment.update", {"appointment_id": a2,
                                            "start": "2026-11-24T10:15:00+01:00",
                                            "session": session})
        await expect(-32007, c.call("appointment.cancel", {"appointment_id": a1,
                                                           "session": session}))
        await expect(-32001, c.call("appointment.create", {**base, "customer": "m-404"}))
        await expect(-32007, c.call("appointment.create", {**base, "staff_id": "ghost"}))
        day = await c.call("appointment.list", {"date": "2026-11-24"})
        assert [(a["appointment_id"], a["start"], a["staff_name"]) for a in day
                if a["staff_id"] == "mg"] == [(a2, "2026-11-24T10:15:00.000+01:00", "Max")]
        # A phone that belongs to a member books the member.
        assert {a["customer"] for a in day} == {"m-1"}
        assert {a["customer_name"] for a in day} == {"Sara K."}
        kinds = [(e["type"], e["action"]) for e in h.outbox()]
        assert kinds == [("appointment", "create"), ("appointment", "create"),
                         ("appointment", "create"), ("appointment", "cancel"),
                         ("appointment", "update")]
    run(scenario)


def test_member_enrol() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        session = await h.login()
        r = await c.call("member.enrol", {"name": "New Person", "phone": "0935 000 1111",
                                          "token": "nfc:0A0B0C", "referred_by": "m-1",
                                          "session": session})
        assert r["member_id"].startswith("local:")
        ev = h.outbox()[0]
        assert ev["type"] == "member_enrol"
        assert {k: ev[k] for k in ("member_id", "name", "identifiers", "referred_by")} == {
            "member_id": r["member_id"], "name": "New Person",
            "identifiers": ["tel:+989350001111", "nfc:0A0B0C"], "referred_by": "m-1"}
        # The new member can be identified at once (a provisional cache entry).
        found = await c.call("member.identify", {"token": "nfc:0A0B0C"})
        assert found["member_id"] == r["member_id"]
        await expect(-32008, c.call("member.enrol", {"name": "Dup", "phone": "+989121234567",
                                                     "session": session}))
        await expect(-32006, c.call("member.enrol", {"name": "X", "phone": "0935 000 2222"}))
    run(scenario)


def test_status() -> None:
    async def scenario(h: Harness) -> None:
        h.store.outbox.append("expense", {"amount": 1, "category": "x", "note": ""},
                       at=h.services.clock(), staff_id=None, offline=False)
        s = await h.client().call("agent.status")
        assert s["terminal_id"] == "T-0001" and s["online"] is True
        assert s["members_version"] == 10 and s["rules_version"] == 42
        assert s["queue"]["pending"] == 1 and s["queue"]["oldest_at"].startswith("20")
        assert s["readers"] == []
    run(scenario)


def test_wrong_pins_lock_the_staff_id_out_for_a_while() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        for _ in range(5):
            err = await expect(-32006, c.call("staff.login", {"staff_id": "c1", "pin": "0000"}))
            assert err.data["reason"] == "bad_credentials"
        err = await expect(-32006, c.call("staff.login", {"staff_id": "c1", "pin": "1234"}))
        assert err.data["reason"] == "locked_out"
        # The badge still works, and so does another staff member's PIN.
        assert (await c.call("staff.login", {"token": await h.tap("nfc:CA5E")}))["staff_id"] == "c1"
        assert (await c.call("staff.login", {"staff_id": "mg", "pin": "9999"}))["role"] == "manager"
    run(scenario)


def test_commit_is_answered_only_after_the_event_is_durable() -> None:
    """The answer leaves after Store.append returned (WAL fsynced), never before."""
    import time as _time

    async def scenario(h: Harness) -> None:
        c = h.client()
        session = await h.login()
        q = await c.call("sale.quote", {"amount": 500})
        real_append = h.store.outbox.append
        returned: list[float] = []

        def slow_durable_append(*args: object, **kwargs: object) -> object:
            _time.sleep(0.3)  # a slow disk
            result = real_append(*args, **kwargs)  # type: ignore[arg-type]
            returned.append(_time.monotonic())
            return result

        h.store.outbox.append = slow_durable_append  # type: ignore[method-assign]
        other = h.client()
        started = _time.monotonic()
        commit = asyncio.create_task(c.call("sale.commit", {"quote_id": q["quote_id"],
                                                            "session": session}))
        # Meanwhile the loop serves other clients: the write does not block it.
        assert (await other.call("agent.status"))["terminal_id"] == "T-0001"
        assert _time.monotonic() - started < 0.25
        result = await commit
        answered = _time.monotonic()
        assert returned and returned[0] <= answered
        # And what was answered is in the store when read back independently.
        from agent.offline_queue import Store
        check = Store.open(h.tmp / "clubterm.db", "T-0001", "M-7")
        assert check.outbox.event(result["sale_id"]) is not None
        check.close()
    run(scenario)
