"""``clubterm card``: decode what a reader sent, or read a card from a reader.

``card decode`` is the technician's tool for "what did this reader send?": it
takes track text or EMV TLV hex (argument or stdin), and prints the masked PAN,
expiry, name, service code and token kind, or a clear error. It never prints a
full PAN. ``card read`` (in :mod:`agent.cli.card_read`) prints the same report
for a card presented to a configured reader, through
:func:`agent.cli.card_report.format_card_report`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from agent.carddata import emv
from agent.carddata.detect import find_card_data
from agent.carddata.luhn import luhn_valid, mask_pan
from agent.carddata.tlv import Tlv, iter_tlv, parse_tlv, tag_hex
from agent.carddata.tokens import TOKEN_KINDS, pan_token, to_ascii_digits
from agent.carddata.tracks import parse_swipe
from agent.cli.card_report import format_card_report, mm_yy, pan_key_of
from agent.errors import CardDataError

MAX_INPUT_CHARS = 1 << 20
# Values longer than this are cut in the tag list; nobody reads a 248-byte certificate.
MAX_SHOWN_VALUE_BYTES = 32
# Tags whose value is text worth showing as text.
TEXT_TAGS = frozenset({0x50, 0x9F12, 0x5F2D})
SW_OK = b"\x90\x00"
PAN_KIND = TOKEN_KINDS[0]  # "pan"

_HEX_INPUT = re.compile(r"^(?:0[xX])?[0-9A-Fa-f]+$")
_DIGIT_RUN = re.compile(r"[0-9]{12,}")
# Spaces, dashes or dots between two digits, as people group card numbers.
_DIGIT_GROUP_SEP = re.compile(r"(?<=[0-9])[ \-.\u00a0]{1,3}(?=[0-9])")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``card decode`` and ``card read``."""
    card = sub.add_parser(
        "card",
        help="decode reader output or read a card (never shows a full card number)",
        description="Tools for technicians: see what a reader sends and what clubterm makes "
        "of it. Card numbers are always shown masked (first 6 and last 4 digits).",
    )
    card.set_defaults(func=lambda _args: _usage(card))
    card_sub = card.add_subparsers(dest="card_command", metavar="ACTION")

    decode = card_sub.add_parser(
        "decode",
        help="decode track text or EMV TLV hex",
        description="Decode what a reader sent: magnetic-stripe track text (one burst, "
        "tracks 1 and 2, as a keyboard-wedge or serial reader sends it) or EMV TLV in hex "
        "(a READ RECORD answer, a trailing 90 00 is allowed). With neither option the data "
        "is read from standard input, which is the safer way: an argument stays in the shell "
        "history. On a terminal the input is not echoed, so you can swipe a card into it.",
    )
    what = decode.add_mutually_exclusive_group()
    what.add_argument("--track", metavar="TEXT", help="track text, e.g. '%%B...?;...?'")
    what.add_argument("--tlv", metavar="HEX", help="BER-TLV as hex digits (spaces allowed)")
    decode.add_argument("--json", action="store_true", help="print the report as JSON")
    decode.set_defaults(func=decode_command)

    read = card_sub.add_parser(
        "read",
        help="wait for a card on a configured reader and show what it gave",
        description="Wait for a card on a reader of the terminal profile (or, with --pcsc, "
        "on a PC/SC reader named directly, before enrolment) and print the same report as "
        "'card decode' (masked card number, token kind, token).",
    )
    which = read.add_mutually_exclusive_group()
    which.add_argument("--reader", metavar="NAME", help="reader name from the terminal profile "
                       "(default: every card reader)")
    which.add_argument("--pcsc", metavar="NAME",
                       help="read from this PC/SC reader (name or pattern, e.g. 'ACS ACR122U*') "
                       "without a terminal profile or enrolment; without a pan_key only the "
                       "masked number and card kind are shown, no token")
    read.add_argument("--timeout", metavar="SECONDS", type=float, default=30.0,
                      help="give up after this many seconds (default: 30)")
    read.add_argument("--json", action="store_true", help="print the report as JSON")
    read.set_defaults(func=read_command)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def read_command(args: argparse.Namespace) -> int:
    """``card read``: the readers part, in :mod:`agent.cli.card_read` (imports pyscard)."""
    from agent.cli.card_read import card_read_command

    return int(card_read_command(args))


# --- decoding (pure) -------------------------------------------------------------

