"""The club's product catalogue (``docs/protocol/catalogue.md``): parsing, checking,
and what a terminal does with one.

Pure: bytes in, typed values or :class:`CatalogueRefused` out; the version in use
and the time are passed in. The signature is checked before any of this, by the
one check of every signed club document
(:func:`agent.rules.envelope.verify_signed_payload`); :func:`decide` is the
acceptance policy (this club and merchant, newer, a delta that follows).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from agent.catalogue.text import fold
from agent.errors import ClubtermError
from agent.safe_text import describe, unsafe_char

# The limits of a catalogue document (docs/limits.md, "Catalogue").
MAX_PRODUCTS = 50_000        # products in one document, and in the store after a delta
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024  # the JSON of one document (inline: the 256 KiB message cap)
MAX_REMOVED = 50_000         # skus one delta removes
MAX_SKU = 64                 # characters, as a sale line's sku
MAX_CATEGORY = 64
MAX_BARCODE = 256            # characters: EAN/UPC are 8-14 digits, a QR payload is longer
MAX_BARCODES = 16            # per product
MAX_NAME = 120               # characters per language
MAX_LANGUAGES = 8
MAX_MEMBER_PRICES = 16       # per product
MAX_AMOUNT = 2**53 - 1       # every amount on the wire (club.md, "Money")
UNITS = ("piece", "weight")
REASONS = ("malformed", "too_large", "unknown_key", "bad_signature", "foreign_club",
           "foreign_merchant", "stale", "gap")

_LANG = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{1,8})?")


class CatalogueRefused(ClubtermError):
    """A catalogue document was not taken; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class MemberPrice:
    """A product's price for members of a tier or a group (``tier`` or ``group`` set)."""

    price: int
    tier: str | None = None
    group: str | None = None


@dataclass(frozen=True, slots=True)
class Product:
    """One product of the catalogue. ``price`` is in minor units, per piece, or per
    kilogram when ``unit`` is ``weight`` (a line's quantity is then grams)."""

    sku: str
    names: Mapping[str, str]
    price: int
    category: str | None = None
    barcodes: tuple[str, ...] = ()
    unit: Literal["piece", "weight"] = "piece"
    active_from: dt.datetime | None = None
    active_to: dt.datetime | None = None
    member_prices: tuple[MemberPrice, ...] = ()
    #: (1.3) Stored value the product sells (docs/protocol/catalogue.md): ``topup``
    #: ``{kind, amount, expires_days}`` credits the buyer's balance; ``gift_card``
    #: ``{amount, expires_days}`` issues a card. ``amount`` null: the price typed at the
    #: till is the amount.
    topup: Mapping[str, Any] | None = None
    gift_card: Mapping[str, Any] | None = None
    #: (1.3) The product may be paid in a member's non-money units instead of money:
    #: ``{kind: "units.<x>", units}`` per piece.
    price_units: Mapping[str, Any] | None = None

    def name(self, language: str, fallback: Sequence[str] = ("en",)) -> str:
        """The name in ``language``, else the first of ``fallback`` it has, else any."""
        for lang in (language, *fallback):
            if lang in self.names:
                return self.names[lang]
        return next(iter(self.names.values()))

    def active(self, at: dt.datetime) -> bool:
        """Whether the product is on sale at ``at`` (``active_to`` is exclusive)."""
        if self.active_from is not None and at < self.active_from:
            return False
        return not (self.active_to is not None and at >= self.active_to)

    def search_text(self) -> str:
        """What name search looks in: the sku and every name, folded, one per line."""
        return "\n".join([fold(self.sku), *(fold(n) for n in self.names.values())])

    def to_dict(self) -> dict[str, Any]:
        """The product as the wire and the local API write it."""
        out: dict[str, Any] = {"sku": self.sku, "names": dict(self.names), "price": self.price,
                               "category": self.category, "barcodes": list(self.barcodes),
                               "unit": self.unit}
        if self.active_from is not None:
            out["active_from"] = self.active_from.isoformat()
        if self.active_to is not None:
            out["active_to"] = self.active_to.isoformat()
        if self.member_prices:
            out["member_prices"] = [
                {"price": m.price, **({"tier": m.tier} if m.tier is not None else {}),
                 **({"group": m.group} if m.group is not None else {})}
                for m in self.member_prices]
        if self.topup is not None:
            out["topup"] = dict(self.topup)
        if self.gift_card is not None:
            out["gift_card"] = dict(self.gift_card)
        if self.price_units is not None:
            out["price_units"] = dict(self.price_units)
        return out


