"""#17 "Staff from the club": the signed per-merchant staff list, end to end.

Real TLS mosquitto, the simulated club, the real link and store, and the real
local-API services signing people in. A freshly provisioned terminal with no
local staff gets the club's list; tampered, stale, foreign and oversized lists
are refused with their reason and the list in force stays; a person in two
groups gets the union; a person taken off the list can no longer sign in and
their session ends.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from agent.errors import ApiError
from agent.localapi.ports import DbThread
from agent.localapi.services import AgentView, Services
from agent.staff.staff_list import MAX_LIST_BYTES, MAX_STAFF
from hw_sim.broker import MosquittoBroker
from hw_sim.club.sim import SimClub
from hw_sim.club.staff import DEMO_GROUPS, demo_staff, staff_entry
from tests.agent.sync.conftest import Terminal, make_terminal  # noqa: F401  (fixture)

pytestmark = pytest.mark.needs_mosquitto


_DB_THREADS: list[DbThread] = []


@pytest.fixture(autouse=True)
def _close_db_threads() -> Iterator[None]:
    yield
    while _DB_THREADS:
        _DB_THREADS.pop().close()


def _services(term: Terminal, *, offline_only: bool = False) -> Services:
    """The real local-API services over the terminal's store (as the daemon has them)."""
    view = AgentView(term.config.terminal_id, term.config.merchant_id, "98",
                     online=lambda: True)
    db = DbThread()
    _DB_THREADS.append(db)
    return Services(view, db, outbox=term.store, members=term.store, records=term.store,
                    offline_only=offline_only)


def _login(services: Services, staff_id: str, pin: str) -> dict[str, Any]:
    return asyncio.run(services.staff_login({"staff_id": staff_id, "pin": pin}, None))


def _call(coro: Any) -> Any:
    return asyncio.run(coro)


def _staff_events(term: Terminal) -> list[dict[str, Any]]:
    return [e for e in term.events if e.get("type") == "staff"]


def _wait_version(term: Terminal, version: int) -> None:
    term.wait(lambda: term.store.staff_list_version() == version, 20,
              f"staff list version {version}")


def _wait_problem(term: Terminal, reason: str) -> dict[str, Any]:
    term.wait(lambda: any(str(e.get("problem") or "").startswith(reason)
                          for e in _staff_events(term)), 20, f"a {reason} refusal")
    return [e for e in _staff_events(term) if str(e.get("problem") or "").startswith(reason)][-1]


def test_fresh_terminal_signs_staff_in_from_the_clubs_list(
        sim_club: SimClub, mosquitto: MosquittoBroker, make_terminal: Callable[..., Terminal]  # noqa: F811
) -> None:
    term = make_terminal(sim_club, mosquitto.tls_url)
    assert term.store.list_staff(include_inactive=True) == []  # nobody could sign in
    services = _services(term)
    with pytest.raises(ApiError):
        _login(services, "1", "1234")
    started = time.monotonic()
    sim_club.publish_staff("M-7", 1)
    _wait_version(term, 1)
    print(f"figure: staff list in force {time.monotonic() - started:.2f} s after publishing")
    cashier = _login(services, "1", "1234")
    assert cashier["role"] == "cashier" and cashier["groups"] == ["cashier"]
    assert cashier["permissions"]["sale"] == ["view", "add", "print"]
    assert "refund" not in cashier["permissions"]
    manager = _login(services, "2", "4321")
    assert manager["role"] == "manager" and "add" in manager["permissions"]["refund"]
    with pytest.raises(ApiError) as err:
        _login(services, "1", "4321")
    assert err.value.data["reason"] == "bad_credentials"
    # The badge in the list is the badge the store knows.
    assert term.store.staff_by_badge("nfc:04AA000001")["staff_id"] == "1"
    # A local staff.create is refused while the club manages staff.
    with pytest.raises(ApiError) as err:
        _call(services.staff_create({"session": manager["session"], "staff_id": "9",
                                     "name": "New", "pin": "5555"}, None))
    assert err.value.data["reason"] == "club_manages_staff"
    status = sim_club.wait_status(term.id, lambda s: s.get("staff_version") == 1)
    assert status["staff_problem"] is None


