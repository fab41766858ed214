"""#19 card lifecycle attacked: two tills linking one card at once, a lost card tapped
after its reissue, hostile national ids, and the club's side of the same race."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from agent.errors import ApiError
from tests.agent.localapi.harness import Harness, run
from tests.agent.localapi.test_methods import expect

NID = "001-234567-9"  # a valid Iranian national code (check digit 9)


def _add_member(h: Harness, record: dict[str, Any]) -> None:
    v = h.store.members.members_version()
    assert h.store.members.apply_changes({"from_version": v, "to_version": v + 1, "members": [
        {"version": v + 1, "status": "active", "tier": "silver", "balances": {},
         "stats": {}, "applied": {}, **record}]})


def test_two_tills_link_one_card_at_once_one_wins_one_clear_refusal() -> None:
    async def scenario(h: Harness) -> None:
        _add_member(h, {"member_id": "m-2", "name": "Ali R.", "identifiers": ["tel:+989351112233"]})
        tills = [h.client(), h.client()]
        manager = await h.login("mg", "9999")
        rounds, wins, refusals = 20, 0, 0
        for i in range(rounds):
            card = f"nfc:0C{i:012X}"
            answers = await asyncio.gather(*(
                till.call("member.card_link", {"member_id": member, "token": card,
                                               "session": manager})
                for till, member in zip(tills, ("m-1", "m-2"), strict=True)),
                return_exceptions=True)
            ok = [a for a in answers if isinstance(a, dict)]
            errors = [a for a in answers if isinstance(a, ApiError)]
            assert len(ok) == 1 and len(errors) == 1, answers
            assert errors[0].code == -32008 and errors[0].data["reason"] == "card_taken"
            assert "already belongs to" in str(errors[0])
            holder = h.store.members.lookup(card)
            assert holder is not None and holder["member_id"] == ok[0]["member_id"]
            links = [e for e in h.outbox() if e["type"] == "card_link" and e["identifier"] == card]
            assert len(links) == 1
            wins, refusals = wins + 1, refusals + 1
        print(f"figure: {rounds} link races, {wins} links recorded, {refusals} refused card_taken")
    run(scenario)


def test_a_lost_card_tapped_after_reissue_is_refused_as_lost_everywhere() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        manager = await h.login("mg", "9999")
        before = (await c.call("member.identify", {"token": "nfc:04A1B2"}))["balances"]
        await c.call("member.card_link", {"member_id": "m-1", "token": "nfc:0E0E0E0E",
                                          "replaces": "nfc:04A1B2", "session": manager})
        new = await c.call("member.identify", {"token": "nfc:0E0E0E0E"})
        assert new["member_id"] == "m-1" and new["balances"] == before  # balance kept
        err = await expect(-32002, c.call("member.identify", {"token": "nfc:04A1B2"}))
        assert err.data["reason"] == "card_lost" and "reported lost" in str(err)
        # Tapped on the reader: the card event says it is lost (not an unknown card).
        event = await h.agent.tap("nfc:04A1B2")
        assert event["member"] is None and event["lost"]["member_id"] == "m-1"
        # A quote with it gives no benefits; linking or enrolling it again is refused.
        await expect(-32002, c.call("sale.quote", {"amount": 1000, "token": "nfc:04A1B2"}))
        err = await expect(-32008, c.call("member.card_link", {
            "member_id": "m-1", "token": "nfc:04A1B2", "session": manager}))
        assert err.data["reason"] == "card_lost"
        err = await expect(-32008, c.call("member.enrol", {
            "name": "Thief", "phone": "0912 000 1111", "token": "nfc:04A1B2",
            "session": manager}))
        assert err.data["reason"] == "card_lost"
        # The club's record arrives without the link applied yet (applied[T] below
        # it): the link stays in force; then the club's record says so itself.
        record = dict(h.store.members.member("m-1") or {})
        record.pop("lost_identifiers", None)
        record["identifiers"] = [t for t in record["identifiers"] if t != "nfc:0E0E0E0E"] + [
            "nfc:04A1B2"]
        v = h.store.members.members_version()
        h.store.members.apply_changes({"from_version": v, "to_version": v + 1, "members": [
            {**record, "version": 50}]})
        assert h.store.members.lookup("nfc:04A1B2") is None
        assert (h.store.members.lost_holder("nfc:04A1B2") or {}).get("member_id") == "m-1"
        assert (h.store.members.lookup("nfc:0E0E0E0E") or {}).get("member_id") == "m-1"
        profile = await c.call("member.profile", {"member_id": "m-1", "session": manager})
        assert [x["token"] for x in profile["lost_cards"]] == ["nfc:04A1B2"]
        print("figure: lost card refused at identify, tap, quote, link and enrol")
    run(scenario)


def test_hostile_national_ids_get_clear_errors_and_nothing_is_recorded() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        manager = await h.login("mg", "9999")
        hostile: list[Any] = ["9" * 100_000, "١٢٣", "0012345678", "abc0012345679",
                              "\u202e0012345679", "0012345679\u2066", "\x00" * 10, 12345,
                              ["0012345679"], {"a": 1}, "4111 1111 1111 1111", ""]
        before = len(h.outbox())
        for value in hostile:
            for call in (c.call("member.identify", {"nid": value}),
                         c.call("member.enrol", {"name": "X Y", "phone": "0912 000 2222",
                                                 "nid": value, "session": manager})):
                try:
                    await call
                except ApiError as err:
                    assert err.code == -32602, (value, err)
                    assert str(err).endswith(".") and len(str(err)) < 200
                    if isinstance(value, str) and len(value) > 6:
                        assert value not in str(err)
                else:
                    raise AssertionError(f"{value!r} was accepted")
        assert len(h.outbox()) == before
        # A good one: enrolled with it, found by it (identify and search), kept keyed.
        enrolled = await c.call("member.enrol", {"name": "Parisa S", "phone": "0912 555 0000",
                                                 "nid": NID, "session": manager})
        found = await c.call("member.identify", {"nid": "۰۰۱۲۳۴۵۶۷۹"})
        assert found["member_id"] == enrolled["member_id"] and found["token"].startswith("nid:")
        hits = await c.call("member.search", {"query": "0012345679", "session": manager})
        assert [m["member_id"] for m in hits] == [enrolled["member_id"]]
        await expect(-32008, c.call("member.enrol", {"name": "Other", "phone": "0912 555 0001",
                                                     "nid": NID, "session": manager}))
        body = next(e for e in h.outbox() if e["type"] == "member_enrol")
        assert "0012345679" not in str(body) and found["token"] in body["identifiers"]
        print(f"figure: {len(hostile)} hostile nid values x 2 methods refused, 0 recorded")
    run(scenario)


def test_summaries_carry_tier_progress_and_referrals() -> None:
    async def scenario(h: Harness) -> None:
        from agent.localapi.demo import example_bundle
        from hw_sim.club.bundles import GOLD_UPGRADE
        h.bundle = example_bundle(h.now)
        assert h.bundle.tier_upgrades["gold"].min_spend == GOLD_UPGRADE["min_spend"]
        _add_member(h, {"member_id": "m-5", "name": "Parisa S.", "identifiers": ["nfc:05"],
                        "stats": {"tier_window": {"days": 30, "spend": 45000, "purchases": 8}},
                        "referrals": {"count": 2, "earned": {"points": 150, "bad": "x"}}})
        c = h.client()
        m = await c.call("member.identify", {"token": "nfc:05"})
        assert m["tier_progress"] == {"next_tier": "gold", "spend_needed": 5000,
                                      "purchases_needed": 2, "window_days": 30, "met": False}
        assert m["referrals"] == {"count": 2, "earned": {"points": 150}}
    run(scenario)


def test_the_club_gives_a_raced_card_to_the_first_till_only(tmp_path: Path) -> None:
    from hw_sim.club.ledger import Ledger

    ledger = Ledger(tmp_path / "club.db")
    ledger.upsert_members([{"member_id": "m-1", "identifiers": ["nfc:01"]},
                           {"member_id": "m-2"}])
    at = "2026-11-24T10:00:00+01:00"
    for i, (terminal, member) in enumerate((("T-1", "m-1"), ("T-2", "m-2"))):
        result = ledger.receive_batch(terminal, [{
            "id": str(uuid.uuid4()), "seq": 1, "at": at, "terminal_id": terminal,
            "type": "card_link", "member_id": member, "identifier": "nfc:0AAA"}])
        assert bool(result.rejected) == (i == 1)
    assert ledger.member("m-1")["identifiers"] == ["nfc:01", "nfc:0AAA"]
    assert "nfc:0AAA" not in (ledger.member("m-2")["identifiers"])
    # Reissue: the lost card is blocked club-wide and cannot be linked again.
    ledger.receive_batch("T-1", [{"id": str(uuid.uuid4()), "seq": 2, "at": at,
                                  "terminal_id": "T-1", "type": "card_link", "member_id": "m-1",
                                  "identifier": "nfc:0BBB", "replaces": "nfc:01"}])
    rec = ledger.member("m-1")
    assert "nfc:01" not in rec["identifiers"] and rec["lost_identifiers"] == ["nfc:01"]
    again = ledger.receive_batch("T-2", [{"id": str(uuid.uuid4()), "seq": 2, "at": at,
                                          "terminal_id": "T-2", "type": "card_link",
                                          "member_id": "m-2", "identifier": "nfc:01"}])
    assert again.rejected[0]["reason"].startswith("identifier_lost")
    ledger.close()


def test_a_link_the_club_rejects_is_undone_and_the_replaced_card_found_again() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        manager = await h.login("mg", "9999")
        await c.call("member.card_link", {"member_id": "m-1", "token": "nfc:0D0D0D0D",
                                          "replaces": "nfc:04A1B2", "session": manager})
        link = next(e for e in h.outbox() if e["type"] == "card_link")
        # The club gave the new card to someone else first: it rejects this link.
        h.store.outbox.apply_ack([], [(link["id"], "identifier_taken: the card belongs to "
                                                   "another member")], None)
        assert h.store.members.lookup("nfc:0D0D0D0D") is None
        assert (h.store.members.lookup("nfc:04A1B2") or {}).get("member_id") == "m-1"
        assert h.store.members.lost_holder("nfc:04A1B2") is None
        # And a record from the club never brings a rejected link back.
        record = dict(h.store.members.member("m-1") or {})
        v = h.store.members.members_version()
        h.store.members.apply_changes({"from_version": v, "to_version": v + 1, "members": [
            {**record, "version": 60}]})
        assert h.store.members.lookup("nfc:0D0D0D0D") is None
    run(scenario)
