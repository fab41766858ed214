"""The receipt's layout: a pure function from a committed sale to printable blocks.

No I/O, no clock, no printer: :func:`layout_sale` takes the sale's receipt (what
``sale.commit`` answers, or a sale rebuilt from its event for a reprint), why each
benefit applied, the shop's details and the paper's width, and returns
:class:`Receipt` — rows in *logical* order with a direction; the output stage
(:mod:`agent.printer.encode`) decides what goes as code-page text and what as a
raster image (right-to-left scripts, anything the code page cannot hold).

Every text from outside (names, skus, shop lines, a cash register's lines) passes
:func:`clean` first: control characters (ESC, GS, DLE, …) and bidi overrides never
reach the printer, and no line is longer than the paper can take.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from agent.localapi import receipt_number
from agent.printer.reasons import Reason
from agent.printer.texts import RTL_LANGUAGES, balance_name, digits, text
from agent.safe_text import is_unsafe

COLUMNS = (32, 42, 48)
# A cash register's own text: at most this many lines of at most MAX_TEXT_CHARS.
MAX_TEXT_LINES = 60
MAX_TEXT_CHARS = 200
# Most sale lines printed; the rest is summed in one "… n more items" line.
MAX_SALE_LINES = 200

Align = Literal["start", "center", "end"]


@dataclass(frozen=True)
class Row:
    """One printed line: ``start`` at the reading start (left in LTR, right in RTL)
    and ``end`` at the other side (an amount). Logical order."""

    start: str
    end: str = ""
    align: Align = "start"
    bold: bool = False
    big: bool = False


@dataclass(frozen=True)
class Qr:
    """A QR code of ``data`` (printed by the printer, or as an image)."""

    data: str


@dataclass(frozen=True)
class Separator:
    """A line across the paper."""


Block = Row | Qr | Separator


@dataclass(frozen=True)
class Shop:
    """What heads every receipt (the terminal profile's ``[printer]`` table)."""

    name: str = ""
    lines: tuple[str, ...] = ()
    footer: str = ""


@dataclass(frozen=True)
class Receipt:
    """A laid-out receipt: blocks top to bottom, the language and its direction."""

    blocks: tuple[Block, ...]
    columns: int
    language: str = "en"
    rtl: bool = False
    cash: bool = False  # a cash tender: the drawer opens
    sale_id: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)


def clean(value: object, max_chars: int = MAX_TEXT_CHARS) -> str:
    """``value`` as printable text: control characters (ESC, GS, DLE, CR, LF, …) and
    bidi overrides become spaces, runs of spaces one, at most ``max_chars``."""
    raw = str(value if value is not None else "")[: max_chars * 4]
    out = "".join(" " if is_unsafe(ch) else ch for ch in raw)
    out = " ".join(out.split())
    return out[:max_chars]


def cell_width(value: str) -> int:
    """Printed width in character cells (combining marks take none, wide two)."""
    width = 0
    for ch in value:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def wrap(value: str, width: int) -> list[str]:
    """``value`` in lines of at most ``width`` cells, broken at spaces where it can."""
    lines: list[str] = []
    current = ""
    for word in value.split(" "):
        while cell_width(word) > width:  # a word longer than the line: cut it
            room = width - cell_width(current) - (1 if current else 0)
            if room <= 0:
                lines.append(current)
                current = ""
                continue
            head, word = _cut(word, room)
            lines.append(f"{current} {head}".strip())
            current = ""
        candidate = f"{current} {word}" if current else word
        if cell_width(candidate) <= width:
            current = candidate
        else:
            lines.append(current)
            current = word
    lines.append(current)
    return [line for line in lines if line] or [""]


def _cut(word: str, room: int) -> tuple[str, str]:
    used, i = 0, 0
    while i < len(word) and used + cell_width(word[i]) <= room:
        used += cell_width(word[i])
        i += 1
    return word[:i], word[i:]


def money(amount: object, minor_units: int, currency: str, lang: str) -> str:
    """``1250`` → ``12.50 EUR`` (integers only), in the language's digits."""
    try:
        value = int(str(amount))
    except ValueError:
        value = 0
    sign = "-" if value < 0 else ""
    value = abs(value)
    if minor_units > 0:
        whole, frac = divmod(value, 10**minor_units)
        body = f"{whole}.{frac:0{minor_units}d}"
    else:
        body = str(value)
    out = f"{sign}{body} {clean(currency, 8)}".strip()
    return digits(out, lang)


