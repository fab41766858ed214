"""BER-TLV as EMV uses it (EMV Book 3, Annex B).

* Tags of one or more bytes: when the low five bits of the first byte are all
  set (``1F``, ``3F``, ``5F``, ``7F``, ``9F``, ``BF``, ``DF``, ``FF``) more tag
  bytes follow, each with bit 8 set except the last. At most 4 tag bytes.
* Lengths in short form (``00``–``7F``) or long form ``81 xx``, ``82 xx xx``,
  ``83 xx xx xx``. The indefinite form ``80`` and ``84`` and above are refused:
  EMV does not use them.
* Constructed objects (bit 6 of the first tag byte) are parsed into children,
  at most :data:`MAX_DEPTH` levels deep.
* ``00`` and ``FF`` bytes before, between and after objects are padding and
  skipped (EMV Book 3, B.1). So a tag can never start with ``FF`` in practice,
  and :func:`encode_tlv` refuses such a tag rather than write what would read
  back as padding.

Every malformed input raises :class:`~agent.errors.CardDataError` with the
offset of the problem in the original input: never an IndexError, never a hang.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from agent.errors import CardDataError

MAX_DEPTH = 8
MAX_TAG_BYTES = 4
MAX_LENGTH = 0xFFFFFF
_PADDING = (0x00, 0xFF)


@dataclass(frozen=True, slots=True)
class Tlv:
    """One data object: ``tag`` as an int (``0x9F6B``), its raw ``value``, and
    for a constructed object the parsed ``children`` (None for a primitive one).

    The repr shows tags and lengths only: values of tags like 5A or 57 are card
    data and must not reach a log.
    """

    tag: int
    value: bytes
    children: list[Tlv] | None = None

    @property
    def constructed(self) -> bool:
        """True for a template (bit 6 of the first tag byte)."""
        return self.children is not None

    @property
    def tag_hex(self) -> str:
        """The tag as uppercase hex, e.g. ``"9F6B"``."""
        return tag_hex(self.tag)

    def __repr__(self) -> str:
        if self.children is None:
            return f"Tlv({self.tag_hex}, {len(self.value)} bytes)"
        return f"Tlv({self.tag_hex}, {len(self.value)} bytes, children={self.children!r})"


def tag_hex(tag: int) -> str:
    """A tag number as uppercase hex of its bytes (``0x5F24`` → ``"5F24"``)."""
    return _tag_bytes(tag).hex().upper()


def _tag_bytes(tag: int) -> bytes:
    if tag <= 0:
        raise CardDataError("a tag must be a positive number")
    size = (tag.bit_length() + 7) // 8
    if size > MAX_TAG_BYTES:
        raise CardDataError(f"a tag has at most {MAX_TAG_BYTES} bytes")
    return tag.to_bytes(size, "big")


def _read_tag(data: bytes, pos: int, base: int) -> tuple[int, bool, int]:
    """Tag number, constructed flag and the position after the tag."""
    first = data[pos]
    constructed = bool(first & 0x20)
    tag = first
    end = pos + 1
    if first & 0x1F == 0x1F:
        while True:
            if end >= len(data):
                raise CardDataError("tag is cut short", offset=base + pos)
            if end - pos >= MAX_TAG_BYTES:
                raise CardDataError(f"tag is longer than {MAX_TAG_BYTES} bytes",
                                    offset=base + pos)
            byte = data[end]
            tag = (tag << 8) | byte
            end += 1
            if not byte & 0x80:
                break
    return tag, constructed, end


def _read_length(data: bytes, pos: int, base: int) -> tuple[int, int]:
    """Value length and the position after the length field."""
    if pos >= len(data):
        raise CardDataError("length is missing", offset=base + pos)
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    if first == 0x80:
        raise CardDataError("indefinite length (80) is not used by EMV", offset=base + pos)
    count = first & 0x7F
    if count > 3:
        raise CardDataError(f"length field of {count} bytes ({first:02X}) is not supported",
                            offset=base + pos)
    if pos + 1 + count > len(data):
        raise CardDataError("length field is cut short", offset=base + pos)
    return int.from_bytes(data[pos + 1 : pos + 1 + count], "big"), pos + 1 + count


def _parse(data: bytes, base: int, depth: int) -> list[Tlv]:
    if depth > MAX_DEPTH:
        raise CardDataError(f"templates nested more than {MAX_DEPTH} deep", offset=base)
    out: list[Tlv] = []
    pos = 0
    n = len(data)
    while pos < n:
        if data[pos] in _PADDING:
            pos += 1
            continue
        start = pos
        tag, constructed, pos = _read_tag(data, pos, base)
        length, pos = _read_length(data, pos, base)
        if pos + length > n:
            raise CardDataError(
                f"value of tag {tag:X} needs {length} bytes but only {n - pos} remain",
                offset=base + start,
            )
        value = bytes(data[pos : pos + length])
        children = _parse(value, base + pos, depth + 1) if constructed else None
        out.append(Tlv(tag, value, children))
        pos += length
    return out


def parse_tlv(data: bytes) -> list[Tlv]:
    """Parse a sequence of BER-TLV objects (e.g. a READ RECORD answer without SW1 SW2)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CardDataError("TLV data must be bytes")
    return _parse(bytes(data), 0, 0)


