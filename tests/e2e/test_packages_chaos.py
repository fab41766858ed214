"""Check-ins with visit packages (issue #19 "packages") end to end under chaos: members
check in at the counter through the real agent process while the agent is SIGKILLed
and the broker restarted. A check-in whose answer was lost is sent again with its
``request_id``. At the end every check-in the agent confirmed is at the simulated club
exactly once, no other is, and the visits left at the club and at the terminal agree.
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

CHECKINS = 80
VISITS = 500


@pytest.mark.skipif(not mosquitto_available(), reason="mosquitto is not installed")
def test_every_confirmed_check_in_reaches_the_club_exactly_once() -> None:
    rng = random.Random(19)
    started = time.monotonic()
    confirmed: dict[str, dict[str, Any]] = {}
    refused: dict[str, int] = {}
    report = ChaosReport()
    with chaos_world() as (broker, club, pki):
        with club_terminal(broker, club, pki, link_tuning=FAST_LINK) as term:
            club.upsert_members([{
                **club.ledger.member(m), "version": club.ledger.members_version() + 1,
                "packages": [{"package_id": f"pk-{m}", "sku": "GYM", "name": "Gym pass",
                              "visits_total": VISITS, "starts": "2026-01-01",
                              "expires": "2099-12-31", "grace_days": 7, "freezable_days": 30,
                              "frozen": []}],
                "balances": {**club.ledger.member(m)["balances"], f"visits.pk-{m}": VISITS}}
                for m in MEMBERS])
            # Offline check-ins allowed generously here: the broker restarts would
            # otherwise make most of them the offline limit's (tested in the store).
            club.publish_bundle("M-7", 2, offline={
                "max_redeem_value_per_member_day": 2000, "max_pending": 5000,
                "max_age_hours": 72, "max_package_uses_per_member_day": 1000})

            term.start()
            term.wait_synced()
            staff = StaffAtTill(term)
            try:
                with agent_and_broker_chaos(term, broker, report, seed=20):
                    for i in range(CHECKINS):
                        member_id = rng.choice(list(MEMBERS))
                        params = {"token": MEMBERS[member_id], "request_id": f"visit-{i}"}
                        try:
                            result = staff.call("package.checkin", params, time.monotonic() + 60)
                        except ApiError as exc:
                            # offline: one check-in per member and day at this terminal
                            assert exc.code == LIMIT, exc
                            reason = str((exc.data or {}).get("reason"))
                            refused[reason] = refused.get(reason, 0) + 1
                            time.sleep(0.08)
                            continue
                        confirmed[f"visit-{i}"] = {"member_id": member_id,
                                                   "event_id": result["event_id"]}
                        time.sleep(0.08)
            finally:
                staff._drop()
            if not broker.running:
                broker.start()
            term.wait_synced(60)
            deadline = time.monotonic() + 60
            while term.status()["queue"]["pending"] and time.monotonic() < deadline:
                time.sleep(0.2)
            events = [e for e in club.ledger.events("T-0001") if e["type"] == "package_use"]
            ids = [e["id"] for e in events]
            assert len(ids) == len(set(ids)), "a check-in is at the club twice"
            assert {e["id"] for e in events} == {c["event_id"] for c in confirmed.values()}
            assert all(e["_state"] == "applied" for e in events)
            deadline = time.monotonic() + 30
            while True:  # the member records come back to the terminal's cache
                problems = []
                with SyncClient(term.files.socket) as client:
                    for member_id, token in MEMBERS.items():
                        kind = f"visits.pk-{member_id}"
                        want = VISITS - sum(1 for c in confirmed.values()
                                            if c["member_id"] == member_id)
                        at_club = club.ledger.member(member_id)["balances"].get(kind)
                        assert at_club == want, (member_id, at_club, want)
                        here = client.call("member.identify", {"token": token})["balances"]
                        if here.get(kind) != at_club:
                            problems.append((member_id, here.get(kind), at_club))
                if not problems or time.monotonic() > deadline:
                    break
                time.sleep(0.3)
            assert problems == []
    seconds = time.monotonic() - started
    print(f"figure: {len(confirmed)} check-ins confirmed, refused {refused}, "
          f"{staff.lost} calls retried through restarts (same request_id), "
          f"{report.kills} agent SIGKILLs, {report.broker_restarts} broker restarts; "
          f"club = terminal; {seconds:.1f} s")
    assert report.kills >= 2 and report.broker_restarts >= 1
    assert len(confirmed) >= CHECKINS * 0.4
