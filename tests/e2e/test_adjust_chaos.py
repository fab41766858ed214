"""Manual balance adjustments (issue #19 "adjust") end to end under chaos: a manager's
script adds and deducts points (some computed from an amount), grants club credit and
car-wash units through the real agent process, while the agent is SIGKILLed and the
broker restarted. A request whose answer was lost is sent again with its
``request_id``. At the end every adjustment the agent confirmed is at the simulated
club exactly once, no other is, and the balances at the club and at the terminal agree.
"""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from agent.errors import ApiError
from agent.localapi import LIMIT
from agent.localapi.client import SyncClient
from hw_sim.broker import mosquitto_available
from tests.e2e.chaos import (
    FAST_LINK,
    MEMBERS,
    ChaosReport,
    StaffAtTill,
    agent_and_broker_chaos,
    chaos_world,
)
from tests.e2e.terminal import club_terminal

pytestmark = [pytest.mark.needs_mosquitto, pytest.mark.slow]

KINDS = ("points", "credit.club", "units.wash")
ADJUSTMENTS = 150


@pytest.mark.skipif(not mosquitto_available(), reason="mosquitto is not installed")
def test_every_confirmed_adjustment_reaches_the_club_exactly_once() -> None:
    rng = random.Random(19)
    started = time.monotonic()
    confirmed: dict[str, dict[str, Any]] = {}
    refused = 0
    report = ChaosReport()
    with chaos_world() as (broker, club, pki), \
            club_terminal(broker, club, pki, link_tuning=FAST_LINK) as term:
        initial = {m: dict(club.ledger.member(m)["balances"]) for m in MEMBERS}
        term.start()
        term.wait_synced()
        manager = StaffAtTill(term)
        try:
            with agent_and_broker_chaos(term, broker, report, seed=20):
                for i in range(ADJUSTMENTS):
                    member_id = rng.choice(list(MEMBERS))
                    kind = rng.choice(KINDS)
                    params: dict[str, Any] = {"token": MEMBERS[member_id], "kind": kind,
                                              "reason": rng.choice(("goodwill", "correction")),
                                              "note": f"chaos {i}", "request_id": f"chaos-{i}"}
                    if kind == "points" and rng.random() < 0.3:
                        params["points_from_amount"] = rng.randrange(100, 5000)
                    else:
                        params["amount"] = rng.randrange(1, 60) * rng.choice((1, 1, -1))
                    try:
                        result = manager.call("balance.adjust", params, time.monotonic() + 60)
                    except ApiError as exc:
                        assert exc.code == LIMIT, exc  # a deduction over the balance
                        refused += 1
                        continue
                    confirmed[f"chaos-{i}"] = {"member_id": member_id, "kind": kind,
                                               "amount": result["amount"],
                                               "event_id": result["event_id"]}
                    time.sleep(0.08)  # a manager at a till, not a load generator
        finally:
            manager._drop()
        if not broker.running:
            broker.start()
        term.wait_synced(60)
        deadline = time.monotonic() + 60
        while term.status()["queue"]["pending"] and time.monotonic() < deadline:
            time.sleep(0.2)
        events = [e for e in club.ledger.events("T-0001") if e["type"] == "balance_adjust"]
        ids = [e["id"] for e in events]
        assert len(ids) == len(set(ids)), "an adjustment is at the club twice"
        assert sorted(e["request_id"] for e in events) == sorted(confirmed), (
            "the club's adjustments are not exactly the confirmed ones")
        assert {e["id"] for e in events} == {c["event_id"] for c in confirmed.values()}
        assert all(e["_state"] == "applied" for e in events)
        deadline = time.monotonic() + 30
        while True:  # the member records come back to the terminal's cache
            with SyncClient(term.files.socket) as client:
                problems = []
                for member_id, token in MEMBERS.items():
                    at_club = club.ledger.member(member_id)["balances"]
                    here = client.call("member.identify", {"token": token})["balances"]
                    for kind in KINDS:
                        want = initial[member_id].get(kind, 0) + sum(
                            c["amount"] for c in confirmed.values()
                            if c["member_id"] == member_id and c["kind"] == kind)
                        assert at_club.get(kind, 0) == want, (member_id, kind, at_club, want)
                        assert want >= 0, (member_id, kind, want)
                        if here.get(kind, 0) != at_club.get(kind, 0):
                            problems.append((member_id, kind, here.get(kind), at_club.get(kind)))
            if not problems or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert problems == []
    seconds = time.monotonic() - started
    print(f"figure: {len(confirmed)} adjustments confirmed, {refused} refused (balance), "
          f"{manager.lost} calls retried through restarts (same request_id), "
          f"{report.kills} agent SIGKILLs, {report.broker_restarts} broker restarts; "
          f"club = terminal; {seconds:.1f} s")
    assert report.kills >= 2 and report.broker_restarts >= 1
    assert len(confirmed) >= ADJUSTMENTS * 0.6
