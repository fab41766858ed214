"""Usable balances: a sale counts exactly once, whatever arrives when.

A small simulated club applies the terminal's events, acks them, and sends the
updated member record; hypothesis interleaves those deliveries every way. With
no rejections the terminal's usable balance must equal the true balance at every
step; with rejections it must follow the protocol formula at every step and
converge on the club's balance once everything has arrived.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.offline_queue import Store
from agent.offline_queue import events as ev

from .helpers import AT, member_record, sale_body

T = "T-0001"
KINDS = ("points", "credit.club")


def _add(a: dict[str, int], b: dict[str, int], sign: int = 1) -> dict[str, int]:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + sign * v
    return {k: v for k, v in out.items() if v}


@dataclass
class Club:
    """The club's side for one member: true balances, applied[T], version."""

    balances: dict[str, int]
    version: int = 1
    applied: dict[str, int] = field(default_factory=lambda: {T: 0})
    effects: dict[str, dict[str, int]] = field(default_factory=dict)  # event id -> effect
    rejected: set[str] = field(default_factory=set)
    acks: list[dict[str, Any]] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        return member_record(version=self.version, points=self.balances.get("points", 0),
                             credit=self.balances.get("credit.club", 0),
                             applied=dict(self.applied))

    def take(self, batch: list[dict[str, Any]], reject: set[int]) -> None:
        accepted, refused = [], []
        for event in batch:
            refused_sale = event["type"] == "refund" and event["sale_id"] in self.rejected
            if event["seq"] in reject or refused_sale:
                self.rejected.add(event["id"])
                refused.append({"id": event["id"], "reason": "refused"})
            else:
                if event["type"] == "sale":
                    effect = ev.sale_effect(event).balance
                else:
                    effect = {k: -v for k, v in self.effects[event["sale_id"]].items()}
                self.effects[event["id"]] = effect
                self.balances = _add(self.balances, effect)
                accepted.append(event["id"])
            self.applied[T] = event["seq"]
        self.version += 1
        self.acks.append({"accepted": accepted, "rejected": refused,
                          "applied_seq": self.applied[T]})

    def other_terminal_sale(self, points: int) -> None:
        self.balances = _add(self.balances, {"points": points})
        self.applied["T-0002"] = self.applied.get("T-0002", 0) + 1
        self.version += 1


actions = st.lists(st.one_of(
    st.tuples(st.just("sale"), st.integers(0, 300), st.integers(0, 80), st.integers(0, 50),
              st.integers(0, 40)),
    st.tuples(st.just("refund"), st.integers(0, 50)),
    st.tuples(st.just("club_takes"), st.integers(1, 4), st.integers(0, 10)),
    st.tuples(st.just("ack")),
    st.tuples(st.just("record")),
    st.tuples(st.just("other_terminal"), st.integers(-50, 50)),
), min_size=1, max_size=25)


def _run(steps: list[tuple[Any, ...]], allow_reject: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "db", T, "M-7")
        try:
            _simulate(store, steps, allow_reject)
        finally:
            store.close()