def detect_kind(text: str) -> str:
    """``"tlv"`` when ``text`` is hex digits (spaces and colons allowed), else ``"track"``."""
    compact = "".join(ch for ch in text if not (ch.isspace() or ch == ":"))
    return "tlv" if _HEX_INPUT.match(compact) else "track"


def _hex_bytes(text: str) -> bytes:
    compact = "".join(ch for ch in text if not (ch.isspace() or ch == ":"))
    compact = compact.removeprefix("0x").removeprefix("0X")
    if not compact:
        raise CardDataError("no hex digits given")
    if not all(ch in "0123456789abcdefABCDEF" for ch in compact):
        raise CardDataError("TLV input must be hex digits (spaces and colons allowed)")
    if len(compact) % 2:
        raise CardDataError(f"TLV hex has an odd number of digits ({len(compact)})")
    return bytes.fromhex(compact)


def _looks_like_bare_pan(text: str) -> bool:
    digits = "".join(ch for ch in text if not (ch.isspace() or ch == "-"))
    return digits.isascii() and digits.isdigit() and 12 <= len(digits) <= 19 and luhn_valid(digits)


def _may_hold_pan(text: str) -> bool:
    """True if ``text`` may hold a card number: any Luhn-valid 12-19 digit window of a
    run of digits, also of one written in groups (``4111 1111 1111 1111``,
    ``4111-1111-...``), or what :func:`agent.carddata.detect.find_card_data` finds."""
    if find_card_data(text) is not None:
        return True
    joined = _DIGIT_GROUP_SEP.sub("", to_ascii_digits(text))
    for match in _DIGIT_RUN.finditer(joined):
        run = match.group(0)
        for length in range(12, min(19, len(run)) + 1):
            for start in range(len(run) - length + 1):
                if luhn_valid(run[start : start + length]):
                    return True
    return False


def _base_report(source: str) -> dict[str, Any]:
    return {
        "source": source,
        "masked": None,
        "bin6": None,
        "expiry": None,
        "name": None,
        "service_code": None,
        "token_kind": None,
        "token": None,
    }


def _safe_text(text: str | None) -> str | None:
    """Free text from a card (a name) unless it could hold a card number."""
    if text is None:
        return None
    return "[hidden: may hold a card number]" if _may_hold_pan(text) else text


def _tag_value(node: Tlv) -> str | None:
    """What the tag list may show of a value: masked, hidden, text or hex."""
    if node.children is not None:
        return None
    tag = node.tag
    if tag in emv.PAN_TAGS:
        try:
            if tag == emv.TAG_PAN:
                return mask_pan(emv.pan_from_5a(node.value))
            if tag == emv.TAG_TRACK1_DATA:
                return parse_swipe("%" + node.value.decode("ascii", "replace") + "?").masked
            return mask_pan(emv.track2_fields(node.value)[0])
        except CardDataError:
            return "[hidden: not a valid card number]"
    if tag in emv.SENSITIVE_TAGS:
        return "[hidden]"
    value = node.value
    if tag in TEXT_TAGS and value.isascii() and value.decode("ascii").isprintable():
        # Text is checked as text: the hex of ASCII letters is all digits.
        text = value.decode("ascii")
        return "[hidden: may hold a card number]" if _may_hold_pan(text) else repr(text)
    if _may_hold_pan(value.hex()) or _may_hold_pan(value.decode("ascii", "replace")):
        return "[hidden: may hold a card number]"
    shown = value[:MAX_SHOWN_VALUE_BYTES].hex().upper()
    return shown + "..." if len(value) > MAX_SHOWN_VALUE_BYTES else shown


def _tag_list(tlvs: list[Tlv]) -> list[dict[str, Any]]:
    return [
        {
            "tag": tag_hex(node.tag),
            "name": emv.tag_name(node.tag),
            "length": len(node.value),
            "depth": depth,
            "constructed": node.children is not None,
            "value": _tag_value(node),
        }
        for depth, node in iter_tlv(tlvs)
    ]


def decode_track(text: str) -> tuple[dict[str, Any], str]:
    """Report for track text, and the PAN (kept out of the report for the token)."""
    swipe = parse_swipe(text)
    report = _base_report("+".join(f"track{n}" for n in swipe.tracks))
    report.update(
        masked=swipe.masked,
        bin6=swipe.bin6,
        expiry=mm_yy(swipe.expiry),
        name=_safe_text(swipe.name),
        service_code=swipe.service_code,
    )
    report["token_kind"] = PAN_KIND
    return report, swipe.pan


