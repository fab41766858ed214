"""(1.3) Stored value and gift cards in the store: top-ups and stored-value tenders move
the member's ``value.<x>``; a gift card sold here is spendable at once; a gift card's
payment is a companion event in the sale's write transaction (both or neither); the
balance check is in that transaction (never below zero, whatever the threads)."""

from __future__ import annotations

import json
import threading
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.offline_queue import Store, ValueCheck, ValueNotAvailable
from agent.offline_queue.events import RefundNotPossible, epoch_us
from tests.agent.offline_queue.helpers import AT, member_record, sale_body

TODAY = date(2026, 11, 24)
CHECK = ValueCheck(TODAY, epoch_us(AT - timedelta(hours=10)), epoch_us(AT + timedelta(hours=14)))


def _sale(member: str | None = "m-1", payable: int = 1000, **keys: Any) -> dict[str, Any]:
    body = sale_body(member, earned=(), payable=payable)
    body.update(keys)
    return body


def _card_sale(token: str = "code:GC-TEST1", amount: int = 1000,
               expires: str | None = "2027-11-24") -> dict[str, Any]:
    return _sale(None, amount, gift_cards_issued=[
        {"line": 0, "card_id": "gc-1", "token": token, "amount": amount, "expires": expires}])


def _pay_by_card(store: Store, amount: int, card: str = "gc-1",
                 check: ValueCheck = CHECK) -> str:
    body = _sale(None, amount, tenders=[{"method": "gift_card", "amount": amount,
                                         "card_id": card}])
    stored = store.outbox.append_linked("sale", body, [{"card_id": card, "amount": amount}],
                                        at=AT, staff_id=None, offline=False, value_check=check)
    return stored.id


@pytest.fixture
def member_store(store: Store) -> Store:
    store.members.import_snapshot([json.dumps(member_record(**{}))], 1, True)
    return store


def test_topup_and_stored_value_tender_move_the_members_balance(member_store: Store) -> None:
    store = member_store
    store.outbox.append("sale", _sale(topups=[{"line": 0, "kind": "value.wallet",
                                               "amount": 5000, "expires": None}], payable=5000),
                        at=AT, staff_id=None, offline=False)
    assert store.members.usable_balances("m-1")["value.wallet"] == 5000
    body = _sale(payable=1200, tenders=[{"method": "stored_value", "kind": "value.wallet",
                                         "amount": 1200}])
    store.outbox.append_linked("sale", body, [], at=AT, staff_id=None, offline=False,
                               check_funds=True, value_check=CHECK)
    assert store.members.usable_balances("m-1")["value.wallet"] == 3800
    too_much = _sale(payable=3801, tenders=[{"method": "stored_value", "kind": "value.wallet",
                                             "amount": 3801}])
    with pytest.raises(ValueNotAvailable) as err:
        store.outbox.append_linked("sale", too_much, [], at=AT, staff_id=None, offline=False,
                                   value_check=CHECK)
    assert err.value.reason == "insufficient_value"
    assert err.value.params["available"] == 3800
    print("figure: wallet 5000 topped up, 1200 spent, 3801 refused (3800 left)")


def test_gift_card_sold_here_is_spendable_at_once_and_never_below_zero(store: Store) -> None:
    store.outbox.append("sale", _card_sale(), at=AT, staff_id=None, offline=False)
    card = store.members.lookup("code:GC-TEST1")
    assert card is not None and card["holder"] == "gift_card"
    assert store.members.usable_balances("gc-1") == {"value.gift": 1000}
    _pay_by_card(store, 600)
    assert store.members.usable_balances("gc-1") == {"value.gift": 400}
    before = store.outbox.queue_stats().pending
    with pytest.raises(ValueNotAvailable) as err:
        _pay_by_card(store, 401)
    assert err.value.reason == "insufficient_value"
    assert store.outbox.queue_stats().pending == before  # neither the sale nor its companion
    _pay_by_card(store, 400)
    with pytest.raises(ValueNotAvailable) as err:
        _pay_by_card(store, 1)
    assert err.value.reason == "gift_card_empty"


