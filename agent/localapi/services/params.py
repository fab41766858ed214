"""The parameters of local-API requests: checked, typed, refused with a clear message.

Every function here is pure: a request's ``params`` in, a typed value out, or an
:class:`ApiError` (-32602) naming the parameter and saying what to type instead.
Free text is refused when it holds control characters or a bank card number.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, TypeVar, overload

from agent.carddata.detect import find_card_data
from agent.errors import ApiError, ClubtermError
from agent.localapi import INVALID_PARAMS
from agent.offline_queue.events import MAX_AMOUNT
from agent.safe_text import describe, unsafe_char

T = TypeVar("T")
# A request's params as decoded from JSON: each value is checked before use.
Params = Mapping[str, object]
PAYMENTS = ("cash", "card", "other")
# A basket line's sku and category, in characters.
MAX_LINE_TEXT = 64
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def upper_ascii(text: str) -> str:
    """``text`` with ASCII letters upper-cased (the club's form of a code)."""
    return text.translate(_ASCII_UPPER)


@overload
def _p(params: Params, name: str, kind: type[T]) -> T: ...
@overload
def _p(params: Params, name: str, kind: type[T], *, required: bool, default: T) -> T: ...
@overload
def _p(params: Params, name: str, kind: type[T], *, required: bool) -> T | None: ...
def _p(params: Params, name: str, kind: type[T], *, required: bool = True,
       default: T | None = None) -> T | None:
    """One parameter of the right type, or an invalid-params error naming it."""
    if name not in params or params[name] is None:
        if required:
            raise ApiError(INVALID_PARAMS, f"The parameter {name!r} is missing.",
                           {"param": name, "reason": "missing_param"})
        return default
    value = params[name]
    if isinstance(value, bool) and kind is int:
        raise ApiError(INVALID_PARAMS, f"The parameter {name!r} must be a whole number.",
                       {"param": name, "reason": "wrong_type", "expected": "integer"})
    if not isinstance(value, kind):
        raise ApiError(INVALID_PARAMS, f"The parameter {name!r} has the wrong type.",
                       {"param": name, "reason": "wrong_type", "expected": kind.__name__})
    return value


# Free text that may span lines (line feeds and tabs allowed).
_MULTILINE_PARAMS = ("note", "reason")
# Ids the agent issued or looks up before use, and the phone number (checked with
# its own, longer, card-number rule in tel_token): not scanned for card numbers,
# since a random id may hold digit groups.
_NO_CARD_SCAN = ("phone", "referred_by")
CARD_IN_TEXT = ("The {what} looks like it holds a bank card number; card numbers must not be "
                "written down here. Please remove it.")


@overload
def _text(params: Params, name: str, *, max_len: int = 200) -> str: ...
@overload
def _text(params: Params, name: str, *, required: bool, max_len: int = 200,
          default: str | None = None) -> str | None: ...
def _text(params: Params, name: str, *, required: bool = True, max_len: int = 200,
          default: str | None = None) -> str | None:
    """A text parameter, trimmed; refused when empty (if required), too long, holding
    control characters or direction overrides (a terminal would obey them; ``note``
    and ``reason`` may hold line feeds and tabs) or a bank card number."""
    value = _p(params, name, str, required=required)
    if value is None:
        return default
    value = value.strip()
    if required and not value:
        raise ApiError(INVALID_PARAMS, f"The parameter {name!r} is empty.",
                       {"param": name, "reason": "empty"})
    if len(value) > max_len:
        raise ApiError(INVALID_PARAMS, f"The parameter {name!r} is too long (at most {max_len}).",
                       {"param": name, "reason": "too_long", "max_chars": max_len})
    bad = unsafe_char(value, multiline=name in _MULTILINE_PARAMS)
    if bad is not None:
        raise ApiError(INVALID_PARAMS, f"The parameter {name!r} holds a control character "
                       f"({describe(bad)}); please type plain text.",
                       {"param": name, "reason": "control_character"})
    if name not in _NO_CARD_SCAN and not name.endswith("_id") \
            and find_card_data(value) is not None:
        raise ApiError(INVALID_PARAMS, CARD_IN_TEXT.format(what=name.replace("_", " ")),
                       {"param": name, "reason": "card_number"})
    return value


def _amount(params: Params, name: str = "amount", *, allow_zero: bool = False) -> int:
    value = _p(params, name, int)
    if value < 0 or (value == 0 and not allow_zero) or value > 10**12:
        raise ApiError(INVALID_PARAMS, f"The {name} must be a positive whole number of minor "
                       "units.", {"param": name, "reason": "bad_amount"})
    return value


def _parse_time(value: object, name: str) -> datetime:
    if not isinstance(value, str):
        raise ApiError(INVALID_PARAMS, f"The parameter {name!r} must be a time (RFC 3339).",
                       {"param": name, "reason": "bad_time"})
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ApiError(INVALID_PARAMS, f"The parameter {name!r} is not a valid time.",
                       {"param": name, "reason": "bad_time"}) from exc
    if at.tzinfo is None:
        raise ApiError(INVALID_PARAMS, f"The time {name!r} needs an offset (e.g. +01:00).",
                       {"param": name, "reason": "time_without_offset"})
    return at


def _parse_date(value: object, name: str = "date") -> date:
    if not isinstance(value, str):
        raise ApiError(INVALID_PARAMS, f"The parameter {name!r} must be a date (YYYY-MM-DD).",
                       {"param": name, "reason": "bad_date"})
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ApiError(INVALID_PARAMS, f"The parameter {name!r} is not a valid date.",
                       {"param": name, "reason": "bad_date"}) from exc


def _sentence(text: str) -> str:
    """A message as a sentence: capital first letter, full stop at the end."""
    text = text.strip()
    if text and text[0].islower():
        text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None




def code_token(text: str) -> str:
    """``code:`` + the scanned text, trimmed (protocol.md): ``agent.carddata.tokens``.

    Raises CardDataError for text a code may not hold (control characters, a bank
    card number or track data).
    """
    from agent.carddata import tokens

    return tokens.code_token(text)


def tel_token(phone: str, country: str) -> str:
    """``tel:`` + E.164 form (``agent.carddata.tokens``; a card number is refused)."""
    from agent.carddata import tokens

    return tokens.tel_token(phone, country)


CARD_AS_CODE = ("This looks like a bank card number; it cannot be used as a code. Tap or "
                "swipe the card instead.")
CARD_AS_PHONE = "This looks like a bank card number, not a phone number."
CARD_AS_IDENTIFIER = ("This looks like a bank card number; it cannot be used as an identifier. "
                 "Tap or swipe the card instead.")


def _checked_token(token: object, param: str = "token") -> str:
    """An identifier token a client sends, refused when malformed or holding card data.

    ``pan:``/``nid:`` are keyed hashes; ``code:``, ``nfc:`` and ``tel:`` carry what
    was typed or read, so they are scanned for card numbers and track data.
    """
    from agent.carddata import tokens

    if not isinstance(token, str) or ":" not in token or len(token) > 600:
        raise ApiError(INVALID_PARAMS, "The token is not a valid identifier token.",
                       {"param": param})
    kind, _, rest = token.partition(":")
    if kind == "code":
        try:
            return code_token(rest)
        except ClubtermError as exc:  # CardDataError
            message = CARD_AS_CODE if str(exc) == tokens.CARD_IN_CODE_MESSAGE else \
                _sentence(f"The code cannot be used: {exc}")
            raise ApiError(INVALID_PARAMS, message, {"param": param}) from exc
    try:
        tokens.token_kind(token)
    except ClubtermError as exc:  # CardDataError
        raise ApiError(INVALID_PARAMS, "The token is not a valid identifier token.",
                       {"param": param}) from exc
    if kind == "tel" and find_card_data(rest, min_digits=tokens.PHONE_CARD_MIN_DIGITS):
        raise ApiError(INVALID_PARAMS, CARD_AS_PHONE, {"param": param})
    if kind == "nfc" and find_card_data(rest):
        raise ApiError(INVALID_PARAMS, CARD_AS_IDENTIFIER, {"param": param})
    return token

TOO_LARGE = ("This sale is too large for the terminal (a total over 9,007,199,254,740,991 "
              "minor units); split it into several sales.")


def _within_bounds(value: object) -> bool:
    """Every integer in a (quote) value within ±MAX_AMOUNT (JSON readers agree)."""
    todo: list[object] = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, int) and not isinstance(item, bool):
            if not -MAX_AMOUNT <= item <= MAX_AMOUNT:
                return False
        elif isinstance(item, Mapping):
            todo.extend(item.values())
        elif isinstance(item, list | tuple):
            todo.extend(item)
    return True


