"""Manual balance adjustments (``balance.adjust``, issue #19 "adjust") attacked the
way a till meets them: two managers deducting at once more than the balance, huge,
negative, boolean, nested and unknown params, a cashier trying it, the bundle's
limits at their edges, the terminal offline. Each refusal names its reason and
records nothing; what is recorded moves the balance exactly once.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from agent.errors import ApiError
from agent.localapi import INVALID_PARAMS, LIMIT, NOT_ALLOWED
from tests.agent.localapi.harness import Harness, run

NOTE = "till was down at 10:05"


def _adjusts(h: Harness) -> list[dict[str, Any]]:
    return [e for e in h.outbox() if e["type"] == "balance_adjust"]


async def _call(h: Harness, method: str, params: dict[str, Any], till: int = 0) -> Any:
    """One call on the till's own connection (two tills: two connections)."""
    while len(h.clients) <= till:
        h.client()
    return await h.clients[till].call(method, params)


def test_add_points_from_an_amount_deduct_grant_and_view_the_balance() -> None:
    async def scenario(h: Harness) -> None:
        s = await h.login("mg", "9999")
        base = {"session": s, "member_id": "m-1", "reason": "purchase_not_recorded",
                "note": NOTE}
        seen = await _call(h, "balance.adjust", {**base, "kind": "points",
                                                  "points_from_amount": 12345, "preview": True})
        # 1 point per 1.00 (the bundle's base-points rule): 123.45 → 123 points.
        assert seen == {"preview": True, "member_id": "m-1", "kind": "points", "amount": 123,
                        "basis_amount": 12345, "balance": 1200, "balance_after": 1323}
        assert _adjusts(h) == []
        done = await _call(h, "balance.adjust", {**base, "kind": "points",
                                                  "points_from_amount": 12345})
        assert done["amount"] == 123 and done["balances"]["points"] == 1323
        done = await _call(h, "balance.adjust", {**base, "kind": "points", "amount": -23,
                                                  "reason": "correction"})
        assert done["balances"]["points"] == 1300
        done = await _call(h, "balance.adjust", {**base, "kind": "units.wash", "amount": 5,
                                                  "reason": "gift"})
        assert done["balances"]["units.wash"] == 5
        member = await _call(h, "member.identify", {"token": "nfc:04A1B2"})
        assert member["balances"]["points"] == 1300 and member["balances"]["units.wash"] == 5
        rows = _adjusts(h)
        assert [(r["kind"], r["amount"], r["reason"]) for r in rows] == [
            ("points", 123, "purchase_not_recorded"), ("points", -23, "correction"),
            ("units.wash", 5, "gift")]
        assert rows[0]["basis_amount"] == 12345 and rows[0]["note"] == NOTE
        assert rows[0]["recorded_by"] == "mg"
        report = await _call(h, "balance.adjustments", {"session": s})
        assert (report["points_added"], report["points_deducted"], report["count"]) == (123, 23, 3)
        assert report["per_staff"][0]["name"] == "Max"
        assert report["per_staff"][0]["other"] == {"units.wash": {"added": 5, "deducted": 0}}
        day = await _call(h, "day.summary", {"session": s})
        assert day["adjustments"]["points_added"] == 123
        assert day["adjustments"]["per_staff"][0]["points_deducted"] == 23
        print(f"figure: 3 adjustments recorded, report {report['points_added']}+/"
              f"{report['points_deducted']}- points")
    run(scenario)


def test_a_cashier_is_refused_with_a_reason_and_nothing_is_recorded() -> None:
    async def scenario(h: Harness) -> None:
        s = await h.login("c1", "1234")
        with pytest.raises(ApiError) as err:
            await _call(h, "balance.adjust", {"session": s, "member_id": "m-1", "kind": "points",
                                              "amount": 10, "reason": "goodwill", "note": NOTE})
        assert err.value.code == NOT_ALLOWED and err.value.data["reason"] == "role"
        assert "manager" in str(err.value)
        with pytest.raises(ApiError) as err:
            await _call(h, "balance.adjustments", {"session": s})
        assert err.value.data["reason"] == "role"
        day = await _call(h, "day.summary", {"session": s})
        assert day["adjustments"]["per_staff"] is None
        assert _adjusts(h) == []
    run(scenario)