def fit_rows(row: Row, columns: int) -> list[Row]:
    """``row`` in rows that fit ``columns``: the start text wraps, the end text
    goes on the last row (alone on a row of its own if it does not fit beside)."""
    end_w = cell_width(row.end)
    if not row.end:
        return [Row(part, "", row.align, row.bold, row.big) for part in wrap(row.start, columns)]
    room = columns - end_w - 1
    if room < 8:
        return [*fit_rows(Row(row.start, "", row.align, row.bold, row.big), columns),
                Row("", row.end[:columns], "end", row.bold, row.big)]
    parts = wrap(row.start, room)
    return [Row(p, row.end if i == len(parts) - 1 else "", row.align, row.bold, row.big)
            for i, p in enumerate(parts)]


def _line_name(line: Mapping[str, Any], lang: str) -> str:
    names = line.get("names")
    if isinstance(names, Mapping) and isinstance(names.get(lang), str):
        return clean(names[lang])
    for key in ("name", "sku", "barcode", "category"):
        value = line.get(key)
        if isinstance(value, str) and value.strip():
            return clean(value)
    return text("item", lang)


def _qty_text(qty: object, lang: str) -> str:
    if isinstance(qty, int | float) and not isinstance(qty, bool):
        shown = f"{qty:g}" if isinstance(qty, float) else str(qty)
        return digits(shown, lang)
    return "1"


def _reason_text(reasons: Sequence[Reason], lang: str) -> str:
    return digits(" · ".join(text(key, lang, **{k: clean(v, 40) for k, v in values.items()})
                             for key, values in reasons), lang)


def _tenders(sale: Mapping[str, Any]) -> list[tuple[str, object]]:
    tenders = sale.get("tenders")
    out: list[tuple[str, object]] = []
    if isinstance(tenders, list):
        for t in tenders[:10]:
            if isinstance(t, Mapping):
                out.append((str(t.get("method") or t.get("kind") or "other"), t.get("amount")))
    if not out:
        out.append((str(sale.get("payment") or "other"), sale.get("payable")))
    return out


