"""The club's product catalogue: products with barcodes, names in the club's
languages, prices, categories and units (``docs/protocol/catalogue.md``).

Pure: parsing and the acceptance policy (:mod:`.document`), and the folding that
name search compares with (:mod:`.text`). The store keeps the catalogue in use
(``store.catalogue``); the club link takes new ones (``agent.sync.updates``).
"""

from agent.catalogue.document import (
    MAX_BARCODE,
    MAX_DOCUMENT_BYTES,
    MAX_PRODUCTS,
    REASONS,
    Catalogue,
    CatalogueRefused,
    MemberPrice,
    Product,
    decide,
    line_amount,
    member_price,
    normalise_barcode,
    parse_catalogue,
    parse_product,
    product_from_json,
    verify_catalogue,
)
from agent.catalogue.text import fold

__all__ = ["MAX_BARCODE", "MAX_DOCUMENT_BYTES", "MAX_PRODUCTS", "REASONS", "Catalogue",
           "CatalogueRefused", "MemberPrice", "Product", "decide", "fold", "line_amount",
           "member_price", "normalise_barcode", "parse_catalogue", "parse_product",
           "product_from_json", "verify_catalogue"]
