"""What readers report: one card or code presented, a failed read, a state change.

Nothing else leaves a driver. A :class:`CardPresented` carries the keyed token, a
masked form (first six and last four digits of a PAN, the UID of an NFC tag, the
text of a barcode) and the first six digits of a bank card — never the PAN, track
data or expiry (``expiry`` is filled in only for the technician's ``clubterm card
read`` tool, which asks for it explicitly, and is left out of ``repr``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Source = Literal["pcsc", "msr", "hid", "nfc"]
StateName = Literal["connecting", "ready", "error", "retry"]

READ_AGAIN = "read again"


@dataclass(frozen=True)
class CardPresented:
    """A card, tag or code was presented and turned into a token.

    ``source``: ``pcsc`` (chip or contactless bank card through PC/SC), ``msr``
    (magnetic stripe, serial or keyboard wedge), ``hid`` (barcode/QR scanner),
    ``nfc`` (NFC club tag read by UID). ``apdus`` counts the APDUs exchanged.
    """

    source: Source
    reader: str
    token: str
    token_kind: str
    masked: str | None
    bin6: str | None
    apdus: int = 0
    # Informational text, e.g. the NDEF text record of a club tag.
    info: str | None = None
    # YYMM; only when the reader was built with diagnostics=True (card read tool).
    expiry: str | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class ReadFailed:
    """A card was seen but could not be read; ``message`` starts with "read again"."""

    source: Source
    reader: str
    message: str


@dataclass(frozen=True)
class ReaderState:
    """A reader changed state: connecting → ready → error → retry (→ connecting)."""

    name: str
    kind: str
    state: StateName
    detail: str = ""


ReaderEvent = CardPresented | ReadFailed | ReaderState