def test_the_companion_is_in_the_sales_transaction(store: Store) -> None:
    store.outbox.append("sale", _card_sale(), at=AT, staff_id=None, offline=False)
    sale_id = _pay_by_card(store, 250)
    rows = store.outbox.events_between(AT - timedelta(days=1), AT + timedelta(days=1))
    redeems = [e for e in rows if e["type"] == "gift_card_redeem"]
    assert len(redeems) == 1 and redeems[0]["sale_id"] == sale_id
    assert redeems[0]["amount"] == 250 and redeems[0]["card_id"] == "gc-1"
    sale = next(e for e in rows if e["id"] == sale_id)
    assert redeems[0]["seq"] == sale["seq"] + 1
    # A companion that fails after the sale was written takes the sale with it.
    pending = store.outbox.queue_stats().pending
    with pytest.raises(ValueError):
        store.outbox.append_linked("sale", _sale(None, 5), [{"card_id": "bad", "amount": 5}],
                                   at=AT, staff_id=None, offline=False)
    assert store.outbox.queue_stats().pending == pending


def test_expired_card_and_lots_are_not_spendable(store: Store) -> None:
    store.outbox.append("sale", _card_sale(expires="2026-11-23"), at=AT, staff_id=None,
                        offline=False)
    with pytest.raises(ValueNotAvailable) as err:
        _pay_by_card(store, 1)
    assert err.value.reason == "gift_card_expired"


def test_unknown_card_is_refused(store: Store) -> None:
    with pytest.raises(ValueNotAvailable) as err:
        _pay_by_card(store, 1, card="gc-none")
    assert err.value.reason == "gift_card_unknown"


def test_a_card_token_already_held_refuses_the_sale(member_store: Store) -> None:
    with pytest.raises(ValueNotAvailable) as err:
        member_store.outbox.append("sale", _card_sale(token="nfc:04A1B2"), at=AT,
                                   staff_id=None, offline=False)
    assert err.value.reason == "gift_card_token_taken"
    assert member_store.members.member("gc-1") is None


def test_offline_day_limit_per_holder(store: Store) -> None:
    store.outbox.append("sale", _card_sale(), at=AT, staff_id=None, offline=False)
    limited = ValueCheck(CHECK.today, CHECK.day_start_us, CHECK.day_end_us, offline_limit=500)
    _pay_by_card(store, 300, check=limited)
    with pytest.raises(ValueNotAvailable) as err:
        _pay_by_card(store, 201, check=limited)
    assert err.value.reason == "offline_value_limit" and err.value.params["left"] == 200
    _pay_by_card(store, 200, check=limited)


def test_whole_refund_puts_the_value_back_and_refund_by_line_is_refused(store: Store) -> None:
    store.outbox.append("sale", _card_sale(), at=AT, staff_id=None, offline=False)
    sale_id = _pay_by_card(store, 700)
    with pytest.raises(RefundNotPossible) as err:
        store.outbox.append("refund_lines", {"sale_id": sale_id, "reason": None,
                                             "lines": [{"line": 0, "qty": 1}]},
                            at=AT, staff_id=None, offline=False)
    assert err.value.reason == "refund_whole_value"
    store.outbox.append_linked("refund", {"sale_id": sale_id, "reason": "x"},
                               [{"card_id": "gc-1", "amount": -700}], at=AT, staff_id=None,
                               offline=False, value_check=CHECK)
    assert store.members.usable_balances("gc-1") == {"value.gift": 1000}


def test_refund_of_a_spent_card_or_topup_is_refused(member_store: Store) -> None:
    store = member_store
    card_sale = store.outbox.append("sale", _card_sale(), at=AT, staff_id=None, offline=False)
    _pay_by_card(store, 1)
    with pytest.raises(ValueNotAvailable) as err:
        store.outbox.append_linked("refund", {"sale_id": card_sale.id, "reason": None},
                                   [{"card_id": "gc-1", "amount": 1000}], at=AT,
                                   staff_id=None, offline=False, value_check=CHECK)
    assert err.value.reason == "gift_card_spent"
    top = store.outbox.append("sale", _sale(topups=[{"line": 0, "kind": "value.wallet",
                                                     "amount": 500}], payable=500),
                              at=AT, staff_id=None, offline=False)
    store.outbox.append_linked("sale", _sale(payable=1, tenders=[
        {"method": "stored_value", "kind": "value.wallet", "amount": 1}]), [], at=AT,
        staff_id=None, offline=False, value_check=CHECK)
    with pytest.raises(ValueNotAvailable) as err:
        store.outbox.append_linked("refund", {"sale_id": top.id, "reason": None}, [], at=AT,
                                   staff_id=None, offline=False, value_check=CHECK)
    assert err.value.reason == "insufficient_value"


