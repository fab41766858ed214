"""The member cache: change sets, snapshots, token lookup."""

import json
from pathlib import Path

import pytest

from agent.offline_queue import InvalidRecord, Store

from .helpers import AT, member_record


def _change(frm: int, to: int, members: list[dict], removed: list[str] | None = None) -> dict:
    return {"from_version": frm, "to_version": to, "members": members, "removed": removed or []}


def test_lookup_by_any_token(store: Store) -> None:
    rec = member_record(tokens=("pan:9f2c", "nfc:04A1", "tel:+989121234567"))
    assert store.members.apply_changes(_change(0, 9812, [rec]))
    assert store.members.members_version() == 9812
    for token in rec["identifiers"]:
        assert store.members.lookup(token) == rec
    assert store.members.lookup("nfc:FFFF") is None
    assert store.members.member("m-1") == rec


def test_a_gap_changes_nothing_and_asks_for_a_snapshot(store: Store) -> None:
    assert store.members.apply_changes(_change(0, 5, [member_record()]))
    assert not store.members.apply_changes(_change(6, 7, [member_record("m-2",
                                                                        tokens=("tel:+1",))]))
    assert store.members.members_version() == 5 and store.members.member("m-2") is None
    # A change already applied (broker redelivery) is ignored, not a gap.
    assert store.members.apply_changes(_change(4, 5, [member_record(points=1)]))
    assert store.members.member("m-1")["balances"]["points"] == 1000


def test_change_replaces_tokens_and_removes_members(store: Store) -> None:
    store.members.apply_changes(_change(0, 1, [member_record(tokens=("nfc:A", "nfc:B")),
                                       member_record("m-2", tokens=("nfc:C",))]))
    # m-1 lost card B; card C moved from m-2 to m-1; m-2 then left the club.
    store.members.apply_changes(_change(1, 2, [member_record(version=2, tokens=("nfc:A", "nfc:C"))],
                                ["m-2"]))
    assert store.members.lookup("nfc:B") is None
    assert store.members.lookup("nfc:C")["member_id"] == "m-1"
    assert store.members.member("m-2") is None


def test_a_malformed_change_is_applied_not_at_all(store: Store) -> None:
    store.members.apply_changes(_change(0, 1, [member_record()]))
    bad = member_record("m-2", tokens=("nfc:Z",))
    bad["version"] = "two"
    with pytest.raises(InvalidRecord):
        store.members.apply_changes(_change(1, 2, [member_record("m-3", tokens=("nfc:Y",)), bad]))
    assert store.members.members_version() == 1
    assert store.members.lookup("nfc:Y") is None


def test_full_snapshot_replaces_the_cache(store: Store) -> None:
    store.members.apply_changes(_change(0, 3, [member_record("old", tokens=("nfc:OLD",)),
                                       member_record("m-1", tokens=("nfc:X",))]))
    lines = [json.dumps(member_record(f"m-{i}", tokens=(f"nfc:{i:04X}",))).encode() + b"\n"
             for i in range(1, 2001)]
    assert store.members.import_snapshot(iter([*lines, b"\n"]), 5000, True, chunk_size=300) == 2000
    assert store.members.members_version() == 5000
    assert store.members.member("old") is None and store.members.lookup("nfc:OLD") is None
    assert store.members.lookup("nfc:X") is None  # m-1's card changed in the snapshot
    assert store.members.lookup("nfc:07D0")["member_id"] == "m-2000"
    assert store.members.member_count() == 2000


def test_incremental_snapshot_keeps_the_others(store: Store) -> None:
    store.members.apply_changes(_change(0, 3, [member_record("a", tokens=("nfc:A",))]))
    store.members.import_snapshot([json.dumps(member_record("b", tokens=("nfc:B",)))], 9, False)
    assert store.members.lookup("nfc:A") and store.members.lookup("nfc:B")


def test_a_bad_snapshot_line_leaves_the_version(store: Store) -> None:
    lines = [json.dumps(member_record("a", tokens=("nfc:A",))), "{not json"]
    with pytest.raises(InvalidRecord, match="line 2"):
        store.members.import_snapshot(lines, 9, True)
    assert store.members.members_version() == 0


def test_local_enrolment_and_card_link_are_usable_at_once(store: Store) -> None:
    store.outbox.append("member_enrol", {"member_id": "local:1", "name": "Neda",
                                  "identifiers": ["tel:+989120000000"], "referred_by": None},
                 at=AT, staff_id="s", offline=True)
    assert store.members.lookup("tel:+989120000000")["member_id"] == "local:1"
    store.outbox.append("card_link", {"member_id": "local:1", "identifier": "nfc:0BAD"}, at=AT,
                 staff_id="s", offline=True)
    assert store.members.lookup("nfc:0BAD")["identifiers"] == ["tel:+989120000000", "nfc:0BAD"]
    # A full snapshot that does not know the local member yet keeps it.
    store.members.import_snapshot([json.dumps(member_record())], 3, True)
    assert store.members.member("local:1") is not None


def test_the_cache_survives_reopening(store: Store, db_path: Path) -> None:
    store.members.apply_changes(_change(0, 4, [member_record()]))
    store.close()
    again = Store.open(db_path, "T-0001", "M-7")
    try:
        assert again.members.members_version() == 4 and again.members.lookup("nfc:04A1B2")
    finally:
        again.close()


def test_a_snapshot_is_streamed_chunk_by_chunk(store: Store, db_path: Path) -> None:
    seen_behind: list[int] = []
    reader = Store.open(db_path, readonly=True)

    def lines():  # type: ignore[no-untyped-def]
        for i in range(1, 1001):
            if i % 100 == 1:
                # How far the committed cache lags behind the line being read.
                seen_behind.append(i - 1 - reader.members.member_count())
            yield json.dumps(member_record(f"m-{i}", tokens=(f"nfc:{i:04X}",)))

    try:
        assert store.members.import_snapshot(lines(), 7, True, chunk_size=100) == 1000
    finally:
        reader.close()
    assert max(seen_behind) <= 100  # never more than one chunk held in memory
    assert store.members.members_version() == 7


def test_a_snapshot_never_overwrites_a_newer_record(store: Store) -> None:
    store.members.apply_changes(_change(0, 10, [member_record(version=10, points=5,
                                                      tokens=("nfc:NEW",))]))
    old = member_record(version=4, points=999, tokens=("nfc:OLD",))
    store.members.import_snapshot([json.dumps(old)], 8, True)
    assert store.members.member("m-1")["balances"]["points"] == 5
    assert store.members.lookup("nfc:NEW") and store.members.lookup("nfc:OLD") is None
    assert store.members.members_version() == 10
