"""The online member lookup under attack (issue #20, item 4).

A card of another merchant's member is tapped at a terminal whose cache holds only
its own scope: the real services (the demo agent: real socket, store and rules) ask
the simulated club's real HTTPS route with mutual TLS, price the sale and cache the
answer. A club that hangs or is down costs the till at most the lookup timeout and
then gives the documented offline behaviour (an unknown card: no member; a member
looked up before: earn only). A hostile answer (huge, the wrong member, not JSON,
nested without end) is refused and nothing is cached.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.errors import ApiError
from agent.localapi import LIMIT, UNKNOWN_MEMBER
from agent.localapi.services.core import LOOKUP_FRESH_S
from agent.sync.lookup import LookupFailed, LookupLimits, MemberLookupClient, parse_lookup_answer
from hw_sim.club.sim import SimClub
from tests.agent.localapi.harness import Harness
from tests.fixtures.club import ClubPki

TERMINAL = "T-SCOPE"
TOKEN = "nfc:0F0F0F"
FOREIGN = {"member_id": "m-9", "name": "Nour", "status": "active", "tier": "gold",
           "identifiers": [TOKEN], "balances": {"points": 900},
           "scopes": ["merchant:M-2"]}


@pytest.fixture
def club(tmp_path: Path, club_pki: ClubPki) -> Iterator[SimClub]:
    """The simulated club's HTTPS side only (the lookup needs no broker)."""
    sim = SimClub(tmp_path / "club", "mqtt://127.0.0.1:9", club_id="acme",
                  tls=club_pki.club_tls("acme"))
    sim.ledger.upsert_members([FOREIGN])
    assert sim.http is not None
    sim.http.start()
    yield sim
    sim.http.stop()
    sim.ledger.close()


def client(club: SimClub, pki: ClubPki, *, timeout_s: float = 1.0,
           retry_after_s: float = 30.0) -> MemberLookupClient:
    certs = pki.terminal_cert(TERMINAL)
    return MemberLookupClient(club.central_url, "acme", TERMINAL, pki.ca.cert_file,
                              certs.cert, certs.key,
                              LookupLimits(deadline_s=timeout_s, retry_after_s=retry_after_s))


def run(scenario: Any, lookup: MemberLookupClient | None, tmp: Path) -> None:
    """The scenario against the real agent (demo agent) whose lookup is ``lookup``."""
    async def main() -> None:
        (tmp / "agent").mkdir()
        async with Harness(tmp / "agent") as h:
            h.view.lookup_member = lookup.lookup if lookup is not None else None
            await asyncio.wait_for(scenario(h), 60)
    asyncio.run(main())


async def refused(coro: Any) -> ApiError:
    try:
        await coro
    except ApiError as exc:
        return exc
    raise AssertionError("the call was not refused")