def test_bad_lists_are_refused_with_reasons_and_the_old_list_stays(
        sim_club: SimClub, mosquitto: MosquittoBroker, make_terminal: Callable[..., Terminal]  # noqa: F811
) -> None:
    term = make_terminal(sim_club, mosquitto.tls_url)
    sim_club.publish_staff("M-7", 5)
    _wait_version(term, 5)
    services = _services(term)
    keeps = [s["staff_id"] for s in term.store.list_staff()]

    # Tampered: a valid envelope whose payload now makes 1 a manager.
    good = sim_club.publish_staff("M-7", 6, bad_signature=True)
    _wait_problem(term, "bad_signature")
    body = json.loads(base64.b64decode(good["payload"]))
    body["version"] = 7
    body["staff"][0]["groups"] = ["manager"]
    forged = dict(good, payload=base64.b64encode(json.dumps(body).encode()).decode())
    sim_club.publish_raw_staff("M-7", forged)
    term.wait(lambda: sum(str(e.get("problem") or "").startswith("bad_signature")
                          for e in _staff_events(term)) >= 2, 20, "the forged list refused")
    # Older, and for another merchant.
    sim_club.publish_staff("M-7", 4)
    _wait_problem(term, "stale")
    sim_club.publish_staff("M-7", 8, for_merchant="M-8")
    _wait_problem(term, "foreign_merchant")
    # Too many staff (signed by the club all the same).
    crowd = [{"staff_id": f"x{i}", "name": "X", "groups": ["cashier"], "pin": None,
              "badges": [], "active": False} for i in range(MAX_STAFF + 1)]
    started = time.monotonic()
    sim_club.publish_staff("M-7", 9, staff=crowd)
    _wait_problem(term, "too_many")
    print(f"figure: a list of {MAX_STAFF + 1} staff refused in "
          f"{time.monotonic() - started:.2f} s")
    # Too big: a payload over 4 MiB (long padding in a name-sized field is refused
    # later; the size check comes first).
    huge = [*demo_staff(), {"staff_id": "pad", "name": "P", "groups": ["cashier"],
                            "pin": None, "badges": [], "active": False,
                            "note": "x" * (MAX_LIST_BYTES + 10)}]
    sim_club.publish_staff("M-7", 10, staff=huge)
    _wait_problem(term, "too_large")
    print(f"figure: a {MAX_LIST_BYTES + 10}+ byte list refused as too_large")
    # Junk on the topic is refused too, and nothing changed.
    sim_club.publish_raw_staff("M-7", b"\x00not json")
    _wait_problem(term, "malformed")
    assert term.store.staff_list_version() == 5
    assert [s["staff_id"] for s in term.store.list_staff()] == keeps
    assert _login(services, "1", "1234")["role"] == "cashier"  # not the forged manager
    # And a good newer list still goes in.
    sim_club.publish_staff("M-7", 11)
    _wait_version(term, 11)
    refusals = sorted({str(e["problem"]).split(":")[0] for e in _staff_events(term)
                       if e.get("problem")})
    print(f"figure: refusal reasons seen {refusals}")


