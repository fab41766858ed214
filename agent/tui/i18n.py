"""Translations, digits, dates, money and right-to-left display for the staff UI.

Every user-facing string goes through :func:`tr` (translate, fill in, then put
into display order) so adding a language is adding a catalogue under
``agent/tui/locale/<lang>/LC_MESSAGES/clubterm.po`` (compiled to ``.mo`` by
``python -m agent.tui.catalogues``).

Right-to-left: terminals do not run the Unicode bidi algorithm (VTE can, most
others — the Linux console, xterm, tmux — cannot), so in an RTL locale
:func:`tr` returns the text in *visual* order by a small subset of the bidi
algorithm: the line is right-to-left, runs of RTL letters are reversed, runs
of Latin letters and numbers keep their order. Arabic-script letters are shown
in their plain (unshaped) forms. For a terminal that does its own bidi, set
``CLUBTERM_BIDI=terminal`` to get logical order. Typed text in inputs is
always in logical order.

This module is pure: no Textual import, so it is tested on its own.
"""

from __future__ import annotations

import gettext as _gettext
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TypeVar

from agent.tui.bidi import FSI, PDI, visual_order

# What opens a bidi isolate (LRI, RLI, FSI); PDI closes it.
ISOLATE_OPENERS = ("\u2066", "\u2067", FSI)

T = TypeVar("T")

DOMAIN = "clubterm"
LOCALE_DIR = Path(__file__).parent / "locale"
RTL_LANGUAGES = frozenset({"fa", "ar", "he", "ur"})
# Languages with a catalogue (agent/tui/locale): Arabic and Hebrew are drawn
# right to left like Persian; Arabic with Arabic-Indic digits, Hebrew and
# Vietnamese with Latin ones.
SUPPORTED = ("en", "fa", "ar", "he", "vi")

_DIGITS = {
    "fa": "۰۱۲۳۴۵۶۷۸۹",
    "ar": "٠١٢٣٤٥٦٧٨٩",
}
# Decimal and group separators per language (U+066B, U+066C for Persian).
_SEPARATORS = {"fa": ("٫", "٬"), "ar": ("٫", "٬"), "vi": (",", ".")}
_CURRENCY_SYMBOLS = {
    "EUR": "€",
    "USD": "$",
    "GBP": "£",
    "ILS": "₪",
    "VND": "₫",
    "IRR": "ریال",
    "TRY": "₺",
}
_TO_ASCII_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")

_JALALI_MONTHS = (
    "فروردین",
    "اردیبهشت",
    "خرداد",
    "تیر",
    "مرداد",
    "شهریور",
    "مهر",
    "آبان",
    "آذر",
    "دی",
    "بهمن",
    "اسفند",
)


# Gregorian month names for languages whose dates are not English (#15 item 11).
_MONTHS = {
    "ar": ("يناير", "فبراير", "مارس", "أبريل", "مايو", "يونيو", "يوليو", "أغسطس",
           "سبتمبر", "أكتوبر", "نوفمبر", "ديسمبر"),
    "he": ("ינואר", "פברואר", "מרץ", "אפריל", "מאי", "יוני", "יולי", "אוגוסט",
           "ספטמבר", "אוקטובר", "נובמבר", "דצמבר"),
}


def N_(message: str) -> str:
    """Mark ``message`` for extraction without translating it here."""
    return message


@dataclass
class Locale:
    """One language's catalogue and formats."""

    code: str = "en"
    translations: _gettext.NullTranslations = field(default_factory=_gettext.NullTranslations)
    visual_bidi: bool = True

    @property
    def rtl(self) -> bool:
        """True for a right-to-left language."""
        return self.code in RTL_LANGUAGES

    def gettext(self, message: str) -> str:
        """The translation of ``message`` (logical order)."""
        return self.translations.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        """The translation of ``singular``/``plural`` for ``n``."""
        return self.translations.ngettext(singular, plural, n)

    def digits(self, text: str) -> str:
        """``text`` with ASCII digits replaced by the language's digits."""
        native = _DIGITS.get(self.code)
        return text.translate(str.maketrans("0123456789", native)) if native else text

    def number(self, value: int) -> str:
        """An integer with group separators, in the language's digits."""
        group = _SEPARATORS.get(self.code, (".", ","))[1]
        return self.digits(f"{value:,}".replace(",", group))

    def money(self, amount: int, currency: str | None, minor_units: int) -> str:
        """Minor units as the club currency is written: ``€12.34``, ``۱۲٫۳۴ €``."""
        decimal, group = _SEPARATORS.get(self.code, (".", ","))
        sign = "-" if amount < 0 else ""
        major, minor = divmod(abs(amount), 10**minor_units) if minor_units else (abs(amount), 0)
        text = f"{major:,}".replace(",", group)
        if minor_units:
            text += decimal + f"{minor:0{minor_units}d}"
        text = self.digits(text)
        symbol = _CURRENCY_SYMBOLS.get(currency or "", currency or "")
        if not symbol:
            return sign + text
        if self.rtl or len(symbol) > 1 or self.code == "vi":
            return f"{sign}{text} {symbol}"
        return f"{sign}{symbol}{text}"

    def date(self, day: date) -> str:
        """A date: ``Sun 22 Nov 2026``; Persian: Jalali ``۱ آذر ۱۴۰۵``; Arabic
        ``٢٢ نوفمبر ٢٠٢٦``; Hebrew ``22 נובמבר 2026``; Vietnamese ``22/11/2026``."""
        if self.code == "fa":
            y, m, d = gregorian_to_jalali(day.year, day.month, day.day)
            return self.digits(f"{d} {_JALALI_MONTHS[m - 1]} {y}")
        if self.code in _MONTHS:
            return self.digits(f"{day.day} {_MONTHS[self.code][day.month - 1]} {day.year}")
        if self.code == "vi":
            return day.strftime("%d/%m/%Y")
        return day.strftime("%a %d %b %Y")

    def time(self, moment: datetime) -> str:
        """A time of day, 24 h, in the language's digits."""
        return self.digits(moment.strftime("%H:%M"))

    def display(self, text: str) -> str:
        """``text`` in the order a terminal without bidi should draw it."""
        if self.rtl and self.visual_bidi:
            return "\n".join(visual_order(line) for line in text.split("\n"))
        return text