def test_a_member_of_another_merchant_is_looked_up_priced_and_cached(
        club: SimClub, club_pki: ClubPki, tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        assert h.store.members.lookup(TOKEN) is None  # not of this terminal's scope
        started = time.monotonic()
        who = await c.call("member.identify", {"token": TOKEN})
        took = time.monotonic() - started
        assert who["member_id"] == "m-9" and who["looked_up"] is True
        assert who["earn_only"] is False and who["balances"] == {"points": 900}
        # Asked once, with this terminal's certificate (mutual TLS).
        assert club.lookup_requests == [(TERMINAL, TOKEN)]
        # Freshly answered by the club: priced like any member, redemption included.
        q = await c.call("sale.quote", {"amount": 20000, "token": TOKEN, "redeem_points": 100})
        assert q["member"]["member_id"] == "m-9" and q["redeemed_points"] == 100
        assert len(club.lookup_requests) == 1  # the cached answer served the quote
        cached = h.store.members.lookup(TOKEN)
        assert cached is not None and cached["_looked_up_at"] > 0
        assert h.store.members.members_version() == 10  # the scope's version never moves
        print(f"figure: lookup of another merchant's member answered in {took * 1000:.0f} ms; "
              f"quote redeemed {q['redeemed_points']} points")
    run(scenario, client(club, club_pki), tmp_path)


def test_a_hanging_club_gives_earn_only_within_the_timeout(
        club: SimClub, club_pki: ClubPki, tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        await c.call("member.identify", {"token": TOKEN})  # looked up, cached
        h.now += timedelta(seconds=LOOKUP_FRESH_S + 1)  # the answer is old now
        club.faults.lookup_delay_s = 5.0  # and the club hangs
        started = time.monotonic()
        err = await refused(c.call("sale.quote", {"amount": 20000, "token": TOKEN,
                                                  "redeem_points": 100}))
        hung = time.monotonic() - started
        assert err.code == LIMIT and (err.data or {}).get("limit") == "earn_only", err
        assert hung < 1.0 + 0.8, f"the till waited {hung:.1f} s for a hanging club"
        # Earning still works, and the next tap does not wait again (not asked for 30 s).
        started = time.monotonic()
        q = await c.call("sale.quote", {"amount": 20000, "token": TOKEN})
        again = time.monotonic() - started
        assert q["member"]["earn_only"] is True and q["redeemed_points"] == 0
        assert q["points_earned"], q
        assert again < 0.5
        assert q["redeem_limits"]["points"]["max"] == 0
        print(f"figure: hanging club: earn-only answer after {hung:.2f} s (timeout 1 s), "
              f"next tap {again * 1000:.0f} ms")
    run(scenario, client(club, club_pki), tmp_path)


def test_a_club_that_is_down_means_no_member_at_once(
        club: SimClub, club_pki: ClubPki, tmp_path: Path) -> None:
    lookup = client(club, club_pki)
    assert club.http is not None
    club.http.stop()

    async def scenario(h: Harness) -> None:
        c = h.client()
        started = time.monotonic()
        err = await refused(c.call("member.identify", {"token": TOKEN}))
        took = time.monotonic() - started
        assert err.code == UNKNOWN_MEMBER and (err.data or {}).get("reason") == "lookup_failed"
        assert "club could not be asked" in str(err)
        assert took < 1.5
        # An anonymous sale still goes through.
        q = await c.call("sale.quote", {"amount": 1000})
        assert q["member"] is None
        print(f"figure: club down: the till knew in {took * 1000:.0f} ms")
    run(scenario, lookup, tmp_path)


HOSTILE = {
    "huge": json.dumps({"member": {**FOREIGN, "version": 5, "name": "x" * 200_000}}).encode(),
    "wrong member": json.dumps({"member": {**FOREIGN, "version": 5, "member_id": "m-1",
                                           "identifiers": ["nfc:AAAA"]}}).encode(),
    "bad json": b'{"member": {"member_id": "m-9", ',
    "nested": b'{"member": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "balance not a number": json.dumps({"member": {**FOREIGN, "version": 5,
                                                   "balances": {"points": "9e99"}}}).encode(),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_answer_is_refused_and_nothing_is_cached(
        club: SimClub, club_pki: ClubPki, tmp_path: Path, case: str) -> None:
    club.faults.lookup_body = HOSTILE[case]

    async def scenario(h: Harness) -> None:
        c = h.client()
        err = await refused(c.call("member.identify", {"token": TOKEN}))
        assert err.code == UNKNOWN_MEMBER and (err.data or {}).get("reason") == "lookup_failed"
        assert h.store.members.lookup(TOKEN) is None
        # "wrong member" tries to overwrite this terminal's own member m-1: it stays.
        gold = h.store.members.member("m-1")
        assert gold is not None and gold["balances"]["points"] == 1200
        assert "nfc:AAAA" not in gold["identifiers"] and "_looked_up_at" not in gold
        print(f"figure: hostile lookup answer ({case}, {len(HOSTILE[case]):,} bytes) refused")
    run(scenario, client(club, club_pki, retry_after_s=0.0), tmp_path)


def test_the_answer_parser_by_table() -> None:
    good = json.dumps({"member": {**FOREIGN, "version": 5, "_looked_up_at": 1}}).encode()
    record = parse_lookup_answer(TOKEN, good)
    assert record["member_id"] == "m-9" and "_looked_up_at" not in record
    for body, reason in ((b"[]", "bad_answer"), (b'{"member": null}', "bad_answer"),
                         (b"\xff\xfe", "bad_answer"), (b" " * (65 * 1024), "too_large"),
                         (json.dumps({"member": {**FOREIGN}}).encode(), "bad_answer")):
        with pytest.raises(LookupFailed) as info:
            parse_lookup_answer(TOKEN, body)
        assert info.value.reason == reason, body[:40]


def test_twenty_taps_at_once_on_a_hanging_club_wait_one_timeout(
        club: SimClub, club_pki: ClubPki, tmp_path: Path) -> None:
    """Tills of one terminal tapping unknown cards together while the club hangs: the
    first failure stops the others asking, so nobody waits more than about one
    timeout, and the local API keeps answering meanwhile."""
    club.faults.lookup_delay_s = 5.0

    async def scenario(h: Harness) -> None:
        clients = [h.client() for _ in range(4)]
        started = time.monotonic()
        calls = [clients[i % 4].call("member.identify", {"token": f"nfc:0F0F{i:02X}"})
                 for i in range(20)]
        status = asyncio.create_task(clients[0].call("agent.status", {}))
        results = await asyncio.gather(*calls, return_exceptions=True)
        took = time.monotonic() - started
        assert all(isinstance(r, ApiError) and r.code == UNKNOWN_MEMBER for r in results)
        assert (await status)["terminal_id"]
        assert took < 2 * 1.0 + 1.0, f"20 taps took {took:.1f} s"
        asked = len(club.lookup_requests)
        assert asked <= 8, f"the club was asked {asked} times"
        print(f"figure: 20 concurrent taps on a hanging club answered in {took:.2f} s, "
              f"the club asked {asked} times")
    run(scenario, client(club, club_pki), tmp_path)