def test_rejected_sale_drops_its_card_and_its_companions_stop_counting(store: Store) -> None:
    sold = store.outbox.append("sale", _card_sale(), at=AT, staff_id=None, offline=False)
    store.outbox.append("sale", _card_sale(token="code:GC-TEST2") | {
        "gift_cards_issued": [{"line": 0, "card_id": "gc-2", "token": "code:GC-TEST2",
                               "amount": 500, "expires": None}]}, at=AT, staff_id=None,
        offline=False)
    paid = _pay_by_card(store, 100, card="gc-2")
    store.outbox.apply_ack([], [(sold.id, "test"), (paid, "test")], None)
    assert store.members.lookup("code:GC-TEST1") is None
    assert store.members.usable_balances("gc-2") == {"value.gift": 500}


def test_club_record_converges(store: Store) -> None:
    sold = store.outbox.append("sale", _card_sale(), at=AT, staff_id=None, offline=False)
    _pay_by_card(store, 100)
    _pay_by_card(store, 50)  # seqs: sale 1, (sale 2, redeem 3), (sale 4, redeem 5)
    record = {"member_id": "gc-1", "version": 7, "holder": "gift_card",
              "identifiers": ["code:GC-TEST1"], "balances": {"value.gift": 900},
              "applied": {"T-0001": 3}, "status": "active"}
    assert store.members.apply_changes({"from_version": 0, "to_version": 7,
                                        "members": [record]})
    assert store.members.usable_balances("gc-1") == {"value.gift": 850}
    assert sold.id


def test_eight_threads_cannot_overspend_one_card(tmp_path: Path) -> None:
    """Eight threads at once each pay 300 with a card of 1000: exactly three are
    recorded, and the card ends at 100, never below zero."""
    store = Store.open(tmp_path / "s.db", "T-0001", "M-7")
    store.outbox.append("sale", _card_sale(), at=AT, staff_id=None, offline=False)
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def spend() -> None:
        barrier.wait(10)
        try:
            _pay_by_card(store, 300)
            outcomes.append("ok")
        except ValueNotAvailable as exc:
            outcomes.append(exc.reason)

    threads = [threading.Thread(target=spend) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["insufficient_value"] * 5 + ["ok"] * 3
    assert store.members.usable_balances("gc-1") == {"value.gift": 100}
    redeems = [e for e in store.outbox.events_between(AT - timedelta(days=1),
                                                      AT + timedelta(days=1))
               if e["type"] == "gift_card_redeem"]
    assert len(redeems) == 3
    print(f"figure: 8 threads x 300 on a card of 1000 -> {outcomes.count('ok')} recorded, "
          f"balance {store.members.usable_balances('gc-1')['value.gift']}")
    store.close()


def test_units_used_are_checked_in_the_transaction_and_offline_bounded(store: Store) -> None:
    store.members.import_snapshot([json.dumps(member_record(**{}) | {
        "balances": {"points": 0, "units.wash": 3}})], 1, True)
    limited = ValueCheck(CHECK.today, CHECK.day_start_us, CHECK.day_end_us,
                         offline_units_limit=2)

    def wash(units: int, check: ValueCheck = CHECK) -> None:
        store.outbox.append_linked("sale", _sale(payable=0, tenders=[], units_used=[
            {"line": 0, "kind": "units.wash", "units": units}]), [], at=AT, staff_id=None,
            offline=True, value_check=check)

    wash(1, limited)
    with pytest.raises(ValueNotAvailable) as err:
        wash(2, limited)
    assert err.value.reason == "offline_value_limit"
    wash(2)
    with pytest.raises(ValueNotAvailable) as err:
        wash(1)
    assert err.value.reason == "insufficient_value"
    assert store.members.usable_balances("m-1")["units.wash"] == 0
