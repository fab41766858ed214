"""ISO/IEC 7813 magnetic-stripe tracks 1 and 2, as readers really send them.

A keyboard-wedge or serial reader sends one *burst* per swipe, for example::

    %B4111111111111111^DOE/JOHN^2512101000000000000000000000000?;4111111111111111=25121010000000000000?

What this module copes with, because real readers do it:

* several tracks in one burst, in any order, with CR/LF or other junk between,
  before or after them;
* a track the reader could not read, sent as ``%E?`` or ``;E?`` (or left out);
* the LRC character some readers append after the end sentinel ``?``;
* lower case from a wedge typing while Caps Lock is on (``%b4111...^doe/john^``);
* Persian or Arabic-Indic digits from a wedge typing into a Persian/Arabic layout;
* no sentinels at all on a reader configured to strip them (one bare track).

Track 3 (``;01...`` after track 2, or ``+...``) is ignored: it carries nothing
the terminal needs. Discretionary data (PVV, CVV, ...) is never kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from agent.carddata.luhn import luhn_valid, mask_pan
from agent.carddata.tokens import to_ascii_digits
from agent.errors import CardDataError

# Longest track content, sentinels and LRC excluded (ISO/IEC 7811-2: 79 and 40
# characters including the 3 framing characters). A little slack for readers
# that pad.
MAX_TRACK1_CHARS = 79
MAX_TRACK2_CHARS = 40
# A burst longer than this is not a swipe (a stuck key, a paste of a file).
MAX_BURST_CHARS = 4096

LUHN_MESSAGE = "card number fails its check digit; swipe again"

_TRACK1_SENTINEL = "%"
_TRACK2_SENTINEL = ";"
_END_SENTINEL = "?"

_LOOKS_TRACK1 = re.compile(r"%[Bb][0-9 ]{8,23}\^")
_LOOKS_TRACK2 = re.compile(r";[0-9]{8,19}=")
_LOOKS_ERROR = re.compile(r"[%;][Ee]\?")
_LOOKS_BARE = re.compile(r"^\s*(?:[Bb][0-9]{12,19}\^[^?]*\^|[0-9]{12,19}=[0-9=]{4,})")


@dataclass(frozen=True, slots=True)
class Swipe:
    """What a swipe carried that the terminal may use.

    ``pan`` is the card number (digits only, Luhn-valid); ``expiry`` is ``YYMM``
    or None when the card carries none; ``name`` is the cardholder name of track 1
    (``SURNAME/GIVEN``, trailing spaces removed); ``service_code`` is three digits;
    ``tracks`` lists the tracks that were read (1 and/or 2).

    The repr shows the masked PAN only and no expiry: a Swipe that ends up in a
    log or a traceback leaks nothing (PCI DSS req. 3.3).
    """

    pan: str = field(repr=False)
    expiry: str | None = field(repr=False)
    name: str | None
    service_code: str | None
    tracks: tuple[int, ...]

    @property
    def masked(self) -> str:
        """First 6 and last 4 digits of the PAN (``411111******1111``)."""
        return mask_pan(self.pan)

    @property
    def bin6(self) -> str:
        """The issuer identification number: the first 6 digits."""
        return self.pan[:6]

    def __repr__(self) -> str:
        return (
            f"Swipe(masked={self.masked!r}, name={self.name!r}, "
            f"service_code={self.service_code!r}, tracks={self.tracks!r})"
        )

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class _Track:
    number: int
    pan: str = field(repr=False)
    expiry: str | None = field(repr=False)
    service_code: str | None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class _Segment:
    number: int  # 1 or 2
    body: str = field(repr=False)
    offset: int
    closed: bool  # an end sentinel was seen


def looks_like_track(text: str) -> bool:
    """Cheap guess: is this wedge burst a magnetic-stripe swipe (vs a barcode)?

    True for anything with a track 1 or track 2 start (``%B<digits>^``,
    ``;<digits>=``), for a reader error marker (``%E?``, ``;E?``), and
    for one bare track without sentinels. Never raises.
    """
    if not isinstance(text, str) or len(text) > MAX_BURST_CHARS:
        return False
    text = to_ascii_digits(text)
    return bool(
        _LOOKS_TRACK1.search(text)
        or _LOOKS_TRACK2.search(text)
        or _LOOKS_ERROR.search(text)
        or _LOOKS_BARE.match(text)
    )


def _segments(text: str) -> list[_Segment]:
    """Split a burst into track-1 and track-2 segments, dropping junk.

    A segment runs from a start sentinel to the next ``?``; a segment cut short
    by another start sentinel, a line end or the end of input is kept as
    *unclosed* (some readers drop the end sentinel) if it has its track's field
    separator. The character right after ``?`` may be an LRC, which can be any
    track character, even a sentinel: the empty segment it starts is dropped.
    """
    segments: list[_Segment] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch not in (_TRACK1_SENTINEL, _TRACK2_SENTINEL):
            i += 1
            continue
        number = 1 if ch == _TRACK1_SENTINEL else 2
        j = i + 1
        while j < n and text[j] not in "?%;\r\n":
            j += 1
        closed = j < n and text[j] == _END_SENTINEL
        body = text[i + 1 : j]
        # Without its end sentinel a segment counts only if it has the track's field
        # separator: "50% off; today" is text, not a damaged track.
        if closed or ("^" if number == 1 else "=") in body or _is_error_marker(body):
            segments.append(_Segment(number, body, i, closed))
        # Skip the end sentinel; the LRC after it, if any, is skipped as junk
        # unless it is itself a sentinel, which the next round treats as above.
        i = j + 1 if closed else j
    # Track 3 also starts with ';' on most readers: the second ';' segment is it.
    out: list[_Segment] = []
    seen2 = False
    for seg in segments:
        if seg.number == 2:
            if seen2:
                continue
            seen2 = True
        out.append(seg)
    return out


def _is_error_marker(body: str) -> bool:
    return body.strip().upper() == "E"


def _check_pan(pan: str, offset: int) -> str:
    if not pan.isascii() or not pan.isdigit():
        raise CardDataError("card number holds a character that is not a digit; swipe again",
                            offset=offset)
    if not 12 <= len(pan) <= 19:
        raise CardDataError(f"card number has {len(pan)} digits, not 12 to 19; swipe again",
                            offset=offset)
    if not luhn_valid(pan):
        raise CardDataError(LUHN_MESSAGE, offset=offset)
    return pan


def check_yymm(yymm: str, offset: int | None = None) -> str:
    """Validate an expiry ``YYMM`` (four digits, month 01–12) and return it."""
    if len(yymm) != 4 or not yymm.isascii() or not yymm.isdigit() or not 1 <= int(yymm[2:]) <= 12:
        raise CardDataError("expiry date is not a valid YYMM; swipe again", offset=offset)
    return yymm


def _expiry_and_service(rest: str, sep: str, offset: int) -> tuple[str | None, str | None]:
    """Expiry (or a separator in its place) and service code (or a separator)."""
    expiry: str | None = None
    service: str | None = None
    if rest.startswith(sep):
        rest = rest[1:]
    else:
        expiry = check_yymm(rest[:4], offset)
        rest = rest[4:]
    if rest.startswith(sep):
        return expiry, None
    code = rest[:3]
    if len(code) == 3 and code.isascii() and code.isdigit():
        service = code
    elif code:
        raise CardDataError("service code is not three digits; swipe again", offset=offset)
    return expiry, service


def _parse_track1(body: str, offset: int) -> _Track:
    """``B<PAN>^<NAME>^<YYMM|^><SSS|^><discretionary>`` (start/end sentinels removed)."""
    text = to_ascii_digits(body).upper().rstrip()
    if len(text) > MAX_TRACK1_CHARS:
        raise CardDataError("track 1 is too long; swipe again", offset=offset)
    if not text:
        raise CardDataError("track 1 is empty", offset=offset)
    if text[0] != "B":
        raise CardDataError(
            "track 1 is not format B (bank card); this card cannot be used", offset=offset
        )
    if any(not (0x20 <= ord(ch) <= 0x5F) for ch in text):
        raise CardDataError("track 1 holds characters a card cannot carry; swipe again",
                            offset=offset)
    parts = text[1:].split("^", 2)
    if len(parts) < 3:
        raise CardDataError("track 1 lacks its '^' field separators; swipe again", offset=offset)
    pan_field, name_field, rest = parts
    # Some older cards group the PAN with spaces on track 1.
    pan = _check_pan(pan_field.replace(" ", ""), offset + 2)
    name = name_field.strip() or None
    expiry, service = _expiry_and_service(rest, "^", offset + 3 + len(pan_field) + len(name_field))
    return _Track(1, pan, expiry, service, name)


def _parse_track2(body: str, offset: int) -> _Track:
    """``<PAN>=<YYMM|=><SSS|=><discretionary>`` (start/end sentinels removed)."""
    text = to_ascii_digits(body).strip()
    if len(text) > MAX_TRACK2_CHARS:
        raise CardDataError("track 2 is too long; swipe again", offset=offset)
    if not text:
        raise CardDataError("track 2 is empty", offset=offset)
    if any(ch not in "0123456789=" for ch in text):
        raise CardDataError("track 2 holds characters a card cannot carry; swipe again",
                            offset=offset)
    pan_field, sep, rest = text.partition("=")
    if not sep:
        raise CardDataError("track 2 lacks its '=' field separator; swipe again", offset=offset)
    pan = _check_pan(pan_field, offset + 1)
    expiry, service = _expiry_and_service(rest, "=", offset + 2 + len(pan_field))
    return _Track(2, pan, expiry, service)


def _bare_segment(text: str) -> _Segment | None:
    """One track without sentinels (a reader set to strip them), or None."""
    stripped = text.strip().removesuffix("?")
    ascii_text = to_ascii_digits(stripped)
    # Offsets count from where the missing start sentinel would have been.
    start = max(0, len(text) - len(text.lstrip()) - 1)
    if re.match(r"^[Bb][0-9 ]{12,23}\^", ascii_text):
        return _Segment(1, stripped, start, True)
    if re.match(r"^[0-9]{12,19}=", ascii_text):
        return _Segment(2, stripped, start, True)
    return None


def parse_swipe(text: str) -> Swipe:
    """Parse one reader burst into a :class:`Swipe`.

    Tracks 1 and 2 are both used when present; they must name the same card.
    A track the reader flagged (``%E?``, ``;E?``) or that does not parse is left
    out when the other one is good. Raises CardDataError, with a message for the
    person at the counter ("swipe again"), when no track is usable.
    """
    if not isinstance(text, str):
        raise CardDataError("card data must be text")
    if len(text) > MAX_BURST_CHARS:
        raise CardDataError("the reader sent far more than one swipe; swipe again")
    segments = _segments(text)
    if not segments:
        bare = _bare_segment(text)
        if bare is None:
            raise CardDataError("no card data found: expected track 1 (%B...?) or track 2 (;...?)")
        segments = [bare]

    parsed: list[_Track] = []
    errors: list[CardDataError] = []
    markers = 0
    for seg in segments:
        if _is_error_marker(seg.body):
            markers += 1
            continue
        try:
            if seg.number == 1:
                parsed.append(_parse_track1(seg.body, seg.offset))
            else:
                parsed.append(_parse_track2(seg.body, seg.offset))
        except CardDataError as exc:
            errors.append(exc)

    if not parsed:
        if errors:
            raise errors[0]
        raise CardDataError("the reader could not read the card (error marker); swipe again")

    first = parsed[0]
    for other in parsed[1:]:
        if other.pan != first.pan:
            raise CardDataError("tracks 1 and 2 name different cards; swipe again")
        if None not in (first.expiry, other.expiry) and other.expiry != first.expiry:
            raise CardDataError("tracks 1 and 2 disagree on the expiry date; swipe again")
    by_number = {t.number: t for t in parsed}
    # Track 2 is the one the payment networks treat as authoritative.
    preferred = by_number.get(2, first)
    t1 = by_number.get(1)
    expiry = preferred.expiry or (t1.expiry if t1 else None)
    service = preferred.service_code or (t1.service_code if t1 else None)
    return Swipe(
        pan=first.pan,
        expiry=expiry,
        name=t1.name if t1 else None,
        service_code=service,
        tracks=tuple(sorted(by_number)),
    )
