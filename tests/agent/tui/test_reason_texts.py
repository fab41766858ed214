"""Every refusal a cashier sees is in the UI's language.

The agent's ``data.reason`` codes are collected from its source (``ast``): the
literal ``"reason"`` of an error's data, the first argument of each refusal type,
a ``*_refusal`` function's ``(reason, message)`` answer, and ``reason:why`` where a
refusal says which of its cases it is. Each must have a sentence in
:data:`agent.tui.errors._REASONS` translated in every shipped catalogue, with the
same ``{figures}`` as the English one; each adjustment limit one in
:data:`agent.tui.screens.adjust_dialog.LIMIT_TEXTS`.
"""

from __future__ import annotations

import ast
from pathlib import Path
from string import Formatter

import pytest

from agent.errors import ApiError
from agent.localapi import INVALID_PARAMS, LIMIT
from agent.localapi.framing import DEFAULT_REASONS
from agent.tui import errors
from agent.tui.catalogues import parse_po
from agent.tui.i18n import LOCALE_DIR, SUPPORTED, load_locale, set_locale
from agent.tui.screens.adjust_dialog import LIMIT_TEXTS

AGENT = Path(errors.__file__).parents[1]
# Types whose first argument is a reason code the API passes on as data.reason.
REFUSAL_TYPES = {"Refusal", "AccountRefusal", "PackageRefused", "ValueRefused",
                 "RefundRefused", "TenderRefused", "AccountRefused", "CardNotLinkable",
                 "RefundNotPossible", "ValueNotAvailable"}
# Shown as the error code's translated headline plus the agent's sentence: a
# malformed request the UI never sends (the sentence names the parameter for a
# technician), or a code filled in by framing.error_reason. ``limit`` names its
# limit in ``data.limit``: adjustments are translated by LIMIT_TEXTS (below),
# a sale's by explain.LIMIT_REASONS.
GENERIC = {*DEFAULT_REASONS.values(), "bad_param", "error", "missing_param", "wrong_type",
           "bad_params"}


def _const(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) \
        else None


def emitted_reasons() -> dict[str, set[str]]:
    """Each reason code (``reason:why`` for a case of one) → the files giving it."""
    found: dict[str, set[str]] = {}
    for path in sorted(AGENT.rglob("*.py")):
        if "tui" in path.relative_to(AGENT).parts:
            continue
        where = str(path.relative_to(AGENT.parent))
        tree = ast.parse(path.read_text(encoding="utf-8"))
        codes: list[str] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                keys = {_const(k): v for k, v in zip(node.keys, node.values, strict=True)}
                reason, why = _const(keys.get("reason")), _const(keys.get("why"))
                codes += [reason] if reason else []
                codes += [f"{reason}:{why}"] if reason and why else []
            elif isinstance(node, ast.Call) and node.args:
                func = node.func
                name = func.id if isinstance(func, ast.Name) else \
                    func.attr if isinstance(func, ast.Attribute) else None
                code = _const(node.args[0])
                if name in REFUSAL_TYPES and code:
                    codes.append(code)
                    for kw_dict in node.args[2:3]:
                        if isinstance(kw_dict, ast.Dict):
                            keys = {_const(k): v for k, v in
                                    zip(kw_dict.keys, kw_dict.values, strict=True)}
                            why = _const(keys.get("why"))
                            codes += [f"{code}:{why}"] if why else []
            elif isinstance(node, ast.FunctionDef) and node.name.endswith("_refusal") \
                    and "localapi" in where:  # sale.void's (the rules' are not API errors)
                for ret in ast.walk(node):
                    if isinstance(ret, ast.Return) and isinstance(ret.value, ast.Tuple) \
                            and ret.value.elts and _const(ret.value.elts[0]):
                        codes.append(str(_const(ret.value.elts[0])))
        for code in codes:
            found.setdefault(code, set()).add(where)
    return found


