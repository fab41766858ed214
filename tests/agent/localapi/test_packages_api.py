"""(1.3) ``package.list`` / ``package.checkin`` through the real agent: the demo's gym
pass counts down, a membership in grace says so, hostile params are refused with a
reason and record nothing, concurrent check-ins of the last visits never overdraw."""

from __future__ import annotations

import asyncio

from agent.errors import ApiError
from agent.localapi.demo import demo_packages
from tests.agent.localapi.harness import Harness, run
from tests.agent.offline_queue.helpers import member_record


def seed(h: Harness) -> None:
    """Sara (m-1) with the demo's gym pass (7 left), Ali (m-5) with a monthly
    membership 3 days past its expiry (7 grace days)."""
    held = demo_packages(h.now.date())
    v = h.store.members.members_version()
    sara = member_record("m-1", tokens=("nfc:04A1B2",), version=v + 1, packages=held["m-1"])
    sara["balances"]["visits.pk-demo-gym"] = 7
    h.store.members.apply_changes({"from_version": v, "to_version": v + 1, "members": [
        sara, member_record("m-5", tokens=("nfc:0505",), version=v + 1,
                            packages=held["m-2"])]})


def test_check_in_counts_visits_down_and_grace_is_shown() -> None:
    async def scenario(h: Harness) -> None:
        seed(h)
        c = h.client()
        s = await h.login()
        listed = await c.call("package.list", {"session": s, "token": "nfc:04A1B2"})
        gym = listed["packages"][0]
        assert (gym["name"], gym["state"], gym["visits_left"]) == ("10-visit gym pass",
                                                                    "active", 7)
        done = await c.call("package.checkin", {"session": s, "token": "nfc:04A1B2"})
        assert (done["package_id"], done["visits_left"]) == ("pk-demo-gym", 6)
        month = await c.call("package.checkin", {"session": s, "member_id": "m-5"})
        assert (month["state"], month["visits_left"], month["grace_left"]) == \
            ("in_grace", None, 4)
        uses = [e for e in h.outbox() if e["type"] == "package_use"]
        assert [(e["member_id"], e["units"]) for e in uses] == [("m-1", 1), ("m-5", 1)]
    run(scenario)


def test_hostile_params_are_refused_and_record_nothing() -> None:
    async def scenario(h: Harness) -> None:
        seed(h)
        c = h.client()
        s = await h.login()
        bad = [{"token": "nfc:04A1B2", "units": 0}, {"token": "nfc:04A1B2",
                                                         "units": 10**30},
               {"token": "nfc:04A1B2", "units": "1"}, {"token": "nfc:04A1B2",
                                                           "package_id": "x" * 5000},
               {"token": "nfc:04A1B2", "package_id": {"$ne": 1}},
               {"token": "nfc:04A1B2", "member_id": "m-1"}, {},
               {"token": "nfc:04A1B2", "request_id": "a b"},
               {"token": "nfc:04A1B2", "extra": [[[[]]]]},
               {"member_id": "m-2"}]  # blocked
        for params in bad:
            try:
                await c.call("package.checkin", {"session": s, **params})
            except ApiError as exc:
                assert isinstance(exc.data, dict) and exc.data.get("reason"), exc
            else:
                raise AssertionError(f"accepted {params}")
        assert not [e for e in h.outbox() if e["type"] == "package_use"]
    run(scenario)


def test_concurrent_check_ins_never_overdraw() -> None:
    async def scenario(h: Harness) -> None:
        seed(h)
        s = await h.login()
        clients = [h.client() for _ in range(10)]
        answers = await asyncio.gather(*(
            c.call("package.checkin", {"session": s, "token": "nfc:04A1B2"})
            for c in clients), return_exceptions=True)
        done = [a for a in answers if isinstance(a, dict)]
        refused = [a for a in answers if isinstance(a, ApiError)]
        print(f"figure: 10 check-ins at once on 7 visits: {len(done)} recorded, "
              f"{len(refused)} refused")
        assert len(done) == 7 and len(refused) == 3
        assert all((a.data or {}).get("reason") in ("package_used_up", "package_none")
                   for a in refused)
    run(scenario)


def test_a_manager_freezes_and_the_check_in_is_refused_then() -> None:
    async def scenario(h: Harness) -> None:
        seed(h)
        c = h.client()
        cashier, manager = await h.login(), await h.login("mg", "9999")
        today = h.now.date().isoformat()
        period = {"member_id": "m-1", "package_id": "pk-demo-gym", "from": today,
                  "until": today, "reason": "ill"}
        try:
            await c.call("package.freeze", {"session": cashier, **period})
        except ApiError as exc:
            assert (exc.data or {}).get("reason") == "role"
        else:
            raise AssertionError("a cashier froze a package")
        done = await c.call("package.freeze", {"session": manager, **period})
        assert done["package"]["state"] == "frozen"
        try:
            await c.call("package.checkin", {"session": cashier, "member_id": "m-1"})
        except ApiError as exc:
            assert (exc.data or {}).get("reason") == "package_none"
        else:
            raise AssertionError("checked in on a frozen day")
        for bad in ({"from": "yesterday"}, {"until": "2026-02-30"}, {"from": 20261128},
                    {"package_id": "nope"}, {"from": "2026-01-01", "until": "2026-01-02"}):
            try:
                await c.call("package.freeze", {"session": manager, **period, **bad})
            except ApiError as exc:
                assert (exc.data or {}).get("reason"), exc
            else:
                raise AssertionError(f"accepted {bad}")
        assert len([e for e in h.outbox() if e["type"] == "package_freeze"]) == 1
    run(scenario)
