"""FakeLocalApi answers like the agent: results, errors, roles, expiry, events."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agent.errors import ApiError
from agent.localapi import (
    CONFLICT,
    INVALID_PARAMS,
    LIMIT,
    MEMBER_NOT_ACTIVE,
    METHOD_NOT_FOUND,
    NOT_ALLOWED,
    NOT_FOUND,
    QUOTE_EXPIRED,
    STORAGE,
    UNKNOWN_MEMBER,
    LocalApi,
)
from agent.localapi.fake import FakeLocalApi, normalise_phone


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def error_of(api: FakeLocalApi, method: str, params: dict[str, Any] | None = None) -> ApiError:
    with pytest.raises(ApiError) as caught:
        run(api.call(method, params))
    assert caught.value.args[0]  # a sentence for the cashier
    return caught.value


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def api(clock: Clock) -> FakeLocalApi:
    return FakeLocalApi(clock=clock)


def login(api: FakeLocalApi, staff_id: str = "1", pin: str = "1234") -> str:
    return str(run(api.call("staff.login", {"staff_id": staff_id, "pin": pin}))["session"])


def test_it_is_a_local_api(api) -> None:
    client: LocalApi = api
    assert run(client.call("agent.status"))["terminal_id"] == "T-0001"


def test_status_has_the_contract_keys(api) -> None:
    status = run(api.call("agent.status"))
    for key in ("terminal_id", "merchant_id", "online", "rules_version", "rules_problem",
                "members_version", "queue", "readers"):
        assert key in status
    assert set(status["queue"]) == {"pending", "oldest_at", "rejected"}


def test_unknown_method(api) -> None:
    assert error_of(api, "no.such").code == METHOD_NOT_FOUND


def test_identify_by_token_phone_and_code(api) -> None:
    by_token = run(api.call("member.identify", {"token": "pan:9f2c1e0b7a6d5c4b3a291807f6e5d4c3"}))
    assert by_token["member_id"] == "m-1" and by_token["masked"] == "411111******1111"
    assert run(api.call("member.identify", {"phone": "0912 123 4567"}))["member_id"] == "m-1"
    assert run(api.call("member.identify", {"code": "CLUB-1002"}))["member_id"] == "m-2"
    assert error_of(api, "member.identify", {"code": "nope"}).code == UNKNOWN_MEMBER
    blocked = error_of(api, "member.identify", {"code": "CLUB-1003"})
    assert blocked.code == MEMBER_NOT_ACTIVE and "blocked" in str(blocked)
    assert error_of(api, "member.identify", {}).code == INVALID_PARAMS


def test_quote_and_commit(api) -> None:
    session = login(api)
    quote = run(api.call("sale.quote", {"lines": [
        {"sku": "espresso", "category": "coffee", "qty": 2, "unit_price": 250},
        {"sku": "cake", "category": "bakery", "qty": 1, "unit_price": 4550}],
        "token": "code:CLUB-1001", "redeem_points": 1000}))
    assert quote["gross"] == 5050 and quote["net"] == 5050 - 505
    assert quote["payable"] == 4545 - 1000
    assert any(e["applied"] for e in quote["explain"])
    assert any(not e["applied"] and e["text"] for e in quote["explain"])
    done = run(api.call("sale.commit", {"quote_id": quote["quote_id"], "payment": "card",
                                        "session": session}))
    assert done["seq"] == 1 and done["receipt"]["payable"] == 3545
    # Usable balance counts the terminal's own sale at once.
    member = run(api.call("member.identify", {"code": "CLUB-1001"}))
    assert member["balances"]["points"] == 1200 - 1000 + 35
    # A quote is used once.
    assert error_of(api, "sale.commit", {"quote_id": quote["quote_id"], "payment": "cash",
                                         "session": session}).code == QUOTE_EXPIRED


def test_quote_expires_after_120_seconds(api, clock) -> None:
    session = login(api)
    quote = run(api.call("sale.quote", {"amount": 1000}))
    clock.now += timedelta(seconds=121)
    error = error_of(api, "sale.commit", {"quote_id": quote["quote_id"], "session": session})
    assert error.code == QUOTE_EXPIRED
    assert api.recorded("sale") == []


def test_redemption_limits(api) -> None:
    quote = run(api.call("sale.quote", {"amount": 1000, "token": "code:CLUB-1001"}))
    assert quote["redeem_limits"]["points"]["max"] == 450  # 50 % of net 900
    assert error_of(api, "sale.quote", {"amount": 1000, "token": "code:CLUB-1001",
                                        "redeem_points": 50}).data["limit"] == \
        "points.min_redeem"
    over = error_of(api, "sale.quote", {"amount": 1000, "token": "code:CLUB-1001",
                                        "redeem_points": 900})
    assert over.code == LIMIT and over.data["limit"] == "points.max"
    maxed = run(api.call("sale.quote", {"amount": 1000, "token": "code:CLUB-1001",
                                        "redeem_points": "max"}))
    assert maxed["redeemed_points"] == quote["redeem_limits"]["points"]["max"]


def test_offline_redemption_is_capped(api) -> None:
    api.set_online(False)
    quote = run(api.call("sale.quote", {"amount": 100000, "token": "code:CLUB-1001"}))
    assert quote["redeem_limits"]["points"]["max"] == 1200
    assert quote["offline"] is True


def test_roles_and_sessions(api) -> None:
    technician = login(api, "3", "9999")
    quote = run(api.call("sale.quote", {"amount": 100}))
    assert error_of(api, "sale.commit", {"quote_id": quote["quote_id"],
                                         "session": technician}).code == NOT_ALLOWED
    assert error_of(api, "sale.commit", {"quote_id": quote["quote_id"],
                                         "session": "bogus"}).code == NOT_ALLOWED
    cashier = login(api)
    sale = run(api.call("sale.commit", {"quote_id": quote["quote_id"], "session": cashier}))
    assert error_of(api, "sale.refund", {"sale_id": sale["sale_id"], "reason": "x",
                                         "session": cashier}).code == NOT_ALLOWED
    manager = login(api, "2", "4321")
    assert run(api.call("sale.refund", {"sale_id": sale["sale_id"], "reason": "broken",
                                        "session": manager}))["refund_id"]
    assert error_of(api, "sale.refund", {"sale_id": sale["sale_id"], "reason": "again",
                                         "session": manager}).code == CONFLICT
    assert error_of(api, "sale.refund", {"sale_id": "nope", "reason": "x",
                                         "session": manager}).code == NOT_FOUND
    assert error_of(api, "staff.login", {"staff_id": "1", "pin": "0000"}).code == NOT_ALLOWED


def test_storage_failure_records_nothing(api) -> None:
    session = login(api)
    api.fail_storage = True
    error = error_of(api, "expense.add", {"amount": 100, "category": "tea", "session": session})
    assert error.code == STORAGE and api.recorded() == []


def test_clock_and_day_summary(api, clock) -> None:
    session = login(api, "2", "4321")
    # A badge clocks through its tap's reference, as on the agent (#13 item 3).
    run(api.call("staff.clock", {"token": api.tap("nfc:04AA000001")["token"], "action": "in"}))
    mina = {"staff_id": "1", "pin": "1234"}
    assert error_of(api, "staff.clock", {**mina, "action": "in"}).code == CONFLICT
    clock.now += timedelta(hours=2)
    run(api.call("staff.clock", {"staff_id": "1", "pin": "1234", "action": "out"}))
    run(api.call("expense.add", {"amount": 250, "category": "milk", "session": session}))
    run(api.call("cash_receipt.add", {"amount": 1000, "category": "float", "session": session}))
    summary = run(api.call("day.summary", {"session": session}))
    assert summary["totals"] == {"income": 1000, "expenses": 250, "net": 750}
    [mina] = summary["attendance"]
    assert mina["minutes"] == 120 and mina["present"] is False
    assert run(api.call("day.summary", {"date": "2026-11-23"}))["attendance"] == []


def test_staff_badge_taps_are_single_use_references_as_on_the_agent(api, clock) -> None:
    event = api.tap("nfc:04AA000002")
    assert event["kind"] == "staff_badge" and event["token"].startswith("tap:")
    assert "04AA000002" not in str(event) and event["staff"]["name"]
    assert error_of(api, "staff.login", {"token": "nfc:04AA000002"}).code == NOT_FOUND
    assert run(api.call("staff.login", {"token": event["token"]}))["role"] == "manager"
    assert error_of(api, "staff.login", {"token": event["token"]}).code == NOT_ALLOWED
    late = api.tap("nfc:04AA000002")["token"]
    clock.now += timedelta(seconds=30)
    assert error_of(api, "staff.login", {"token": late}).code == NOT_ALLOWED


def test_appointments_overlap_and_customers(api) -> None:
    session = login(api)
    start = "2026-11-22T10:00:00+01:00"
    first = run(api.call("appointment.create", {
        "phone": "0912 123 4567", "service": "cut", "staff_id": "1", "start": start,
        "minutes": 30, "session": session}))
    clash = error_of(api, "appointment.create", {
        "customer": "m-2", "service": "beard", "staff_id": "1",
        "start": "2026-11-22T10:15:00+01:00", "minutes": 30, "session": session})
    assert clash.code == CONFLICT and "10:00–10:30" in str(clash)
    run(api.call("appointment.create", {
        "customer": "m-2", "service": "beard", "staff_id": "4",
        "start": "2026-11-22T10:15:00+01:00", "minutes": 30, "session": session}))
    listed = run(api.call("appointment.list", {"date": "2026-11-22"}))
    assert [a["customer"] for a in listed] == ["m-1", "m-2"]
    run(api.call("appointment.cancel", {"appointment_id": first["appointment_id"],
                                        "session": session}))
    assert error_of(api, "appointment.update", {"appointment_id": first["appointment_id"],
                                                "start": start, "session": session}).code \
        == NOT_FOUND


def test_enrol(api) -> None:
    session = login(api)
    done = run(api.call("member.enrol", {"name": "Dana", "phone": "09127770000",
                                         "token": "nfc:0401", "session": session}))
    assert done["member_id"].startswith("local:")
    assert run(api.call("member.identify", {"token": "nfc:0401"}))["name"] == "Dana"
    assert error_of(api, "member.enrol", {"name": "X", "phone": "09127770000",
                                          "session": session}).code == CONFLICT


def test_events_reach_every_subscriber(api) -> None:
    async def scenario() -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = []

        async def follow() -> None:
            async for event in api.events():
                seen.append(event)

        task = asyncio.create_task(follow())
        while api.subscribers == 0:
            await asyncio.sleep(0)
        api.tap("nfc:04A1B2C3D4E5F6")
        api.set_online(False)
        await asyncio.sleep(0)
        await api.close()
        await task
        return seen

    seen = run(scenario())
    assert seen[0]["type"] == "card" and seen[0]["member"]["member_id"] == "m-1"
    assert seen[1] == {"type": "link", "online": False, "since": seen[1]["since"]}


@pytest.mark.parametrize(("text", "e164"), [
    ("0912 123 4567", "+989121234567"), ("+49 30 1234567", "+49301234567"),
    ("00989121234567", "+989121234567"), ("۰۹۱۲۱۲۳۴۵۶۷", "+989121234567"), ("12", None),
])
def test_normalise_phone(text, e164) -> None:
    assert normalise_phone(text) == e164