def iter_tlv(tlvs: Iterable[Tlv]) -> Iterator[tuple[int, Tlv]]:
    """Every object depth-first, parents before children, with its depth (0 = top)."""
    stack: list[tuple[int, Iterator[Tlv]]] = [(0, iter(tlvs))]
    while stack:
        depth, it = stack[-1]
        node = next(it, None)
        if node is None:
            stack.pop()
            continue
        yield depth, node
        if node.children:
            stack.append((depth + 1, iter(node.children)))


def find_tag(tlvs: Iterable[Tlv], tag: int) -> Tlv | None:
    """The first object with ``tag``, searching depth-first; None if absent."""
    for _, node in iter_tlv(tlvs):
        if node.tag == tag:
            return node
    return None


def parse_dol(data: bytes) -> list[tuple[int, int]]:
    """A Data Object List (PDOL, CDOL1, ...): ``(tag, length)`` pairs, no values."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CardDataError("DOL data must be bytes")
    raw = bytes(data)
    out: list[tuple[int, int]] = []
    pos = 0
    while pos < len(raw):
        if raw[pos] in _PADDING:
            raise CardDataError(f"{raw[pos]:02X} is not a tag", offset=pos)
        tag, _, pos = _read_tag(raw, pos, 0)
        length, pos = _read_length(raw, pos, 0)
        out.append((tag, length))
    return out


def encode_tlv(tag: int, value: bytes) -> bytes:
    """One BER-TLV object: tag bytes, the shortest length form, the value.

    The tag must be well formed (continuation bits as in :func:`parse_tlv`) and
    must not start with ``00`` or ``FF`` (EMV padding). For a template, pass the
    concatenated encodings of its children as ``value``.
    """
    tag_b = _tag_bytes(tag)
    first = tag_b[0]
    if first in _PADDING:
        raise CardDataError(f"a tag cannot start with {first:02X} (EMV padding)")
    if first & 0x1F == 0x1F:
        if len(tag_b) < 2:
            raise CardDataError(f"tag {tag_b.hex().upper()} needs a second byte")
        if any(not b & 0x80 for b in tag_b[1:-1]) or tag_b[-1] & 0x80:
            raise CardDataError(f"tag {tag_b.hex().upper()} has wrong continuation bits")
    elif len(tag_b) != 1:
        raise CardDataError(f"tag {tag_b.hex().upper()} has more bytes than its first allows")
    value = bytes(value)
    n = len(value)
    if n > MAX_LENGTH:
        raise CardDataError("a value longer than 16 MiB cannot be encoded")
    if n < 0x80:
        length = bytes([n])
    elif n <= 0xFF:
        length = b"\x81" + n.to_bytes(1, "big")
    elif n <= 0xFFFF:
        length = b"\x82" + n.to_bytes(2, "big")
    else:
        length = b"\x83" + n.to_bytes(3, "big")
    return tag_b + length + value
