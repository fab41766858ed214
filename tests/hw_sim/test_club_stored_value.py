"""(1.3) Stored value at the simulated club: top-ups and stored-value tenders on the
member, gift cards issued by a sale as holder records, gift_card_redeem applied once
(a batch sent twice changes nothing), a refund reversing the member's part, and
malformed rows rejected with a reason."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from hw_sim.club.ledger import Ledger

AT = "2026-11-24T10:00:00+01:00"


def _ev(seq: int, type_: str, **body: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "seq": seq, "at": AT, "terminal_id": "T-1",
            "merchant_id": "M-7", "staff_id": None, "offline": False, "type": type_, **body}


def _sale(seq: int, member: str | None, payable: int, **keys: Any) -> dict[str, Any]:
    return _ev(seq, "sale", member_id=member, identified_by=None,
               lines=[{"sku": "x", "category": None, "qty": 1, "unit_price": payable}],
               gross=payable, discounts=[], redeemed_points=0, redeemed_value=0,
               credits_used=[], payable=payable, points_earned=[], credits_earned=[],
               lottery_entries=0, rules_version=1, payment="other",
               tenders=keys.pop("tenders", [{"method": "cash", "amount": payable}]), **keys)


def test_topups_gift_cards_and_redemptions_applied_exactly_once(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "club.db")
    ledger.upsert_members([{"member_id": "m-1", "balances": {"points": 0,
                                                             "value.wallet": 1000}}])
    top = _sale(1, "m-1", 5000, topups=[{"line": 0, "kind": "value.wallet", "amount": 5000,
                                         "expires": "2027-11-24"}])
    card = _sale(2, None, 10000, gift_cards_issued=[
        {"line": 0, "card_id": "gc-1", "token": "code:GC-1", "amount": 10000,
         "expires": "2028-11-24"}])
    spend = _sale(3, "m-1", 700, tenders=[{"method": "stored_value", "kind": "value.wallet",
                                           "amount": 300},
                                          {"method": "gift_card", "amount": 400,
                                           "card_id": "gc-1"}])
    redeem = _ev(4, "gift_card_redeem", card_id="gc-1", sale_id=spend["id"], amount=400)
    batch = [top, card, spend, redeem]
    r = ledger.receive_batch("T-1", batch)
    assert r.rejected == [] and r.applied_seq == 4
    again = ledger.receive_batch("T-1", batch)  # a resend: accepted, applied once
    assert sorted(again.accepted) == sorted(e["id"] for e in batch)
    sara, gift = ledger.member("m-1"), ledger.member("gc-1")
    assert sara is not None and gift is not None
    assert sara["balances"]["value.wallet"] == 1000 + 5000 - 300
    assert sara["balance_lots"]["value.wallet"] == [{"amount": 4700, "expires": "2027-11-24"}]
    assert gift["holder"] == "gift_card" and gift["identifiers"] == ["code:GC-1"]
    assert gift["balances"] == {"value.gift": 9600} and gift["applied"]["T-1"] == 4
    assert ledger.member_by_token("code:GC-1")["member_id"] == "gc-1"  # type: ignore[index]
    # The refund of the spend: the member's part reversed; the card's part comes back by
    # the terminal's companion event (negative amount), also applied once.
    refund = _ev(5, "refund", sale_id=spend["id"], reason=None)
    back = _ev(6, "gift_card_redeem", card_id="gc-1", sale_id=spend["id"],
               refund_id=refund["id"], amount=-400)
    ledger.receive_batch("T-1", [refund, back])
    ledger.receive_batch("T-1", [refund, back])
    assert ledger.member("m-1")["balances"]["value.wallet"] == 6000  # type: ignore[index]
    assert ledger.member("gc-1")["balances"]["value.gift"] == 10000  # type: ignore[index]


def test_malformed_stored_value_is_rejected_with_a_reason(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "club.db")
    bad = [
        _sale(1, "m-1", 10, topups=[{"line": 0, "kind": "points", "amount": 10}]),
        _sale(2, None, 10, topups=[{"line": 0, "kind": "value.wallet", "amount": 10}]),
        _sale(3, "m-1", 10, gift_cards_issued=[{"line": 0, "card_id": "x", "token": "t",
                                                "amount": 10}]),
        _sale(4, "m-1", 10, tenders=[{"method": "stored_value", "kind": "units.wash",
                                      "amount": 10}]),
        _ev(5, "gift_card_redeem", card_id="gc-1", sale_id="s", amount=0),
        _ev(6, "gift_card_redeem", card_id="gc-1", sale_id="s", amount=2**60),
    ]
    r = ledger.receive_batch("T-1", bad)
    reasons = [x["reason"] for x in r.rejected]
    assert len(reasons) == 6 and all(x.startswith("malformed") for x in reasons), reasons
    assert r.applied_seq == 6  # rejected events still take their seq


def test_units_used_by_a_sale_and_given_back_by_its_refund(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "club.db")
    ledger.upsert_members([{"member_id": "m-1", "balances": {"units.wash": 3}}])
    sale = _sale(1, "m-1", 0, units_used=[{"line": 0, "kind": "units.wash", "units": 2}],
                 tenders=[])
    ledger.receive_batch("T-1", [sale])
    ledger.receive_batch("T-1", [sale])
    assert ledger.member("m-1")["balances"]["units.wash"] == 1  # type: ignore[index]
    ledger.receive_batch("T-1", [_ev(2, "refund", sale_id=sale["id"], reason=None)])
    assert ledger.member("m-1")["balances"]["units.wash"] == 3  # type: ignore[index]
    bad = _sale(3, "m-1", 0, units_used=[{"line": 0, "kind": "value.wallet", "units": 1}],
                tenders=[])
    assert ledger.receive_batch("T-1", [bad]).rejected[0]["reason"] == "malformed: units_used[0]"
