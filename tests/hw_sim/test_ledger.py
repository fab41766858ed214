"""The club ledger: exactly once and in seq order, whatever order and repeats batches come in."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hw_sim.club.ledger import Ledger


def make_events(spec: list[tuple[int, int, int]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for seq, (earned, redeemed, refund_of) in enumerate(spec, start=1):
        base = {"id": str(uuid.uuid4()), "seq": seq, "at": "2026-11-24T10:00:00+01:00",
                "terminal_id": "T-1", "merchant_id": "M-7", "staff_id": None, "offline": False}
        sales = [e for e in out if e["type"] == "sale"]
        if refund_of and sales:
            out.append({**base, "type": "refund", "sale_id": sales[refund_of % len(sales)]["id"],
                        "reason": "r"})
            continue
        out.append({**base, "type": "sale", "member_id": "m-1", "gross": 1000,
                    "discounts": [], "redeemed_points": redeemed, "redeemed_value": redeemed,
                    "credits_used": [], "payable": 1000 - redeemed,
                    "points_earned": [{"rule": "p", "points": earned},
                                      {"rule": "x2", "points": earned}],
                    "credits_earned": [], "lottery_entries": 0})
    return out


def expected_points(events: list[dict[str, Any]]) -> int:
    points, refunded = 1000, set()
    by_id = {e["id"]: e for e in events}
    for e in events:
        if e["type"] == "sale":
            points += -e["redeemed_points"] + sum(r["points"] for r in e["points_earned"])
        elif e["sale_id"] not in refunded:
            refunded.add(e["sale_id"])
            s = by_id[e["sale_id"]]
            points -= -s["redeemed_points"] + sum(r["points"] for r in s["points_earned"])
    return points


@settings(max_examples=40, deadline=None)
@given(spec=st.lists(st.tuples(st.integers(0, 50), st.integers(0, 20), st.integers(0, 3)),
                     min_size=1, max_size=40),
       data=st.data())
def test_any_delivery_order_applies_each_event_once(spec, data) -> None:
    events = make_events(spec)
    # Batches: random slices, delivered shuffled, some twice.
    deliveries = data.draw(st.lists(st.tuples(st.integers(0, len(events) - 1),
                                              st.integers(1, 10)), max_size=15))
    batches = [events[i:i + n] for i, n in deliveries] + [events]  # finally a full resend
    order = data.draw(st.permutations(range(len(batches))))
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(Path(tmp) / "club.db")
        ledger.upsert_members([{"member_id": "m-1", "balances": {"points": 1000}}])
        for i in order:
            result = ledger.receive_batch("T-1", batches[i])
            assert sorted(result.accepted) == sorted({e["id"] for e in batches[i]})
            assert result.applied_seq == ledger.applied_seq("T-1")
        assert ledger.applied_seq("T-1") == len(events)
        assert ledger.event_counts("T-1") == {"applied": len(events)}
        rec = ledger.member("m-1")
        assert rec is not None
        assert rec["balances"]["points"] == expected_points(events)
        # applied[T] may stop at the last event that changed the member: later ones
        # (a second refund of one sale) had no effect on it.
        applied = rec["applied"]["T-1"]
        assert applied <= len(events)
        assert expected_points(events[:applied]) == expected_points(events)
        ledger.close()


@settings(max_examples=30, deadline=None)
@given(spec=st.lists(st.tuples(st.integers(0, 50), st.integers(0, 20), st.integers(0, 3)),
                     min_size=1, max_size=30),
       data=st.data())
def test_batches_taken_together_end_as_taken_one_by_one(spec, data) -> None:
    """receive_batches (one transaction, as the club's worker groups what is queued)
    leaves the ledger exactly as the same batches received one after the other."""
    from hw_sim.club.ledger import PreparedBatch

    events = make_events(spec)
    deliveries = data.draw(st.lists(st.tuples(st.integers(0, len(events) - 1),
                                              st.integers(1, 8)), max_size=10))
    batches = [events[i:i + n] for i, n in deliveries] + [events]
    order = data.draw(st.permutations(range(len(batches))))
    cuts = sorted(set(data.draw(st.lists(st.integers(1, len(batches)), max_size=5))))
    outcomes = []
    applied_of: list[int] = []
    with tempfile.TemporaryDirectory() as tmp:
        for grouped in (False, True):
            ledger = Ledger(Path(tmp) / f"club-{grouped}.db")
            ledger.upsert_members([{"member_id": "m-1", "balances": {"points": 1000}}])
            ordered = [batches[i] for i in order]
            acks = []
            if grouped:
                for a, b in zip([0, *cuts], [*cuts, len(ordered)], strict=True):
                    group = [PreparedBatch({"events": bt}, None, {}, {}) for bt in ordered[a:b]]
                    if group:
                        results = ledger.receive_batches("T-1", group)
                        assert {r.applied_seq for r in results} == {ledger.applied_seq("T-1")}
                        acks += [sorted(r.accepted) for r in results]
            else:
                acks = [sorted(ledger.receive_batch("T-1", bt).accepted) for bt in ordered]
            rec = ledger.member("m-1")
            assert rec is not None
            rec.pop("version")
            applied = rec.pop("applied").get("T-1", 0)
            outcomes.append((acks, rec, ledger.event_counts("T-1"), ledger.applied_seq("T-1")))
            applied_of.append(applied)
            ledger.close()
    assert outcomes[0] == outcomes[1]
    # applied[T] of a record may stop at the last event that changed it; taken
    # together, the group's last applied_seq is written (as true, and newer).
    assert applied_of[0] <= applied_of[1] <= outcomes[1][3]


def test_a_gap_holds_application_back_until_it_is_filled(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "club.db")
    ledger.upsert_members([{"member_id": "m-1", "balances": {"points": 0}}])
    events = make_events([(5, 0, 0)] * 4)
    r = ledger.receive_batch("T-1", [events[0], events[2], events[3]])
    assert r.applied_seq == 1 and ledger.member("m-1")["balances"]["points"] == 10
    r = ledger.receive_batch("T-1", [events[1]])
    assert r.applied_seq == 4 and ledger.member("m-1")["balances"]["points"] == 40
    clash = {**events[1], "id": str(uuid.uuid4())}
    r = ledger.receive_batch("T-1", [clash])
    assert r.rejected[0]["reason"].startswith("seq_conflict")


@settings(max_examples=30, deadline=None)
@given(sales=st.lists(st.tuples(st.integers(28 * 24 * 60, 33 * 24 * 60), st.integers(1, 5000),
                                st.booleans(), st.integers(1, 3)), min_size=1, max_size=30),
       later_min=st.integers(0, 40 * 24 * 60))
def test_spend_30d_is_the_net_of_the_last_30_days(sales, later_min) -> None:
    """spend_30d (summed per day plus the window's first, partial day) equals the plain
    sum of the not refunded sales of the last 30 days, also as the clock moves on."""
    from datetime import UTC, datetime, timedelta

    start = datetime(2026, 9, 1, 0, 0, tzinfo=UTC)
    now = [start + timedelta(days=60)]
    events: list[dict[str, Any]] = []
    for minute, payable, refund, _ in sales:
        at = start + timedelta(minutes=minute)
        events.append({"id": str(uuid.uuid4()), "seq": len(events) + 1, "type": "sale",
                       "at": at.isoformat(), "terminal_id": "T-1", "member_id": "m-1",
                       "gross": payable, "discounts": [], "redeemed_points": 0,
                       "redeemed_value": 0, "credits_used": [], "payable": payable,
                       "points_earned": [], "credits_earned": [], "lottery_entries": 0})
        if refund:
            events.append({"id": str(uuid.uuid4()), "seq": len(events) + 1, "type": "refund",
                           "at": at.isoformat(), "terminal_id": "T-1",
                           "sale_id": events[-1]["id"], "reason": "r"})
    refunded = {e["sale_id"] for e in events if e["type"] == "refund"}

    def expected() -> int:
        since = now[0] - timedelta(days=30)
        return sum(e["payable"] for e in events if e["type"] == "sale"
                   and e["id"] not in refunded and datetime.fromisoformat(e["at"]) >= since)

    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(Path(tmp) / "club.db", clock=lambda: now[0])
        ledger.upsert_members([{"member_id": "m-1", "balances": {"points": 0}}])
        sizes = [n for _, _, _, n in sales]
        i = 0
        for n in sizes:  # batches of 1-3 events: refunds in the same or a later batch
            ledger.receive_batch("T-1", events[i:i + n])
            i += n
        ledger.receive_batch("T-1", events[i:])
        assert ledger.applied_seq("T-1") == len(events)
        assert ledger.member("m-1")["stats"]["spend_30d"] == expected()
        now[0] += timedelta(minutes=later_min)  # the window moves on
        ledger.receive_batch("T-1", [{**events[0], "id": str(uuid.uuid4()),
                                      "seq": len(events) + 1, "payable": 0, "gross": 0}])
        events.append({**events[0], "seq": len(events) + 1, "payable": 0, "id": "x"})
        assert ledger.member("m-1")["stats"]["spend_30d"] == expected()
        ledger.close()


@settings(max_examples=60, deadline=None)
@given(events=st.lists(st.dictionaries(st.text(max_size=8), st.one_of(
    st.integers(), st.text(), st.lists(st.integers(), max_size=3)), max_size=4), max_size=5),
       batch=st.text(max_size=20), compact=st.booleans())
def test_parse_batch_equals_json_loads_and_keeps_each_event_text(events, batch,
                                                                  compact) -> None:
    import json

    from hw_sim.club.ledger import parse_batch

    doc = {"batch": batch, "terminal_id": "T-1", "events": events}
    payload = (json.dumps(doc, separators=(",", ":"), ensure_ascii=False) if compact
               else json.dumps(doc)).encode()
    parsed, raw = parse_batch(payload)
    assert parsed == json.loads(payload)
    if raw is not None:
        assert [json.loads(t) for t in raw] == events
    if compact:
        assert raw is not None


def test_parse_batch_refuses_what_json_refuses() -> None:
    import pytest

    from hw_sim.club.ledger import parse_batch

    for bad in (b'{"batch":"x","events":[{"id":1}', b'{"events":[1,2]', b"nope",
                b'{"events":[1]}}'):
        with pytest.raises(ValueError):
            parse_batch(bad)
    assert parse_batch(b'{"events":[1] , "x":2}') == ({"events": [1], "x": 2}, None)
    assert parse_batch(b'{"a":"\\"events\\":[","events":[]}')[0] == {"a": '"events":[',
                                                                     "events": []}


def test_an_identifier_moved_twice_in_one_transaction_has_one_holder(tmp_path: Path) -> None:
    """card_link to m-1 and then to m-2 in batches taken together: the token has one
    holder, though m-1's change was not saved yet when m-2 asked for it. Since 1.3 the
    first link wins and the second is rejected ``identifier_taken`` (#19: two tills
    linking one card at once); before, the second took the card from the first."""
    from hw_sim.club.ledger import PreparedBatch

    ledger = Ledger(tmp_path / "club.db")
    ledger.upsert_members([{"member_id": "m-1"}, {"member_id": "m-2"}])
    base = {"at": "2026-11-24T10:00:00+01:00", "terminal_id": "T-1", "type": "card_link",
            "identifier": "nfc:04AA"}
    links = [{**base, "id": str(uuid.uuid4()), "seq": seq, "member_id": member}
             for seq, member in ((1, "m-1"), (2, "m-2"))]
    results = ledger.receive_batches("T-1", [PreparedBatch({"events": [ev]}, None, {}, {})
                                             for ev in links])
    assert ledger.member("m-1")["identifiers"] == ["nfc:04AA"]
    assert "nfc:04AA" not in ledger.member("m-2")["identifiers"]
    assert [r["reason"].split(":")[0] for res in results for r in res.rejected] == [
        "identifier_taken"]
    ledger.close()


def test_a_bare_amount_line_is_told_from_product_and_category_lines() -> None:
    """#22.5: a sale rung up as a bare amount carries one line with sku and category
    null; the club takes it and tells it from a product (sku) or category line."""
    def line(sku: str | None, category: str | None, qty: int, price: int) -> dict[str, Any]:
        return {"sku": sku, "category": category, "qty": qty, "unit_price": price}

    baskets = [
        [line(None, None, 1, 5050)],                                  # bare amount
        [line("espresso", "coffee", 2, 250), line("cake", None, 1, 4550)],  # products
        [line(None, "bakery", 3, 100), line(None, None, 1, 7)],       # category + amount
        [line(None, None, 1, 999)],                                   # refunded below
    ]
    with tempfile.TemporaryDirectory() as d:
        led = Ledger(Path(d) / "club.db")
        led.upsert_members([{"member_id": "m-1", "balances": {"points": 0}}])
        events = make_events([(1, 0, 0)] * len(baskets))
        for ev, lines in zip(events, baskets, strict=True):
            ev["lines"] = lines
            ev["gross"] = ev["payable"] = sum(x["qty"] * x["unit_price"] for x in lines)
        refund = {**{k: events[3][k] for k in ("at", "terminal_id", "merchant_id")},
                  "id": str(uuid.uuid4()), "seq": 5, "type": "refund",
                  "sale_id": events[3]["id"], "reason": "r", "staff_id": None,
                  "offline": False}
        result = led.receive_batch("T-1", [*events, refund])
        assert result.rejected == [] and result.applied_seq == 5
        assert led.line_totals() == {"amount": 5050 + 7, "product": 500 + 4550,
                                     "category": 300}
        assert led.line_totals("T-2") == {"amount": 0, "product": 0, "category": 0}
        # A line that is neither (sku not a string or null) is refused, with its reason.
        bad = make_events([(1, 0, 0)])[0]
        bad["seq"], bad["lines"] = 6, [{"sku": 12, "category": None, "qty": 1,
                                        "unit_price": 1}]
        again = led.receive_batch("T-1", [bad])
        assert again.rejected == [{"id": bad["id"],
                                   "reason": "malformed: lines[0].sku is not a string or null"}]
        assert again.applied_seq == 6
        led.close()


def test_a_correction_of_an_enrolment_renames_or_closes_the_member() -> None:
    """#15 item 10: the club applies a manager's correction of a mis-typed enrolment;
    the enrolment event itself stays as it was; a correction it cannot use is rejected."""
    base = {"at": "2026-11-24T10:00:00+01:00", "terminal_id": "T-1", "merchant_id": "M-7",
            "staff_id": "2", "offline": False}
    enrol = {**base, "id": str(uuid.uuid4()), "seq": 1, "type": "member_enrol",
             "member_id": "local:aa", "name": "CLUB-9999", "identifiers": ["tel:+9893511122"],
             "referred_by": None}
    rename = {**base, "id": str(uuid.uuid4()), "seq": 2, "type": "correction",
              "ref_id": enrol["id"], "ref_type": "member_enrol", "action": "amend",
              "reason": "typo", "changes": {"name": "Sara J."}, "member_id": "local:aa"}
    broken = {**rename, "id": str(uuid.uuid4()), "seq": 3, "member_id": None}
    day_close = {**base, "id": str(uuid.uuid4()), "seq": 4, "type": "day_close",
                 "date": "2026-11-24", "close_no": 1, "totals": {}}
    void = {**rename, "id": str(uuid.uuid4()), "seq": 5, "action": "void", "changes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(Path(tmp) / "club.db")
        result = ledger.receive_batch("T-1", [enrol, rename, broken, day_close])
        assert broken["id"] in str(result.rejected) and enrol["id"] not in str(result.rejected)
        assert day_close["id"] in result.accepted
        [member] = [m for m in ledger.members() if "local:aa" in (m.get("replaces") or [])]
        assert member["name"] == "Sara J." and member.get("status", "active") == "active"
        ledger.receive_batch("T-1", [void])
        assert ledger.member(member["member_id"])["status"] == "closed"
        assert ledger.events("T-1")[0]["name"] == "CLUB-9999"
        ledger.close()


def test_a_correction_of_an_enrolments_phone_moves_the_phone() -> None:
    """#15 item 10: a mistyped phone stops finding the member at the club; the
    corrected one does (taken from whoever had it); the enrolment stays as it was."""
    base = {"at": "2026-11-24T10:00:00+01:00", "terminal_id": "T-1", "merchant_id": "M-7",
            "staff_id": "2", "offline": False}
    enrol = {**base, "id": str(uuid.uuid4()), "seq": 1, "type": "member_enrol",
             "member_id": "local:bb", "name": "Sara J.", "identifiers": ["tel:+9893511122",
                                                                         "code:CARD-1"],
             "referred_by": None}
    fix = {**base, "id": str(uuid.uuid4()), "seq": 2, "type": "correction",
           "ref_id": enrol["id"], "ref_type": "member_enrol", "action": "amend",
           "reason": "typo", "changes": {"phone": "tel:+9893511199"}, "member_id": "local:bb"}
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(Path(tmp) / "club.db")
        result = ledger.receive_batch("T-1", [enrol, fix])
        assert fix["id"] in result.accepted
        [member] = [m for m in ledger.members() if "local:bb" in (m.get("replaces") or [])]
        assert sorted(member["identifiers"]) == ["code:CARD-1", "tel:+9893511199"]
        assert member["name"] == "Sara J."
        assert ledger.events("T-1")[0]["identifiers"][0] == "tel:+9893511122"
        ledger.close()