_current = Locale()


def load_locale(code: str | None = None) -> Locale:
    """The :class:`Locale` for ``code`` (``en`` if missing; ``fa_IR.UTF-8`` → ``fa``)."""
    lang = (code or "en").split(".")[0].split("_")[0].split("-")[0].lower() or "en"
    try:
        translations: _gettext.NullTranslations = _gettext.translation(
            DOMAIN, localedir=str(LOCALE_DIR), languages=[lang]
        )
    except OSError:
        translations = _gettext.NullTranslations()
        lang = "en" if lang not in _DIGITS and lang not in RTL_LANGUAGES else lang
    visual = os.environ.get("CLUBTERM_BIDI", "visual") != "terminal"
    return Locale(lang, translations, visual)


def set_locale(locale: Locale) -> None:
    """Make ``locale`` the one :func:`tr` and friends use (one UI per process)."""
    global _current
    _current = locale


def current() -> Locale:
    """The locale in use."""
    return _current


_MARKUP_TAG = re.compile(r"(\\*)(\[[a-zA-Z#/@$.!=-][^[]*?])")


def plain(value: object) -> object:
    """A value from outside (a member name from the club, a note) as plain text.

    Textual renders markup: ``"Eve[/]"`` would raise MarkupError and ``"[b]x"`` restyle
    the screen; control characters (ESC) are shown escaped, never sent to the terminal.
    Non-text values are returned as they are.
    """
    if not isinstance(value, str):
        return value
    from agent.safe_text import escape_for_terminal

    text = _MARKUP_TAG.sub(lambda m: m.group(1) * 2 + "\\" + m.group(2),
                           escape_for_terminal(value))
    # As textual.markup.escape: a lone trailing backslash would escape what follows.
    return text + "\\" if text.endswith("\\") and not text.endswith("\\\\") else text




def _fill_values(values: dict[str, object]) -> dict[str, object]:
    """``values`` as plain text; in a visual RTL locale each one bidi-isolated.

    An isolated value (``Sara K.``, ``12:30``, a Persian name in an English
    sentence) is ordered on its own and placed as one unit, so its neutrals
    (the dot of ``K.``) stay where they are typed (UAX #9 isolates).
    """
    isolate = _current.rtl and _current.visual_bidi
    out: dict[str, object] = {}
    for key, value in values.items():
        text = plain(value)
        out[key] = f"{FSI}{text}{PDI}" if isolate and isinstance(text, str) and text else text
    return out


def isolate(text: str) -> str:
    """``text`` as one bidi-isolated run when the UI orders RTL text itself.

    Join runs with it that must not merge: a date and a time side by side
    (``۷ آذر ۱۴۰۵`` and ``۰۸:۴۷``) would otherwise become one number run.
    """
    return f"{FSI}{text}{PDI}" if _current.rtl and _current.visual_bidi and text else text


def fill(message: str, /, **values: object) -> str:
    """Translate ``message`` and fill in ``values``, in *logical* order.

    For text that may wrap: :func:`wrap_visual` orders each wrapped line.
    """
    text = _current.gettext(message)
    return text.format(**_fill_values(values)) if values else text


def tr(message: str, /, **values: object) -> str:
    """Translate ``message``, fill in ``values`` (as plain text) and put it in display order."""
    return _current.display(fill(message, **values))


def filln(singular: str, plural: str, n: int, /, **values: object) -> str:
    """Plural-aware :func:`fill` (logical order, for text that may wrap)."""
    return _current.ngettext(singular, plural, n).format(
        n=_current.number(n), **_fill_values(values))


def trn(singular: str, plural: str, n: int, /, **values: object) -> str:
    """Plural-aware :func:`tr`; ``{n}`` is filled in with ``n`` in local digits."""
    return _current.display(filln(singular, plural, n, **values))


