"""Folding product names for search: case-, diacritic- and script-variant-insensitive.

Pure functions, no I/O. A name and what a cashier types are folded the same way,
then compared as plain substrings: ``Café`` and ``CAFE`` meet, so do the Arabic
and the Persian letters a keyboard may give for the same Persian word
(``ي``/``ی``, ``ك``/``ک``), a word with or without its short vowels or tatweel,
and digits typed in Persian, Arabic or ASCII.
"""

from __future__ import annotations

import unicodedata

# Letters that a Persian, Arabic or Urdu keyboard gives in different forms for the
# same word; digits of every script to ASCII; zero-width joiners to a space.
_VARIANTS = str.maketrans({
    "\u064a": "\u06cc",  # Arabic yeh -> Farsi yeh
    "\u0649": "\u06cc",  # alef maksura -> Farsi yeh
    "\u0643": "\u06a9",  # Arabic kaf -> keheh
    "\u0629": "\u0647",  # teh marbuta -> heh
    "\u06c0": "\u0647",  # heh with yeh above -> heh
    "\u0640": None,      # tatweel (kashida): only stretches a word
    "\u200c": " ",       # zero-width non-joiner: Persian writes it between parts of a word
    "\u200d": None,      # zero-width joiner
    "\u200f": None,      # right-to-left mark
    "\u200e": None,      # left-to-right mark
})


def fold(text: str) -> str:
    """``text`` as search compares it: decomposed (NFKD), marks dropped, letter
    variants unified, case-folded, digits in ASCII, runs of spaces one space.

    >>> fold("  Café  AU lait ")
    'cafe au lait'
    >>> fold("كيك") == fold("کیک")
    True
    """
    decomposed = unicodedata.normalize("NFKD", text.translate(_VARIANTS))
    out = []
    for ch in decomposed:
        if unicodedata.combining(ch):
            continue
        if ch.isdigit():
            value = unicodedata.digit(ch, None)
            if value is not None:
                out.append(str(value))
                continue
        out.append(ch)
    return " ".join("".join(out).casefold().split())
