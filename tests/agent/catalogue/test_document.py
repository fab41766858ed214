"""The catalogue document: parsing, the acceptance policy, folding (pure, by table)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.catalogue import (
    CatalogueRefused,
    decide,
    fold,
    line_amount,
    member_price,
    normalise_barcode,
    parse_catalogue,
)
from hw_sim.club.catalogue import demo_products, ean13, encode_catalogue, make_catalogue

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)


def doc(**changes: Any) -> dict[str, Any]:
    d = make_catalogue("acme", "M-7", 3, now=NOW)
    d.update(changes)
    return d


def parse(d: dict[str, Any]) -> Any:
    return parse_catalogue(json.dumps(d).encode())


def test_the_demo_catalogue_parses() -> None:
    c = parse_catalogue(encode_catalogue(doc()))
    assert c.version == 3 and not c.is_delta and len(c.products) == len(demo_products(NOW)) >= 50
    assert c.languages == ("en", "fa")
    weighed = [p for p in c.products if p.unit == "weight"]
    assert len(weighed) >= 5
    assert all(ean13(b[:12]) == b for p in c.products for b in p.barcodes
               if len(b) == 13 and b.startswith("20"))


def product(**changes: Any) -> dict[str, Any]:
    p: dict[str, Any] = {"sku": "s", "names": {"en": "Thing"}, "price": 100}
    p.update(changes)
    return p


@pytest.mark.parametrize(("bad", "says"), [
    (product(sku=""), "'sku'"),
    (product(sku="a\x1bb"), "U+001B"),
    (product(names={}), "'names'"),
    (product(names={"english": "x"}), "language tag"),
    (product(names={"en": "x" * 121}), "more than 120"),
    (product(price=-1), "'price'"),
    (product(price=2**53), "'price'"),
    (product(price=True), "'price'"),
    (product(unit="litre"), "'unit'"),
    (product(barcodes=["ok", "bad\x00"]), "U+0000"),
    (product(barcodes="123"), "must be a list"),
    (product(active_from="2026-01-01"), "UTC offset"),
    (product(active_from="2026-02-01T00:00:00Z", active_to="2026-01-01T00:00:00Z"),
     "after 'active_from'"),
    (product(member_prices=[{"price": 1}]), "exactly one"),
    (product(member_prices=[{"price": 1, "tier": "a", "group": "b"}]), "exactly one"),
])
def test_a_bad_product_refuses_the_whole_document(bad: dict[str, Any], says: str) -> None:
    with pytest.raises(CatalogueRefused) as info:
        parse(doc(products=[product(sku="fine"), bad]))
    assert info.value.reason == "malformed" and says in str(info.value)


def test_duplicate_skus_and_shared_barcodes_are_refused() -> None:
    with pytest.raises(CatalogueRefused, match="more than once"):
        parse(doc(products=[product(), product()]))
    with pytest.raises(CatalogueRefused, match="to both"):
        parse(doc(products=[product(sku="a", barcodes=["1"]), product(sku="b", barcodes=["1"])]))


def test_removed_is_only_for_a_change_set() -> None:
    with pytest.raises(CatalogueRefused, match="change set"):
        parse(doc(removed=["x"]))
    c = parse(doc(from_version=2, removed=["x"]))
    assert c.is_delta and c.removed == ("x",)
    with pytest.raises(CatalogueRefused, match="lower than"):
        parse(doc(from_version=3))


@pytest.mark.parametrize(("from_v", "version", "current", "want"), [
    (None, 3, None, "replace"), (None, 3, 2, "replace"), (None, 3, 3, "skip"),
    (None, 3, 4, "stale"), (2, 3, 2, "apply"), (2, 3, 3, "skip"), (2, 3, 5, "skip"),
    (1, 3, 2, "gap"), (2, 3, None, "gap"),
])
def test_decide(from_v: int | None, version: int, current: int | None, want: str) -> None:
    c = parse(doc(version=version, from_version=from_v, products=[]))
    try:
        got = decide(c, club="acme", merchant="M-7", current_version=current)
    except CatalogueRefused as exc:
        got = exc.reason
    assert got == want


def test_decide_foreign() -> None:
    c = parse(doc(products=[]))
    for club, merchant, reason in (("other", "M-7", "foreign_club"),
                                   ("acme", "M-8", "foreign_merchant")):
        with pytest.raises(CatalogueRefused) as info:
            decide(c, club=club, merchant=merchant, current_version=None)
        assert info.value.reason == reason


def test_prices_weights_and_dates() -> None:
    c = parse(doc(products=[
        product(sku="esp", price=250, member_prices=[{"tier": "gold", "price": 220},
                                                      {"group": "staff", "price": 150}]),
        product(sku="nuts", price=3290, unit="weight",
                active_from=NOW.isoformat(), active_to=(NOW + timedelta(days=1)).isoformat())]))
    esp, nuts = c.products
    assert member_price(esp, None, []) == 250 and member_price(esp, "gold", []) == 220
    assert member_price(esp, "gold", ["staff"]) == 150
    assert line_amount(nuts, 250, 3290) == (1, 822) and line_amount(esp, 3, 220) == (3, 220)
    assert not nuts.active(NOW - timedelta(seconds=1)) and nuts.active(NOW)
    assert not nuts.active(NOW + timedelta(days=1))


def test_barcode_forms() -> None:
    assert normalise_barcode(" 036000291452 ") == "0036000291452"
    assert normalise_barcode("4006381333931") == "4006381333931"
    assert normalise_barcode("https://x/y") == "https://x/y"


@pytest.mark.parametrize(("a", "b"), [
    ("Café", "CAFE"), ("Caffè Latte", "caffe latte"), ("كيك", "کیک"),
    ("تخم‌مرغ", "تخم مرغ"), ("شیر ۱ لیتری", "شیر 1 لیتری"), ("نـــان", "نان"),
    ("  two   spaces ", "two spaces"),
])
def test_fold_meets(a: str, b: str) -> None:
    assert fold(a) == fold(b)


@given(st.text(max_size=200))
def test_fold_is_idempotent(text: str) -> None:
    assert fold(fold(text)) == fold(text)
