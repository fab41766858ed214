"""NFC club cards through a PC/SC contactless reader (ACR122U and the like).

The UID comes from the PC/SC pseudo-APDU ``FF CA 00 00 00`` (PC/SC part 3),
which every contactless reader answers for any tag. On NFC Forum Type 2 tags
(NTAG, MIFARE Ultralight) the NDEF message is read with ``FF B0 00 <page> 10``
(READ BINARY, four 4-byte pages at a time) from page 4, after checking the
capability container (page 3, magic ``E1``). Text (``T``) and URI (``U``)
records are decoded; they are informational: the member is identified by the
UID token alone, since NDEF content is writable by anyone.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.drivers.apdu import CardChannel
from agent.errors import CardDataError, ReaderError

# PC/SC part 3 ATR of a storage card: 3B 8F 80 01 80 4F 0C A0 00 00 03 06 SS NN NN ...
_STORAGE_RID = bytes.fromhex("A000000306")
NDEF_MAX_PAGES = 231           # NTAG216
_URI_PREFIXES = (
    "", "http://www.", "https://www.", "http://", "https://", "tel:", "mailto:",
    "ftp://anonymous:anonymous@", "ftp://ftp.", "ftps://", "sftp://", "smb://", "nfs://",
    "ftp://", "dav://", "news:", "telnet://", "imap:", "rtsp://", "urn:", "pop:", "sip:",
    "sips:", "tftp:", "btspp://", "btl2cap://", "btgoep://", "tcpobex://", "irdaobex://",
    "file://", "urn:epc:id:", "urn:epc:tag:", "urn:epc:pat:", "urn:epc:raw:", "urn:epc:",
    "urn:nfc:",
)


@dataclass(frozen=True)
class NdefRecord:
    """One decoded NDEF record: ``kind`` is "text", "uri" or "other"."""

    kind: str
    value: str


@dataclass(frozen=True)
class NfcTag:
    """What was read from a tag."""

    uid: bytes
    records: tuple[NdefRecord, ...]
    apdus: int

    @property
    def info(self) -> str | None:
        """The text/URI records joined, for display."""
        shown = [r.value for r in self.records if r.kind in ("text", "uri")]
        return " | ".join(shown) if shown else None


def is_storage_card_atr(atr: bytes) -> bool:
    """True for the pseudo-ATR a PC/SC contactless reader builds for a memory tag."""
    return _STORAGE_RID in atr


def is_contactless_atr(atr: bytes) -> bool:
    """True for PC/SC contactless pseudo-ATRs (3B 8x 80 01 ...)."""
    return len(atr) >= 4 and atr[0] == 0x3B and atr[1] & 0xF0 == 0x80 \
        and atr[2] == 0x80 and atr[3] == 0x01


def read_uid(channel: CardChannel) -> bytes:
    """The tag's UID (4, 7 or 10 bytes)."""
    resp = channel.send(0xFF, 0xCA, 0x00, 0x00, b"", 0)
    if not resp.ok or not resp.data:
        raise ReaderError(f"the reader gave no UID ({resp.sw:04X})")
    return resp.data


def read_pages(channel: CardChannel, page: int, length: int = 16) -> bytes | None:
    """READ BINARY from ``page``; None if the tag refuses (end of memory)."""
    resp = channel.send(0xFF, 0xB0, 0x00, page, b"", length)
    return resp.data if resp.ok else None


def read_ndef_message(channel: CardChannel) -> bytes | None:
    """The raw NDEF message of a Type 2 tag, or None when it has none."""
    cc = read_pages(channel, 3, 4)
    if cc is None or len(cc) < 4 or cc[0] != 0xE1:
        return None
    data_area = cc[2] * 8 if cc[2] else NDEF_MAX_PAGES * 4
    buf = b""
    page = 4
    pos = 0
    while True:
        # Read until the TLV at ``pos`` is complete (or memory ends).
        while True:
            need = _tlv_need(buf, pos)
            if need is None or len(buf) >= need:
                break
            if len(buf) >= data_area:
                return None
            chunk = read_pages(channel, page, 16)
            if not chunk:
                return None
            buf += chunk
            page += len(chunk) // 4 or 4
        if pos >= len(buf):
            return None
        tag = buf[pos]
        if tag == 0x00:                 # NULL TLV
            pos += 1
            continue
        if tag == 0xFE:                 # terminator: no NDEF message
            return None
        length, header = _tlv_length(buf, pos)
        if tag == 0x03:
            return buf[pos + header: pos + header + length]
        pos += header + length          # lock/memory control or proprietary TLV


