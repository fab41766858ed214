"""Member removals reach every terminal, and overlapping change sets never go back in
time (issue #17, item 3 "Delta snapshots carry tombstones").

Against the real store: change sets out of order, twice, overlapping; a tombstone then
the member added again; tombstone lines in a delta snapshot. Against the real link and
the simulated club: a terminal that missed the change set removing a member learns it
from the delta snapshot's tombstone (before, the member and their card stayed usable
at that terminal for ever).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.offline_queue import Store
from hw_sim.broker import MosquittoBroker
from hw_sim.club.sim import SimClub
from tests.agent.sync.conftest import Terminal, make_terminal  # noqa: F401 (fixture)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "agent.db", "T-1", "M-7")
    yield s
    s.close()


def rec(member_id: str, version: int, name: str = "", token: str | None = None) -> dict[str, Any]:
    return {"member_id": member_id, "version": version, "name": name or member_id,
            "identifiers": [token or f"nfc:{member_id}"], "balances": {"points": version}}


def change(frm: int, to: int, *members: dict[str, Any], removed: list[str] | None = None
           ) -> dict[str, Any]:
    return {"from_version": frm, "to_version": to, "members": list(members),
            "removed": removed or []}


def test_a_tombstone_removes_the_member_and_their_card(store: Store) -> None:
    m = store.members
    assert m.apply_changes(change(0, 2, rec("m-9", 1), rec("m-1", 2)))
    assert m.lookup("nfc:m-9") is not None
    assert m.apply_changes(change(2, 3, {"member_id": "m-9", "removed": True}))
    assert m.member("m-9") is None and m.lookup("nfc:m-9") is None
    assert m.member("m-1") is not None and m.members_version() == 3


def test_an_overlapping_set_is_applied_record_by_record_by_version(store: Store) -> None:
    m = store.members
    assert m.apply_changes(change(0, 5, rec("m-1", 5, "new"), rec("m-2", 3)))
    # 3..7 overlaps (we are at 5): m-1's record of version 4 is older than ours.
    assert m.apply_changes(change(3, 7, rec("m-1", 4, "old"), rec("m-3", 7)))
    assert m.members_version() == 7
    assert m.member("m-1")["name"] == "new"  # type: ignore[index]
    assert m.member("m-3") is not None
    print("figure: overlapping set 3..7 on a cache at 5 applied; the older record kept out")


def test_out_of_order_and_duplicate_sets_change_nothing(store: Store) -> None:
    m = store.members
    assert m.apply_changes(change(0, 2, rec("m-1", 2, "two")))
    assert m.apply_changes(change(2, 3, rec("m-1", 3, "three")))
    before = m.member("m-1")
    assert m.apply_changes(change(1, 2, rec("m-1", 2, "two")))  # late and old
    assert m.apply_changes(change(2, 3, rec("m-1", 3, "three")))  # the same again
    assert m.member("m-1") == before and m.members_version() == 3
    assert not m.apply_changes(change(5, 6, rec("m-1", 6)))  # a gap: a snapshot is needed
    assert m.members_version() == 3


def test_a_late_tombstone_does_not_remove_a_member_added_again(store: Store) -> None:
    m = store.members
    assert m.apply_changes(change(0, 1, rec("m-9", 1, token="nfc:old")))
    assert m.apply_changes(change(1, 2, {"member_id": "m-9", "version": 2, "removed": True}))
    assert m.lookup("nfc:old") is None
    assert m.apply_changes(change(2, 3, rec("m-9", 3, "back", token="nfc:new")))
    # A set overlapping both, whose tombstone of version 2 is older than the re-add.
    assert m.apply_changes(change(1, 4, {"member_id": "m-9", "version": 2, "removed": True},
                                  rec("m-2", 4)))
    assert m.member("m-9")["name"] == "back"  # type: ignore[index]
    assert m.lookup("nfc:new") is not None and m.lookup("nfc:old") is None


def test_a_delta_snapshot_with_tombstone_lines(store: Store) -> None:
    m = store.members
    assert m.apply_changes(change(0, 3, rec("m-1", 1), rec("m-2", 2), rec("m-3", 3)))
    lines = [json.dumps(rec("m-4", 4)),
             json.dumps({"member_id": "m-2", "version": 5, "removed": True}),
             json.dumps({"member_id": "m-3", "removed": True}),  # at the snapshot's version
             json.dumps({"member_id": "m-404", "version": 6, "removed": True})]  # unknown here
    m.import_snapshot(lines, 6, full=False)
    assert [m.member(i) is not None for i in ("m-1", "m-2", "m-3", "m-4")] == [
        True, False, False, True]
    assert m.lookup("nfc:m-2") is None and m.members_version() == 6


def test_a_malformed_tombstone_is_refused_whole(store: Store) -> None:
    from agent.offline_queue import InvalidRecord
    m = store.members
    assert m.apply_changes(change(0, 1, rec("m-1", 1)))
    with pytest.raises(InvalidRecord):
        m.apply_changes(change(1, 2, {"member_id": "m-1", "version": "2", "removed": True}))
    assert m.member("m-1") is not None and m.members_version() == 1


@pytest.mark.needs_mosquitto
def test_a_terminal_that_missed_the_removal_learns_it_from_the_delta_snapshot(
        sim_club: SimClub, mosquitto: MosquittoBroker,
        make_terminal: Callable[..., Terminal]) -> None:  # noqa: F811
    seeded = sim_club.upsert_members([
        {"member_id": "m-1", "name": "A", "identifiers": ["nfc:A1"]},
        {"member_id": "m-9", "name": "Gone", "identifiers": ["nfc:G9"]}])
    term = make_terminal(sim_club, mosquitto.tls_url)
    term.wait(lambda: term.store.members.members_version() == seeded, 20, "initial snapshot")
    assert term.store.members.lookup("nfc:G9") is not None
    sim_club.faults.skip_change_sets = 1
    sim_club.remove_member("m-9")  # lost on the way
    last = sim_club.upsert_members([{"member_id": "m-2", "name": "B"}])  # a gap
    term.wait(lambda: term.store.members.members_version() == last, 20, "the delta snapshot")
    assert sim_club.snapshot_requests[-1] == (term.id, seeded)
    assert term.store.members.member("m-9") is None
    assert term.store.members.lookup("nfc:G9") is None
    # And a removal sent as a change set (tombstone row + v1 "removed") to a live terminal.
    sim_club.remove_member("m-1")
    term.wait(lambda: term.store.members.member("m-1") is None, 20, "the change set")
    print("figure: a removal missed on MQTT arrived by the delta snapshot's tombstone line")
