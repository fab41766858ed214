"""The simulated club's catalogue and `python -m hw_sim scan --product` / `list-products`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.catalogue import parse_catalogue
from hw_sim import keys
from hw_sim.__main__ import main
from hw_sim.club.catalogue import demo_products, encode_catalogue, find_product, make_catalogue


def test_about_fifty_products_in_two_languages_some_weighed() -> None:
    products = demo_products()
    assert 50 <= len(products) <= 60
    assert all(set(p["names"]) == {"en", "fa"} for p in products)
    assert {p["category"] for p in products} >= {"coffee", "bakery", "salon", "produce"}
    assert sum(p["unit"] == "weight" for p in products) >= 5
    assert parse_catalogue(encode_catalogue(make_catalogue("acme", "M-7"))).version == 1


@pytest.mark.parametrize(("name", "sku"), [("Espresso", "cafe-espresso"),
                                           ("eSPRESSO", "cafe-espresso"),
                                           ("caffe latte", "cafe-latte"),
                                           ("اسپرسو", "cafe-espresso"),
                                           ("pistach", "groc-pistachios")])
def test_find_by_name(name: str, sku: str) -> None:
    assert find_product(name)["sku"] == sku


def test_unknown_or_ambiguous_names_say_what_is_close() -> None:
    with pytest.raises(LookupError, match="close names: Espresso"):
        find_product("expresso")
    with pytest.raises(LookupError, match="more than one product: Sangak Bread"):
        find_product("bread")


def test_scan_by_product_name_types_its_barcode(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    fifo = keys.make_fifo(tmp_path / "scanner.events")
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # the scanner's end
    try:
        assert main(["scan", "--product", "espresso", "--dir", str(tmp_path)]) == 0
        data = os.read(reader, 1 << 16)
    finally:
        os.close(reader)
    assert data and "scanned '2000000000015' (espresso)" in capsys.readouterr().out
    assert main(["scan", "--product", "expreso", "--dir", str(tmp_path)]) == 2
    assert "close names: Espresso" in capsys.readouterr().err
    assert main(["scan", "--product", "Haircut (men)", "--dir", str(tmp_path)]) == 2
    assert "no barcode" in capsys.readouterr().err


def test_list_products(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list-products"]) == 0
    out = capsys.readouterr().out
    assert "Espresso" in out and "اسپرسو" in out and "/kg" in out
