"""store.catalogue: a whole catalogue, change sets, lookups and search on real SQLite."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.catalogue import CatalogueRefused, parse_catalogue
from agent.catalogue.document import MAX_PRODUCTS
from agent.offline_queue import Store
from agent.offline_queue.schema import SCHEMA_VERSION
from hw_sim.club.catalogue import encode_catalogue, make_catalogue, make_changes


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "agent.db", "T-1", "M-7")
    yield s
    s.close()


def cat(d: dict[str, Any]) -> Any:
    return parse_catalogue(encode_catalogue(d))


def test_replace_lookup_search(store: Store) -> None:
    assert store.schema_version() == SCHEMA_VERSION >= 6  # v6 and every later step
    assert store.catalogue.catalogue_version() is None
    assert store.catalogue.by_barcode("2000000000015") is None
    n = store.catalogue.replace_catalogue(cat(make_catalogue("acme", "M-7", 1)))
    assert store.catalogue.catalogue_info() == {"version": 1, "products": n,
                                                "languages": ["en", "fa"], "problem": None}
    esp = store.catalogue.by_barcode("2000000000015")
    assert esp is not None and esp.sku == "cafe-espresso"
    assert store.catalogue.by_sku("cafe-espresso") == esp
    assert [p.sku for p in store.catalogue.search("اسپرسو")] == ["cafe-espresso"]
    assert len(store.catalogue.search("-", limit=1000)) == 50  # bounded (SEARCH_MAX)


def test_change_set_applies_only_after_its_version(store: Store) -> None:
    store.catalogue.replace_catalogue(cat(make_catalogue("acme", "M-7", 1)))
    new = {"sku": "cafe-espresso", "names": {"en": "Espresso doppio"}, "price": 300,
           "barcodes": ["2000000000015", "777"]}
    change = cat(make_changes("acme", "M-7", 1, 2, upserts=[new], removed=["groc-milk"]))
    store.catalogue.apply_changes(change)
    assert store.catalogue.catalogue_version() == 2
    assert store.catalogue.by_sku("groc-milk") is None
    p = store.catalogue.by_barcode("777")
    assert p is not None and p.price == 300 and p.names == {"en": "Espresso doppio"}
    with pytest.raises(CatalogueRefused) as info:
        store.catalogue.apply_changes(change)  # 1..2 again: no longer follows
    assert info.value.reason == "gap" and store.catalogue.catalogue_version() == 2


def test_a_change_set_over_the_product_cap_leaves_nothing(store: Store,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    store.catalogue.replace_catalogue(cat(make_catalogue("acme", "M-7", 1)))
    monkeypatch.setattr("agent.offline_queue.catalogue.MAX_PRODUCTS", 51)
    extra = [{"sku": f"x{i}", "names": {"en": f"X {i}"}, "price": 1} for i in range(5)]
    with pytest.raises(CatalogueRefused) as info:
        store.catalogue.apply_changes(cat(make_changes("acme", "M-7", 1, 2, upserts=extra,
                                                       removed=["groc-milk"])))
    assert info.value.reason == "too_large"
    assert store.catalogue.catalogue_version() == 1 and store.catalogue.by_sku("groc-milk")
    assert MAX_PRODUCTS == 50_000


def test_problem_is_kept_until_a_catalogue_is_taken(store: Store) -> None:
    store.catalogue.save_problem("bad_signature: nope")
    assert store.catalogue.catalogue_problem() == "bad_signature: nope"
    store.catalogue.replace_catalogue(cat(make_catalogue("acme", "M-7", 1)))
    assert store.catalogue.catalogue_problem() is None
    assert json.loads(json.dumps(store.catalogue.catalogue_info()))["problem"] is None
