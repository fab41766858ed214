"""Structured logging with card-data redaction.

JSON lines on stdout when it is not a terminal (journald keeps them as they are),
readable text on a terminal. Every record passes :func:`redact` after it is fully
formatted (message, arguments, extra fields and traceback alike), so a PAN or track
logged by mistake, by any module or library, never reaches the output.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from agent.carddata.luhn import luhn_valid

# Track 1: %B<PAN>^NAME^YYMM...?  Track 2: ;<PAN>=YYMM...?  Also the EMV track-2
# equivalent in hex, where the separator is 'D'. Start and end sentinels may be
# missing in what a wedge reader or a careless log line carries.
_TRACK1 = re.compile(r"%?[Bb]\d{12,19}\^[^?\n]*\^[^?\n]*\??")
_TRACK2 = re.compile(r";?(?<!\d)\d{12,19}[=Dd]\d{4}[0-9A-Fa-f]*\??")
# Digit runs, possibly grouped by single spaces or dashes ("4111 1111 1111 1111").
_DIGITS = re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9]){11,22}(?![0-9])")

TRACK_MASK = "[track data redacted]"


def _mask_candidate(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = text.replace(" ", "").replace("-", "")
    if 12 <= len(digits) <= 19 and luhn_valid(digits):
        return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]
    # A PAN glued to other digits is still a PAN: check every 12-19 digit window.
    if len(digits) > 19 and any(
        luhn_valid(digits[start : start + length])
        for length in range(12, 20)
        for start in range(len(digits) - length + 1)
    ):
        return "[number redacted]"
    return text


def redact(text: str) -> str:
    """Mask Luhn-valid 12–19 digit numbers and anything that looks like track data."""
    text = _TRACK1.sub(TRACK_MASK, text)
    text = _TRACK2.sub(TRACK_MASK, text)
    return _DIGITS.sub(_mask_candidate, text)


_STD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(payload, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    """Readable lines for a person at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(
    level: str | int = "info", fmt: str = "auto", stream: TextIO | None = None
) -> logging.Handler:
    """Install the one redacting handler on the root logger and return it.

    ``fmt`` is ``json``, ``text`` or ``auto`` (text on a terminal, JSON otherwise).
    """
    stream = stream if stream is not None else sys.stdout
    if fmt == "auto":
        fmt = "text" if stream.isatty() else "json"
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_clubterm", False):
            root.removeHandler(old)
    handler._clubterm = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    return handler
