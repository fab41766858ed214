"""The output stage's pure half: a laid-out :class:`Receipt` as ESC/POS bytes.

The bytes are produced by python-escpos's own commands (``set``, ``qr``,
``image``, ``cut``, ``cashdraw``) on its in-memory ``Dummy`` printer; the
transport (:mod:`agent.printer.device`) only moves them. Text goes in the
profile's code page where every character of a row fits it and the receipt's
language is written left to right; every other row (Persian, Arabic, Hebrew, or
a name the code page cannot hold) is drawn by Pillow with raqm — shaped, right to
left — and sent as a raster image (``GS v 0``). Rows of text never carry a
control byte: :func:`agent.printer.layout.clean` removed them, and each text
row is checked again here.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from escpos.printer import Dummy
from PIL import Image, ImageDraw, ImageFont

from agent.printer.layout import Qr, Receipt, Row, Separator, cell_width

logging.getLogger("escpos").setLevel(logging.WARNING)

# Code pages the profile may name: (ESC t number, Python codec).
CODE_PAGES: dict[str, tuple[int, str]] = {
    "cp437": (0, "cp437"),
    "cp850": (2, "cp850"),
    "cp860": (3, "cp860"),
    "cp863": (4, "cp863"),
    "cp865": (5, "cp865"),
    "cp1252": (16, "cp1252"),
    "cp866": (17, "cp866"),
    "cp852": (18, "cp852"),
    "cp858": (19, "cp858"),
}
# Dots across the paper per column setting (58 mm: 384, 80 mm: 576).
DOTS = {32: 384, 42: 576, 48: 576}
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
)
ESC_INIT = b"\x1b@"


class PrinterFontMissing(RuntimeError):
    """No font to draw right-to-left text with (install fonts-dejavu-core)."""


@dataclass(frozen=True)
class EncodeOptions:
    """How the profile's printer takes its bytes."""

    code_page: str = "cp437"
    font: str | None = None  # a .ttf path; default: DejaVu Sans
    qr_native: bool = True  # GS ( k; False: the QR as an image
    cut: bool = True


@dataclass(frozen=True)
class Encoded:
    """A receipt's bytes: the body (init … cut)."""

    body: bytes


def drawer_kick(pin: int) -> bytes:
    """ESC p: a pulse on drawer pin 2 or 5 (python-escpos ``cashdraw``)."""
    p = Dummy()
    p.cashdraw(2 if pin == 2 else 5)
    return bytes(p.output)


@functools.lru_cache(maxsize=8)
def _font(path: str | None, size: int) -> ImageFont.FreeTypeFont:
    from PIL import features

    if not features.check("raqm"):  # raqm shapes and orders; it loads libfribidi at run time
        raise PrinterFontMissing("right-to-left receipts need Pillow's raqm layout with "
                                 "FriBiDi: install the libfribidi0 package")
    candidates = [path] if path else list(FONT_CANDIDATES)
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return ImageFont.truetype(candidate, size, layout_engine=ImageFont.Layout.RAQM)
    raise PrinterFontMissing(f"no font for right-to-left receipts at {', '.join(candidates)}; "
                             "install the fonts-dejavu-core package or set printer.font")


def _fits(row: Row, codec: str, rtl: bool) -> bool:
    if rtl:
        return False
    try:
        (row.start + row.end).encode(codec)
    except UnicodeEncodeError:
        return False
    return True