@dataclass(frozen=True, slots=True)
class Catalogue:
    """A catalogue document: the whole catalogue (``from_version`` None), or a change
    set from ``from_version`` to ``version`` (``products`` upserted, ``removed`` skus)."""

    club: str
    merchant: str
    version: int
    products: tuple[Product, ...]
    from_version: int | None = None
    removed: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    issued_at: dt.datetime | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_delta(self) -> bool:
        return self.from_version is not None


# ---------------------------------------------------------------- parsing


class _At:
    """Where in the document a check is (for the message)."""

    __slots__ = ("where",)

    def __init__(self, where: str):
        self.where = where

    def fail(self, key: str, message: str) -> CatalogueRefused:
        return CatalogueRefused("malformed", f"catalogue {self.where}: {key!r} {message}")

    def int_(self, key: str, value: object, maximum: int = MAX_AMOUNT) -> int:
        if type(value) is not int or value < 0 or value > maximum:
            raise self.fail(key, f"must be a whole number from 0 to {maximum}")
        return value

    def text(self, key: str, value: object, most: int) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "must be non-empty text")
        if len(value) > most:
            raise self.fail(key, f"has {len(value)} characters, more than {most}")
        bad = unsafe_char(value)
        if bad is not None:
            raise self.fail(key, f"holds the control character {describe(bad)}")
        return value

    def time(self, key: str, value: object) -> dt.datetime:
        text = self.text(key, value, 40)
        try:
            at = dt.datetime.fromisoformat(text)
        except ValueError:
            raise self.fail(key, f"must be an RFC 3339 time, not {text!r}") from None
        if at.tzinfo is None:
            raise self.fail(key, f"must carry a UTC offset, not {text!r}")
        return at

    def list_(self, key: str, value: object, most: int) -> list[Any]:
        if type(value) is not list:
            raise self.fail(key, "must be a list")
        if len(value) > most:
            raise CatalogueRefused("too_large", f"catalogue {self.where}: {key!r} has "
                                                f"{len(value)} entries, more than {most}")
        return value


def normalise_barcode(text: str) -> str:
    """A scanned or listed barcode as it is looked up: trimmed; a 12-digit UPC-A is
    the EAN-13 with a leading 0 (both scanners' forms of one product meet)."""
    code = text.strip()
    if len(code) == 12 and code.isascii() and code.isdigit():
        return "0" + code
    return code


def parse_product(raw: object, i: int) -> Product:
    """One product of a document (``products[i]``)."""
    at = _At(f"products[{i}]")
    if not isinstance(raw, Mapping):
        raise at.fail("product", "must be an object")
    sku = at.text("sku", raw.get("sku"), MAX_SKU)
    at = _At(f"product {sku!r}")
    names_raw = raw.get("names")
    if not isinstance(names_raw, Mapping) or not names_raw:
        raise at.fail("names", "must be an object of language -> name, with at least one")
    if len(names_raw) > MAX_LANGUAGES:
        raise at.fail("names", f"has {len(names_raw)} languages, more than {MAX_LANGUAGES}")
    names: dict[str, str] = {}
    for lang, name in names_raw.items():
        if not _LANG.fullmatch(lang):
            raise at.fail("names", f"has {lang[:20]!r}, not a language tag like 'en' or 'fa'")
        names[lang] = at.text(f"names.{lang}", name, MAX_NAME)
    price = at.int_("price", raw.get("price"))
    category = raw.get("category")
    if category is not None:
        category = at.text("category", category, MAX_CATEGORY)
    barcodes: list[str] = []
    for code in at.list_("barcodes", raw.get("barcodes", []), MAX_BARCODES):
        barcode = normalise_barcode(at.text("barcodes", code, MAX_BARCODE))
        if barcode not in barcodes:
            barcodes.append(barcode)
    unit = raw.get("unit", "piece")
    if unit not in UNITS:
        raise at.fail("unit", f"must be 'piece' or 'weight', not {json.dumps(unit)[:40]}")
    active_from = at.time("active_from", raw["active_from"]) if raw.get("active_from") else None
    active_to = at.time("active_to", raw["active_to"]) if raw.get("active_to") else None
    if active_from is not None and active_to is not None and active_to <= active_from:
        raise at.fail("active_to", "must be after 'active_from'")
    member_prices = []
    for j, row in enumerate(at.list_("member_prices", raw.get("member_prices", []),
                                     MAX_MEMBER_PRICES)):
        rat = _At(f"product {sku!r} member_prices[{j}]")
        if not isinstance(row, Mapping):
            raise rat.fail("member_prices", "rows must be {price, tier} or {price, group}")
        tier, group = row.get("tier"), row.get("group")
        if (tier is None) == (group is None):
            raise rat.fail("member_prices", "rows name exactly one of 'tier' and 'group'")
        member_prices.append(MemberPrice(
            rat.int_("price", row.get("price")),
            rat.text("tier", tier, MAX_CATEGORY) if tier is not None else None,
            rat.text("group", group, MAX_CATEGORY) if group is not None else None))
    topup, gift_card = _value_product(at, raw)
    price_units = None
    if raw.get("price_units") is not None:  # (1.3)
        spec = raw["price_units"]
        kind = spec.get("kind") if isinstance(spec, Mapping) else None
        if not isinstance(kind, str) or not kind.startswith("units.") \
                or not _VALUE_KIND.fullmatch(kind):
            raise at.fail("price_units", "must be {kind: units.<name>, units}")
        units = at.int_("price_units.units", spec.get("units"), 1_000_000)
        if units < 1 or unit != "piece":
            raise at.fail("price_units.units", "must be 1 to 1000000, on a piece product")
        price_units = {"kind": kind, "units": units}
    return Product(sku, names, price, category, tuple(barcodes), unit, active_from, active_to,
                   tuple(member_prices), topup, gift_card, price_units)


