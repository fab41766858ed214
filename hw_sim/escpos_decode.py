"""An ESC/POS decoder for tests and the docs: the byte stream a printer received,
as what it would do — text lines, raster images, QR codes, the cut, the drawer
pulse and the status queries.

Strict: a byte sequence it does not know is reported in ``unknown`` (a test asserts
there is none: nothing unexpected reached the printer). Text bytes are decoded in
the code page selected by ``ESC t``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from PIL import Image

# ESC t n → Python codec (the ones agent/printer/encode.py may select).
CODE_PAGES = {0: "cp437", 2: "cp850", 3: "cp860", 4: "cp863", 5: "cp865", 16: "cp1252",
              17: "cp866", 18: "cp852", 19: "cp858"}
# ESC commands with one parameter byte.
ESC_ONE = set(b"!-EGJMRSVadt{3Uer")
ESC_NONE = set(b"@2<")
GS_ONE = set(b"!BHIafhwbr")


@dataclass(frozen=True)
class TextLine:
    text: str
    bold: bool = False
    big: bool = False
    align: int = 0


@dataclass(frozen=True)
class Raster:
    image: Image.Image = field(compare=False)

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


@dataclass(frozen=True)
class QrCode:
    data: str


@dataclass(frozen=True)
class Cut:
    pass


@dataclass(frozen=True)
class DrawerPulse:
    pin: int
    on_ms: int
    off_ms: int


@dataclass(frozen=True)
class StatusQuery:
    n: int


Element = TextLine | Raster | QrCode | Cut | DrawerPulse | StatusQuery


@dataclass
class Decoded:
    """A decoded stream: elements in order, and anything not understood."""

    elements: list[Element] = field(default_factory=list)
    unknown: list[bytes] = field(default_factory=list)

    @property
    def lines(self) -> list[str]:
        return [e.text for e in self.elements if isinstance(e, TextLine)]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def images(self) -> list[Raster]:
        return [e for e in self.elements if isinstance(e, Raster)]

    @property
    def qr(self) -> list[str]:
        return [e.data for e in self.elements if isinstance(e, QrCode)]

    @property
    def cuts(self) -> int:
        return sum(isinstance(e, Cut) for e in self.elements)

    @property
    def drawer(self) -> list[DrawerPulse]:
        return [e for e in self.elements if isinstance(e, DrawerPulse)]


class Incomplete(Exception):
    """The stream ends inside a command."""


def _need(data: bytes, end: int) -> None:
    if end > len(data):
        raise Incomplete


def commands(data: bytes, pos: int = 0) -> Iterator[tuple[str, bytes, int]]:
    """``(kind, bytes, end)`` per command or text byte run from ``pos``; stops at an
    incomplete command (the caller keeps the rest for more data)."""
    n = len(data)
    while pos < n:
        b = data[pos]
        try:
            if b == 0x10:  # DLE
                _need(data, pos + 3)
                if data[pos + 1] == 0x04:
                    yield "status", data[pos:pos + 3], pos + 3
                    pos += 3
                    continue
                if data[pos + 1] == 0x14:  # DLE DC4 fn m t: real-time pulse
                    _need(data, pos + 5)
                    yield "rt_pulse", data[pos:pos + 5], pos + 5
                    pos += 5
                    continue
                yield "unknown", data[pos:pos + 2], pos + 2
                pos += 2
                continue
            if b == 0x1B:  # ESC
                _need(data, pos + 2)
                c = data[pos + 1]
                if c in ESC_NONE:
                    size = 2
                elif c == ord("p"):
                    size = 5
                elif c in ESC_ONE:
                    size = 3
                elif c == ord("c"):
                    size = 4
                else:
                    yield "unknown", data[pos:pos + 2], pos + 2
                    pos += 2
                    continue
                _need(data, pos + size)
                yield "esc", data[pos:pos + size], pos + size
                pos += size
                continue
            if b == 0x1D:  # GS
                _need(data, pos + 2)
                c = data[pos + 1]
                if c == ord("V"):
                    _need(data, pos + 3)
                    size = 4 if data[pos + 2] in (65, 66, 97, 98, 103, 104) else 3
                    _need(data, pos + size)
                    yield "cut", data[pos:pos + size], pos + size
                    pos += size
                    continue
                if c == ord("v"):  # GS v 0 m xL xH yL yH data
                    _need(data, pos + 8)
                    w = data[pos + 4] + 256 * data[pos + 5]
                    h = data[pos + 6] + 256 * data[pos + 7]
                    size = 8 + w * h
                    _need(data, pos + size)
                    yield "raster", data[pos:pos + size], pos + size
                    pos += size
                    continue
                if c in (ord("("),):  # GS ( k / GS ( L pL pH ...
                    _need(data, pos + 5)
                    length = data[pos + 3] + 256 * data[pos + 4]
                    size = 5 + length
                    _need(data, pos + size)
                    yield "gs(" + chr(data[pos + 2]), data[pos:pos + size], pos + size
                    pos += size
                    continue
                if c in GS_ONE:
                    _need(data, pos + 3)
                    yield "gs", data[pos:pos + 3], pos + 3
                    pos += 3
                    continue
                if c == ord("L") or c == ord("W"):
                    _need(data, pos + 4)
                    yield "gs", data[pos:pos + 4], pos + 4
                    pos += 4
                    continue
                yield "unknown", data[pos:pos + 2], pos + 2
                pos += 2
                continue
            if b == 0x0A:
                yield "lf", data[pos:pos + 1], pos + 1
                pos += 1
                continue
            if b < 0x20 or b == 0x7F:
                yield "unknown" if b not in (0x0D, 0x09) else "ignored", data[pos:pos + 1], pos + 1
                pos += 1
                continue
            end = pos
            while end < n and data[end] >= 0x20 and data[end] != 0x7F:
                end += 1
            yield "text", data[pos:end], end
            pos = end
        except Incomplete:
            return


def _raster(cmd: bytes) -> Image.Image:
    w = cmd[4] + 256 * cmd[5]
    h = cmd[6] + 256 * cmd[7]
    bits = cmd[8:]
    img = Image.frombytes("1", (w * 8, h), bytes(255 - x for x in bits))
    return img


def decode(data: bytes) -> Decoded:
    """What a printer would do with ``data``."""
    out = Decoded()
    codec = "cp437"
    bold = big = False
    align = 0
    line = b""
    line_bold = line_big = False
    qr_data = b""
    pending_raster: list[Image.Image] = []

    def flush_raster() -> None:
        if pending_raster:
            width = max(i.width for i in pending_raster)
            img = Image.new("1", (width, sum(i.height for i in pending_raster)), 1)
            y = 0
            for part in pending_raster:
                img.paste(part, (0, y))
                y += part.height
            out.elements.append(Raster(img))
            pending_raster.clear()

    consumed = 0
    for kind, cmd, end in commands(data):
        consumed = end
        if kind != "raster":
            flush_raster()
        if kind == "text":
            if not line:
                line_bold, line_big = bold, big
            line += cmd
        elif kind == "lf":
            out.elements.append(TextLine(line.decode(codec, "replace"), line_bold or bold,
                                         line_big or big, align))
            line = b""
        elif kind == "esc":
            c = cmd[1]
            if c == ord("t"):
                codec = CODE_PAGES.get(cmd[2], "cp437")
            elif c == ord("E"):
                bold = bool(cmd[2] & 1)
            elif c == ord("!"):
                bold = bool(cmd[2] & 0x08)
                big = bool(cmd[2] & 0x30)
            elif c == ord("a"):
                align = cmd[2] & 3
            elif c == ord("p"):
                out.elements.append(DrawerPulse(2 if cmd[2] in (0, 48) else 5, cmd[3] * 2,
                                                cmd[4] * 2))
            elif c == ord("@"):
                bold = big = False
                align = 0
        elif kind == "gs":
            if cmd[1] == ord("!"):
                big = bool(cmd[2] & 0x77)
        elif kind == "cut":
            if line:
                out.elements.append(TextLine(line.decode(codec, "replace"), bold, big, align))
                line = b""
            out.elements.append(Cut())
        elif kind == "raster":
            pending_raster.append(_raster(cmd))
        elif kind == "gs(k":
            cn, fn = cmd[5], cmd[6]
            if cn == 49 and fn == 80:
                qr_data = cmd[8:]
            elif cn == 49 and fn == 81:
                out.elements.append(QrCode(qr_data.decode("utf-8", "replace")))
        elif kind == "status":
            out.elements.append(StatusQuery(cmd[2]))
        elif kind == "unknown":
            out.unknown.append(cmd)
    flush_raster()
    if consumed < len(data):
        out.unknown.append(data[consumed:consumed + 16])
    if line:
        out.elements.append(TextLine(line.decode(codec, "replace"), bold, big, align))
    return out


def render_png(decoded: Decoded, width: int = 576) -> Image.Image:
    """The decoded receipt as a picture of the paper (text in DejaVu Sans Mono,
    images as printed, QR codes drawn from their data, the cut as a dashed line)."""
    import qrcode
    from PIL import ImageDraw, ImageFont

    font_path = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
    bold_path = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf"
    parts: list[Image.Image] = []
    cols = max([len(x) for x in decoded.lines] + [32])
    size = max(12, min(22, int(width / cols / 0.6)))
    for e in decoded.elements:
        if isinstance(e, TextLine):
            f = ImageFont.truetype(bold_path if e.bold else font_path, size)
            h = int(size * 1.35)
            img = Image.new("L", (width, h), 255)
            ImageDraw.Draw(img).text((8, 2), e.text, font=f, fill=0)
            if e.big:  # double height (ESC ! 0x10): the same glyphs, twice as tall
                img = img.resize((width, h * 2))
            parts.append(img)
        elif isinstance(e, Raster):
            img = Image.new("L", (width, e.image.height), 255)
            img.paste(e.image.convert("L"), (0, 0))
            parts.append(img)
        elif isinstance(e, QrCode):
            q = qrcode.QRCode(border=2, box_size=5)
            q.add_data(e.data)
            qimg = q.make_image().get_image().convert("L")
            img = Image.new("L", (width, qimg.height), 255)
            img.paste(qimg, ((width - qimg.width) // 2, 0))
            parts.append(img)
        elif isinstance(e, Cut):
            img = Image.new("L", (width, 24), 255)
            d = ImageDraw.Draw(img)
            for x in range(0, width, 16):
                d.line((x, 12, x + 8, 12), fill=90, width=2)
            parts.append(img)
        elif isinstance(e, DrawerPulse):
            img = Image.new("L", (width, 24), 255)
            ImageDraw.Draw(img).text((8, 4), f"[drawer pulse, pin {e.pin}]",
                                     font=ImageFont.truetype(font_path, 14), fill=120)
            parts.append(img)
    total = sum(p.height for p in parts) + 16
    paper = Image.new("L", (width + 32, total), 255)
    y = 8
    for p in parts:
        paper.paste(p, (16, y))
        y += p.height
    ImageDraw.Draw(paper).rectangle((0, 0, width + 31, total - 1), outline=180)
    return paper
