"""``catalogue.lookup`` and ``catalogue.search``, and the basket lines a quote takes
from the club's product catalogue (``docs/protocol/local-api.md``, "Catalogue").

A quote's line may name a product by ``barcode`` or ``sku``: the catalogue gives
its sku, category and price (a member's price when the member's tier or group has
one; a weighed product's price for ``weight_g`` grams). A line with its own
``unit_price`` is the cash register's, as in v1; with a ``barcode`` the catalogue
does not know, it is recorded as an unknown item (sku ``unknown:<barcode>``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.carddata.detect import find_card_data
from agent.catalogue import MAX_BARCODE, Product, line_amount, member_price, normalise_barcode
from agent.errors import ApiError, ClubtermError
from agent.localapi import INVALID_PARAMS, NOT_FOUND, STORAGE
from agent.localapi.services.core import STORAGE_MESSAGE, Caller, ServiceCore
from agent.localapi.services.params import MAX_LINE_TEXT, Params
from agent.safe_text import unsafe_char

SEARCH_DEFAULT = 20
SEARCH_MAX = 50
MAX_SEARCH_TEXT = 120
MAX_WEIGHT_G = 1_000_000  # one line of a weighed product: at most 1000 kg
UNKNOWN_PREFIX = "unknown:"


def _barcode(value: object, where: dict[str, Any]) -> str:
    """A barcode parameter: printable text of at most :data:`MAX_BARCODE` characters."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_BARCODE \
            or unsafe_char(value) is not None:
        raise ApiError(INVALID_PARAMS, f"The barcode must be printable text of 1 to "
                       f"{MAX_BARCODE} characters.", {"param": "barcode", **where})
    return normalise_barcode(value)


#: (1.3) Largest open amount of one top-up or gift card line (minor units).
MAX_OPEN_AMOUNT = 10**12


def value_detail(product: Product) -> dict[str, Any] | None:
    """(1.3) ``{"topup": …}`` / ``{"gift_card": …}`` of a product selling stored value."""
    if product.topup is not None:
        return {"topup": dict(product.topup)}
    if product.gift_card is not None:
        return {"gift_card": dict(product.gift_card)}
    return None


def open_amount(product: Product, line: Mapping[str, Any], i: int, price: int) -> int:
    """The unit price of a top-up / gift card line: the product's price, or for an open
    amount (``amount`` null) the line's ``amount`` (required, 1 to MAX_OPEN_AMOUNT)."""
    spec = product.topup if product.topup is not None else product.gift_card
    if spec is None or spec.get("amount") is not None:
        return price
    amount = line.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int) \
            or not 1 <= amount <= MAX_OPEN_AMOUNT:
        raise ApiError(INVALID_PARAMS, f"Basket line {i + 1}: {product.name('en')} has an "
                       f"open amount; give the amount (1 to {MAX_OPEN_AMOUNT} minor units).",
                       {"param": "lines", "reason": "amount_needed", "line": i})
    return amount


def product_dict(product: Product, *, active: bool) -> dict[str, Any]:
    """A product as the local API answers it: the catalogue's form and ``active``."""
    out = product.to_dict()
    out["active"] = active
    return out