def _catalogue(lang: str) -> dict[str, str]:
    po = LOCALE_DIR / lang / "LC_MESSAGES" / "clubterm.po"
    return parse_po(po.read_text(encoding="utf-8"))


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(text) if name}


def test_the_scan_finds_the_reasons_it_must() -> None:
    """The guard is only as good as its scan: codes from each construct are found."""
    found = emitted_reasons()
    for code in ("no_session", "void_too_late", "freeze_too_long", "bad_freeze:overlap",
                 "bad_freeze:in_past", "bad_freeze:ends_before_start", "gift_card_spent",
                 "account_limit", "adjust_off", "package_used_up", "card_taken"):
        assert code in found, code
    print(f"figure: {len(found)} reason codes the agent gives")


@pytest.mark.parametrize("lang", SUPPORTED)
def test_every_reason_has_a_translated_sentence(lang: str) -> None:
    catalogue = _catalogue(lang)
    missing, untranslated = [], []
    for code, where in sorted(emitted_reasons().items()):
        if code in GENERIC or code == "limit":
            continue
        message = errors._REASONS.get(code)
        if message is None:
            missing.append(f"{code} ({', '.join(sorted(where))})")
        elif not catalogue.get(message) or _fields(catalogue[message]) != _fields(message):
            untranslated.append(code)
    assert not missing, f"no sentence in agent/tui/errors.py _REASONS for: {missing}"
    assert not untranslated, f"{lang}: not translated (or figures differ): {untranslated}"


@pytest.mark.parametrize("lang", SUPPORTED)
def test_every_adjustment_limit_has_a_translated_sentence(lang: str) -> None:
    from agent.offline_queue.adjustments import _MESSAGES
    catalogue = _catalogue(lang)
    limits = {*_MESSAGES, "balance", "balance_bound", "no_points"}
    assert limits <= set(LIMIT_TEXTS), limits - set(LIMIT_TEXTS)
    assert all(catalogue.get(LIMIT_TEXTS[k]) for k in limits)


def _refusal(code: int, data: dict[str, object]) -> str:
    return errors.error_logical(ApiError(code, "English sentence.", data))


def test_a_freeze_refusal_in_persian_says_which_case_with_its_figures() -> None:
    set_locale(load_locale("fa"))
    try:
        overlap = _refusal(INVALID_PARAMS, {"reason": "bad_freeze", "why": "overlap",
                                            "frozen_from": "2026-12-01",
                                            "frozen_until": "2026-12-10"})
        assert "۱۰ آذر ۱۴۰۵" in overlap and "۱۹ آذر ۱۴۰۵" in overlap, overlap
        past = _refusal(INVALID_PARAMS, {"reason": "bad_freeze", "why": "in_past",
                                         "from": "2026-11-27", "today": "2026-11-28"})
        assert "گذشته" in past and "۷ آذر ۱۴۰۵" in past, past
        backwards = _refusal(INVALID_PARAMS, {"reason": "bad_freeze",
                                              "why": "ends_before_start",
                                              "from": "2026-12-05", "until": "2026-12-01"})
        assert len({overlap, past, backwards}) == 3
        long = _refusal(LIMIT, {"reason": "freeze_too_long", "freezable_days": 30,
                                "used": 10, "days": 21})
        assert all(n in long for n in ("۳۰", "۱۰", "۲۱")) and "English" not in long, long
        # A peer's ``why`` this UI does not know, or a figure not given: the
        # reason's own sentence, a ``?`` for the figure; never the English.
        other = _refusal(INVALID_PARAMS, {"reason": "bad_freeze", "why": "solstice"})
        assert other == load_locale("fa").gettext(errors._REASONS["bad_freeze"])
        bare = _refusal(LIMIT, {"reason": "freeze_too_long"})
        assert "?" in bare and "English" not in bare
        hostile = _refusal(LIMIT, {"reason": "too_many_cards", "max": "[b]x{0}"})
        assert "English" not in hostile and "\\[b]" in hostile
    finally:
        set_locale(load_locale("en"))