def decode_tlv(data: bytes) -> tuple[dict[str, Any], str | None]:
    """Report for BER-TLV bytes, and the PAN if the records hold one."""
    notes: list[str] = []
    tlvs: list[Tlv] | None = None
    if len(data) > 2 and data.endswith(SW_OK):
        try:
            tlvs = parse_tlv(data[:-2])
            notes.append("status word 90 00 at the end was left out")
        except CardDataError:
            tlvs = None
    if tlvs is None:
        tlvs = parse_tlv(data)
    if not tlvs:
        raise CardDataError("the TLV data holds no objects (only padding)")
    report = _base_report("tlv")
    card = emv.card_from_records(tlvs)
    pan: str | None = None
    if card is None:
        notes.append("no card number in these objects (tags 57, 9F6B, 5A or 56)")
    else:
        pan = card.pan
        report.update(
            masked=card.masked,
            bin6=card.pan[:6],
            expiry=mm_yy(card.expiry),
            name=_safe_text(card.name),
            service_code=card.service_code,
            card_tag=tag_hex(card.source_tag),
        )
        report["token_kind"] = PAN_KIND
    report["tags"] = _tag_list(tlvs)
    if notes:
        report["notes"] = notes
    return report, pan


def decode_text(text: str, kind: str | None = None) -> tuple[dict[str, Any], str | None]:
    """Decode reader output; ``kind`` is ``"track"``, ``"tlv"`` or None to detect it."""
    if len(text) > MAX_INPUT_CHARS:
        raise CardDataError("the input is too long to be one card read")
    if not text.strip():
        raise CardDataError("no input: give --track, --tlv or data on standard input")
    kind = kind or detect_kind(text)
    if kind == "tlv":
        try:
            return decode_tlv(_hex_bytes(text))
        except CardDataError:
            if _looks_like_bare_pan(text):
                raise CardDataError(
                    "this is a bare card number, not reader output; 'card decode' reads "
                    "track text or TLV hex"
                ) from None
            raise
    return decode_track(text)


def add_token(report: dict[str, Any], pan: str | None, pan_key: bytes | None,
              why_no_key: str | None = None) -> dict[str, Any]:
    """Fill ``token`` (or ``token_note`` saying why there is none)."""
    if pan is None:
        return report
    if pan_key is None:
        report["token"] = None
        report["token_note"] = "needs a provisioned pan_key" + (
            f": {why_no_key}" if why_no_key else "")
    else:
        report["token"] = pan_token(pan_key, pan)
    return report


# --- the command ---------------------------------------------------------------------

@contextmanager
def _no_echo(stream: TextIO) -> Iterator[None]:
    """Turn terminal echo off, so a card swiped into the terminal is not shown."""
    try:
        import termios

        fd = stream.fileno()
        old = termios.tcgetattr(fd)
    except (ImportError, OSError, ValueError):
        yield
        return
    new = list(old)
    new[3] &= ~termios.ECHO
    termios.tcsetattr(fd, termios.TCSADRAIN, new)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


def _read_stdin() -> str:
    stream = sys.stdin
    try:
        if stream.isatty():
            # Echo goes off before the prompt, so nothing typed after it is shown.
            with _no_echo(stream):
                print("Swipe a card, or paste track text or TLV hex, then press Ctrl-D "
                      "(input is not shown).", file=sys.stderr, flush=True)
                text = stream.read(MAX_INPUT_CHARS + 1)
        else:
            text = stream.read(MAX_INPUT_CHARS + 1)
    except UnicodeDecodeError:
        raise CardDataError("the input is not text; give TLV as hex digits") from None
    return text


def decode_command(args: argparse.Namespace) -> int:
    """``card decode``: print what the given reader output holds."""
    if args.track is not None:
        text, kind = args.track, "track"
    elif args.tlv is not None:
        text, kind = args.tlv, "tlv"
    else:
        text, kind = _read_stdin(), None
    try:
        report, pan = decode_text(text, kind)
    except CardDataError as exc:
        if args.json:
            print(json.dumps({"error": str(exc)}))
            return 2
        raise
    if pan is not None:
        key, why = pan_key_of(args)
        add_token(report, pan, key, why)
    print(format_card_report(report, args.json))
    return 0
