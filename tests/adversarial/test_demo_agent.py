"""The demo agent (``clubterm tui --demo``, every UI test) refuses what the agent refuses.

It is the agent's own code in a temporary folder, not a second copy (#14 item 1): the
ways the old in-memory fake differed from the agent are attacked here through the
demo's LocalApi, with the demo's staff, members and pinned clock.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.errors import ApiError
from agent.localapi import NOT_ALLOWED
from agent.localapi.demo import DemoAgent
from agent.localapi.server import ServerLimits
from agent.localapi.services import Services
from agent.localapi.sessions import PIN_MAX_ATTEMPTS, PIN_WINDOW_S


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)  # a Wednesday in Berlin

    def __call__(self) -> datetime:
        return self.now


async def _outcome(call: Any) -> tuple[str, Any]:
    try:
        return "ok", await call
    except ApiError as exc:
        return str((exc.data or {}).get("reason") or exc.code), str(exc)


def _run(scenario: Any, **kw: Any) -> None:
    async def main() -> None:
        agent = DemoAgent(**kw)
        try:
            await asyncio.wait_for(scenario(agent), 60)
        finally:
            await agent.aclose()
    asyncio.run(main())


def test_it_is_the_agent_not_a_copy() -> None:
    async def scenario(api: DemoAgent) -> None:
        assert type(api.services) is Services
        status = await api.call("agent.status")
        login = await api.call("staff.login", {"staff_id": "1", "pin": "1234"})
        # Keys the fake did not send (#14 item 1).
        assert status["agent_version"] and status["rules_version"] == 42
        assert login["idle_s"] > 0
        quote = await api.call("sale.quote", {"amount": 5300, "token": "code:CLUB-1001"})
        sale = await api.call("sale.commit", {"quote_id": quote["quote_id"], "payment": "cash",
                                              "session": login["session"]})
        receipt = sale["receipt"]
        assert receipt["rules_version"] == 42
        assert receipt["balances_after"]["points"] == 1200 + receipt["points_earned"]
        [event] = api.recorded("sale")
        assert event["id"] == sale["sale_id"] and event["member_id"] == "m-1"
        print(f"figure: demo sale {receipt['gross']} -> {receipt['payable']} "
              f"({[d['rule'] for d in receipt['discounts']]}), recorded in its store")
    _run(scenario, clock=Clock())


def test_two_clients_commit_one_quote_at_once_one_sale_and_the_same_answer() -> None:
    trials, conns = 5, 8

    async def scenario(api: DemoAgent) -> None:
        session = (await api.call("staff.login", {"staff_id": "1", "pin": "1234"}))["session"]
        clients = [api.client() for _ in range(conns)]
        try:
            for c in clients:
                await c.connect()
            for trial in range(trials):
                params: dict[str, Any] = {"amount": 3000 + trial}
                if trial % 2:
                    params.update(token="code:CLUB-1001", redeem_points=100)
                quote = await clients[0].call("sale.quote", params)
                answers = await asyncio.gather(*(_outcome(c.call("sale.commit", {
                    "quote_id": quote["quote_id"], "payment": "cash", "session": session}))
                    for c in clients))
                # The fake answered the second commit quote_expired; the agent answers
                # every one of them with the first one's result.
                assert all(kind == "ok" for kind, _ in answers), answers
                assert len({json.dumps(r, sort_keys=True) for _, r in answers}) == 1
            sales = api.recorded("sale")
            print(f"figure: {trials} quotes x {conns} concurrent commits on the demo agent: "
                  f"{len(sales)} sales")
            assert len(sales) == trials
            assert len({s["quote_id"] for s in sales}) == trials
        finally:
            for c in clients:
                await c.close()
    _run(scenario, clock=Clock(),
         limits=ServerLimits(max_connections=64, max_connections_per_user=64))


def test_pin_guessing_locks_the_id_out_until_the_window_passes_on_the_demo_clock() -> None:
    clock = Clock()

    async def scenario(api: DemoAgent) -> None:
        await api.start()
        clients = [api.client() for _ in range(12)]
        try:
            reasons = [kind for kind, _ in await asyncio.gather(*(_outcome(c.call(
                "staff.login", {"staff_id": "2", "pin": f"{i:04d}"}))
                for i, c in enumerate(clients)))]
            print(f"figure: 12 concurrent wrong PINs for the demo manager: "
                  f"{reasons.count('bad_credentials')} checked, "
                  f"{reasons.count('locked_out')} locked out")
            # The fake had no lockout: it answered every guess.
            assert reasons.count("bad_credentials") <= PIN_MAX_ATTEMPTS
            assert reasons.count("locked_out") == 12 - reasons.count("bad_credentials")
            kind, message = await _outcome(api.call("staff.login",
                                                    {"staff_id": "2", "pin": "4321"}))
            assert kind == "locked_out" and "wait a minute" in message
            # The lockout runs on the demo's clock: moving it past the window ends it.
            clock.now += timedelta(seconds=PIN_WINDOW_S + 1)
            login = await api.call("staff.login", {"staff_id": "2", "pin": "4321"})
            assert login["staff_id"] == "2"
        finally:
            for c in clients:
                await c.close()
    _run(scenario, clock=clock)


def test_appointments_are_bounded_and_listed_as_the_agent_does() -> None:
    async def scenario(api: DemoAgent) -> None:
        session = (await api.call("staff.login", {"staff_id": "1", "pin": "1234"}))["session"]

        async def book(staff: str, start: str, minutes: int) -> tuple[str, Any]:
            return await _outcome(api.call("appointment.create", {
                "customer": "m-1", "service": "cut", "staff_id": staff, "minutes": minutes,
                "start": f"2026-11-25T{start}:00+01:00", "session": session}))

        # The fake refused 3 minutes and accepted 2,000; the agent: 1 to 1440.
        assert (await book("1", "10:00", 3))[0] == "ok"
        too_long = await book("1", "12:00", 2000)
        # #17: every error carries data.reason.
        assert too_long == ("bad_minutes", "The length must be 1 to 1440 minutes.")
        assert (await book("4", "10:00", 30))[0] == "ok"
        # The fake ignored staff_id in appointment.list.
        mine = await api.call("appointment.list", {"date": "2026-11-25", "staff_id": "4"})
        assert [a["staff_id"] for a in mine] == ["4"]
        kind, _ = await _outcome(api.call("appointment.create", {
            "customer": "m-1", "service": "cut", "staff_id": "1", "minutes": 30,
            "start": "2026-11-25T10:00:00+01:00", "session": "s-forged"}))
        assert kind == "session_expired" or kind == str(NOT_ALLOWED)
    _run(scenario, clock=Clock())