def test_a_flood_of_foreign_cards_keeps_the_lookup_cache_bounded(
        club: SimClub, club_pki: ClubPki, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A busy mall (or somebody tapping card after card) makes the terminal look up
    member after member: the cache keeps the newest ``MAX_LOOKED_UP`` and drops the
    one looked up longest ago, never one of its own scope; a dropped member tapped
    again is simply looked up again."""
    from agent.offline_queue import members as members_mod

    monkeypatch.setattr(members_mod, "MAX_LOOKED_UP", 5)
    foreign = [{**FOREIGN, "member_id": f"m-f{i}", "identifiers": [f"nfc:F{i:05X}"]}
               for i in range(12)]
    club.ledger.upsert_members(foreign)

    async def scenario(h: Harness) -> None:
        c = h.client()
        own = h.store.members.members_version()
        for i, rec in enumerate(foreign):
            h.now += timedelta(seconds=1)
            who = await c.call("member.identify", {"token": rec["identifiers"][0]})
            assert who["member_id"] == rec["member_id"] and who["looked_up"] is True
            assert h.store.members.looked_up_count() == min(i + 1, 5)
        kept = [r["member_id"] for r in foreign if h.store.members.lookup(r["identifiers"][0])]
        assert kept == [f"m-f{i}" for i in range(7, 12)]  # the newest five
        assert h.store.members.members_version() == own  # its own scope untouched
        assert h.store.members.lookup("nfc:04A1B2") is not None  # Sara, of its own scope
        asked = len(club.lookup_requests)
        again = await c.call("member.identify", {"token": foreign[0]["identifiers"][0]})
        assert again["member_id"] == "m-f0" and len(club.lookup_requests) == asked + 1
        assert h.store.members.looked_up_count() == 5
        print(f"figure: {len(foreign) + 1} foreign cards looked up, "
              f"{h.store.members.looked_up_count()} kept (bound 5)")
    run(scenario, client(club, club_pki), tmp_path)


def test_the_lookup_bound_reads_an_index_not_every_member(tmp_path: Path) -> None:
    """Counting and dropping looked-up members reads the v7 index, not the 100,000
    records of a big merchant's cache (SQLite's own query plan says which)."""
    from agent.offline_queue import Store
    from agent.offline_queue.members import _LOOKED_UP_AT

    store = Store.open(tmp_path / "s.db", TERMINAL, "M-1")
    try:
        for sql in (f"SELECT count(*) FROM members WHERE {_LOOKED_UP_AT} IS NOT NULL",
                    f"SELECT member_id FROM members WHERE {_LOOKED_UP_AT} IS NOT NULL "
                    f"ORDER BY {_LOOKED_UP_AT} LIMIT 3"):
            plan = [str(row[-1]) for row in
                    store.db.execute_sql(f"EXPLAIN QUERY PLAN {sql}").fetchall()]
            # A scan of the partial index reads only the looked-up members.
            assert plan and all("INDEX members_looked_up" in step for step in plan), plan
    finally:
        store.close()


def test_a_card_reported_lost_elsewhere_is_refused_as_lost_not_unknown(
        club: SimClub, club_pki: ClubPki, tmp_path: Path) -> None:
    """Another merchant's member reported the card lost there and has a new one: the
    club answers this terminal's lookup with 404 ``card_lost``. The till says the card
    is lost (and whose), not "no member"; the new card is the member's; a garbled 404
    still reads as unknown."""
    from agent.localapi import MEMBER_NOT_ACTIVE
    from agent.sync.lookup import parse_not_found

    club.ledger.upsert_members([{**FOREIGN, "identifiers": ["nfc:0A0A0A"],
                                 "lost_identifiers": [TOKEN]}])

    async def scenario(h: Harness) -> None:
        c = h.client()
        err = await refused(c.call("member.identify", {"token": TOKEN}))
        assert err.code == MEMBER_NOT_ACTIVE, err
        assert err.data == {"reason": "card_lost", "member_id": "m-9"}
        # The club answered: not a failure, so it is asked again at once.
        new = await c.call("member.identify", {"token": "nfc:0A0A0A"})
        assert new["member_id"] == "m-9"
        assert h.store.members.lookup(TOKEN) is None
        again = await refused(c.call("sale.quote", {"amount": 1000, "token": TOKEN}))
        assert (again.data or {}).get("reason") == "card_lost"
        print(f"figure: lost card of another merchant's member refused as {err.data}")
    run(scenario, client(club, club_pki), tmp_path)
    for body in (b"", b"not json", b'{"error": "card_lost"}', b'{"error": "card_lost", '
                 b'"member_id": 7}', b"[" * 100_000, b'{"error": "unknown_member"}'):
        assert parse_not_found(body) is None