def test_two_deductions_at_once_that_together_exceed_the_balance_record_only_one() -> None:
    async def scenario(h: Harness) -> None:
        s = await h.login("mg", "9999")
        # 1200 points: two deductions of 700 at once, ten times over on fresh balances.
        results = []
        for trial in range(5):
            if trial:
                await _call(h, "balance.adjust", {"session": s, "member_id": "m-1",
                                                  "kind": "points", "amount": 1400 - 200,
                                                  "reason": "correction", "note": NOTE})
            before = (await _call(h, "member.identify",
                                  {"token": "nfc:04A1B2"}))["balances"]["points"]
            take = before // 2 + 100
            params = {"session": s, "member_id": "m-1", "kind": "points", "amount": -take,
                      "reason": "correction", "note": NOTE}
            done = await asyncio.gather(_call(h, "balance.adjust", params, 0),
                                        _call(h, "balance.adjust", params, 1),
                                        return_exceptions=True)
            won = [d for d in done if isinstance(d, dict)]
            lost = [d for d in done if isinstance(d, ApiError)]
            assert len(won) == 1 and len(lost) == 1, done
            assert lost[0].code == LIMIT and lost[0].data["limit"] == "balance"
            after = (await _call(h, "member.identify",
                                 {"token": "nfc:04A1B2"}))["balances"]["points"]
            assert after == before - take >= 0
            results.append(after)
        print(f"figure: 5 trials x 2 concurrent deductions over the balance: 5 recorded, "
              f"5 refused, balances {results}")
    run(scenario, quote_ttl_s=120)


