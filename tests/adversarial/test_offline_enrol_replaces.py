"""The club's record of a member enrolled offline (``"replaces": ["local:…"]``) takes
over every local reference at the terminal (issue #17, item 3 "Offline enrolment").

Before: the provisional ``local:`` record stayed beside the club's (a name search
showed the member twice), and the member's sales made here and not yet reflected at
the club stayed counted under the local id, so the balance shown under the club's id
left them out until the club caught up. Against the real store, then end to end with
the real link and the simulated club.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.offline_queue import Store
from hw_sim.broker import MosquittoBroker
from hw_sim.club.sim import SimClub
from tests.agent.sync.conftest import Terminal, make_terminal  # noqa: F401 (fixture)

LOCAL = "local:0b6f2a58-6e36-4a8e-9a59-2f8a1c1d0e11"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "agent.db", "T-1", "M-7")
    yield s
    s.close()


def sale(store: Store, member_id: str, earned: int) -> Any:
    body = {"member_id": member_id, "identified_by": "nfc",
            "lines": [{"sku": "x", "category": "c", "qty": 1, "unit_price": 1000}],
            "gross": 1000, "discounts": [], "redeemed_points": 0, "redeemed_value": 0,
            "credits_used": [], "payable": 1000,
            "points_earned": [{"rule": "base-points", "points": earned}],
            "credits_earned": [], "lottery_entries": 0, "rules_version": 1,
            "payment": "cash"}
    return store.outbox.append("sale", body, at=datetime.now(UTC), staff_id=None,
                               offline=True)


def enrol(store: Store) -> None:
    store.outbox.append("member_enrol", {"member_id": LOCAL, "name": "Noor Offline",
                                         "identifiers": ["nfc:04AABBCC"],
                                         "referred_by": None},
                        at=datetime.now(UTC), staff_id=None, offline=True)


def test_the_club_record_takes_over_the_local_member(store: Store) -> None:
    m = store.members
    enrol(store)
    first = sale(store, LOCAL, 10)
    sale(store, LOCAL, 7)  # not yet reflected at the club
    assert m.lookup("nfc:04AABBCC")["member_id"] == LOCAL  # type: ignore[index]
    assert m.usable_balances(LOCAL) == {"points": 17}
    # The club has applied up to the first sale, and answers with its own id.
    club = {"member_id": "m-77", "version": 1, "name": "Noor Offline", "status": "active",
            "identifiers": ["nfc:04AABBCC"], "balances": {"points": 10},
            "applied": {"T-1": first.seq}, "replaces": [LOCAL]}
    assert m.apply_changes({"from_version": 0, "to_version": 1, "members": [club]})
    assert m.member(LOCAL) is None
    assert m.lookup("nfc:04AABBCC")["member_id"] == "m-77"  # type: ignore[index]
    assert [r["member_id"] for r in m.find_members("Noor", 10)] == ["m-77"]
    # The sale the club has not applied yet still counts, now under the club's id.
    assert m.usable_balances("m-77") == {"points": 17}
    assert m.usable_balances(LOCAL) == {}
    # The recorded events are unchanged (the club resolves its alias); only the
    # member index of the rows moved.
    with sqlite3.connect(store.db.path) as raw:
        rows = raw.execute("SELECT member_id, json_extract(body, '$.member_id') FROM events "
                           "WHERE type = 'sale'").fetchall()
    assert rows == [("m-77", LOCAL), ("m-77", LOCAL)]
    print("figure: club record m-77 replaced local:…; one member, balance 10 + 7 pending")


def test_replaces_never_takes_over_a_club_member(store: Store) -> None:
    m = store.members
    assert m.apply_changes({"from_version": 0, "to_version": 1, "members": [
        {"member_id": "m-1", "version": 1, "identifiers": ["nfc:01"],
         "balances": {"points": 5}}]})
    assert m.apply_changes({"from_version": 1, "to_version": 2, "members": [
        {"member_id": "m-2", "version": 2, "identifiers": ["nfc:02"], "replaces": ["m-1", 7]}]})
    assert m.member("m-1") is not None and m.lookup("nfc:01")["member_id"] == "m-1"  # type: ignore[index]


@pytest.mark.needs_mosquitto
def test_an_offline_enrolment_ends_as_one_club_member(
        sim_club: SimClub, mosquitto: MosquittoBroker,
        make_terminal: Callable[..., Terminal]) -> None:  # noqa: F811
    term = make_terminal(sim_club, mosquitto.tls_url, start=False)
    enrol(term.store)
    ev = sale(term.store, LOCAL, 10)
    term.start()
    sim_club.wait_applied(term.id, ev.seq, timeout=20)
    members = term.store.members
    term.wait(lambda: members.member(LOCAL) is None, 20, "the local record replaced")
    holder = members.lookup("nfc:04AABBCC")
    assert holder is not None and holder["member_id"].startswith("m-")
    assert [r["member_id"] for r in members.find_members("Noor", 10)] == [holder["member_id"]]
    term.wait(lambda: members.usable_balances(holder["member_id"]).get("points") == 10, 20,
              "the balance under the club's id")
    assert sim_club.ledger.member(holder["member_id"])["balances"]["points"] == 10  # type: ignore[index]
