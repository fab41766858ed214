"""(1.3) ``member.profile`` shows the member's packages as ``package.list`` does: the
demo's gym pass with its visits left, one fewer after a check-in; a member record
holding garbage in ``packages`` (not a list, non-dicts, wrong types, a huge list)
still answers, the bad entries left out and the rest bounded."""

from __future__ import annotations

import time
from typing import Any

from tests.agent.localapi.harness import Harness, run
from tests.agent.localapi.test_api_schemas import errors
from tests.agent.localapi.test_packages_api import seed
from tests.agent.offline_queue.helpers import member_record

GOOD = {"package_id": "pk-ok", "name": "Swim pass", "visits_total": 5,
        "starts": "2000-01-01", "expires": "9000-01-01", "grace_days": 0, "frozen": []}


def hold(h: Harness, member_id: str, packages: Any) -> None:
    v = h.store.members.members_version()
    h.store.members.apply_changes({"from_version": v, "to_version": v + 1, "members": [
        member_record(member_id, tokens=(f"nfc:0A{member_id[-1]}",), version=v + 1,
                      packages=packages)]})


def test_profile_shows_packages_and_a_check_in_counts_down() -> None:
    async def scenario(h: Harness) -> None:
        seed(h)  # the demo's gym pass, 7 visits left
        c = h.client()
        s = await h.login()
        before = await c.call("member.profile", {"session": s, "member_id": "m-1"})
        gym = before["packages"][0]
        assert (gym["name"], gym["state"], gym["visits_left"], gym["visits_total"]) == \
            ("10-visit gym pass", "active", 7, 10)
        listed = await c.call("package.list", {"session": s, "member_id": "m-1"})
        assert before["packages"] == listed["packages"]  # one implementation
        assert errors([("member.profile", {"session": s, "member_id": "m-1"}, before)]) == []
        await c.call("package.checkin", {"session": s, "member_id": "m-1"})
        after = await c.call("member.profile", {"session": s, "member_id": "m-1"})
        assert after["packages"][0]["visits_left"] == 6
    run(scenario)


GARBAGE: list[Any] = [
    "packages", 5, {"pk": GOOD}, None, True,
    [1, "x", None, [GOOD], {"package_id": 7}, {"package_id": "x" * 5000},
     {**GOOD, "package_id": "pk-date", "expires": "soon"},
     {**GOOD, "package_id": "pk-far", "expires": "9999-12-31",
      "frozen": [{"from": "2000-01-01", "until": "2001-01-01"}]},
     {**GOOD, "package_id": "pk-grace", "grace_days": "seven", "expires": "2001-01-01"},
     {**GOOD, "package_id": "pk-total", "visits_total": "ten"},
     {**GOOD, "package_id": "pk-neg", "visits_total": -3},
     {**GOOD, "package_id": "pk-huge", "visits_total": 10**30},
     {**GOOD, "package_id": "pk-frozen", "frozen": 12},
     {**GOOD, "package_id": "pk-name", "name": {"$ne": 1}, "sku": ["a"]},
     GOOD],
    [GOOD] + [{"package_id": f"pk-{i}", "expires": "x"} for i in range(100_000)],
]


def test_profile_of_a_member_whose_packages_are_garbage_answers() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        s = await h.login()
        for n, packages in enumerate(GARBAGE):
            hold(h, "m-9", packages)
            start = time.monotonic()
            profile = await c.call("member.profile", {"session": s, "member_id": "m-9"})
            took = time.monotonic() - start
            ids = [p["package_id"] for p in profile["packages"]]
            assert errors([("member.profile", {"session": s, "member_id": "m-9"},
                            profile)]) == []
            print(f"figure: garbage #{n}: {len(ids)} packages shown in {took * 1000:.0f} ms")
            assert took < 5
            if n == 5:
                # Only the well-formed entries; a name that is not text shows none.
                assert ids == ["pk-frozen", "pk-name", "pk-ok"]
                assert profile["packages"][1]["name"] is None
            elif n == 6:
                assert ids == ["pk-ok"]
            else:
                assert ids == []
    run(scenario)


def test_fifty_packages_at_most() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        s = await h.login()
        hold(h, "m-9", [{**GOOD, "package_id": f"pk-{i}"} for i in range(80)])
        profile = await c.call("member.profile", {"session": s, "member_id": "m-9"})
        assert len(profile["packages"]) == 50
    run(scenario)
