"""Translations, digits, dates, money and RTL display order."""

from __future__ import annotations

import ast
import re
import string
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.tui import catalogues
from agent.tui.i18n import (
    Locale,
    gregorian_to_jalali,
    load_locale,
    parse_amount,
    visual_order,
)


@pytest.mark.parametrize(("gregorian", "jalali"), [
    ((2024, 3, 20), (1403, 1, 1)),   # Nowruz 1403
    ((2025, 3, 21), (1404, 1, 1)),   # Nowruz 1404
    ((2024, 3, 19), (1402, 12, 29)),
    ((2026, 11, 22), (1405, 9, 1)),  # 1 Azar 1405
    ((2000, 1, 1), (1378, 10, 11)),
    ((1979, 2, 11), (1357, 11, 22)),
])
def test_jalali_dates(gregorian, jalali) -> None:
    assert gregorian_to_jalali(*gregorian) == jalali


def test_money_formats() -> None:
    en, fa = Locale("en"), Locale("fa")
    assert en.money(123456, "EUR", 2) == "€1,234.56"
    assert en.money(-5, "EUR", 2) == "-€0.05"
    assert en.money(1200000, "IRR", 0) == "1,200,000 ریال"
    assert en.money(5, None, 0) == "5"
    assert fa.money(123456, "EUR", 2) == "۱٬۲۳۴٫۵۶ €"
    assert fa.money(1200000, "IRR", 0) == "۱٬۲۰۰٬۰۰۰ ریال"


def test_dates_and_digits() -> None:
    assert Locale("en").date(date(2026, 11, 22)) == "Sun 22 Nov 2026"
    assert Locale("fa").date(date(2026, 11, 22)) == "۱ آذر ۱۴۰۵"
    assert Locale("fa").number(1234567) == "۱٬۲۳۴٬۵۶۷"


@pytest.mark.parametrize(("text", "minor", "expected"), [
    ("12.50", 2, 1250), ("12,50", 2, 1250), ("12.5", 2, 1250), ("12", 2, 1200),
    ("۱۲٫۵۰", 2, 1250), ("1,200", 0, 1200), ("1,234.56", 2, 123456), ("0.05", 2, 5),
    ("12.345", 2, None), ("abc", 2, None), ("", 2, None), ("-3", 2, None), ("1.5", 0, None),
])
def test_parse_amount(text, minor, expected) -> None:
    assert parse_amount(text, minor) == expected


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=0, max_value=3),
       st.sampled_from(["en", "fa"]))
def test_money_text_parses_back(amount, minor, lang) -> None:
    text = Locale(lang).money(amount, None, minor)
    assert parse_amount(text, minor) == amount


def test_visual_order_keeps_latin_and_numbers_whole() -> None:
    assert visual_order("hello 12:30") == "hello 12:30"  # no RTL: unchanged
    assert visual_order("سلام Sara K خوش") == "شوخ Sara K مالس"
    assert visual_order("ساعت ۱۲:۳۰") == "۱۲:۳۰ تعاس"
    assert visual_order("(سلام)") == "(مالس)"  # brackets mirrored


@given(st.text(alphabet=string.ascii_letters + string.digits + " .:,-", max_size=30))
def test_visual_order_is_identity_without_rtl(text) -> None:
    assert visual_order(text) == text


def test_unknown_locale_falls_back_to_english() -> None:
    assert load_locale("xx").gettext("Sale") == "Sale"
    assert load_locale("fa_IR.UTF-8").code == "fa"


def test_mo_files_are_up_to_date_with_po() -> None:
    """Run ``python -m agent.tui.catalogues`` after editing a .po file."""
    assert catalogues.compile_all(check=True) == []