def layout_sale(sale: Mapping[str, Any], *, reasons: Mapping[str, Sequence[Reason]],
                labels: Mapping[str, Mapping[str, str]] | None = None, shop: Shop,
                columns: int, language: str = "en", at_text: str = "",
                reprint: bool = False) -> Receipt:
    """The receipt of a committed sale.

    ``sale``: the receipt of ``sale.commit`` (or rebuilt from the sale event);
    ``reasons``: why each applied rule applied (rule id → reasons,
    :func:`agent.printer.reasons.rule_reasons`); ``labels``: a rule's own label by
    language when its bundle has one; ``at_text``: the sale's time as the shop
    reads it (the caller formats it in the terminal's time zone).
    """
    if columns not in COLUMNS:
        raise ValueError(f"columns must be one of {COLUMNS}")
    lang = language
    mu = sale.get("minor_units")
    minor = mu if isinstance(mu, int) and 0 <= mu <= 4 else 2
    cur = str(sale.get("currency") or "")

    def m(amount: object) -> str:
        return money(amount, minor, cur, lang)

    rows: list[Block] = []

    def add(row: Row) -> None:
        rows.extend(fit_rows(row, columns))

    if shop.name:
        add(Row(clean(shop.name, 60), align="center", bold=True, big=columns >= 42))
    for line in shop.lines[:6]:
        add(Row(clean(line, 80), align="center"))
    if reprint:
        add(Row(text("reprint", lang), align="center", bold=True))
    rows.append(Separator())
    sale_id = clean(sale.get("sale_id"), 64)
    number = clean(sale.get("receipt_no") or receipt_number(sale_id), 20)
    add(Row(f"{text('receipt', lang)} {number}".strip(), digits(clean(at_text, 40), lang)))
    staff = clean(sale.get("staff_name") or sale.get("staff_id") or "", 40)
    terminal = clean(sale.get("terminal_id") or "", 40)
    if staff:
        add(Row(f"{text('cashier', lang)}: {staff}", f"{text('terminal', lang)} {terminal}"))
    rows.append(Separator())
    lines = sale.get("lines") if isinstance(sale.get("lines"), list) else []
    assert isinstance(lines, list)
    for line in lines[:MAX_SALE_LINES]:
        if not isinstance(line, Mapping):
            continue
        qty = line.get("qty", 1)
        price = line.get("unit_price", 0)
        try:
            total = round(float(qty) * int(price)) if not isinstance(qty, bool) else int(price)
        except (TypeError, ValueError):
            total = 0
        add(Row(_line_name(line, lang), m(total)))
        if qty not in (1, None):
            add(Row(f"{_qty_text(qty, lang)} x {m(price)}"))
    if len(lines) > MAX_SALE_LINES:
        add(Row(f"… +{digits(str(len(lines) - MAX_SALE_LINES), lang)}"))
    rows.append(Separator())
    add(Row(text("subtotal", lang), m(sale.get("gross"))))
    for d in sale.get("discounts") or []:
        if not isinstance(d, Mapping):
            continue
        rule = str(d.get("rule") or "")
        own = (labels or {}).get(rule) or {}
        title = clean(own.get(lang) or own.get("") or own.get("en") or text("discount", lang), 60)
        add(Row(title, m(-int(d.get("amount") or 0))))
        why = _reason_text(reasons.get(rule, ()), lang)
        if why:
            add(Row(f"  {why}"))
    if sale.get("redeemed_points"):
        pts = digits(str(sale.get("redeemed_points")), lang)
        add(Row(f"{text('points_redeemed', lang)} ({pts})", m(-int(sale.get("redeemed_value")
                                                                    or 0))))
    for c in sale.get("credits_used") or []:
        if isinstance(c, Mapping):
            add(Row(f"{text('credit_used', lang)} ({clean(c.get('kind'), 30)})",
                    m(-int(c.get("amount") or 0))))
    add(Row(text("total", lang), m(sale.get("payable")), bold=True, big=columns >= 42))
    for method, amount in _tenders(sale):
        add(Row(text(method, lang) if method in ("cash", "card", "other", "account",
                                                 "stored_value", "gift_card")
                else clean(method, 30),
                m(amount)))
    # (1.3) Stored value bought, and the code of each gift card sold (to hand over).
    for top in (sale.get("topups") or [])[:10]:
        if isinstance(top, Mapping):
            kind = clean(balance_name(str(top.get("kind")), lang), 30)
            add(Row(f"{text('topup', lang)} ({kind})", "+" + m(top.get("amount"))))
    for card in (sale.get("gift_cards_issued") or [])[:10]:
        if isinstance(card, Mapping):
            code = clean(card.get("token"), 80)
            add(Row(f"{text('gift_card', lang)} {code[5:] if code.startswith('code:') else code}",
                    m(card.get("amount")), bold=True))
    if sale.get("change"):
        add(Row(text("change", lang), m(sale.get("change"))))
    member = sale.get("member")
    balances = sale.get("balances_after")
    if isinstance(member, Mapping) or sale.get("points_earned") or isinstance(balances, Mapping):
        rows.append(Separator())
        add(Row(text("loyalty", lang), align="center", bold=True))
        if isinstance(member, Mapping) and member.get("name"):
            add(Row(f"{text('member', lang)}: {clean(member.get('name'), 60)}"))
        earned = sale.get("points_earned")
        if isinstance(earned, int) and earned:
            add(Row(text("points_earned", lang), digits(f"+{earned}", lang)))
        for c in sale.get("credits_earned") or []:
            if isinstance(c, Mapping):
                add(Row(f"{text('credit_earned', lang)} "
                        f"({clean(balance_name(str(c.get('kind')), lang), 30)})",
                        "+" + m(c.get("amount"))))
        if isinstance(balances, Mapping):
            add(Row(text("balances_after", lang)))
            for kind, value in list(balances.items())[:8]:
                name = clean(balance_name(str(kind), lang), 30)
                shown = digits(str(value), lang) if kind == "points" \
                    or str(kind).startswith("units.") else m(value)
                add(Row(f"  {name}", shown))
    if sale.get("offline"):
        rows.append(Separator())
        add(Row(text("offline", lang), bold=True))
    rows.append(Separator())
    if sale_id:
        rows.append(Qr(sale_id))
        add(Row(sale_id, align="center"))
    add(Row(clean(shop.footer, 120) or text("thanks", lang), align="center"))
    cash = any(method == "cash" for method, _ in _tenders(sale))
    return Receipt(tuple(rows), columns, lang, lang in RTL_LANGUAGES, cash=cash,
                   sale_id=sale_id or None)


def layout_text(lines: Sequence[object], *, shop: Shop, columns: int, language: str = "en",
                title: str = "") -> Receipt:
    """A cash register's own loyalty lines (``receipt.print`` with ``lines``),
    cleaned and wrapped; the caller has checked the count and lengths."""
    if columns not in COLUMNS:
        raise ValueError(f"columns must be one of {COLUMNS}")
    rows: list[Block] = []
    if shop.name:
        rows.extend(fit_rows(Row(clean(shop.name, 60), align="center", bold=True), columns))
    if title:
        rows.extend(fit_rows(Row(clean(title, 80), align="center", bold=True), columns))
    rows.append(Separator())
    for line in lines[:MAX_TEXT_LINES]:
        rows.extend(fit_rows(Row(clean(line)), columns))
    return Receipt(tuple(rows), columns, language, language in RTL_LANGUAGES)