def test_two_threads_on_the_store_cannot_deduct_below_zero() -> None:
    """Below the API: the store's own check-and-append, from two threads at once."""
    import threading
    from datetime import timedelta

    from agent.offline_queue.adjustments import AdjustmentRefused

    async def scenario(h: Harness) -> None:
        # The offline staff day limit off: only the balance bounds these.
        config = dataclasses.replace(h.bundle.adjustments, offline_points_per_staff_day=None)
        day = (h.now - timedelta(hours=12), h.now + timedelta(hours=12))
        barrier = threading.Barrier(8)
        outcomes: list[str] = []

        def deduct() -> None:
            barrier.wait(5)
            try:
                h.store.outbox.append_adjustment(
                    {"member_id": "m-1", "kind": "points", "amount": -400,
                     "reason": "correction", "note": None}, at=h.now, staff_id="mg",
                    offline=True, config=config,
                    day=day)
                outcomes.append("ok")
            except AdjustmentRefused as exc:
                outcomes.append(exc.limit)

        threads = [threading.Thread(target=deduct) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(outcomes) == ["balance"] * 5 + ["ok"] * 3  # 1200 // 400
        assert h.store.members.usable_balances("m-1")["points"] == 0
        print(f"figure: 8 threads deducting 400 of 1200 at once: {outcomes.count('ok')} recorded")
    run(scenario)


BAD: list[tuple[dict[str, Any], str]] = [
    ({"amount": 10**13}, "bad_amount"),
    ({"amount": 2**63}, "bad_param"),  # refused by the framing, before the method
    ({"amount": -(10**13)}, "bad_amount"),
    ({"amount": 0}, "bad_amount"),
    ({"amount": True}, "wrong_type"),
    ({"amount": 1.5}, "wrong_type"),
    ({"amount": "10"}, "wrong_type"),
    ({"amount": [10]}, "wrong_type"),
    ({"amount": {"$gt": 1}}, "wrong_type"),
    ({"amount": 10, "points_from_amount": 1000}, "invalid_params"),
    ({"amount": None}, "invalid_params"),
    ({"amount": None, "points_from_amount": -500}, "bad_amount"),
    ({"amount": None, "points_from_amount": False}, "wrong_type"),
    ({"kind": "credit.club", "amount": None, "points_from_amount": 500}, "bad_amount"),
    ({"kind": "value.gift"}, "bad_kind"),
    ({"kind": "credit."}, "bad_kind"),
    ({"kind": "credit.x y"}, "bad_kind"),
    ({"kind": "credit." + "x" * 100}, "bad_kind"),
    ({"kind": ["points"]}, "wrong_type"),
    ({"reason": "because"}, "bad_reason"),
    ({"reason": {"code": "goodwill"}}, "wrong_type"),
    ({"note": "see card 4111 1111 1111 1111"}, "card_number"),
    ({"note": "x" * 501}, "too_long"),
    ({"note": "a\x1b[2Jb"}, "control_character"),
    ({"note": None}, "missing_param"),
    ({"note": "   "}, "empty"),
    ({"token": "nfc:04A1B2"}, "invalid_params"),  # both token and member_id
    ({"member_id": None}, "invalid_params"),
    ({"evil": {"a": [1, {"b": 2}]}}, "bad_param"),
    ({"preview": 1}, "wrong_type"),
]


@pytest.mark.parametrize(("change", "reason"), BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_params_are_refused_by_reason_and_record_nothing(change: dict[str, Any],
                                                              reason: str) -> None:
    async def scenario(h: Harness) -> None:
        s = await h.login("mg", "9999")
        params: dict[str, Any] = {"session": s, "member_id": "m-1", "kind": "points",
                                  "amount": 10, "reason": "goodwill", "note": NOTE}
        params.update(change)
        params = {k: v for k, v in params.items() if v is not None}
        with pytest.raises(ApiError) as err:
            await _call(h, "balance.adjust", params)
        assert err.value.code == INVALID_PARAMS, err.value
        assert err.value.data["reason"] == reason, err.value.data
        assert _adjusts(h) == []
    run(scenario)


LIMITS: list[tuple[dict[str, Any], str]] = [
    ({"amount": 5001}, "max_add"),
    ({"amount": -1201}, "balance"),
    ({"kind": "credit.club", "amount": -5001}, "max_deduct"),
    ({"kind": "credit.club", "amount": 5001}, "max_add"),
    ({"kind": "credit.merchant:M-7", "amount": 10}, "kind_not_grantable"),
    ({"kind": "units.minutes", "amount": 10}, "kind_not_grantable"),
    ({"kind": "units.wash", "amount": -1}, "balance"),
    ({"amount": None, "points_from_amount": 99}, "no_points"),
]


@pytest.mark.parametrize("preview", [False, True])
@pytest.mark.parametrize(("change", "limit"), LIMITS, ids=[str(i) for i in range(len(LIMITS))])
def test_the_bundles_limits_refuse_by_name(change: dict[str, Any], limit: str,
                                           preview: bool) -> None:
    """The same refusal whether asked as a preview (before confirming) or recorded."""
    async def scenario(h: Harness) -> None:
        s = await h.login("mg", "9999")
        params: dict[str, Any] = {"session": s, "member_id": "m-1", "kind": "points",
                                  "amount": 10, "reason": "goodwill", "note": NOTE,
                                  "preview": preview, **change}
        with pytest.raises(ApiError) as err:
            await _call(h, "balance.adjust", {k: v for k, v in params.items() if v is not None})
        assert err.value.code == LIMIT and err.value.data["limit"] == limit, err.value.data
        assert _adjusts(h) == []
    run(scenario)


def test_member_day_and_offline_staff_day_limits_hold_across_calls() -> None:
    async def scenario(h: Harness) -> None:
        s = await h.login("mg", "9999")
        params = {"session": s, "member_id": "m-1", "kind": "points", "amount": 1500,
                  "reason": "goodwill", "note": NOTE}
        h.online = False
        await _call(h, "balance.adjust", params)  # offline: 1500 of 2000
        with pytest.raises(ApiError) as err:
            await _call(h, "balance.adjust", params)
        assert err.value.data["limit"] == "offline_staff_day" and err.value.data["left"] == 500
        h.online = True
        for _ in range(5):
            await _call(h, "balance.adjust", params)  # 7500 + 1500 = 9000 of 10000 today
        with pytest.raises(ApiError) as err:
            await _call(h, "balance.adjust", params)
        assert err.value.data["limit"] == "member_day" and err.value.data["left"] == 1000
        # Deductions do not use the day's allowance.
        await _call(h, "balance.adjust", {**params, "amount": -100})
        added = sum(e["amount"] for e in _adjusts(h) if e["amount"] > 0)
        assert added == 9000 and [e["offline"] for e in _adjusts(h)][:1] == [True]
        print(f"figure: member day limit 10000, offline staff day limit 2000: {added} added")
    run(scenario)


def test_a_bundle_without_adjustments_turns_the_feature_off() -> None:
    async def scenario(h: Harness) -> None:
        s = await h.login("mg", "9999")
        h.bundle = dataclasses.replace(h.bundle, adjustments=None)
        with pytest.raises(ApiError) as err:
            await _call(h, "balance.adjust", {"session": s, "member_id": "m-1", "kind": "points",
                                              "amount": 10, "reason": "goodwill", "note": NOTE})
        assert err.value.data["reason"] == "adjust_off"
    run(scenario)


def test_blocked_and_unknown_members_are_refused() -> None:
    async def scenario(h: Harness) -> None:
        s = await h.login("mg", "9999")
        base = {"session": s, "kind": "points", "amount": 10, "reason": "goodwill", "note": NOTE}
        with pytest.raises(ApiError) as err:
            await _call(h, "balance.adjust", {**base, "member_id": "m-2"})
        assert err.value.data["reason"] == "member_not_active"
        with pytest.raises(ApiError) as err:
            await _call(h, "balance.adjust", {**base, "member_id": "nobody"})
        assert err.value.data["reason"] == "unknown_member"
        with pytest.raises(ApiError) as err:
            await _call(h, "balance.adjust", {**base, "token": "pan:" + "b" * 32})
        assert err.value.data["reason"] == "member_not_active"
        assert _adjusts(h) == []
    run(scenario)


def test_a_rejected_adjustment_stops_counting_in_the_balance() -> None:
    async def scenario(h: Harness) -> None:
        s = await h.login("mg", "9999")
        done = await _call(h, "balance.adjust", {"session": s, "member_id": "m-1",
                                                  "kind": "points", "amount": 77,
                                                  "reason": "gift", "note": NOTE})
        assert done["balances"]["points"] == 1277
        # A v1/1.2 club does not know the type (club.md): the delta is dropped.
        h.store.outbox.apply_ack([], [(done["event_id"], "unknown_type: balance_adjust")], None)
        member = await _call(h, "member.identify", {"token": "nfc:04A1B2"})
        assert member["balances"]["points"] == 1200
    run(scenario)


def test_adjust_traffic_matches_the_committed_schemas() -> None:
    from tests.agent.localapi.test_api_schemas import Recording, errors

    async def scenario(h: Harness) -> None:
        c = Recording(h.client())
        s = (await c.call("staff.login", {"staff_id": "mg", "pin": "9999"}))["session"]
        base = {"session": s, "token": "nfc:04A1B2", "reason": "purchase_not_recorded",
                "note": NOTE}
        await c.call("balance.adjust", {**base, "kind": "points", "points_from_amount": 990,
                                        "preview": True})
        await c.call("balance.adjust", {**base, "kind": "points", "points_from_amount": 990})
        await c.call("balance.adjust", {**base, "kind": "credit.club", "amount": -100,
                                        "reason": "correction"})
        await c.call("balance.adjustments", {"session": s, "date": "2026-11-25"})
        await c.call("balance.adjustments", {"session": s, "staff_id": "c1"})
        assert errors(c.calls) == []
        # The check bites: a reason outside the list is not in the schema.
        assert errors([("balance.adjust", {**base, "kind": "points", "amount": 1,
                                           "reason": "because"}, c.calls[1][2])])
    run(scenario)


def test_a_retry_with_the_same_request_id_records_nothing_more() -> None:
    """The cash register whose answer was lost sends the request again (on two
    connections at once, even): one adjustment, the same answer."""
    async def scenario(h: Harness) -> None:
        s = await h.login("mg", "9999")
        params = {"session": s, "member_id": "m-1", "kind": "points", "amount": 40,
                  "reason": "gift", "note": NOTE, "request_id": "reg-7-0001"}
        first, second = await asyncio.gather(_call(h, "balance.adjust", params, 0),
                                             _call(h, "balance.adjust", params, 1))
        third = await _call(h, "balance.adjust", params)
        assert first["event_id"] == second["event_id"] == third["event_id"]
        assert len(_adjusts(h)) == 1 and third["balances"]["points"] == 1240
        # Another request id is another adjustment.
        other = await _call(h, "balance.adjust", {**params, "request_id": "reg-7-0002"})
        assert other["balances"]["points"] == 1280 and len(_adjusts(h)) == 2
        for bad in ("", "x" * 65, "a b", "é", "a/b", 7, ["r"]):
            with pytest.raises(ApiError) as err:
                await _call(h, "balance.adjust", {**params, "request_id": bad})
            assert err.value.code == INVALID_PARAMS, bad
        assert len(_adjusts(h)) == 2
        print("figure: 3 sends of one request_id (2 at once): 1 adjustment recorded")
    run(scenario)


@pytest.mark.parametrize(("body", "fragment"), [
    ({"member_id": "m-1", "kind": "points", "amount": 0, "reason": "gift", "note": None},
     "not be 0"),
    ({"member_id": "m-1", "kind": "points", "amount": True, "reason": "gift", "note": None},
     "integer"),
    ({"member_id": "m-1", "kind": "value.x", "amount": 1, "reason": "gift", "note": None},
     "points, credit"),
    ({"member_id": "m-1", "kind": "points", "amount": 1, "reason": "x", "note": None},
     "does not match the protocol"),
    ({"member_id": "", "kind": "points", "amount": 1, "reason": "gift", "note": None},
     "member id"),
    ({"member_id": "m-1", "kind": "points", "amount": 2**53, "reason": "gift", "note": None},
     "2\\*\\*53"),
    ({"member_id": "m-1", "kind": "points", "amount": 1, "reason": "gift"}, "needs note"),
])
def test_the_store_refuses_a_malformed_adjustment_body(body: dict[str, Any],
                                                       fragment: str) -> None:
    """Below the API: what reaches the store is checked again (the event Struct)."""
    from agent.offline_queue import events as ev

    with pytest.raises(ev.InvalidEvent, match=fragment):
        ev.validate_body("balance_adjust", body)
