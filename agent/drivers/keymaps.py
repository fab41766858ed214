"""The project's own keyboard layouts for keyboard-wedge readers (no X server).

A wedge reader types by sending key codes as if it were a keyboard of a given
layout; the profile's ``keymap`` names that layout so the codes decode back to the
characters the reader meant. Each key maps to (normal, Shift, AltGr) characters;
an empty string means the level types nothing. Caps Lock affects letters only
(as in the Linux console and X11 ``us``/``fr`` layouts).

Key codes are Linux input event codes (``linux/input-event-codes.h``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.errors import ConfigError

KEY_ESC = 1
KEY_BACKSPACE = 14
KEY_TAB = 15
KEY_ENTER = 28
KEY_LEFTCTRL = 29
KEY_LEFTSHIFT = 42
KEY_RIGHTSHIFT = 54
KEY_LEFTALT = 56
KEY_CAPSLOCK = 58
KEY_NUMLOCK = 69
KEY_KPENTER = 96
KEY_RIGHTCTRL = 97
KEY_RIGHTALT = 100
KEY_LEFTMETA = 125
KEY_RIGHTMETA = 126

SHIFT_KEYS = frozenset({KEY_LEFTSHIFT, KEY_RIGHTSHIFT})
IGNORED_MODIFIERS = frozenset({KEY_LEFTCTRL, KEY_RIGHTCTRL, KEY_LEFTALT, KEY_LEFTMETA,
                               KEY_RIGHTMETA, KEY_NUMLOCK})
ENTER_KEYS = frozenset({KEY_ENTER, KEY_KPENTER})

# The numeric keypad types the same on every layout (Num Lock on, as scanners assume).
_KEYPAD: dict[int, tuple[str, str, str]] = {
    55: ("*", "*", ""), 71: ("7", "7", ""), 72: ("8", "8", ""), 73: ("9", "9", ""),
    74: ("-", "-", ""), 75: ("4", "4", ""), 76: ("5", "5", ""), 77: ("6", "6", ""),
    78: ("+", "+", ""), 79: ("1", "1", ""), 80: ("2", "2", ""), 81: ("3", "3", ""),
    82: ("0", "0", ""), 83: (".", ".", ""), 98: ("/", "/", ""), 57: (" ", " ", " "),
}


def _row(codes: range | list[int], normal: str, shifted: str,
         altgr: str | None = None) -> dict[int, tuple[str, str, str]]:
    alt = altgr if altgr is not None else " " * len(normal)
    return {c: (n, s, a.strip()) for c, n, s, a in zip(codes, normal, shifted, alt, strict=True)}


_US: dict[int, tuple[str, str, str]] = {
    **_row(range(2, 14), "1234567890-=", "!@#$%^&*()_+"),
    **_row(range(16, 28), "qwertyuiop[]", "QWERTYUIOP{}"),
    **_row(range(30, 42), "asdfghjkl;'`", 'ASDFGHJKL:"~'),
    43: ("\\", "|", ""),
    **_row(range(44, 54), "zxcvbnm,./", "ZXCVBNM<>?"),
    **_KEYPAD,
}

# French AZERTY (Linux "fr" layout, the one French scanners emulate).
_FR: dict[int, tuple[str, str, str]] = {
    **_row(range(2, 14), "&é\"'(-è_çà)=", "1234567890°+", " ~#{[|`\\^@]}"),
    **_row(range(16, 28), "azertyuiop^$", "AZERTYUIOP¨£", "  €        ¤"),
    **_row(range(30, 41), "qsdfghjklmù", "QSDFGHJKLM%"),
    41: ("²", "", ""),
    43: ("*", "µ", ""),
    **_row(range(44, 54), "wxcvbn,;:!", "WXCVBN?./§"),
    86: ("<", ">", ""),
    **_KEYPAD,
}


@dataclass(frozen=True)
class Keymap:
    """One layout: key code → (normal, Shift, AltGr) characters."""

    name: str
    keys: dict[int, tuple[str, str, str]]
    # Characters a scanner set to the *other* common layout produces for digits:
    # a code made only of these means the profile's keymap is probably wrong.
    mismatch_chars: frozenset[str] = field(default_factory=frozenset)

    def char(self, code: int, *, shift: bool, altgr: bool, caps: bool) -> str | None:
        """The character a key types, or None if this layout has no such key."""
        levels = self.keys.get(code)
        if levels is None:
            return None
        normal, shifted, alt = levels
        if altgr:
            return alt
        if caps and normal.isalpha() and shifted.isalpha():
            shift = not shift
        return shifted if shift else normal

    def keystroke(self, ch: str) -> tuple[int, bool, bool]:
        """(code, shift, altgr) that types ``ch`` on this layout (for simulators)."""
        for level in range(3):
            for code, levels in self.keys.items():
                if code in _KEYPAD and code != 57:
                    continue
                if levels[level] == ch:
                    return code, level == 1, level == 2
        raise ConfigError(f"keymap {self.name!r} cannot type {ch!r}")


KEYMAPS: dict[str, Keymap] = {
    "us": Keymap("us", _US, frozenset("!@#$%^&*()")),
    "fr": Keymap("fr", _FR, frozenset("&é\"'(-è_çà")),
}
ALIASES = {"azerty": "fr", "fr-azerty": "fr", "qwerty": "us", "en-us": "us"}


def get_keymap(name: str) -> Keymap:
    """The keymap named in a profile (``us``, ``fr``; aliases ``qwerty``, ``azerty``)."""
    key = ALIASES.get(name.lower(), name.lower())
    if key not in KEYMAPS:
        raise ConfigError(f"unknown keymap {name!r}; known: {', '.join(sorted(KEYMAPS))}",
                          key="readers.keymap")
    return KEYMAPS[key]


def looks_like_layout_mismatch(text: str, keymap: Keymap) -> bool:
    """True when ``text`` looks like digits typed on the other common layout.

    Heuristic: the text is made only of the symbols the other layout's digit row
    gives here (at least 2), or they are at least 3 and 40 % of it. A code that
    really is mostly ``!@#$%`` is rare; a mistyped one is common.
    """
    stripped = text.strip()
    odd = sum(1 for c in stripped if c in keymap.mismatch_chars)
    if len(stripped) >= 2 and odd == len(stripped):
        return True
    return odd >= 3 and odd * 10 >= len(stripped) * 4