class CatalogueMethods(ServiceCore):
    """The catalogue's methods and the catalogue lines of ``sale.quote``."""

    async def _catalogue_read(self, fn: Any, *args: Any) -> Any:
        if self.catalogue is None:
            return None
        try:
            return await self.db.read(fn, *args)
        except ClubtermError as exc:
            raise ApiError(STORAGE, STORAGE_MESSAGE, {"detail": str(exc)}) from exc

    async def catalogue_lookup(self, params: Params, conn: Caller | None) -> dict[str, Any]:
        """``catalogue.lookup {barcode}``: the product, or ``product: null``."""
        code = _barcode(params.get("barcode"), {})
        product = await self._catalogue_read(self.catalogue.by_barcode, code) \
            if self.catalogue is not None else None
        return {"barcode": code,
                "product": None if product is None
                else product_dict(product, active=product.active(self.clock()))}

    async def product_for_token(self, token: str) -> dict[str, Any] | None:
        """The product a scanned ``code:`` token names, for the reader's ``card``
        event (None: not a product the catalogue knows)."""
        if self.catalogue is None or not token.startswith("code:"):
            return None
        code = token[5:]
        if not code.strip() or len(code) > MAX_BARCODE or unsafe_char(code) is not None:
            return None
        product = await self._catalogue_read(self.catalogue.by_barcode, code)
        return None if product is None else product_dict(product,
                                                         active=product.active(self.clock()))

    async def catalogue_search(self, params: Params, conn: Caller | None) -> dict[str, Any]:
        """``catalogue.search {text, limit}``: products whose sku or a name holds ``text``."""
        text = params.get("text")
        if not isinstance(text, str) or len(text) > MAX_SEARCH_TEXT \
                or unsafe_char(text) is not None:
            raise ApiError(INVALID_PARAMS, f"Give the text to search for (at most "
                           f"{MAX_SEARCH_TEXT} characters).", {"param": "text"})
        limit = params.get("limit", SEARCH_DEFAULT)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= SEARCH_MAX:
            raise ApiError(INVALID_PARAMS, f"The limit must be a whole number from 1 to "
                           f"{SEARCH_MAX}.", {"param": "limit", "max": SEARCH_MAX})
        found: list[Product] = []
        if self.catalogue is not None:
            found = await self._catalogue_read(self.catalogue.search, text, limit + 1)
        now = self.clock()
        return {"products": [product_dict(p, active=p.active(now)) for p in found[:limit]],
                "more": len(found) > limit}

    async def catalogue_basket(self, raw: list[Any], member: Mapping[str, Any] | None
                               ) -> tuple[list[Any], list[dict[str, Any]]]:
        """The basket with catalogue lines priced, and each line's details (name,
        unit, weight, barcode, unknown) for the result's ``line_details``."""
        active_member = member is not None and member.get("status") == "active"
        tier = member.get("tier") if active_member and member is not None else None
        groups_raw = member.get("groups") if active_member and member is not None else None
        groups = [g for g in groups_raw if isinstance(g, str)] \
            if isinstance(groups_raw, list) else []
        now = self.clock()
        lines: list[Any] = []
        details: list[dict[str, Any]] = []
        for i, line in enumerate(raw):
            if not isinstance(line, dict) or not ("barcode" in line or (
                    "unit_price" not in line and "sku" in line)):
                lines.append(line)
                details.append({})
                continue
            where = {"line": i}
            product: Product | None = None
            code = None
            if "barcode" in line:
                code = _barcode(line["barcode"], where)
                if self.catalogue is not None:
                    product = await self._catalogue_read(self.catalogue.by_barcode, code)
            else:
                sku = line.get("sku")
                if not isinstance(sku, str) or not sku or len(sku) > MAX_LINE_TEXT:
                    raise ApiError(INVALID_PARAMS, f"Basket line {i + 1}: give a barcode, or "
                                   f"an sku of the catalogue.", {"param": "lines", **where})
                if self.catalogue is not None:
                    product = await self._catalogue_read(self.catalogue.by_sku, sku)
            if "unit_price" in line:
                # The cash register's own price for a scanned product, or an unknown item.
                own = dict(line)
                own.pop("barcode", None)
                if product is not None:
                    own.setdefault("sku", product.sku)
                    own.setdefault("category", product.category)
                    details.append({"names": product.names, "unit": product.unit,
                                    "barcode": code, **(value_detail(product) or {})})
                else:
                    if own.get("sku") is None and code is not None:
                        # Recorded with its barcode, so the club learns what it lacks;
                        # never a code that reads as a card number.
                        own["sku"] = (UNKNOWN_PREFIX + code)[:MAX_LINE_TEXT] \
                            if not find_card_data(code) else "unknown"
                    details.append({"unknown": True, "barcode": code})
                lines.append(own)
                continue
            if product is None:
                what = f"barcode {code}" if code is not None else f"sku {line.get('sku')}"
                raise ApiError(NOT_FOUND, f"Basket line {i + 1}: the catalogue has no product "
                               f"with {what}; type its price.",
                               {"param": "lines", "reason": "unknown_product",
                                "barcode": code, **where})
            if not product.active(now):
                raise ApiError(INVALID_PARAMS, f"Basket line {i + 1}: {product.name('en')} is "
                               f"not on sale now.", {"param": "lines", "reason": "not_on_sale",
                                                     **where})
            price = member_price(product, tier if isinstance(tier, str) else None, groups)
            detail: dict[str, Any] = {"names": product.names, "unit": product.unit,
                                      "barcode": code, "list_price": product.price}
            value_spec = value_detail(product)
            if value_spec is not None:  # (1.3) a top-up or gift card: priced by its amount
                detail.update(value_spec)
                price = open_amount(product, line, i, price)
            if line.get("units") is True:  # (1.3) paid in the member's units, not money
                if product.price_units is None:
                    raise ApiError(INVALID_PARAMS, f"Basket line {i + 1}: "
                                   f"{product.name('en')} cannot be paid in units.",
                                   {"param": "lines", "reason": "no_units_price", "line": i})
                detail["units_price"] = dict(product.price_units)
                price = 0
            if product.unit == "weight":
                grams = line.get("weight_g")
                if isinstance(grams, bool) or not isinstance(grams, int) \
                        or not 1 <= grams <= MAX_WEIGHT_G:
                    raise ApiError(INVALID_PARAMS, f"Basket line {i + 1}: "
                                   f"{product.name('en')} is sold by weight; give weight_g "
                                   f"(grams, 1 to {MAX_WEIGHT_G}).",
                                   {"param": "lines", "reason": "weight_needed", **where})
                qty, unit_price = line_amount(product, grams, price)
                detail["weight_g"] = grams
            else:
                qty = line.get("qty", 1)
                unit_price = price
            lines.append({"sku": product.sku, "category": product.category, "qty": qty,
                          "unit_price": unit_price})
            details.append(detail)
        return lines, details