def wrap_visual(text: str, width: int) -> list[str]:
    """``text`` (logical order) wrapped to ``width`` cells, each line in display order.

    A terminal that wraps an already reordered RTL string shows the end of
    the sentence first; here the words are wrapped in reading order and each
    line is then reordered on its own (#15 item 11). A filled-in value (an
    isolate: ``۱۲٫۰۰ €``, ``Sara K.``) is never broken while it fits a line, so a
    money value stays with its currency sign. Words longer than ``width`` are cut.
    LTR locales get plain word wrapping.
    """
    from rich.cells import cell_len

    width = max(1, width)
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in _unbroken_words(paragraph, width):
            candidate = f"{line} {word}" if line else word
            if cell_len(candidate) <= width or (not line and cell_len(word) <= width):
                line = candidate
                continue
            if line:
                lines.append(line)
            while cell_len(word) > width:
                lines.append(word[:width])
                word = word[width:]
            line = word
        lines.append(line)
    return [_current.display(line) for line in lines]


def _unbroken_words(paragraph: str, width: int) -> list[str]:
    """The words of ``paragraph``, each bidi isolate that fits ``width`` as one word."""
    from rich.cells import cell_len

    out: list[str] = []
    depth = 0
    for word in paragraph.split(" "):
        if depth > 0:
            out[-1] += " " + word
        else:
            out.append(word)
        depth = max(0, depth + sum(word.count(c) for c in ISOLATE_OPENERS) - word.count(PDI))
    # An isolate wider than a line is split again at its spaces.
    return [part for word in out
            for part in ([word] if cell_len(word) <= width else word.split(" "))]


def ordered(cells: Sequence[T]) -> list[T]:
    """Table cells in drawing order: right to left in an RTL locale."""
    return list(reversed(cells)) if _current.rtl and _current.visual_bidi else list(cells)


def agent_date(text: object) -> str:
    """A date the agent sends (``YYYY-MM-DD``) as the UI writes dates (Jalali in
    Persian); anything else as it came."""
    try:
        return _current.date(date.fromisoformat(str(text)))
    except ValueError:
        return str(text)


def display(text: str) -> str:
    """Text already translated and filled in, put in display order."""
    return _current.display(text)


def money(amount: int, currency: str | None, minor_units: int) -> str:
    """:meth:`Locale.money` of the current locale."""
    return _current.money(amount, currency, minor_units)


def number(value: int) -> str:
    """:meth:`Locale.number` of the current locale."""
    return _current.number(value)


def parse_amount(text: str, minor_units: int) -> int | None:
    """Minor units from what a cashier typed (``12.5``, ``12,50``, ``۱۲٫۵``, ``1200``).

    Returns None if it is not an amount or has more decimals than the currency.
    """
    cleaned = text.strip().translate(_TO_ASCII_DIGITS).replace("٫", ".").replace("٬", "")
    cleaned = cleaned.replace(" ", "").replace("\u00a0", "")
    if re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d*)?", cleaned):
        cleaned = cleaned.replace(",", "")
    elif _SEPARATORS.get(_current.code, (".", ","))[1] == "." \
            and re.fullmatch(r"\d{1,3}(\.\d{3})+(,\d*)?", cleaned):
        # Where the dot groups thousands (Vietnamese): 1.234,56
        cleaned = cleaned.replace(".", "")
    cleaned = cleaned.replace(",", ".")
    match = re.fullmatch(r"(\d+)(?:\.(\d*))?", cleaned)
    if not match:
        return None
    whole, frac = match.group(1), match.group(2) or ""
    if len(frac) > minor_units:
        return None
    scale: int = 10**minor_units
    return int(whole) * scale + int(frac.ljust(minor_units, "0") or "0")


def ascii_digits(text: str) -> str:
    """``text`` with Persian and Arabic-Indic digits replaced by ASCII ones."""
    return text.translate(_TO_ASCII_DIGITS)


def gregorian_to_jalali(gy: int, gm: int, gd: int) -> tuple[int, int, int]:
    """The Jalali (Solar Hijri) date of a Gregorian one (the arithmetic calendar)."""
    g_days = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)
    gy2 = gy + 1 if gm > 2 else gy
    days = (
        355666
        + 365 * gy
        + (gy2 + 3) // 4
        - (gy2 + 99) // 100
        + (gy2 + 399) // 400
        + gd
        + g_days[gm - 1]
    )
    jy = -1595 + 33 * (days // 12053)
    days %= 12053
    jy += 4 * (days // 1461)
    days %= 1461
    if days > 365:
        jy += (days - 1) // 365
        days = (days - 1) % 365
    if days < 186:
        return jy, 1 + days // 31, 1 + days % 31
    return jy, 7 + (days - 186) // 30, 1 + (days - 186) % 30


__all__ = [
    "N_",
    "SUPPORTED",
    "Locale",
    "ascii_digits",
    "current",
    "display",
    "fill",
    "filln",
    "gregorian_to_jalali",
    "isolate",
    "load_locale",
    "money",
    "number",
    "ordered",
    "parse_amount",
    "set_locale",
    "tr",
    "trn",
    "visual_order",
    "wrap_visual",
]