def basket_lines(params: Params) -> list[dict[str, Any]]:
    """The basket of a quote request (``lines``, or one bare ``amount``), checked."""
    if params.get("lines") is not None and params.get("amount") is not None:
        raise ApiError(INVALID_PARAMS, "Give either lines or amount, not both.")
    if params.get("amount") is not None:
        return [{"sku": None, "category": None, "qty": 1, "unit_price": _amount(params)}]
    raw = params.get("lines")
    if not isinstance(raw, list) or not raw:
        raise ApiError(INVALID_PARAMS, "Give the basket lines or an amount.",
                       {"param": "lines"})
    if len(raw) > 500:
        raise ApiError(INVALID_PARAMS, "A sale may have at most 500 lines.", {"param": "lines"})
    lines = []
    total = 0
    for i, line in enumerate(raw):
        if not isinstance(line, dict):
            raise ApiError(INVALID_PARAMS, f"Basket line {i + 1} is not an object.",
                           {"param": "lines"})
        qty = line.get("qty", 1)
        price = line.get("unit_price")
        if (isinstance(qty, bool) or not isinstance(qty, int) or not 1 <= qty <= 100000
                or isinstance(price, bool) or not isinstance(price, int)
                or not 0 <= price <= 10**12):
            raise ApiError(INVALID_PARAMS, f"Basket line {i + 1} needs a whole quantity and "
                           "a unit price in minor units.", {"param": "lines", "line": i})
        sku, category = line.get("sku"), line.get("category")
        if not (sku is None or isinstance(sku, str)) or not (
                category is None or isinstance(category, str)):
            raise ApiError(INVALID_PARAMS, f"Basket line {i + 1}: sku and category must be "
                           "text.", {"param": "lines", "line": i})
        if len(sku or "") > MAX_LINE_TEXT or len(category or "") > MAX_LINE_TEXT:
            raise ApiError(INVALID_PARAMS, f"Basket line {i + 1}: sku and category may have "
                           f"at most {MAX_LINE_TEXT} characters.",
                           {"param": "lines", "line": i, "max_chars": MAX_LINE_TEXT})
        lines.append({"sku": sku, "category": category, "qty": qty, "unit_price": price})
        total += qty * price
    if total > MAX_AMOUNT:
        raise ApiError(INVALID_PARAMS, TOO_LARGE, {"param": "lines",
                                                    "reason": "amount_too_large",
                                                    "max": MAX_AMOUNT})
    return lines


def _promotion_params(params: Params) -> dict[str, list[str]]:
    """``codes`` and ``rewards`` of a quote request (issue 21), checked."""
    out: dict[str, list[str]] = {}
    for name in ("codes", "rewards"):
        value = params.get(name)
        if value is None:
            continue
        if (not isinstance(value, list) or len(value) > 10
                or not all(isinstance(v, str) and 0 < len(v) <= 64 for v in value)):
            raise ApiError(INVALID_PARAMS, f"{name} must be a list of at most 10 texts of up "
                           "to 64 characters.", {"param": name})
        out[name] = list(value)
    return out


_REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def request_id_param(params: Params) -> str | None:
    """(1.3) A client's idempotency key ``request_id`` (1–64 of ``A-Za-z0-9_-``), or
    None when not given: a retry with it answers what was recorded, never a second."""
    request_id = params.get("request_id")
    if request_id is None:
        return None
    if not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id):
        raise ApiError(INVALID_PARAMS, "request_id must be 1 to 64 letters, digits, "
                       "'-' or '_'.", {"param": "request_id", "reason": "bad_param"})
    return request_id

