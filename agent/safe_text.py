"""Text from outside (clients, the club's member records) and the terminals it reaches.

A name, note or category may hold characters that a terminal obeys rather than
shows: C0 controls (ESC starts the sequences that move the cursor, recolour or
retitle a window), DEL, C1 controls (``\\x9b`` is a one-byte CSI on some
terminals) and the bidirectional embeddings and overrides U+202A-202E and
U+2066-2069, which reorder what is shown ("Trojan source" spoofing). The local
API refuses them in what it records (:func:`unsafe_char`); what comes from the
club may hold anything, so every printer escapes it (:func:`escape_for_terminal`).

Pure functions, no I/O.
"""

from __future__ import annotations

BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Allowed in multi-line free text (notes, reasons): line feed and tab.
MULTILINE_ALLOWED = frozenset("\n\t")


def is_unsafe(ch: str) -> bool:
    """True for a C0 or C1 control, DEL, or a bidirectional embedding/override."""
    code = ord(ch)
    return code < 0x20 or 0x7F <= code <= 0x9F or ch in BIDI_CONTROLS


def unsafe_char(text: str, *, multiline: bool = False) -> str | None:
    """The first character of ``text`` a terminal would obey, or None.

    ``multiline`` lets line feeds and tabs through (notes); carriage return
    never passes (it rewrites the line on a terminal).
    """
    for ch in text:
        if is_unsafe(ch) and not (multiline and ch in MULTILINE_ALLOWED):
            return ch
    return None


def describe(ch: str) -> str:
    """``U+001B`` style name of a character, for error messages."""
    return f"U+{ord(ch):04X}"


def escape_for_terminal(text: object) -> str:
    """``text`` as one safe line: every unsafe character (line breaks included) as
    ``\\xNN`` or ``\\uNNNN``; other text (any script, emoji) unchanged.

    >>> escape_for_terminal("Sara\\x1b]0;pwned\\x07")
    'Sara\\\\x1b]0;pwned\\\\x07'
    """
    value = text if isinstance(text, str) else str(text)
    if not any(is_unsafe(ch) or ch in "\u2028\u2029" for ch in value):
        return value
    out = []
    for ch in value:
        code = ord(ch)
        if code <= 0xFF and is_unsafe(ch):
            out.append(f"\\x{code:02x}")
        elif is_unsafe(ch) or ch in "\u2028\u2029":
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def json_for_terminal(value: object, *, indent: int | None = None) -> str:
    """``json.dumps(value, ensure_ascii=False)`` with every unsafe character escaped.

    ``json`` escapes C0 controls itself but prints C1 controls and direction
    overrides as they are; they can only stand inside strings, where ``\\uNNNN``
    is the same JSON value.
    """
    import json

    text = json.dumps(value, ensure_ascii=False, indent=indent)
    if not any(is_unsafe(ch) or ch in "\u2028\u2029" for ch in text if ch not in "\n"):
        return text
    return "".join(f"\\u{ord(ch):04x}" if (is_unsafe(ch) or ch in "\u2028\u2029")
                   and ch != "\n" else ch for ch in text)