def test_compiled_catalogue_reads_back_with_gettext(tmp_path) -> None:
    import gettext

    po = catalogues.po_files()[0].read_text(encoding="utf-8")
    mo = tmp_path / "x.mo"
    mo.write_bytes(catalogues.mo_bytes(catalogues.parse_po(po)))
    with mo.open("rb") as handle:
        translations = gettext.GNUTranslations(handle)
    assert translations.gettext("Sale") in ("Sale", "فروش", "البيع", "מכירה", "Bán hàng")


def _placeholders(text: str) -> set[str]:
    return set(re.findall(r"\{(\w*)\}", text))


@pytest.mark.parametrize("lang", ["en", "fa", "ar", "he", "vi"])
def test_every_message_translated_with_the_same_placeholders(lang) -> None:
    template = catalogues.POT_PATH.read_text(encoding="utf-8")
    msgids = set()
    for block in template.split("\n\n")[1:]:
        match = re.search(r'^msgid ((?:".*"\n?)+)', block + "\n", re.M)
        if match:
            msgids.add("".join(ast.literal_eval(x) for x in match.group(1).strip().split("\n")))
    po = catalogues.LOCALE_DIR / lang / "LC_MESSAGES" / "clubterm.po"
    entries = catalogues.parse_po(po.read_text(encoding="utf-8"))
    singular = {key.split("\0")[0]: value.split("\0") for key, value in entries.items() if key}
    missing = sorted(msgids - set(singular))
    assert missing == [], f"untranslated in {lang}: {missing}"
    for msgid, forms in singular.items():
        for form in forms:
            assert _placeholders(form) == _placeholders(msgid), (lang, msgid, form)


def test_arabic_hebrew_vietnamese_formats() -> None:
    ar, he, vi = Locale("ar"), Locale("he"), Locale("vi")
    assert ar.rtl and he.rtl and not vi.rtl
    assert ar.money(123456, "EUR", 2) == "١٬٢٣٤٫٥٦ €"
    assert he.money(123456, "ILS", 2) == "1,234.56 ₪"
    assert vi.money(5000000, "VND", 0) == "5.000.000 ₫"
    assert ar.date(date(2026, 11, 22)) == "٢٢ نوفمبر ٢٠٢٦"
    assert he.date(date(2026, 11, 22)) == "22 נובמבר 2026"
    assert vi.date(date(2026, 11, 22)) == "22/11/2026"


@pytest.mark.parametrize("lang", ["ar", "he", "vi"])
def test_new_catalogues_load_and_translate(lang) -> None:
    loc = load_locale(lang)
    assert loc.code == lang
    assert loc.gettext("TO PAY") != "TO PAY"
    assert loc.ngettext("Earns {n} point", "Earns {n} points", 5) != "Earns {n} points"


def test_vietnamese_amounts_parse_with_dot_groups() -> None:
    from agent.tui.i18n import set_locale

    set_locale(load_locale("vi"))
    try:
        assert parse_amount("1.234,56", 2) == 123456
        assert parse_amount("12,50", 2) == 1250
    finally:
        set_locale(load_locale("en"))
    assert parse_amount("1.234", 2) is None          # English: not an amount with cents


@pytest.mark.parametrize("code", ["en", "fa", "ar", "he", "vi"])
def test_a_package_line_writes_its_date_as_the_ui_writes_dates(code: str) -> None:
    """The check-in dialog's "until <date>" is the UI's date (Jalali in Persian), not
    the agent's ISO text; a date that is not one is shown as it came."""
    from agent.tui.i18n import agent_date, current, set_locale
    from agent.tui.screens.checkin_dialog import package_line

    before = current()
    set_locale(load_locale(code))
    try:
        line = package_line({"package_id": "pk-1", "name": "Gym", "visits_total": 10,
                             "visits_left": 7, "state": "active", "expires": "2027-02-07"})
        local = load_locale(code)
        assert "2027-02-07" not in line
        assert local.date(date(2027, 2, 7)) in line or \
            local.display(local.date(date(2027, 2, 7))) in line
        assert agent_date("not a date") == "not a date"
    finally:
        set_locale(before)
