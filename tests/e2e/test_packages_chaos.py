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
            refund_s = _refund_a_package_sale(term, club, StaffAtTill(term))
    seconds = time.monotonic() - started
    print(f"figure: {len(confirmed)} check-ins confirmed, refused {refused}, "
          f"{staff.lost} calls retried through restarts (same request_id), "
          f"{report.kills} agent SIGKILLs, {report.broker_restarts} broker restarts; "
          f"club = terminal; {seconds:.1f} s (package refunds: {refund_s:.1f} s)")
    assert report.kills >= 2 and report.broker_restarts >= 1
    assert len(confirmed) >= CHECKINS * 0.4


def _refund_a_package_sale(term: Any, club: Any, staff: StaffAtTill) -> float:
    """(#19) Two gym passes sold at the till: the one checked in once is not refunded
    (``package_used``), the other is, and the agent is SIGKILLed right after; the club
    revokes that package and the terminal agrees (no longer listed)."""
    started = time.monotonic()
    deadline = started + 60
    club.publish_catalogue("M-7")  # the gym passes (hw_sim.club.catalogue)
    while not term.status()["catalogue_version"]:
        assert time.monotonic() < deadline, "the catalogue never reached the terminal"
        time.sleep(0.1)
    (used_m, used_token), (kept_m, kept_token) = list(MEMBERS.items())[:2]
    sold: dict[str, str] = {}
    for member_id, token in ((used_m, used_token), (kept_m, kept_token)):
        quote = staff.call("sale.quote", {"lines": [{"sku": "gym-10", "qty": 1}],
                                          "token": token}, deadline)
        sale = staff.call("sale.commit", {"quote_id": quote["quote_id"]}, deadline)
        sold[member_id] = sale["sale_id"]
    pid = {m: f"pk-{sale_id[-12:]}-0-0" for m, sale_id in sold.items()}

    def listed(token: str, package_id: str) -> dict[str, Any] | None:
        found = staff.call("package.list", {"token": token}, deadline)["packages"]
        return next((p for p in found if p["package_id"] == package_id), None)

    while listed(used_token, pid[used_m]) is None or listed(kept_token, pid[kept_m]) is None:
        assert time.monotonic() < deadline, "the club's packages never reached the terminal"
        time.sleep(0.2)
    staff.call("package.checkin", {"token": used_token, "package_id": pid[used_m]}, deadline)
    with pytest.raises(ApiError) as refused:
        staff.call("sale.refund", {"sale_id": sold[used_m], "reason": "changed mind"},
                   deadline)
    assert (refused.value.data or {}).get("reason") == "package_used", refused.value
    staff.call("sale.refund", {"sale_id": sold[kept_m], "reason": "changed mind"}, deadline)
    assert listed(kept_token, pid[kept_m]) == {**listed(kept_token, pid[kept_m]),
                                               "visits_left": 0}  # at once, here
    staff._drop()
    assert term.agent is not None
    term.agent.kill()  # SIGKILL, the refund perhaps not sent yet
    term.start()
    term.wait_synced(60)
    while True:
        rec = club.ledger.member(kept_m)
        pkg = next(p for p in rec["packages"] if p["package_id"] == pid[kept_m])
        here = listed(kept_token, pid[kept_m])
        if pkg.get("revoked") and here is None:  # revoked: no longer listed here
            break
        assert time.monotonic() < deadline, (pkg, here)
        time.sleep(0.2)
    assert rec["balances"][f"visits.{pid[kept_m]}"] == 0
    with pytest.raises(ApiError) as gone:  # and it cannot be checked in with here
        staff.call("package.checkin", {"token": kept_token, "package_id": pid[kept_m]},
                   deadline)
    assert (gone.value.data or {}).get("reason") == "package_expired", gone.value
    used = club.ledger.member(used_m)
    assert used["balances"][f"visits.{pid[used_m]}"] == 9 and "revoked" not in next(
        p for p in used["packages"] if p["package_id"] == pid[used_m])
    staff._drop()
    return time.monotonic() - started
