"""The simulated club's product catalogue: about fifty products of a café, a grocery
and a salon, named in English and Persian, some sold by weight; made, signed and
changed on request (``docs/protocol/catalogue.md``).

The demo agent (``agent.localapi.demo``) and the simulated club use the same one,
and ``python -m hw_sim scan --product NAME`` scans its barcodes by name.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.catalogue import fold

LANGUAGES = ("en", "fa")
CATALOGUE_VERSION = 1

# The demo bundle's rule "bakery-members-10" (hw_sim.club.bundles) gives members
# 10 % off the bakery products.


def ean13(body: str) -> str:
    """``body`` (12 digits) with its EAN-13 check digit."""
    assert len(body) == 12 and body.isdigit()
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


def upc_a(body: str) -> str:
    """``body`` (11 digits) with its UPC-A check digit (the EAN-13 of ``"0" + body``)."""
    return ean13("0" + body)[1:]


# (sku, English, Persian, price in cents (per kg when weighed), category, unit)
_PRODUCTS: tuple[tuple[str, str, str, int, str, str], ...] = (
    # café
    ("cafe-espresso", "Espresso", "اسپرسو", 250, "coffee", "piece"),
    ("cafe-cappuccino", "Cappuccino", "کاپوچینو", 350, "coffee", "piece"),
    ("cafe-latte", "Caffè Latte", "کافه لاته", 380, "coffee", "piece"),
    ("cafe-americano", "Americano", "آمریکانو", 300, "coffee", "piece"),
    ("cafe-flat-white", "Flat White", "فلت وایت", 390, "coffee", "piece"),
    ("cafe-turkish", "Turkish Coffee", "قهوه ترک", 320, "coffee", "piece"),
    ("cafe-black-tea", "Black Tea", "چای سیاه", 200, "tea", "piece"),
    ("cafe-green-tea", "Green Tea", "چای سبز", 220, "tea", "piece"),
    ("cafe-saffron-tea", "Saffron Tea", "چای زعفرانی", 280, "tea", "piece"),
    ("cafe-hot-chocolate", "Hot Chocolate", "هات چاکلت", 360, "drinks", "piece"),
    ("bake-croissant", "Croissant", "کروسان", 220, "bakery", "piece"),
    ("bake-muffin", "Blueberry Muffin", "مافین بلوبری", 280, "bakery", "piece"),
    ("bake-cheesecake", "Cheesecake", "چیزکیک", 450, "bakery", "piece"),
    ("bake-baguette", "Baguette", "نان باگت", 180, "bakery", "piece"),
    ("bake-sangak", "Sangak Bread", "نان سنگک", 120, "bakery", "piece"),
    ("bake-barbari", "Barbari Bread", "نان بربری", 100, "bakery", "piece"),
    ("bake-lavash", "Lavash Bread", "نان لواش", 150, "bakery", "piece"),
    ("bake-carrot-cake", "Carrot Cake", "کیک هویج", 420, "bakery", "piece"),
    ("bake-cookies", "Cookies (by weight)", "شیرینی خشک (وزنی)", 2400, "bakery", "weight"),
    ("snack-chicken-sandwich", "Chicken Sandwich", "ساندویچ مرغ", 650, "snack", "piece"),
    # grocery
    ("groc-milk", "Milk 1 L", "شیر ۱ لیتری", 129, "dairy", "piece"),
    ("groc-yogurt", "Yogurt 900 g", "ماست ۹۰۰ گرمی", 189, "dairy", "piece"),
    ("groc-feta", "Feta Cheese 400 g", "پنیر فتا ۴۰۰ گرمی", 349, "dairy", "piece"),
    ("groc-eggs", "Eggs (10)", "تخم‌مرغ ۱۰ عددی", 329, "dairy", "piece"),
    ("groc-butter", "Butter 250 g", "کره ۲۵۰ گرمی", 279, "dairy", "piece"),
    ("groc-rice", "Basmati Rice 5 kg", "برنج باسماتی ۵ کیلویی", 1899, "pantry", "piece"),
    ("groc-olive-oil", "Olive Oil 1 L", "روغن زیتون ۱ لیتری", 899, "pantry", "piece"),
    ("groc-spaghetti", "Spaghetti 500 g", "اسپاگتی ۵۰۰ گرمی", 149, "pantry", "piece"),
    ("groc-saffron", "Saffron 1 g", "زعفران ۱ گرمی", 690, "pantry", "piece"),
    ("groc-coffee-beans", "Coffee Beans 250 g", "دانه قهوه ۲۵۰ گرمی", 799, "coffee", "piece"),
    ("groc-dates", "Dates (by weight)", "خرما (وزنی)", 990, "produce", "weight"),
    ("groc-tomatoes", "Tomatoes (by weight)", "گوجه‌فرنگی (وزنی)", 299, "produce", "weight"),
    ("groc-apples", "Apples (by weight)", "سیب (وزنی)", 249, "produce", "weight"),
    ("groc-bananas", "Bananas (by weight)", "موز (وزنی)", 199, "produce", "weight"),
    ("groc-cucumbers", "Cucumbers (by weight)", "خیار (وزنی)", 179, "produce", "weight"),
    ("groc-pistachios", "Pistachios (by weight)", "پسته (وزنی)", 3290, "nuts", "weight"),
    ("groc-water", "Mineral Water 1.5 L", "آب معدنی ۱٫۵ لیتری", 59, "drinks", "piece"),
    ("groc-orange-juice", "Orange Juice 1 L", "آب پرتقال ۱ لیتری", 249, "drinks", "piece"),
    ("groc-doogh", "Doogh", "دوغ", 99, "drinks", "piece"),
    ("groc-dark-chocolate", "Dark Chocolate 100 g", "شکلات تلخ ۱۰۰ گرمی", 199, "snack",
     "piece"),
    ("groc-crisps", "Potato Crisps", "چیپس سیب‌زمینی", 129, "snack", "piece"),
    # salon (services have no barcode: found by name)
    ("salon-cut-women", "Haircut (women)", "کوتاهی مو (بانوان)", 3500, "salon", "piece"),
    ("salon-cut-men", "Haircut (men)", "اصلاح مو (آقایان)", 2000, "salon", "piece"),
    ("salon-blow-dry", "Blow Dry", "براشینگ", 2500, "salon", "piece"),
    ("salon-colour", "Hair Colour", "رنگ مو", 6500, "salon", "piece"),
    ("salon-manicure", "Manicure", "مانیکور", 2200, "salon", "piece"),
    ("salon-pedicure", "Pedicure", "پدیکور", 2800, "salon", "piece"),
    ("salon-beard", "Beard Trim", "اصلاح ریش", 1200, "salon", "piece"),
    ("beauty-shampoo", "Argan Shampoo", "شامپو آرگان", 1290, "beauty", "piece"),
    ("beauty-hand-cream", "Hand Cream", "کرم دست", 690, "beauty", "piece"),
)


def demo_products(now: datetime | None = None) -> list[dict[str, Any]]:
    """The demo catalogue's products as the protocol writes them.

    Barcodes are EAN-13s in the in-store range ``20…`` (no real product's); a few
    products carry a UPC-A or a QR payload too. The espresso has a member price for
    gold members; a seasonal latte is on sale for a few weeks around ``now``.
    """
    now = now or datetime.now(UTC)
    out: list[dict[str, Any]] = []
    for i, (sku, en, fa, price, category, unit) in enumerate(_PRODUCTS, start=1):
        product: dict[str, Any] = {"sku": sku, "names": {"en": en, "fa": fa}, "price": price,
                                   "category": category, "unit": unit, "barcodes": []}
        if category not in ("salon",):
            product["barcodes"].append(ean13(f"20{i:010d}"))
        if sku == "groc-milk":
            product["barcodes"].append(upc_a(f"{i + 70000000000:011d}"))
        if sku == "groc-saffron":
            product["barcodes"].append("https://club.example/p/groc-saffron")
        if sku == "cafe-espresso":
            product["member_prices"] = [{"tier": "gold", "price": 220}]
        out.append(product)
    start = (now - timedelta(days=14)).replace(microsecond=0)
    out.append({"sku": "cafe-pumpkin-latte", "names": {"en": "Pumpkin Spice Latte",
                                                         "fa": "لاته کدو حلوایی"},
                "price": 420, "category": "coffee", "unit": "piece",
                "barcodes": [ean13(f"20{len(_PRODUCTS) + 1:010d}")],
                "active_from": start.isoformat(),
                "active_to": (start + timedelta(days=60)).isoformat()})
    out.extend(VALUE_PRODUCTS)
    out.extend(PACKAGE_PRODUCTS)
    return out


#: (1.3) Visit packages and memberships sold at the till (docs/protocol/catalogue.md,
#: "Packages"): the club creates or renews the buyer's package from the sale.
PACKAGE_PRODUCTS: tuple[dict[str, Any], ...] = (
    {"sku": "gym-10", "names": {"en": "10-visit gym pass", "fa": "کارت ۱۰ جلسه باشگاه"},
     "price": 12000, "category": "packages", "unit": "piece",
     "barcodes": [ean13("209900000004")],
     "package": {"visits": 10, "valid_days": 90, "grace_days": 7, "freezable_days": 30}},
    {"sku": "gym-month", "names": {"en": "Monthly membership", "fa": "عضویت ماهانه"},
     "price": 9000, "category": "packages", "unit": "piece",
     "barcodes": [ean13("209900000005")],
     "package": {"visits": None, "valid_days": 30, "grace_days": 5, "freezable_days": 14}},
    {"sku": "wash-5", "names": {"en": "Car wash 5-pack", "fa": "بسته ۵ کارواش"},
     "price": 3500, "category": "packages", "unit": "piece",
     "barcodes": [ean13("209900000006")],
     "package": {"visits": 5, "valid_days": 180, "grace_days": 0, "freezable_days": 0}},
)
#: The package each package product sells, by SKU (the simulated club's catalogue).
PACKAGES_BY_SKU: dict[str, dict[str, Any]] = {p["sku"]: p for p in PACKAGE_PRODUCTS}


#: (1.3) Stored value sold at the till (docs/protocol/catalogue.md, "Stored value").
VALUE_PRODUCTS: tuple[dict[str, Any], ...] = (
    {"sku": "value-wallet-50", "names": {"en": "Wallet top-up 50", "fa": "شارژ کیف پول ۵۰"},
     "price": 5000, "category": "stored_value", "unit": "piece",
     "barcodes": [ean13("209900000001")],
     "topup": {"kind": "value.wallet", "amount": 5000}},
    {"sku": "value-wallet-open", "names": {"en": "Wallet top-up", "fa": "شارژ کیف پول"},
     "price": 0, "category": "stored_value", "unit": "piece", "barcodes": [],
     "topup": {"kind": "value.wallet", "amount": None}},
    {"sku": "value-gift-100", "names": {"en": "Gift card 100", "fa": "کارت هدیه ۱۰۰"},
     "price": 10000, "category": "stored_value", "unit": "piece",
     "barcodes": [ean13("209900000002")], "gift_card": {"amount": 10000}},
    {"sku": "value-gift-open", "names": {"en": "Gift card", "fa": "کارت هدیه"},
     "price": 0, "category": "stored_value", "unit": "piece", "barcodes": [],
     "gift_card": {"amount": None}},
    # Paid in money (8.00), or with one of the member's car-wash units ({sku, units: true}).
    {"sku": "wash-basic", "names": {"en": "Car wash", "fa": "کارواش"}, "price": 800,
     "category": "car_wash", "unit": "piece", "barcodes": [ean13("209900000003")],
     "price_units": {"kind": "units.wash", "units": 1}},
)


def make_catalogue(club: str, merchant: str, version: int = CATALOGUE_VERSION, *,
                   products: Iterable[dict[str, Any]] | None = None,
                   now: datetime | None = None, **extra: Any) -> dict[str, Any]:
    """A whole catalogue document (the demo's products unless ``products`` is given)."""
    now = now or datetime.now(UTC)
    doc: dict[str, Any] = {
        "club": club, "merchant": merchant, "version": version,
        "issued_at": now.isoformat(timespec="seconds"), "languages": list(LANGUAGES),
        "currency": "EUR", "minor_units": 2,
        "products": list(demo_products(now) if products is None else products),
    }
    doc.update(extra)
    return doc


def make_changes(club: str, merchant: str, from_version: int, to_version: int, *,
                 upserts: Sequence[dict[str, Any]] = (), removed: Sequence[str] = (),
                 now: datetime | None = None) -> dict[str, Any]:
    """A catalogue change set ``from_version`` → ``to_version``."""
    now = now or datetime.now(UTC)
    return {"club": club, "merchant": merchant, "version": to_version,
            "from_version": from_version, "issued_at": now.isoformat(timespec="seconds"),
            "products": list(upserts), "removed": list(removed)}


def encode_catalogue(doc: dict[str, Any]) -> bytes:
    """The bytes that are signed (compact JSON, UTF-8)."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def find_product(name: str, products: Sequence[dict[str, Any]] | None = None
                 ) -> dict[str, Any]:
    """The product whose sku or a name is ``name`` (case, diacritics and letter
    variants aside), else the only one whose name holds it.

    Raises LookupError whose message lists close names when there is no one match.
    """
    rows = demo_products() if products is None else list(products)
    want = fold(name)
    names = {p["sku"]: [p["sku"], *p["names"].values()] for p in rows}
    exact = [p for p in rows if want in (fold(n) for n in names[p["sku"]])]
    if len(exact) == 1:
        return exact[0]
    holding = [p for p in rows if any(want in fold(n) for n in names[p["sku"]])]
    if len(holding) == 1 and not exact:
        return holding[0]
    if holding:
        listed = ", ".join(p["names"]["en"] for p in holding[:10])
        raise LookupError(f"{name!r} matches more than one product: {listed}")
    every = {fold(n): p["names"]["en"] for p in rows for n in names[p["sku"]]}
    close = difflib.get_close_matches(want, list(every), n=5, cutoff=0.5)
    hint = ", ".join(dict.fromkeys(every[c] for c in close)) or "none"
    raise LookupError(f"no product is called {name!r}; close names: {hint} "
                      f"(python -m hw_sim list-products lists them all)")