def _simulate(store: Store, steps: list[tuple[Any, ...]], allow_reject: bool) -> None:
    start = {"points": 1000, "credit.club": 500}
    club = Club(dict(start))
    assert store.members.apply_changes({"from_version": 0, "to_version": 1,
                                "members": [club.record()], "removed": []})
    cached = club.record()
    own: list[dict[str, Any]] = []  # wire events recorded by the terminal
    known_rejected: set[str] = set()
    refunded: set[str] = set()
    sent = 0
    for step in steps:
        kind = step[0]
        if kind == "sale":
            _, redeem, earn, used, got = step
            body = sale_body(redeemed_points=redeem, redeemed_value=redeem, earned=(earn,),
                             credits_used=(("credit.club", used),),
                             credits_earned=(("credit.club", got),))
            own.append(store.outbox.append("sale", body, at=AT, staff_id=None, offline=True).body)
        elif kind == "refund":
            sales = [e for e in own if e["type"] == "sale" and e["id"] not in refunded]
            if sales:
                sale = sales[step[1] % len(sales)]
                refunded.add(sale["id"])
                own.append(store.outbox.append("refund", {"sale_id": sale["id"], "reason": "r"},
                                        at=AT, staff_id=None, offline=True).body)
        elif kind == "club_takes":
            batch = own[sent:sent + step[1]]
            if batch:
                reject = {batch[step[2] % len(batch)]["seq"]} if allow_reject and step[2] < 3 \
                    else set()
                club.take(batch, reject)
                sent += len(batch)
        elif kind == "ack" and club.acks:
            ack = club.acks.pop(0)
            store.outbox.apply_ack(ack["accepted"], [(r["id"],
                                                      r["reason"]) for r in ack["rejected"]],
                            ack["applied_seq"])
            known_rejected |= {r["id"] for r in ack["rejected"]}
        elif kind == "record":
            record = club.record()
            assert store.members.apply_changes({"from_version": store.members.members_version(),
                                        "to_version": club.version, "members": [record],
                                        "removed": []})
            cached = record
        elif kind == "other_terminal":
            club.other_terminal_sale(step[1])

        # The protocol formula, computed by the model.
        applied = cached["applied"].get(T, 0)
        expect = dict(cached["balances"])
        sale_effects = {e["id"]: ev.sale_effect(e).balance for e in own if e["type"] == "sale"}
        for e in own:
            if e["seq"] <= applied or e["id"] in known_rejected:
                continue
            if e["type"] == "sale":
                expect = _add(expect, sale_effects[e["id"]])
            elif e["sale_id"] not in known_rejected:
                expect = _add(expect, sale_effects[e["sale_id"]], -1)
        got = {k: v for k, v in store.members.usable_balances("m-1").items() if v}
        assert got == {k: v for k, v in expect.items() if v}

        if not allow_reject:
            # Exactly once: the true balance, whether acked or not, record or not,
            # apart from other terminals' sales the terminal has not heard of yet.
            truth = dict(start)
            for e in own:
                truth = _add(truth, sale_effects[e["id"]] if e["type"] == "sale"
                             else {k: -v for k, v in sale_effects[e["sale_id"]].items()})
            other = cached["balances"].get("points", 0) - start["points"] - sum(
                club_effect.get("points", 0) for eid, club_effect in club.effects.items()
                if any(o["id"] == eid and o["seq"] <= applied for o in own))
            truth = _add(truth, {"points": other})
            assert got == {k: v for k, v in truth.items() if v}

    # Deliver everything: the terminal converges on the club's balances.
    if own[sent:]:
        club.take(own[sent:], set())
    for ack in club.acks:
        store.outbox.apply_ack(ack["accepted"], [(r["id"], r["reason"]) for r in ack["rejected"]],
                        ack["applied_seq"])
    assert store.members.apply_changes({"from_version": store.members.members_version(),
                                "to_version": club.version, "members": [club.record()],
                                "removed": []})
    final = {k: v for k, v in store.members.usable_balances("m-1").items() if v}
    assert final == {k: v for k, v in club.balances.items() if v}
    assert store.outbox.queue_stats().pending == 0


@settings(max_examples=60)
@given(actions)
def test_a_sale_counts_exactly_once_at_every_step(steps: list[tuple[Any, ...]]) -> None:
    _run(steps, allow_reject=False)


@settings(max_examples=60)
@given(actions)
def test_rejected_events_stop_counting_and_balances_converge(
        steps: list[tuple[Any, ...]]) -> None:
    _run(steps, allow_reject=True)


