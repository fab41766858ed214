"""(1.3) Visit packages: a package's state on a day, check-in refusals, freezes — the
worked examples of docs/rules.md "Visit packages and memberships" and properties."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.rules import packages as pk

GYM = {"package_id": "pk-1", "sku": "GYM-10", "name": "10-visit gym pass", "visits_total": 10,
       "starts": "2026-11-01", "expires": "2027-01-29", "grace_days": 7,
       "freezable_days": 30, "frozen": []}


def test_worked_examples() -> None:
    # G1: before its start, on its first and last day, in grace, after grace.
    assert pk.state_on(GYM, date(2026, 10, 31)).state == "not_started"
    assert pk.state_on(GYM, date(2026, 11, 1)).state == "active"
    assert pk.state_on(GYM, date(2027, 1, 29)).state == "active"
    grace = pk.state_on(GYM, date(2027, 1, 31))
    assert (grace.state, grace.grace_left, grace.usable) == ("in_grace", 5, True)
    assert pk.state_on(GYM, date(2027, 2, 5)).state == "in_grace"  # the 7th grace day
    assert pk.state_on(GYM, date(2027, 2, 6)).state == "expired"
    # G2: frozen 1–10 December: frozen then, and the expiry moves 10 days later.
    frozen = {**GYM, "frozen": [{"from": "2026-12-01", "until": "2026-12-10"}]}
    assert pk.state_on(frozen, date(2026, 12, 5)).state == "frozen"
    assert pk.expires_on(frozen) == date(2027, 2, 8)
    assert pk.state_on(frozen, date(2027, 2, 8)).state == "active"
    # G3: check-in refusals, in the order they are checked.
    day = date(2026, 11, 28)
    assert pk.use_refusal(None, 5, 1, day).reason == "package_unknown"  # type: ignore[union-attr]
    assert pk.use_refusal(GYM, 0, 1, day).reason == "package_used_up"  # type: ignore[union-attr]
    assert pk.use_refusal(GYM, 1, 1, day) is None
    assert pk.use_refusal(GYM, 1, 2, day).reason == "package_used_up"  # type: ignore[union-attr]
    assert pk.use_refusal(frozen, 5, 1, date(2026, 12, 1)).reason == "package_frozen"  # type: ignore[union-attr]
    assert pk.use_refusal(GYM, 5, 1, date(2027, 3, 1)).reason == "package_expired"  # type: ignore[union-attr]
    # G4: offline, one check-in per member and day at this terminal (the default).
    assert pk.use_refusal(GYM, 5, 1, day, used_today_offline=0, offline_max=1) is None
    assert pk.use_refusal(GYM, 5, 1, day, used_today_offline=1,
                          offline_max=1).reason == "package_offline_limit"  # type: ignore[union-attr]
    # G5: an unlimited monthly membership needs no visits left.
    month = {**GYM, "visits_total": None, "expires": "2026-11-30"}
    assert pk.use_refusal(month, None, 1, day) is None


def test_a_revoked_package_is_expired_on_every_day() -> None:
    # G6: a refund took the package back on 2026-11-20 (club.md): expired, no grace,
    # whatever the day; a check-in is refused package_expired.
    gone = {**GYM, "revoked": "2026-11-20"}
    for day in (date(2026, 10, 31), date(2026, 11, 5), date(2026, 11, 20), date(2027, 1, 31)):
        st = pk.state_on(gone, day)
        assert (st.state, st.expires, st.usable) == ("expired", date(2026, 11, 19), False)
    refusal = pk.use_refusal(gone, 10, 1, date(2026, 11, 28))
    assert refusal is not None and refusal.reason == "package_expired"
    assert pk.usable_ids([gone], {"visits.pk-1": 10}, date(2026, 11, 28)) == []


def _sold(sale_id: str, *grants: tuple[int, int | None]) -> list[dict[str, object]]:
    return [{"sale_id": sale_id, "line": line, "visits": visits, "days": 90}
            for line, visits in grants]


def test_refunds_take_back_the_grants_of_the_sale() -> None:
    # G7: the gym pass sold by sale s1 (10 visits): 10 left → refundable, −10 here;
    # 7 left → package_used, 3 used.
    sold = {**GYM, "sold_by": _sold("s1", (0, 10))}
    take = pk.refund_take([sold], "s1", None)
    assert take == pk.RefundTake({"pk-1": 10}, ())
    assert pk.refund_refusal(take, {"visits.pk-1": 10}, {}) is None
    refusal = pk.refund_refusal(take, {"visits.pk-1": 7}, {})
    assert refusal is not None and (refusal.reason, refusal.params["used"]) == \
        ("package_used", 3)
    assert refusal.message == ("3 of the package's visits were used: it cannot be "
                               "refunded here; ask the club.")
    # Another sale, or a sale the club has not applied (no grant): nothing taken.
    assert pk.refund_take([sold], "s2", None) == pk.RefundTake({}, ())
    assert pk.refund_take([GYM], "s1", None) == pk.RefundTake({}, ())
    # Renewed by s2 (2 units of line 1, 5 visits each): refunding one unit takes 5;
    # with one unit refunded before and not in the record yet, the other 5.
    renewed = {**GYM, "sold_by": _sold("s1", (0, 10)) + _sold("s2", (1, 5), (1, 5))}
    assert pk.refund_take([renewed], "s2", {1: 1}).visits == {"pk-1": 5}
    assert pk.refund_take([renewed], "s2", {1: 1}, {1: 1}).visits == {"pk-1": 5}
    assert pk.refund_take([renewed], "s2", {1: 1}, {1: 2}).visits == {}
    assert pk.refund_take([renewed], "s2", {0: 1}).visits == {}  # not a package line
    # A membership: refused once checked in here since the sale.
    month = {**GYM, "visits_total": None, "sold_by": _sold("s3", (0, None))}
    take = pk.refund_take([month], "s3", None)
    assert take == pk.RefundTake({}, ("pk-1",))
    assert pk.refund_refusal(take, {}, {}) is None
    assert pk.refund_refusal(take, {}, {"pk-1": 2}).params == {  # type: ignore[union-attr]
        "package_id": "pk-1", "used": 2, "visits": None}


def test_freezes() -> None:
    today = date(2026, 11, 28)
    assert pk.freeze_refusal(GYM, date(2026, 12, 1), date(2026, 12, 30), today) is None
    assert pk.freeze_refusal(GYM, date(2026, 12, 1), date(2026, 12, 31),
                             today).reason == "freeze_too_long"  # type: ignore[union-attr]
    assert pk.freeze_refusal(GYM, date(2026, 11, 27), date(2026, 11, 30),
                             today).reason == "bad_freeze"  # type: ignore[union-attr]
    once = {**GYM, "frozen": [{"from": "2026-12-01", "until": "2026-12-10"}]}
    assert pk.freeze_refusal(once, date(2026, 12, 10), date(2026, 12, 12),
                             today).reason == "bad_freeze"  # type: ignore[union-attr]


def test_a_malformed_date_is_a_clear_error() -> None:
    try:
        pk.state_on({**GYM, "expires": "31/01/2027"}, date(2026, 11, 28))
    except pk.PackageError as exc:
        assert "expiry" in str(exc)
    else:
        raise AssertionError("a malformed date was accepted")



@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 80), st.integers(0, 20)), max_size=4),
       st.integers(-10, 200), st.integers(0, 20))
def test_freezing_never_shortens_a_package(spans: list[tuple[int, int]], offset: int,
                                           grace: int) -> None:
    """Whatever is frozen, a package usable on a day before freezing is usable or frozen
    on that day after, and its expiry moves later by exactly the frozen days."""
    start = date(2026, 11, 1)
    base = {**GYM, "grace_days": grace}
    frozen = [{"from": (start + timedelta(days=a)).isoformat(),
               "until": (start + timedelta(days=a + n)).isoformat()} for a, n in spans]
    after = {**base, "frozen": frozen}
    day = start + timedelta(days=offset)
    before_state, after_state = pk.state_on(base, day), pk.state_on(after, day)
    if before_state.usable:
        assert after_state.state in ("active", "in_grace", "frozen")
    assert pk.expires_on(after) == pk.expires_on(base) + timedelta(days=pk.frozen_days(after))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 12), st.lists(st.integers(1, 3), max_size=20))
def test_uses_never_pass_the_visits_at_one_terminal(left: int, asks: list[int]) -> None:
    """Checked one after another (as the store's write transactions serialise them),
    the accepted units never exceed what was left."""
    day, used = date(2026, 11, 28), 0
    for units in asks:
        if pk.use_refusal(GYM, left - used, units, day) is None:
            used += units
    assert used <= left


def test_each_bad_freeze_says_why_with_its_figures() -> None:
    """(1.3) ``bad_freeze`` covers three cases a cashier must tell apart: ``why``
    names the case, the dates and days are given for the UI's sentence."""
    today = date(2026, 11, 28)
    once = {**GYM, "frozen": [{"from": "2026-12-01", "until": "2026-12-10"}]}
    cases = [
        (GYM, date(2026, 12, 5), date(2026, 12, 1),
         {"why": "ends_before_start", "from": "2026-12-05", "until": "2026-12-01"}),
        (GYM, date(2026, 11, 27), date(2026, 11, 30),
         {"why": "in_past", "from": "2026-11-27", "today": "2026-11-28"}),
        (once, date(2026, 12, 10), date(2026, 12, 12),
         {"why": "overlap", "frozen_from": "2026-12-01", "frozen_until": "2026-12-10"}),
    ]
    for pkg, start, end, expected in cases:
        refusal = pk.freeze_refusal(pkg, start, end, today)
        assert refusal is not None and refusal.reason == "bad_freeze"
        assert {k: refusal.params[k] for k in expected} == expected
    too_long = pk.freeze_refusal(once, date(2026, 12, 11), date(2026, 12, 31), today)
    assert too_long is not None and too_long.reason == "freeze_too_long"
    assert {k: too_long.params[k] for k in ("freezable_days", "used", "days")} == {
        "freezable_days": GYM["freezable_days"], "used": 10, "days": 21}


def test_what_a_record_holds_that_cannot_be_read() -> None:
    day = date(2027, 2, 1)  # past the expiry: the grace days are read
    for bad in ({"grace_days": "seven"}, {"grace_days": 10**30}, {"visits_total": "ten"},
                {"visits_total": -1}, {"visits_total": True}, {"expires": "9999-12-31",
                                                               "frozen": [{"from": "2026-01-01",
                                                                           "until": "2026-12-31"}]},
                {"expires": ["2027-01-29"]}):
        try:
            pk.summary({**GYM, **bad}, 3, day)
        except pk.PackageError as exc:
            assert len(str(exc)) < 200, exc  # a bounded message, never the whole value
        else:
            raise AssertionError(f"{bad} was read")
    odd = pk.summary({**GYM, "name": {"$ne": 1}, "sku": 5, "starts": "2026-11-01",
                      "frozen": 12}, 3, day)
    assert (odd["name"], odd["sku"], odd["frozen"], odd["visits_left"]) == (None, None, [], 3)
    assert pk.summary({**GYM, "name": "x" * 5000}, 3, day)["name"] == "x" * pk.MAX_TEXT
    for packages in ("packages", 5, {"a": GYM}, None, [1, None, [GYM], {"package_id": 5},
                                                       {"package_id": ""},
                                                       {"package_id": "x" * 65}]):
        assert pk.member_packages({"packages": packages}) == []
    many = {"packages": [7] * 100_000 + [GYM] * 100}
    assert len(pk.member_packages(many)) == pk.MAX_PACKAGES
