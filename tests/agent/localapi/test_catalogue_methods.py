"""catalogue.lookup, catalogue.search and sale.quote lines from the catalogue, on the
real agent (the demo's catalogue, hw_sim.club.catalogue)."""

from __future__ import annotations

from agent.localapi import INVALID_PARAMS, NOT_FOUND
from hw_sim.club.catalogue import find_product
from tests.agent.localapi.harness import Harness, run
from tests.agent.localapi.test_methods import expect

ESPRESSO = find_product("Espresso")["barcodes"][0]
CROISSANT = find_product("Croissant")["barcodes"][0]
MILK = find_product("Milk 1 L")
GOLD = "nfc:04A1B2"


def test_lookup_by_barcode_upc_and_unknown() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        r = await c.call("catalogue.lookup", {"barcode": f"  {ESPRESSO} "})
        p = r["product"]
        assert p["sku"] == "cafe-espresso" and p["names"] == {"en": "Espresso", "fa": "اسپرسو"}
        assert p["price"] == 250 and p["category"] == "coffee" and p["active"] is True
        # The milk's UPC-A, scanned as 12 digits or as its 13-digit EAN form.
        upc = next(b for b in MILK["barcodes"] if len(b) == 12)
        for code in (upc, "0" + upc):
            assert (await c.call("catalogue.lookup", {"barcode": code}))["product"]["sku"] \
                == "groc-milk"
        assert (await c.call("catalogue.lookup", {"barcode": "999"}))["product"] is None
        for bad in ("", "a\x00b", "x" * 257, 5, None):
            await expect(INVALID_PARAMS, c.call("catalogue.lookup", {"barcode": bad}))
    run(scenario)


def test_search_any_language_case_and_diacritics() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        names = [p["names"]["en"] for p in
                 (await c.call("catalogue.search", {"text": "CAFFE"}))["products"]]
        assert names == ["Caffè Latte"]
        # Persian typed with the Arabic keyboard's yeh and kaf finds the Persian name.
        r = await c.call("catalogue.search", {"text": "كيك"})
        # "Carrot cake" begins with it (first), "cheesecake" holds it.
        assert [p["sku"] for p in r["products"]] == ["bake-carrot-cake", "bake-cheesecake"]
        r = await c.call("catalogue.search", {"text": "bread", "limit": 2})
        assert len(r["products"]) == 2 and r["more"] is True
        assert (await c.call("catalogue.search", {"text": "   "}))["products"] == []
        await expect(INVALID_PARAMS, c.call("catalogue.search", {"text": "a", "limit": 51}))
        await expect(INVALID_PARAMS, c.call("catalogue.search", {"text": "a" * 121}))
    run(scenario)


def test_quote_by_barcode_sku_and_weight_with_line_benefits() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        q = await c.call("sale.quote", {"lines": [
            {"barcode": ESPRESSO, "qty": 2}, {"barcode": CROISSANT},
            {"sku": "groc-pistachios", "weight_g": 250}], "token": GOLD})
        # Gold members pay 2.20 for an espresso; pistachios 32.90/kg x 250 g = 8.22.
        assert q["lines"] == [
            {"sku": "cafe-espresso", "category": "coffee", "qty": 2, "unit_price": 220},
            {"sku": "bake-croissant", "category": "bakery", "qty": 1, "unit_price": 220},
            {"sku": "groc-pistachios", "category": "nuts", "qty": 1, "unit_price": 822}]
        d = q["line_details"]
        assert d[0]["names"]["en"] == "Espresso" and d[0]["list_price"] == 250
        assert d[2]["weight_g"] == 250 and d[2]["unit"] == "weight"
        # Every line's benefits add up to the sale's.
        assert sum(x["benefits"]["discount"] for x in d) == q["gross"] - q["net"]
        assert sum(x["benefits"]["points"] for x in d) == \
            sum(p["points"] for p in q["points_earned"])
        assert "bakery-members-10" in d[1]["benefits"]["rules"]
        assert "bakery-members-10" not in d[0]["benefits"]["rules"]
        err = await expect(NOT_FOUND, c.call("sale.quote", {"lines": [{"barcode": "12345"}]}))
        assert err.data["reason"] == "unknown_product" and err.data["line"] == 0
        err = await expect(INVALID_PARAMS, c.call("sale.quote", {
            "lines": [{"sku": "groc-dates"}]}))
        assert err.data["reason"] == "weight_needed"
    run(scenario)


def test_unknown_item_with_a_typed_price_is_recorded_with_its_barcode() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        session = await h.login()
        q = await c.call("sale.quote", {"lines": [
            {"barcode": "4006381333931", "unit_price": 199},
            {"barcode": "4111111111111111", "unit_price": 100},  # reads as a card number
            {"sku": "own", "category": "misc", "qty": 1, "unit_price": 5}]})
        assert [ln["sku"] for ln in q["lines"]] == ["unknown:4006381333931", "unknown", "own"]
        assert q["line_details"][0]["unknown"] is True
        await c.call("sale.commit", {"quote_id": q["quote_id"], "payment": "cash",
                                     "session": session})
        sale = h.outbox()[0]
        assert sale["lines"][0] == {"sku": "unknown:4006381333931", "category": None, "qty": 1,
                                    "unit_price": 199}
        assert "4111111111111111" not in str(sale)
    run(scenario)


def test_status_shows_the_catalogue() -> None:
    async def scenario(h: Harness) -> None:
        s = await h.client().call("agent.status")
        assert s["catalogue_version"] == 1 and s["catalogue_products"] >= 50
        assert s["catalogue_problem"] is None
    run(scenario)


def test_cli_status_shows_the_catalogue_and_its_problem() -> None:
    from agent.cli.status import format_status

    base = {"terminal_id": "T-1", "merchant_id": "M-7", "online": True, "queue": {}}
    assert "catalogue" not in format_status(base)  # an agent without one: as before
    text = format_status({**base, "catalogue_version": 3, "catalogue_products": 51,
                          "catalogue_problem": "stale: \x1b[2Jversion 2"})
    assert "catalogue    version 3, 51 products  PROBLEM: stale: \\x1b[2Jversion 2" in text
    assert "none yet" in format_status({**base, "catalogue_version": None})