def test_update_before_ack_and_after_ack(store: Store) -> None:
    store.members.apply_changes({"from_version": 0, "to_version": 1,
                         "members": [member_record(points=1000, applied={T: 0})],
                         "removed": []})
    sale = store.outbox.append("sale", sale_body(redeemed_points=300, redeemed_value=300,
                                          earned=(20,)), at=AT, staff_id=None, offline=True)
    assert store.members.usable_balances("m-1") == {"points": 720}
    # The member update (club applied the sale) arrives before the ack ...
    store.members.apply_changes({"from_version": 1, "to_version": 2,
                         "members": [member_record(version=2, points=720,
                                                   applied={T: sale.seq})], "removed": []})
    assert store.members.usable_balances("m-1") == {"points": 720}
    store.outbox.apply_ack([sale.id], [], sale.seq)
    assert store.members.usable_balances("m-1") == {"points": 720}
    # ... or the ack comes first and the update later.
    s2 = store.outbox.append("sale", sale_body(earned=(5,)), at=AT, staff_id=None, offline=True)
    store.outbox.apply_ack([s2.id], [], s2.seq)
    assert store.members.usable_balances("m-1") == {"points": 725}
    store.members.apply_changes({"from_version": 2, "to_version": 3,
                         "members": [member_record(version=3, points=725,
                                                   applied={T: s2.seq})], "removed": []})
    assert store.members.usable_balances("m-1") == {"points": 725}


def test_unknown_member_balances_come_from_own_events(store: Store) -> None:
    store.outbox.append("sale", sale_body("local:abc", earned=(7,)), at=AT, staff_id=None,
                 offline=True)
    assert store.members.usable_balances("local:abc") == {"points": 7}
    assert store.members.usable_balances("m-unknown") == {}


def test_offline_counters_of_a_local_day(store: Store) -> None:
    day = AT.replace(hour=0)
    store.outbox.append("sale", sale_body(redeemed_points=500, redeemed_value=500,
                                   credits_used=(("credit.club", 200),)),
                 at=AT, staff_id=None, offline=True)
    store.outbox.append("sale", sale_body(redeemed_points=100, redeemed_value=100),
                 at=AT - timedelta(days=1), staff_id=None, offline=True)
    rej = store.outbox.append("sale", sale_body(redeemed_points=50, redeemed_value=50),
                       at=AT, staff_id=None, offline=True)
    store.outbox.append("sale", sale_body("m-2", redeemed_points=70, redeemed_value=70),
                 at=AT, staff_id=None, offline=True)
    store.outbox.apply_ack([], [(rej.id, "no")], None)
    assert store.members.offline_counters("m-1", day, day + timedelta(days=1)) == (500, 200)


def test_member_view_projects_stats(store: Store) -> None:
    store.members.apply_changes({"from_version": 0, "to_version": 1,
                         "members": [member_record(applied={T: 0})], "removed": []})
    store.outbox.append("sale", sale_body(payable=900), at=AT, staff_id=None, offline=True)
    view = store.members.member_view("m-1")
    assert view is not None
    assert view["stats"] == {"purchase_count": 2, "last_purchase": "2026-11-24",
                             "spend_30d": 1000}
    assert view["balances"] == {"points": 1010}


def test_check_funds_is_atomic_with_the_append_across_threads(tmp_path: Path) -> None:
    """Eight threads each append a sale redeeming 100 of 250 points with check_funds:
    exactly two are recorded, the balance never goes below zero."""
    import json
    import threading

    import pytest

    from agent.errors import LimitExceeded

    store = Store.open(tmp_path / "s.db", "T-0001", "M-7")
    store.members.import_snapshot([json.dumps(member_record(points=250))], 1, True)
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def spend() -> None:
        barrier.wait()
        try:
            store.outbox.append("sale", sale_body(redeemed_points=100, earned=()), at=AT,
                         staff_id=None, offline=False, check_funds=True)
            outcomes.append("ok")
        except LimitExceeded as exc:
            assert exc.limit == "points_balance"
            outcomes.append("refused")

    threads = [threading.Thread(target=spend) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["ok"] * 2 + ["refused"] * 6
    assert store.members.usable_balances("m-1")["points"] == 50
    # Credit is checked the same way; an unchecked append records what it is given.
    with pytest.raises(LimitExceeded):
        store.outbox.append("sale", sale_body(credits_used=(("credit.club", 1),), earned=()), at=AT,
                     staff_id=None, offline=False, check_funds=True)
    store.outbox.append("sale", sale_body(redeemed_points=100, earned=()), at=AT, staff_id=None,
                 offline=False)
    assert store.members.usable_balances("m-1")["points"] == -50
    store.close()