def _tlv_length(buf: bytes, pos: int) -> tuple[int, int]:
    if buf[pos + 1] == 0xFF:
        return (buf[pos + 2] << 8) | buf[pos + 3], 4
    return buf[pos + 1], 2


def _tlv_need(buf: bytes, pos: int) -> int | None:
    """How many bytes of ``buf`` the TLV at ``pos`` needs (None if known complete)."""
    if pos >= len(buf):
        return pos + 1
    if buf[pos] in (0x00, 0xFE):
        return None
    if pos + 1 >= len(buf):
        return pos + 2
    if buf[pos + 1] == 0xFF and pos + 3 >= len(buf):
        return pos + 4
    length, header = _tlv_length(buf, pos)
    return pos + header + length


def parse_ndef(message: bytes) -> tuple[NdefRecord, ...]:
    """Decode the records of an NDEF message (text and URI; others as "other")."""
    records: list[NdefRecord] = []
    pos = 0
    try:
        while pos < len(message):
            header = message[pos]
            tnf = header & 0x07
            short = bool(header & 0x10)
            has_id = bool(header & 0x08)
            type_len = message[pos + 1]
            pos += 2
            if short:
                payload_len = message[pos]
                pos += 1
            else:
                payload_len = int.from_bytes(message[pos:pos + 4], "big")
                pos += 4
            id_len = message[pos] if has_id else 0
            pos += 1 if has_id else 0
            rtype = message[pos:pos + type_len]
            pos += type_len + id_len
            payload = message[pos:pos + payload_len]
            if len(payload) != payload_len:
                raise CardDataError("NDEF record is cut short", offset=pos)
            pos += payload_len
            records.append(_decode_record(tnf, rtype, payload))
            if header & 0x40:            # ME: message end
                break
    except IndexError:
        raise CardDataError("NDEF message is cut short", offset=pos) from None
    return tuple(records)


def _decode_record(tnf: int, rtype: bytes, payload: bytes) -> NdefRecord:
    if tnf == 0x01 and rtype == b"T" and payload:
        status = payload[0]
        lang_len = status & 0x3F
        body = payload[1 + lang_len:]
        if status & 0x80:
            # UTF-16: a byte order mark, else big endian (NFC Forum RTD Text 1.0).
            encoding = "utf-16" if body[:2] in (b"\xfe\xff", b"\xff\xfe") else "utf-16-be"
        else:
            encoding = "utf-8"
        text = body.decode(encoding, errors="replace")
        return NdefRecord("text", text)
    if tnf == 0x01 and rtype == b"U" and payload:
        prefix = _URI_PREFIXES[payload[0]] if payload[0] < len(_URI_PREFIXES) else ""
        return NdefRecord("uri", prefix + payload[1:].decode("utf-8", errors="replace"))
    return NdefRecord("other", rtype.decode("ascii", errors="replace"))


def read_tag(channel: CardChannel, *, ndef: bool = True) -> NfcTag:
    """UID and (for Type 2 tags, when ``ndef``) the NDEF records."""
    uid = read_uid(channel)
    records: tuple[NdefRecord, ...] = ()
    if ndef:
        try:
            message = read_ndef_message(channel)
        except CardDataError:
            message = None
        if message:
            try:
                records = parse_ndef(message)
            except CardDataError:
                records = ()              # informational only: the UID is enough
    return NfcTag(uid=uid, records=records, apdus=channel.count)