def test_two_groups_union_and_removal_ends_sessions(
        sim_club: SimClub, mosquitto: MosquittoBroker, make_terminal: Callable[..., Terminal]  # noqa: F811
) -> None:
    term = make_terminal(sim_club, mosquitto.tls_url)
    groups = dict(DEMO_GROUPS)
    groups["refunder"] = {"permissions": {"refund": ["view", "add"], "future_thing": ["add"]}}
    people = [*demo_staff(), staff_entry("7", "Two Hats", ["cashier", "refunder"], pin="7777",
                                         badges=["nfc:04AA000007"])]
    sim_club.publish_staff("M-7", 1, staff=people, groups=groups)
    _wait_version(term, 1)
    services = _services(term)
    both = _login(services, "7", "7777")
    assert both["role"] == "cashier"
    assert both["permissions"]["refund"] == ["view", "add"]  # from refunder
    assert both["permissions"]["sale"] == ["view", "add", "print"]  # from cashier
    assert "future_thing" not in both["permissions"]  # unknown features grant nothing
    cashier = _login(services, "1", "1234")
    summary = _call(services.day_summary({"session": cashier["session"]}, None))
    assert summary["per_staff"] is None  # a cashier has no staff_manage.view

    # 7 leaves the list: the session ends at once and the PIN no longer works.
    sim_club.publish_staff("M-7", 2, staff=demo_staff(), groups=groups)
    _wait_version(term, 2)
    event = [e for e in _staff_events(term) if e.get("version") == 2][-1]
    assert event["deactivated"] == ["7"]
    services.staff_removed(event["deactivated"])  # what the daemon does with the event
    with pytest.raises(ApiError) as err:
        _call(services.expense_add({"session": both["session"], "amount": 100,
                                    "category": "x"}, None))
    assert err.value.data["reason"] in ("session_expired", "staff_removed")
    with pytest.raises(ApiError) as err:
        _login(services, "7", "7777")
    assert err.value.data["reason"] == "bad_credentials"
    assert term.store.staff_by_badge("nfc:04AA000007") is None
    # History keeps the name: the row is deactivated, not deleted.
    assert term.store.staff("7")["active"] is False


def test_offline_only_box_keeps_local_staff_and_the_club_learns_of_new_ones(
        sim_club: SimClub, mosquitto: MosquittoBroker, make_terminal: Callable[..., Terminal]  # noqa: F811
) -> None:
    term = make_terminal(sim_club, mosquitto.tls_url, start=False)
    term.store.put_staff("L1", "Local Lena", "manager", by="setup", pin="2468")
    # Without offline_only a club list deactivates local staff ...
    plain = make_terminal(sim_club, mosquitto.tls_url, terminal_id="T-2")
    plain.store.put_staff("L2", "Local Leo", "cashier", by="setup", pin="1357")
    # ... with it they stay, and a manager may add more at the terminal.
    raw = dict(term.config.raw)
    raw["terminal"] = {**raw["terminal"], "offline_only": True}  # [terminal] offline_only
    term.config = dataclasses.replace(term.config, raw=raw)
    term.start()
    assert term.link is not None and term.link.offline_only
    sim_club.publish_staff("M-7", 1)
    _wait_version(term, 1)
    _wait_version(plain, 1)
    assert term.store.staff("L1")["active"] is True
    assert plain.store.staff("L2")["active"] is False
    services = _services(term, offline_only=True)
    lena = _login(services, "L1", "2468")
    made = _call(services.staff_create({"session": lena["session"], "staff_id": "L3",
                                        "name": "New Nia", "role": "cashier", "pin": "8642",
                                        "badges": ["nfc:04BB000003"]}, None))
    assert made["role"] == "cashier" and made["permissions"]["sale"] == ["view", "add", "print"]
    assert _login(services, "L3", "8642")["role"] == "cashier"
    # A cashier may not create staff; a PAN where a badge belongs is refused.
    nia = _login(services, "L3", "8642")
    with pytest.raises(ApiError) as err:
        _call(services.staff_create({"session": nia["session"], "staff_id": "L4",
                                     "name": "X", "pin": "1111"}, None))
    assert err.value.data["reason"] == "role"
    with pytest.raises(ApiError) as err:
        _call(services.staff_create({"session": lena["session"], "staff_id": "L5",
                                     "name": "X", "badges": ["nfc:4111111111111111"]}, None))
    assert err.value.data["param"] == "badges"
    # The club gets the staff_change event, adds L3 to the list and publishes it.
    term.link.wake()
    sim_club.wait_for(lambda: any(e.get("target_staff_id") == "L3"
                                  for e in sim_club.staff_changes), 20, "staff_change")
    change = next(e for e in sim_club.staff_changes if e.get("target_staff_id") == "L3")
    assert change["staff_id"] == "L1" and change["pin"]["scheme"] == "scrypt"
    assert "8642" not in json.dumps(change)
    _wait_version(term, 2)
    assert term.store.staff("L3")["source"] == "club"
    assert _login(services, "L3", "8642")["role"] == "cashier"
