"""Bundle validation: wrong types reject the whole bundle, naming the rule and key."""

from __future__ import annotations

import json

import pytest

from agent.errors import RulesError
from agent.rules import parse_bundle
from tests.agent.rules.conftest import SPEC_BUNDLE, spec_bundle


def parse(**top):
    return parse_bundle(json.dumps(spec_bundle(**top)).encode())


def one_rule(rule):
    return parse(rules=[rule])


def test_spec_bundle_parses():
    b = parse_bundle(json.dumps(SPEC_BUNDLE).encode())
    assert (b.club, b.merchant, b.version, b.minor_units, b.timezone) == (
        "acme", "M-7", 42, 2, "Europe/Berlin")
    assert b.points is not None and b.points.max_redeem_share_bps == 5000
    assert b.credits is not None and b.credits.accepted == ("credit.club", "credit.merchant:M-7")
    assert [r.id for r in b.by_kind["discount"]] == ["gold10", "coffee-2"]


@pytest.mark.parametrize(("rule", "message"), [
    ({"id": "r", "kind": "discount", "when": {"tiers": "gold"}, "then": {"amount": 1}},
     "rule 'r': 'tiers' must be a list of strings"),
    ({"id": "r", "kind": "discount", "when": {"min_gross": "50"}, "then": {"amount": 1}},
     "rule 'r': 'min_gross' must be a whole number"),
    ({"id": "r", "kind": "discount", "when": {"min_gross": 1.5}, "then": {"amount": 1}},
     "rule 'r': 'min_gross' must be a whole number"),
    ({"id": "r", "kind": "discount", "when": {"anonymous": 1}, "then": {"amount": 1}},
     "rule 'r': 'anonymous' must be true or false"),
    ({"id": "r", "kind": "discount", "when": {"weekdays": ["tuesday"]}, "then": {"amount": 1}},
     "rule 'r': 'weekdays' must list days"),
    ({"id": "r", "kind": "discount", "when": {"hours": ["10:00"]},
      "then": {"amount": 1}}, "rule 'r': 'hours' must be a [\"HH:MM\", \"HH:MM\"] pair"),
    ({"id": "r", "kind": "discount", "when": {"hours": ["10:00", "12:00", "14:00"]},
      "then": {"amount": 1}}, "rule 'r': 'hours' must be a"),
    ({"id": "r", "kind": "discount", "when": {"dates": ["2026-12-02", "2026-12-01"]},
      "then": {"amount": 1}}, "ends before it starts"),
    ({"id": "r", "kind": "discount", "when": {"dates": "2026-12-01"},
      "then": {"amount": 1}}, "rule 'r': 'dates' must be a"),
    ({"id": "r", "kind": "discount", "when": {"hours": [["10:00", "25:00"]]},
      "then": {"amount": 1}}, "rule 'r': 'hours'"),
    ({"id": "r", "kind": "discount", "when": {"dates": [["2026-11-31", "2026-12-01"]]},
      "then": {"amount": 1}}, "rule 'r': 'dates'"),
    ({"id": "r", "kind": "discount", "when": {"dates": [["2026-12-02", "2026-12-01"]]},
      "then": {"amount": 1}}, "ends before it starts"),
    ({"id": "r", "kind": "discount", "when": {"birthday": "year"}, "then": {"amount": 1}},
     "rule 'r': 'birthday' must be \"day\" or \"month\""),
    ({"id": "r", "kind": "discount", "when": {"bins": ["4111"]}, "then": {"amount": 1}},
     "rule 'r': 'bins' must list six-digit BINs"),
    ({"id": "r", "kind": "discount", "when": {"min_tier": "platinum"}, "then": {"amount": 1}},
     "rule 'r': 'min_tier' names tier 'platinum'"),
    ({"id": "r", "kind": "discount", "when": [], "then": {"amount": 1}},
     "rule 'r': 'when' must be an object"),
    ({"id": "r", "kind": "discount", "when": {}, "then": {"amount": -1}},
     "rule 'r': 'then.amount' must be at least 0"),
    ({"id": "r", "kind": "discount", "when": {}, "then": {"percent_bps": 10001}},
     "rule 'r': 'then.percent_bps' must be at most 10000"),
    ({"id": "r", "kind": "discount", "when": {}, "then": {"percent_bps": 1, "amount": 1}},
     "exactly one of"),
    ({"id": "r", "kind": "discount", "when": {}, "then": {}}, "exactly one of"),
    ({"id": "r", "kind": "points", "when": {}, "then": {"per_spend": 0, "points": 1}},
     "rule 'r': 'then.per_spend' must be at least 1"),
    ({"id": "r", "kind": "points", "when": {}, "then": {"per_spend": 100}},
     "rule 'r': 'then.points' is required"),
    ({"id": "r", "kind": "multiplier", "when": {}, "then": {"bps": 9999}},
     "rule 'r': 'then.bps' must be at least 10000"),
    ({"id": "r", "kind": "credit", "when": {}, "then": {"percent_bps": 100}},
     "rule 'r': 'then.kind' is required"),
    ({"id": "r", "kind": "lottery", "when": {}, "then": {"per_spend": 100, "entries": "1"}},
     "rule 'r': 'then.entries' must be a whole number"),
    ({"id": "r", "kind": "discount", "priority": "high", "when": {}, "then": {"amount": 1}},
     "rule 'r': 'priority' must be a whole number"),
    ({"id": "r", "kind": "discount", "exclusive": "yes", "when": {}, "then": {"amount": 1}},
     "rule 'r': 'exclusive' must be true or false"),
    ({"kind": "discount", "when": {}, "then": {"amount": 1}}, "rules[0]: 'id'"),
    ({"id": "r", "kind": 3}, "rule 'r': 'kind' must be a non-empty string"),
    # Known keys of a rule with an unknown condition are still checked.
    ({"id": "r", "kind": "discount", "when": {"new_key": 1, "tiers": 5},
      "then": {"amount": 1}}, "rule 'r': 'tiers'"),
])
def test_wrong_type_rejects_the_bundle_naming_rule_and_key(rule, message):
    with pytest.raises(RulesError) as err:
        one_rule(rule)
    assert message in str(err.value)