def _text_line(row: Row, columns: int) -> str:
    gap = columns - cell_width(row.start) - cell_width(row.end)
    if row.end:
        return row.start + " " * max(1, gap) + row.end
    if row.align == "center":
        return " " * max(0, gap // 2) + row.start
    if row.align == "end":
        return " " * max(0, gap) + row.start
    return row.start


_RTL_SCRIPT = "\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff"
# A leading sign (not one after a letter or digit, as in a date) stays with its number.
_LTR_RUN = re.compile(f"(?:(?<!\\w)[+\\-])?[A-Za-z0-9\u00c0-\u024f][^{_RTL_SCRIPT}]*")
# A signed number in Persian or Arabic digits ("-۲.۲۵"): the bidi algorithm would
# put the sign on its right ("۲.۲۵-"); kept left to right as one piece.
_SIGNED_RTL_DIGITS = re.compile("(?<!\\w)[+\\-][\u0660-\u0669\u06f0-\u06f9]"
                                "[\u0660-\u0669\u06f0-\u06f9.,\u066b]*")


def isolate_ltr(value: str) -> str:
    """Latin runs (a name, a receipt number, a sku) of right-to-left text wrapped in
    LRI … PDI, so the bidi algorithm keeps them whole: ``Sara K.`` stays
    ``Sara K.``, not ``.Sara K``. Spaces around a run stay outside it. A signed
    amount keeps its sign on the left: ``-۲.۲۵``, ``+12``, not ``۲.۲۵-``."""

    def wrap(match: re.Match[str]) -> str:
        run = match.group(0)
        core = run.strip()
        lead = run[: len(run) - len(run.lstrip())]
        trail = run[len(run.rstrip()):]
        while core.endswith(")") and core.count("(") < core.count(")"):
            core, trail = core[:-1], ")" + trail  # a closing bracket of the RTL text
        return f"{lead}\u2066{core}\u2069{trail}"

    value = _LTR_RUN.sub(wrap, value)
    return _SIGNED_RTL_DIGITS.sub(lambda m: f"\u2066{m.group(0)}\u2069", value)


def render_rows(rows: Sequence[Row | Separator], width: int, *, rtl: bool, language: str,
                font: str | None = None) -> Image.Image:
    """Rows drawn as a 1-bit image ``width`` dots wide: shaped by raqm, right to left
    when ``rtl`` (start on the right, amounts on the left)."""
    regular = _font(font, 22)
    large = _font(font, 30)
    direction = "rtl" if rtl else "ltr"
    heights = [40 if isinstance(r, Row) and r.big else 30 if isinstance(r, Row) else 14
               for r in rows]
    img = Image.new("1", (width, sum(heights) + 4), 1)
    draw = ImageDraw.Draw(img)
    y = 2
    margin = 4
    for row, h in zip(rows, heights, strict=True):
        if isinstance(row, Separator):
            draw.line((margin, y + h // 2, width - margin, y + h // 2), fill=0, width=2)
            y += h
            continue
        f = large if row.big else regular
        if rtl:
            row = Row(isolate_ltr(row.start), isolate_ltr(row.end), row.align, row.bold, row.big)
        kw = {"direction": direction, "language": language, "font": f, "fill": 0}
        stroke = 1 if row.bold else 0
        start_x = width - margin if rtl else margin
        end_x = margin if rtl else width - margin
        if row.align == "center" and not row.end:
            draw.text((width // 2, y), row.start, anchor="ma", stroke_width=stroke,
                      stroke_fill=0, **kw)  # type: ignore[arg-type]
        else:
            anchor = "ra" if rtl != (row.align == "end") else "la"
            draw.text((start_x if row.align != "end" else end_x, y), row.start, anchor=anchor,
                      stroke_width=stroke, stroke_fill=0, **kw)  # type: ignore[arg-type]
        if row.end:
            draw.text((end_x, y), row.end, anchor="la" if rtl else "ra", stroke_width=stroke,
                      stroke_fill=0, **kw)  # type: ignore[arg-type]
        y += h
    return img


def encode(receipt: Receipt, options: EncodeOptions) -> Encoded:
    """The receipt's ESC/POS bytes (init, code page, rows, QR, feed and cut)."""
    number, codec = CODE_PAGES.get(options.code_page, CODE_PAGES["cp437"])
    p = Dummy()
    # The paper's width in dots, so python-escpos checks images against it (and
    # does not print a warning on stdout for a profile without one).
    p.profile.profile_data.setdefault("media", {}).setdefault("width", {})["pixels"] = \
        DOTS[receipt.columns]
    p._raw(ESC_INIT)
    p._raw(b"\x1bt" + bytes([number]))
    columns = receipt.columns
    width = DOTS[columns]
    pending: list[Row | Separator] = []

    def flush() -> None:
        if pending:
            img = render_rows(pending, width, rtl=receipt.rtl, language=receipt.language,
                              font=options.font)
            p.image(img, impl="bitImageRaster", center=False)
            pending.clear()

    for block in receipt.blocks:
        if isinstance(block, Qr):
            flush()
            p.set(align="center")
            p.qr(block.data, size=5, native=options.qr_native)
            p.set(align="left")
            continue
        if isinstance(block, Separator):
            if receipt.rtl:
                pending.append(block)
            else:
                flush()
                p._raw(("-" * columns).encode("ascii") + b"\n")
            continue
        if not _fits(block, codec, receipt.rtl):
            pending.append(block)
            continue
        flush()
        line = _text_line(block, columns)
        data = line.encode(codec)
        if any(b < 0x20 or b == 0x7F for b in data):  # clean() missed nothing; make sure
            data = bytes(b if b >= 0x20 and b != 0x7F else 0x20 for b in data)
        p.set(bold=block.bold, double_height=block.big, normal_textsize=not block.big)
        p._raw(data + b"\n")
        if block.bold or block.big:
            p.set(bold=False, normal_textsize=True)
    flush()
    if options.cut:
        p.cut()
    return Encoded(bytes(p.output))