_VALUE_KIND = re.compile(r"(value|units)\.[a-z0-9_]{1,32}")


def _value_product(at: _At, raw: Mapping[str, Any]
                   ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(1.3) A product's ``topup`` / ``gift_card`` definition, checked (at most one)."""
    if "topup" in raw and "gift_card" in raw:
        raise at.fail("gift_card", "cannot be given with 'topup'")
    out: list[dict[str, Any] | None] = []
    for key in ("topup", "gift_card"):
        spec = raw.get(key)
        if spec is None:
            out.append(None)
            continue
        if not isinstance(spec, Mapping):
            raise at.fail(key, "must be an object {kind, amount, expires_days}")
        kind = spec.get("kind") if key == "topup" else "value.gift"
        if not isinstance(kind, str) or not _VALUE_KIND.fullmatch(kind):
            raise at.fail(f"{key}.kind", "must be value.<name> or units.<name>")
        amount = spec.get("amount")
        if amount is not None and at.int_(f"{key}.amount", amount) < 1:
            raise at.fail(f"{key}.amount", "must be at least 1 (or null: the price typed)")
        days = spec.get("expires_days")
        if days is not None and not 1 <= at.int_(f"{key}.expires_days", days, 36_500):
            raise at.fail(f"{key}.expires_days", "must be 1 to 36500")
        row: dict[str, Any] = {"amount": amount, "expires_days": days}
        if key == "topup":
            row["kind"] = kind
        out.append(row)
    return out[0], out[1]


def parse_catalogue(payload: bytes) -> Catalogue:
    """The catalogue in ``payload`` (the signed JSON bytes, signature already checked).

    Raises :class:`CatalogueRefused` (``malformed`` or ``too_large``) naming the first
    problem: a refused document is never partly taken.
    """
    if len(payload) > MAX_DOCUMENT_BYTES:
        raise CatalogueRefused("too_large", f"the catalogue has {len(payload)} bytes, more "
                                            f"than {MAX_DOCUMENT_BYTES}")
    try:
        data = json.loads(payload)
    except RecursionError:
        raise CatalogueRefused("malformed", "the catalogue is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise CatalogueRefused("malformed", f"the catalogue is not UTF-8 JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CatalogueRefused("malformed", "the catalogue must be a JSON object")
    top = _At("document")
    club = top.text("club", data.get("club"), 64)
    merchant = top.text("merchant", data.get("merchant"), 128)
    version = top.int_("version", data.get("version"))
    from_version = None
    if data.get("from_version") is not None:
        from_version = top.int_("from_version", data["from_version"])
        if from_version >= version:
            raise top.fail("from_version", f"must be lower than 'version' ({version})")
    issued_at = top.time("issued_at", data["issued_at"]) if data.get("issued_at") else None
    languages = tuple(top.text("languages", lang, 16)
                      for lang in top.list_("languages", data.get("languages", []),
                                            MAX_LANGUAGES))
    raw_products = top.list_("products", data.get("products", []), MAX_PRODUCTS)
    products = tuple(parse_product(p, i) for i, p in enumerate(raw_products))
    seen: set[str] = set()
    owner: dict[str, str] = {}
    for p in products:
        if p.sku in seen:
            raise top.fail("products", f"list sku {p.sku!r} more than once")
        seen.add(p.sku)
        for code in p.barcodes:
            other = owner.setdefault(code, p.sku)
            if other != p.sku:
                raise top.fail("products", f"give barcode {code[:40]!r} to both {other!r} "
                                           f"and {p.sku!r}")
    removed: tuple[str, ...] = ()
    if "removed" in data:
        if from_version is None:
            raise top.fail("removed", "is only for a change set (with 'from_version')")
        removed = tuple(top.text("removed", s, MAX_SKU)
                        for s in top.list_("removed", data["removed"], MAX_REMOVED))
    extra = {k: data[k] for k in ("currency", "minor_units") if k in data}
    return Catalogue(club, merchant, version, products, from_version, removed, languages,
                     issued_at, extra)


Action = Literal["replace", "apply", "skip"]


def decide(doc: Catalogue, *, club: str, merchant: str, current_version: int | None) -> Action:
    """What a terminal with ``current_version`` (None: no catalogue) does with ``doc``.

    ``replace``: a whole catalogue newer than the one in use; ``apply``: a change set
    that follows the version in use; ``skip``: one already had (a repeat, a retained
    message seen again, a change set the whole catalogue already brought). Raises
    :class:`CatalogueRefused` ``foreign_club``, ``foreign_merchant``, ``stale`` (a
    whole catalogue older than the one in use: a replay) or ``gap`` (a change set that
    does not follow: the whole catalogue, retained, brings the terminal up to date).
    """
    if doc.club != club:
        raise CatalogueRefused("foreign_club", f"the catalogue is for club {doc.club!r}, "
                                               f"this terminal is {club!r}")
    if doc.merchant != merchant:
        raise CatalogueRefused("foreign_merchant", f"the catalogue is for merchant "
                                                   f"{doc.merchant!r}, not {merchant!r}")
    current = current_version
    if doc.from_version is None:
        if current is None or doc.version > current:
            return "replace"
        if doc.version == current:
            return "skip"
        raise CatalogueRefused("stale", f"catalogue version {doc.version} is older than the "
                                        f"version {current} in use")
    if current is not None and doc.version <= current:
        return "skip"
    if doc.from_version != current:
        have = "none" if current is None else f"version {current}"
        raise CatalogueRefused("gap", f"the change set {doc.from_version}..{doc.version} "
                                      f"does not follow the catalogue in use ({have}); "
                                      f"waiting for the whole catalogue")
    return "apply"


def verify_catalogue(envelope: Mapping[str, Any], trusted: Mapping[str, Any]) -> bytes:
    """The signed bytes of a catalogue envelope once the signature verifies with a
    trusted key (the one check of every signed club document). Raises
    :class:`CatalogueRefused` ``malformed``, ``unknown_key`` or ``bad_signature``."""
    from agent.errors import BundleRejected
    from agent.rules.envelope import verify_signed_payload

    try:
        return verify_signed_payload(envelope, trusted)
    except BundleRejected as exc:
        message = str(exc).replace("bundle envelope", "catalogue envelope")
        raise CatalogueRefused(exc.reason, message) from None


def product_from_json(text: str) -> Product:
    """A product as the store keeps it (its :meth:`Product.to_dict` JSON)."""
    return parse_product(json.loads(text), 0)


def member_price(product: Product, tier: str | None, groups: Sequence[str]) -> int:
    """The unit price for a member of ``tier`` and ``groups``: the lowest of the
    product's price and its member prices that apply (no member: the price)."""
    price = product.price
    for row in product.member_prices:
        if (row.tier is not None and row.tier == tier) or \
                (row.group is not None and row.group in groups):
            price = min(price, row.price)
    return price


def line_amount(product: Product, qty: int, unit_price: int) -> tuple[int, int]:
    """``(qty, unit_price)`` of a sale line for ``qty`` pieces, or ``qty`` grams of a
    weighed product (``unit_price`` per kilogram): the club's sale line has whole
    units, so a weighed line is one unit at the price of its weight (price × grams /
    1000, rounded toward zero)."""
    if product.unit == "weight":
        return 1, unit_price * qty // 1000
    return qty, unit_price
