"""Validating one rule of a bundle: its ``when`` (conditions) and ``then`` (effect).

A known key with a wrong type rejects the whole bundle, with a message naming the
rule and the key. A rule with an unknown condition key, effect key or kind is kept
but never applied; its ``unknown`` field says which key.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from typing import Any

from agent.errors import RulesError
from agent.rules.rule import (
    CONDITION_KEYS,
    EFFECT_KEYS,
    KINDS,
    PERIODS,
    WEEKDAYS,
    Rule,
    normalise_code,
)

_HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$|^24:00$")
_BIN = re.compile(r"^[0-9]{6}$")


class Checker:
    """Type checks that raise a RulesError naming where the problem is."""

    __slots__ = ("where",)

    def __init__(self, where: str):
        self.where = where

    def fail(self, key: str, message: str) -> RulesError:
        return RulesError(f"{self.where}: {key!r} {message}")

    def int_(self, key: str, value: object, *, minimum: int | None = 0,
             maximum: int | None = None) -> int:
        if type(value) is not int:
            raise self.fail(key, f"must be a whole number, not {json.dumps(value)}")
        if minimum is not None and value < minimum:
            raise self.fail(key, f"must be at least {minimum}, not {value}")
        if maximum is not None and value > maximum:
            raise self.fail(key, f"must be at most {maximum}, not {value}")
        return value

    def str_(self, key: str, value: object) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"must be a non-empty string, not {json.dumps(value)}")
        return value

    def bool_(self, key: str, value: object) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, not {json.dumps(value)}")
        return value

    def str_list(self, key: str, value: object) -> list[str]:
        if type(value) is not list or not all(type(v) is str for v in value):
            raise self.fail(key, f"must be a list of strings, not {json.dumps(value)}")
        return value

    def obj(self, key: str, value: object) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(key, f"must be an object, not {json.dumps(value)}")
        return value


def parse_time(text: str, check: Checker, key: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise check.fail(key, f"must be an RFC 3339 time, not {text!r}") from None
    if value.tzinfo is None:
        raise check.fail(key, f"must carry a UTC offset, not {text!r}")
    return value


def _hhmm(text: str) -> int:
    return int(text[:2]) * 3600 + int(text[3:]) * 60


def _parse_when(rule: Rule, when: Mapping[str, Any], check: Checker,
                tier_ranks: Mapping[str, int]) -> None:
    unknown = [k for k in when if k not in CONDITION_KEYS]
    if unknown:
        rule.unknown = f"it has a condition this terminal does not know: {min(unknown)!r}"
    for key, value in when.items():
        if key == "anonymous":
            rule.anonymous = check.bool_(key, value)
        elif key == "tiers":
            rule.tiers = frozenset(check.str_list(key, value))
        elif key == "min_tier":
            name = check.str_(key, value)
            if name not in tier_ranks:
                raise check.fail(key, f"names tier {name!r}, which the bundle's tiers do not list")
            rule.min_tier, rule.min_tier_rank = name, tier_ranks[name]
        elif key == "groups":
            rule.groups = frozenset(check.str_list(key, value))
        elif key == "weekdays":
            days = check.str_list(key, value)
            for d in days:
                if d not in WEEKDAYS:
                    raise check.fail(key, f"must list days among {', '.join(WEEKDAYS)}, not {d!r}")
            rule.weekdays = frozenset(WEEKDAYS.index(d) for d in days)
        elif key == "hours":
            rule.hours = tuple(_pairs(key, value, check, _HHMM, "HH:MM", _hhmm))
        elif key == "dates":
            pairs = tuple(_pairs(key, value, check, None, "YYYY-MM-DD", dt.date.fromisoformat))
            rule.dates = pairs
        elif key == "birthday":
            if value not in ("day", "month"):
                raise check.fail(key, f"must be \"day\" or \"month\", not {json.dumps(value)}")
            rule.birthday = value
        elif key == "min_gross":
            rule.min_gross = check.int_(key, value)
        elif key == "skus":
            rule.skus = frozenset(check.str_list(key, value))
        elif key == "categories":
            rule.categories = frozenset(check.str_list(key, value))
        elif key == "identified_by":
            rule.identified_by = frozenset(check.str_list(key, value))
        elif key == "bins":
            bins = check.str_list(key, value)
            for b in bins:
                if not _BIN.match(b):
                    raise check.fail(key, f"must list six-digit BINs, not {b!r}")
            rule.bins = frozenset(bins)
        elif key == "min_purchase_count":
            rule.min_purchase_count = check.int_(key, value)
        elif key == "min_spend_30d":
            rule.min_spend_30d = check.int_(key, value)
        elif key == "min_days_since_last_purchase":
            rule.min_days_since_last_purchase = check.int_(key, value)
        elif key == "min_points":
            rule.min_points = check.int_(key, value)
        elif key == "min_spend_days":
            obj = check.obj(key, value)
            if set(obj) != {"days", "amount"}:
                raise check.fail(key, "must be {\"days\": N, \"amount\": A}, not "
                                      f"{json.dumps(value)}")
            rule.min_spend_days = (check.int_(f"{key}.days", obj["days"], minimum=1),
                                   check.int_(f"{key}.amount", obj["amount"]))
        elif key == "bought_within_days":
            rule.bought_within_days = check.int_(key, value)
        elif key == "first_purchase":
            rule.first_purchase = check.bool_(key, value)
        elif key == "purchase_count_every":
            rule.purchase_count_every = check.int_(key, value, minimum=1)
        elif key == "referred":
            rule.referred = check.bool_(key, value)
        elif key == "codes":
            codes = check.str_list(key, value)
            if not codes or not all(c.strip() for c in codes):
                raise check.fail(key, f"must list non-empty codes, not {json.dumps(value)}")
            rule.codes = frozenset(normalise_code(c) for c in codes)
        elif key == "single_use":
            rule.single_use = check.bool_(key, value)
        elif key == "coupon":
            rule.coupon = check.bool_(key, value)
        elif key == "once_per_member":
            if check.bool_(key, value):
                rule.max_per_member = (1, "ever")
        elif key in ("max_per_member", "max_per_store"):
            obj = check.obj(key, value)
            period = obj.get("period", "ever")
            if set(obj) - {"count", "period"} or period not in PERIODS:
                raise check.fail(key, f"must be {{\"count\": N, \"period\": one of "
                                      f"{', '.join(PERIODS)}}}, not {json.dumps(value)}")
            limit = (check.int_(f"{key}.count", obj.get("count")), period)
            if key == "max_per_member":
                rule.max_per_member = limit
            else:
                rule.max_per_store = limit
        elif key == "budget":
            rule.budget = check.int_(key, value)
    if rule.single_use and rule.codes is None and not rule.coupon:
        raise check.fail("single_use", "needs 'codes' (or 'coupon') in the same rule")
    rule.limited = (rule.max_per_member is not None or rule.max_per_store is not None
                    or rule.budget is not None)
    rule.takes_code = rule.coupon or rule.codes is not None



def _pairs(key: str, value: object, check: Checker, pattern: re.Pattern[str] | None,
           shape: str, convert: Any) -> list[tuple[Any, Any]]:
    def bad() -> RulesError:
        return check.fail(key, f"must be a [\"{shape}\", \"{shape}\"] pair or a list of them, "
                               f"not {json.dumps(value)}")

    if not isinstance(value, list):
        raise bad()
    if len(value) == 2 and all(isinstance(v, str) for v in value):
        # A single pair, as version 1 of the protocol writes it ("dates":
        # ["2027-03-20", "2027-04-02"]): the same as a list holding that pair. It
        # cannot be mistaken for a list of pairs, whose items are lists.
        value = [value]
    out = []
    for pair in value:
        if (not isinstance(pair, list) or len(pair) != 2
                or not isinstance(pair[0], str) or not isinstance(pair[1], str)):
            raise bad()
        try:
            if pattern is not None and not (pattern.match(pair[0]) and pattern.match(pair[1])):
                raise ValueError
            a, b = convert(pair[0]), convert(pair[1])
        except ValueError:
            raise bad() from None
        if shape != "HH:MM" and b < a:
            raise check.fail(key, f"range {pair} ends before it starts")
        out.append((a, b))
    return out


def _parse_then(rule: Rule, then: Mapping[str, Any], check: Checker) -> None:
    known = EFFECT_KEYS[rule.kind]
    unknown = [k for k in then if k not in known]
    if unknown and rule.unknown is None:
        rule.unknown = f"it has an effect this terminal does not know: {min(unknown)!r}"
    kind = rule.kind

    def need(key: str) -> object:
        if key not in then:
            raise check.fail(f"then.{key}", f"is required for a {kind} rule")
        return then[key]

    def one_of(*keys: str) -> str:
        present = [k for k in keys if k in then]
        if len(present) != 1:
            raise check.fail("then", f"must have exactly one of "
                                     f"{' and '.join(repr(k) for k in keys)}")
        return present[0]

    def opt(key: str, minimum: int = 0) -> int | None:
        return check.int_(f"then.{key}", then[key], minimum=minimum) if key in then else None

    if kind == "discount":
        units = [k for k in ("buy", "cheapest") if k in then]
        if units:
            # Unit discounts: the cheapest units of the target lines, percent_bps off
            # (default: free).
            if len(units) > 1 or "amount" in then or "per_unit" in then:
                raise check.fail("then", "'buy'/'get' and 'cheapest' take only "
                                         "'percent_bps' and 'max_amount'")
            if "buy" in then:
                rule.buy = check.int_("then.buy", then["buy"], minimum=1)
                rule.get = check.int_("then.get", need("get"), minimum=1)
            else:
                rule.cheapest = check.int_("then.cheapest", then["cheapest"], minimum=1)
            rule.percent_bps = check.int_("then.percent_bps", then.get("percent_bps", 10000),
                                          maximum=10000)
        else:
            if "get" in then:
                raise check.fail("then.get", "needs 'buy'")
            if one_of("percent_bps", "amount") == "percent_bps":
                rule.percent_bps = check.int_("then.percent_bps", then["percent_bps"],
                                              maximum=10000)
            else:
                rule.amount = check.int_("then.amount", then["amount"])
            if "per_unit" in then:
                rule.per_unit = check.bool_("then.per_unit", then["per_unit"])
                if rule.per_unit and rule.amount is None:
                    raise check.fail("then.per_unit", "needs 'amount' (an amount off each "
                                                      "unit)")
        rule.max_amount = opt("max_amount")
    elif kind == "points":
        how = one_of("per_spend", "per_unit", "per_visit")
        if how == "per_spend":
            rule.per_spend = check.int_("then.per_spend", then["per_spend"], minimum=1)
            rule.points = check.int_("then.points", need("points"))
        else:
            if "points" in then:
                raise check.fail("then.points", f"goes with 'per_spend', not {how!r}")
            value = check.int_(f"then.{how}", then[how])
            if how == "per_unit":
                rule.per_unit = value
            else:
                rule.per_visit = value
        rule.max_points = opt("max_points")
    elif kind == "multiplier":
        rule.bps = check.int_("then.bps", need("bps"), minimum=10000)
    elif kind in ("credit", "referral"):
        if one_of("percent_bps", "amount") == "percent_bps":
            rule.percent_bps = check.int_("then.percent_bps", then["percent_bps"])
        else:
            rule.amount = check.int_("then.amount", then["amount"])
        rule.credit_kind = check.str_("then.kind", need("kind"))
        rule.expires_days = opt("expires_days")
        rule.max_amount = opt("max_amount")
    elif kind == "lottery":
        rule.per_spend = check.int_("then.per_spend", need("per_spend"), minimum=1)
        rule.entries = check.int_("then.entries", need("entries"))
    elif kind == "fee":
        if "percent_bps" not in then and "amount" not in then:
            raise check.fail("then", "must have 'percent_bps', 'amount' or both")
        rule.percent_bps = opt("percent_bps")
        rule.amount = opt("amount")
        rule.max_amount = opt("max_amount")
    elif kind == "coupon":
        rule.for_rule = check.str_("then.for_rule", need("for_rule"))
        if "prefix" in then:
            rule.prefix = normalise_code(check.str_("then.prefix", then["prefix"]))
        rule.expires_days = opt("expires_days")
    elif kind == "reward":
        rule.cost_points = check.int_("then.cost_points", need("cost_points"), minimum=1)
        rule.name = check.str_("then.name", then.get("name", rule.id))
        rule.cheapest = check.int_("then.units", then.get("units", 1), minimum=1)
        rule.percent_bps = check.int_("then.percent_bps", then.get("percent_bps", 10000),
                                      maximum=10000)


def parse_rule(raw: object, index: int, tier_ranks: Mapping[str, int]) -> Rule:
    if type(raw) is not dict and not isinstance(raw, Mapping):
        raise RulesError(f"rules[{index}]: must be an object")
    rid = raw.get("id")
    if not isinstance(rid, str) or not rid:
        raise RulesError(f"rules[{index}]: 'id' must be a non-empty string, "
                         f"not {json.dumps(rid)}")
    check = Checker(f"rule {rid!r}")
    kind = check.str_("kind", raw.get("kind"))
    priority = check.int_("priority", raw.get("priority", 0), minimum=None)
    exclusive = check.bool_("exclusive", raw.get("exclusive", False))
    rule = Rule(rid, kind, priority, exclusive, raw)
    when = raw.get("when", {})
    if type(when) is not dict:
        when = check.obj("when", when)
    _parse_when(rule, when, check, tier_ranks)
    rule.targets_lines = rule.skus is not None or rule.categories is not None
    if kind not in KINDS:
        rule.unknown = f"its kind {kind!r} is unknown to this terminal"
        return rule
    then = raw.get("then", {})
    if type(then) is not dict:
        then = check.obj("then", then)
    _parse_then(rule, then, check)
    return rule

