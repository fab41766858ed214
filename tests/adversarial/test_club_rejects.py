"""#13.5 (club side): an event the club cannot apply is rejected with its reason and
sync goes on past it.

End to end with the real TLS broker, the simulated club and the real link: the bad
events are put into the terminal's outbox below the store's validation (the
terminal will refuse to record them itself once its quote-time bounds land), with
ordinary sales before, between and after them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from agent.offline_queue import events as ev
from hw_sim.broker import MosquittoBroker
from hw_sim.club.effects import MAX_SAFE, sale_problem
from hw_sim.club.sim import SimClub
from tests.agent.sync.conftest import Terminal, make_terminal  # noqa: F401  (fixture)

pytestmark = pytest.mark.needs_mosquitto


def _body(member: str, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "member_id": member, "identified_by": None,
        "lines": [{"sku": None, "category": None, "qty": 1, "unit_price": 1000}],
        "gross": 1000, "discounts": [], "redeemed_points": 0, "redeemed_value": 0,
        "credits_used": [], "payable": 1000,
        "points_earned": [{"rule": "base-points", "points": 10}], "credits_earned": [],
        "lottery_entries": 0, "rules_version": 1, "payment": "cash"}
    body.update(over)
    return body


BIG = MAX_SAFE + 1
BAD: list[tuple[dict[str, Any], str]] = [
    (_body("m-1", gross=BIG, payable=BIG,
           lines=[{"sku": None, "category": None, "qty": 1, "unit_price": BIG}]),
     "out_of_range: gross 9007199254740992 is over 2^53-1"),
    (_body("m-1", points_earned=[{"rule": "base-points", "points": BIG}]),
     "out_of_range: points_earned[0].points"),
    (_body("m-1", lines=[{"sku": None, "category": None, "qty": 3,
                          "unit_price": MAX_SAFE // 2}]),
     "out_of_range: lines[0] qty × unit_price is over 2^53-1"),
    (_body("m-1", lines=[{"sku": ["x"], "category": None, "qty": 1, "unit_price": 1}]),
     "malformed: lines[0].sku is not a string or null"),
    (_body("m-1", lines=[{"sku": "x", "category": None, "qty": 0, "unit_price": 1}]),
     "out_of_range: lines[0].qty 0 is below 1"),
    (_body("m-1", payable=-5), "out_of_range: payable -5 is below 0"),
]


def _record_unchecked(term: Terminal, body: dict[str, Any]) -> Any:
    """Record a sale below Store.append's validation (what an older or buggy
    terminal might have in its outbox)."""
    store, at = term.store, datetime.now(UTC)
    with store.db.atomic():
        return store.outbox.append_in_tx("sale", body, at, ev.format_at(at), None, False)


def test_each_bad_body_has_its_reason() -> None:
    for body, reason in BAD:
        problem = sale_problem(body)
        assert problem is not None and problem.startswith(reason), (problem, reason)
    assert sale_problem(_body("m-1")) is None
    assert sale_problem(_body("m-1", gross=MAX_SAFE, payable=MAX_SAFE)) is None


def _drain_past(club: SimClub, term: Terminal, bad_bodies: list[tuple[dict[str, Any], str]],
                timeout: float) -> None:
    """Good sales around each bad one; the link drains; check both sides."""
    club.upsert_members([{"member_id": "m-1", "balances": {"points": 100}}])
    good, bad = [], []
    good.append(term.sale("m-1").id)
    for body, reason in bad_bodies:
        bad.append((_record_unchecked(term, body).id, reason))
        good.append(term.sale("m-1").id)
    for _ in range(5):
        good.append(term.sale("m-1").id)
    last_seq = term.store.outbox.last_seq()
    term.start()
    term.wait_drained(timeout)
    term.wait(lambda: term.store.outbox.club_applied_seq() == last_seq, 20,
              "applied_seq at the end")

    at_club = {e["id"]: e for e in club.ledger.events(term.id)}
    for ev_id, reason in bad:
        assert at_club[ev_id]["_state"] == "rejected"
        assert at_club[ev_id]["_reason"].startswith(reason)
        entry = term.store.outbox.event(ev_id)
        assert entry is not None and entry.state == "rejected"
        assert entry.reason is not None and entry.reason.startswith(reason)
    assert all(at_club[i]["_state"] == "applied" for i in good)
    assert club.ledger.applied_seq(term.id) == last_seq
    record = club.ledger.member("m-1")
    assert record is not None
    # Only the good sales count: 10 points and one purchase each.
    assert record["balances"]["points"] == 100 + 10 * len(good)
    assert record["stats"]["purchase_count"] == len(good)
    stats = term.store.outbox.queue_stats()
    print(f"figure: {len(bad)} unappliable events among {len(good)} good ones: "
          f"{stats.rejected} rejected with reasons, {stats.pending} left, club applied_seq "
          f"{club.ledger.applied_seq(term.id)}/{last_seq}")
    assert stats.pending == 0 and stats.rejected == len(bad)


def test_the_club_rejects_what_it_cannot_apply_and_sync_goes_on(
        sim_club: SimClub, mosquitto: MosquittoBroker,
        make_terminal: Callable[..., Terminal]) -> None:  # noqa: F811
    _drain_past(sim_club, make_terminal(sim_club, mosquitto.tls_url, start=False), BAD, 60)


def test_points_at_the_int64_limit_do_not_stall_the_terminal(
        sim_club: SimClub, mosquitto: MosquittoBroker,
        make_terminal: Callable[..., Terminal]) -> None:  # noqa: F811
    top = _body("m-1", points_earned=[{"rule": "base-points", "points": 2**63 - 1}])
    _drain_past(sim_club, make_terminal(sim_club, mosquitto.tls_url, start=False),
                [BAD[0], (top, "out_of_range: points_earned[0].points")], 15)