@pytest.mark.parametrize(("top", "message"), [
    ({"version": "42"}, "bundle: 'version' must be a whole number"),
    ({"club": None}, "bundle: 'club' is missing"),
    ({"expires_at": "tomorrow"}, "bundle: 'expires_at' must be an RFC 3339 time"),
    ({"expires_at": "2026-12-20T08:00:00"}, "must carry a UTC offset"),
    ({"timezone": "Mars/Olympus"}, "bundle: 'timezone' is not a time zone"),
    ({"points": {"value": 0}}, "bundle points: 'value' must be at least 1"),
    ({"points": {"min_redeem": 1}}, "bundle points: 'value' is missing"),
    ({"credits": {"accepted": "credit.club"}}, "bundle credits: 'accepted' must be a list"),
    ({"offline": {"max_pending": -1}}, "bundle offline: 'max_pending' must be at least 0"),
    ({"rules": {}}, "bundle: 'rules' must be a list"),
    ({"tiers": [{"id": "gold"}]}, "bundle tiers[0]: 'rank' must be a whole number"),
])
def test_wrong_top_level_rejects(top, message):
    with pytest.raises(RulesError) as err:
        parse(**top)
    assert message in str(err.value)


def test_duplicate_rule_ids_reject():
    rule = {"id": "r", "kind": "discount", "when": {}, "then": {"amount": 1}}
    with pytest.raises(RulesError, match="'r': 'id' is used by more than one rule"):
        parse(rules=[rule, dict(rule)])


def test_not_json_or_not_an_object():
    with pytest.raises(RulesError, match="not valid JSON"):
        parse_bundle(b"{")
    with pytest.raises(RulesError, match="must be a JSON object"):
        parse_bundle(b"[]")


def test_unknown_keys_keep_the_rule_and_name_the_key():
    b = parse(rules=[{"id": "r", "kind": "discount", "when": {"zodiac": "leo"},
                      "then": {"amount": 1}, "note": "ignored"},
                     {"id": "s", "kind": "voucher", "when": {}, "then": {"whatever": []}}])
    assert "'zodiac'" in (b.rule("r").unknown or "")
    assert "'voucher'" in (b.rule("s").unknown or "")
    assert [r.id for r in b.unknown_kind] == ["s"]


def test_absent_optional_sections():
    b = parse(points=None, credits=None, offline=None, tiers=None, issued_at=None,
              currency=None, minor_units=None)
    assert (b.points, b.credits, b.offline, b.issued_at) == (None, None, None, None)
    assert b.minor_units == 2


def test_local_day_follows_the_club_timezone_and_dst():
    import datetime as dt

    b = parse()
    start, end = b.local_day(dt.datetime(2026, 11, 24, 23, 30, tzinfo=dt.UTC))
    assert start.isoformat() == "2026-11-25T00:00:00+01:00"
    assert (end - start) == dt.timedelta(hours=24)
    start, end = b.local_day(dt.datetime(2026, 10, 25, 12, 0, tzinfo=dt.UTC))
    assert end.astimezone(dt.UTC) - start.astimezone(dt.UTC) == dt.timedelta(hours=25)
    start, end = b.local_day(dt.datetime(2026, 3, 29, 12, 0, tzinfo=dt.UTC))
    assert end.astimezone(dt.UTC) - start.astimezone(dt.UTC) == dt.timedelta(hours=23)
