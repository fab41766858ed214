"""The club's product catalogue in use (tables ``catalogue_products`` and
``catalogue_barcodes``, schema v6; the version and the last refusal in ``meta``).

A whole catalogue replaces the one in use, a change set applies to it, each in one
transaction: a sale quoted meanwhile sees the old catalogue or the new one, never a
mix. Lookups by barcode are one index probe; name search scans the folded names
(a few milliseconds for the largest catalogue, :data:`agent.catalogue.MAX_PRODUCTS`).
"""

from __future__ import annotations

import json
from typing import Any

from agent.catalogue import Catalogue, Product, fold, normalise_barcode, product_from_json
from agent.catalogue.document import MAX_PRODUCTS, CatalogueRefused
from agent.offline_queue.database import Database

SEARCH_MAX = 50  # products one search returns at most


def _upc_twin(code: str) -> str | None:
    """The other form of an EAN-13 that begins with 0 (its UPC-A), or None."""
    if len(code) == 13 and code.startswith("0") and code.isascii() and code.isdigit():
        return code[1:]
    return None


class CatalogueStore:
    """``store.catalogue``: the products in use, looked up by barcode, sku or name."""

    def __init__(self, db: Database):
        self.db = db

    # ---- reading ----------------------------------------------------------------

    def catalogue_version(self) -> int | None:
        """The version in use, or None before the club sent one."""
        with self.db.guard("reading the catalogue"):
            row = self.db.execute_sql(
                "SELECT value FROM meta WHERE key = 'catalogue_version'").fetchone()
        return None if row is None else int(row[0])

    def catalogue_problem(self) -> str | None:
        """``"reason: message"`` of the last catalogue refused since one was taken."""
        with self.db.guard("reading the catalogue"):
            row = self.db.execute_sql(
                "SELECT value FROM meta WHERE key = 'catalogue_problem'").fetchone()
        return None if row is None or not row[0] else str(row[0])

    def catalogue_info(self) -> dict[str, Any]:
        """``{version, products, languages, problem}`` for the status."""
        with self.db.guard("reading the catalogue"):
            rows = dict(self.db.execute_sql(
                "SELECT key, value FROM meta WHERE key IN ('catalogue_version', "
                "'catalogue_problem', 'catalogue_languages')").fetchall())
            count = self.db.execute_sql("SELECT count(*) FROM catalogue_products").fetchone()[0]
        version = rows.get("catalogue_version")
        return {"version": None if version is None else int(version), "products": int(count),
                "languages": json.loads(rows.get("catalogue_languages") or "[]"),
                "problem": rows.get("catalogue_problem") or None}

    def by_barcode(self, barcode: str) -> Product | None:
        """The product with this barcode (a UPC-A and its EAN-13 are the same), or None."""
        code = normalise_barcode(barcode)
        codes = [code]
        twin = _upc_twin(code)
        if twin is not None:
            codes.append(twin)
        with self.db.guard("reading the catalogue"):
            for c in codes:
                row = self.db.execute_sql(
                    "SELECT p.body FROM catalogue_barcodes b JOIN catalogue_products p "
                    "ON p.sku = b.sku WHERE b.barcode = ?", (c,)).fetchone()
                if row is not None:
                    return product_from_json(row[0])
        return None

    def by_sku(self, sku: str) -> Product | None:
        """The product with this sku, or None."""
        with self.db.guard("reading the catalogue"):
            row = self.db.execute_sql("SELECT body FROM catalogue_products WHERE sku = ?",
                                      (sku,)).fetchone()
        return None if row is None else product_from_json(row[0])

    def search(self, text: str, limit: int = 20) -> list[Product]:
        """Products whose sku or a name (any language) holds ``text``, case,
        diacritics and letter variants aside; those whose name begins with it first."""
        needle = fold(text)
        if not needle:
            return []
        limit = max(1, min(int(limit), SEARCH_MAX))
        with self.db.guard("searching the catalogue"):
            rows = self.db.execute_sql(
                "SELECT body FROM catalogue_products WHERE instr(search, ?1) > 0 "
                "ORDER BY (instr(char(10) || search, char(10) || ?1) = 0), sku LIMIT ?2",
                (needle, limit)).fetchall()
        return [product_from_json(r[0]) for r in rows]

    def products(self, limit: int = MAX_PRODUCTS) -> list[Product]:
        """Every product, by sku (at most ``limit``)."""
        with self.db.guard("reading the catalogue"):
            rows = self.db.execute_sql("SELECT body FROM catalogue_products ORDER BY sku "
                                       "LIMIT ?", (limit,)).fetchall()
        return [product_from_json(r[0]) for r in rows]

    # ---- writing ----------------------------------------------------------------

    def replace_catalogue(self, doc: Catalogue) -> int:
        """Put a whole catalogue in use in place of the one there; returns its size."""
        if doc.is_delta:
            raise ValueError("a change set is applied with apply_changes")
        with self.db.write("saving the club's catalogue") as conn:
            conn.execute("DELETE FROM catalogue_barcodes")
            conn.execute("DELETE FROM catalogue_products")
            self._upsert(conn, doc.products)
            self._done(conn, doc)
        return len(doc.products)

    def apply_changes(self, doc: Catalogue) -> int:
        """Apply a change set that follows the version in use (checked again here, in
        the transaction); returns how many products the catalogue then has."""
        if not doc.is_delta:
            raise ValueError("a whole catalogue is put in use with replace_catalogue")
        with self.db.write("applying the club's catalogue changes") as conn:
            row = conn.execute(
                "SELECT value FROM meta WHERE key = 'catalogue_version'").fetchone()
            current = None if row is None else int(row[0])
            if current != doc.from_version:
                raise CatalogueRefused("gap", f"the change set {doc.from_version}.."
                                              f"{doc.version} does not follow version {current}")
            for sku in (*doc.removed, *(p.sku for p in doc.products)):
                conn.execute("DELETE FROM catalogue_barcodes WHERE sku = ?", (sku,))
            conn.executemany("DELETE FROM catalogue_products WHERE sku = ?",
                             [(s,) for s in doc.removed])
            self._upsert(conn, doc.products)
            count = conn.execute("SELECT count(*) FROM catalogue_products").fetchone()[0]
            if count > MAX_PRODUCTS:
                # Raised inside the transaction: nothing of the change set stays.
                raise CatalogueRefused("too_large", f"the change set would make {count} "
                                                    f"products, more than {MAX_PRODUCTS}")
            self._done(conn, doc)
        return int(count)

    def save_problem(self, problem: str | None) -> None:
        """Keep why the last catalogue was refused (None: clear it)."""
        with self.db.write("saving the catalogue's status") as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES ('catalogue_problem', ?) "
                         "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                         (problem or "",))

    @staticmethod
    def _upsert(conn: Any, products: tuple[Product, ...]) -> None:
        conn.executemany(
            "INSERT OR REPLACE INTO catalogue_products (sku, body, search) VALUES (?, ?, ?)",
            [(p.sku, json.dumps(p.to_dict(), separators=(",", ":"), ensure_ascii=False),
              p.search_text()) for p in products])
        # A barcode moved from another product to this one in a change set: the last wins.
        conn.executemany(
            "INSERT OR REPLACE INTO catalogue_barcodes (barcode, sku) VALUES (?, ?)",
            [(code, p.sku) for p in products for code in p.barcodes])

    @staticmethod
    def _done(conn: Any, doc: Catalogue) -> None:
        for key, value in (("catalogue_version", str(doc.version)), ("catalogue_problem", ""),
                           ("catalogue_languages", json.dumps(list(doc.languages)))):
            if key == "catalogue_languages" and doc.is_delta and not doc.languages:
                continue
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) "
                         "DO UPDATE SET value = excluded.value", (key, value))
