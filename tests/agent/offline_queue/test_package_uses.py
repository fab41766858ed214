"""(1.3) Check-ins in the store: checked and recorded in one write transaction — two
tills on the last visit get one check-in; offline, one per member and day here."""

from __future__ import annotations

import json
import threading
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.offline_queue import Store
from agent.offline_queue.events import epoch_us
from agent.offline_queue.package_uses import PackageRefused, UseCheck
from tests.agent.offline_queue.helpers import AT, member_record

TODAY = AT.date()
PASS = {"package_id": "pk-1", "sku": "GYM-10", "name": "Gym pass", "visits_total": 10,
        "starts": "2026-01-01", "expires": "2027-12-31", "grace_days": 7,
        "freezable_days": 30, "frozen": []}


def check(offline_max: int | None = None, today: date = TODAY) -> UseCheck:
    return UseCheck(today, 0, epoch_us(AT) * 2, offline_max)


def use(store: Store, *, offline: bool = False, limit: int | None = None,
        **over: Any) -> tuple[Any, int | None]:
    body = {"member_id": "m-1", "package_id": "pk-1", "units": 1, "identified_by": None,
            **over}
    return store.outbox.append_package_use(body, at=AT, staff_id="c1", offline=offline,
                                           check=check(limit))


@pytest.fixture
def pk_store(tmp_path: Path) -> Store:
    s = Store.open(tmp_path / "s.db", "T-0001", "M-7")
    rec = member_record("m-1", packages=[PASS])
    rec["balances"]["visits.pk-1"] = 2
    s.members.import_snapshot([json.dumps(rec)], 1, True)
    yield s  # type: ignore[misc]
    s.close()


def test_visits_are_counted_down_and_the_last_one_refused(pk_store: Store) -> None:
    assert use(pk_store)[1] == 1
    assert use(pk_store)[1] == 0
    with pytest.raises(PackageRefused) as refused:
        use(pk_store)
    assert refused.value.reason == "package_used_up"
    assert pk_store.members.usable_balances("m-1")["visits.pk-1"] == 0


def test_two_tills_on_the_last_visit_get_one_check_in(pk_store: Store) -> None:
    use(pk_store)  # one visit left
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def till() -> None:
        barrier.wait()
        try:
            use(pk_store)
            outcomes.append("recorded")
        except PackageRefused as exc:
            outcomes.append(exc.reason)

    threads = [threading.Thread(target=till) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    print(f"figure: 6 tills on the last visit: {outcomes.count('recorded')} recorded, "
          f"{outcomes.count('package_used_up')} refused")
    assert sorted(outcomes) == ["package_used_up"] * 5 + ["recorded"]
    assert pk_store.members.usable_balances("m-1")["visits.pk-1"] == 0


def test_offline_one_check_in_per_member_and_day(pk_store: Store) -> None:
    use(pk_store, offline=True, limit=1)
    with pytest.raises(PackageRefused) as refused:
        use(pk_store, offline=True, limit=1)
    assert refused.value.reason == "package_offline_limit"


def test_a_retry_with_the_same_request_id_records_nothing_more(pk_store: Store) -> None:
    first, _ = use(pk_store, request_id="r-1")
    again, left = use(pk_store, request_id="r-1")
    assert again.id == first.id and left == 1
    rows = pk_store.db.execute_sql("SELECT count(*) FROM events WHERE type='package_use'")
    assert rows.fetchone()[0] == 1


def test_unknown_package_and_hostile_bodies_record_nothing(pk_store: Store) -> None:
    with pytest.raises(PackageRefused):
        use(pk_store, package_id="pk-nope")
    for bad in ({"units": 0}, {"units": 10**9}, {"units": True}, {"package_id": "x" * 65},
                {"package_id": ["pk-1"]}, {"member_id": ""}):
        with pytest.raises(ValueError):
            use(pk_store, **bad)
    rows = pk_store.db.execute_sql("SELECT count(*) FROM events").fetchone()[0]
    assert rows == 0


def freeze(store: Store, start: str, until: str, today: date = TODAY) -> Any:
    body = {"member_id": "m-1", "package_id": "pk-1", "from": start, "until": until,
            "reason": "travel"}
    return store.outbox.append_package_freeze(body, at=AT, staff_id="mg", offline=True,
                                              today=today)


def test_a_freeze_counts_here_at_once_and_its_limit_holds(pk_store: Store) -> None:
    """Frozen today: the check-in is refused at once (before the club has the freeze);
    the expiry moves; a second freeze past the 30 freezable days is refused; a freeze
    overlapping one recorded here is refused too — both read in the write transaction."""
    today = TODAY.isoformat()
    freeze(pk_store, today, (TODAY + timedelta(days=9)).isoformat())
    with pytest.raises(PackageRefused) as refused:
        use(pk_store)
    assert refused.value.reason == "package_frozen"
    (pkg,) = pk_store.outbox.member_packages("m-1")
    assert len(pkg["frozen"]) == 1
    with pytest.raises(PackageRefused) as overlap:
        freeze(pk_store, (TODAY + timedelta(days=5)).isoformat(),
               (TODAY + timedelta(days=12)).isoformat())
    assert overlap.value.reason == "bad_freeze"
    with pytest.raises(PackageRefused) as too_long:
        freeze(pk_store, (TODAY + timedelta(days=20)).isoformat(),
               (TODAY + timedelta(days=41)).isoformat())
    assert too_long.value.reason == "freeze_too_long"
    for bad in ("2026-13-01", "", "2026-11-28T00:00"):
        with pytest.raises(ValueError):
            freeze(pk_store, bad, today)
