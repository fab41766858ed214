"""The staff list's pure core: parsing, limits, permissions (table tests, no I/O)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.offline_queue.pinhash import hash_pin, verify_pin
from agent.rules.envelope import sign_payload
from agent.staff import permissions as perm
from agent.staff.staff_list import (
    StaffListRefused,
    accept_staff_list,
    parse_staff_list,
    pin_to_stored,
    stored_to_pin,
)

KEY = Ed25519PrivateKey.generate()
TRUSTED = {"club-1": KEY.public_key()}
PIN = stored_to_pin(hash_pin("1234", log2_n=10))


def body(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"kind": "staff_list", "club_id": "acme", "merchant_id": "M-7",
                           "version": 2, "staff": [
                               {"staff_id": "1", "name": "Mina", "groups": ["cashier"],
                                "pin": PIN, "badges": ["nfc:04AA01"]}]}
    doc.update(over)
    return doc


def signed(doc: dict[str, Any]) -> dict[str, str]:
    return sign_payload(json.dumps(doc).encode(), KEY)


def test_pin_round_trips_through_the_wire_form() -> None:
    stored = pin_to_stored(PIN, "x")
    assert stored is not None and verify_pin("1234", stored) and not verify_pin("4321", stored)


@pytest.mark.parametrize("change, reason, fragment", [
    ({"kind": "rules"}, "malformed", "not a staff list"),
    ({"staff": [{"staff_id": "1", "name": "M", "groups": ["nope"], "pin": PIN}]},
     "malformed", "not defined"),
    ({"staff": [{"staff_id": "1", "name": "M", "groups": ["cashier"],
                 "pin": {**PIN, "n": 1 << 24}}]}, "malformed", "power of two"),
    ({"staff": [{"staff_id": "1", "name": "M", "groups": ["cashier"],
                 "pin": {**PIN, "n": 1 << 17, "r": 16}}]}, "malformed", "MiB"),
    ({"staff": [{"staff_id": "1", "name": "M", "groups": ["cashier"], "pin": None,
                 "badges": ["nfc:4111111111111111"]}]}, "malformed", "card number"),
    ({"staff": [{"staff_id": "1", "name": "M", "groups": ["cashier"], "pin": None,
                 "badges": ["04AA01"]}]}, "malformed", "not a token"),
    ({"staff": [{"staff_id": "1", "name": "M", "groups": ["cashier"], "pin": None,
                 "badges": ["tel:+989121234567"]}]}, "malformed", "nfc: or pan:"),
    ({"staff": [{"staff_id": "1", "name": "M", "groups": ["cashier"], "pin": None,
                 "badges": []}]}, "malformed", "PIN or a badge"),
    ({"staff": [{"staff_id": "1", "name": "M", "groups": ["cashier"], "pin": PIN}] * 2},
     "malformed", "twice"),
    ({"groups": {f"g{i}": {"permissions": {}} for i in range(300)}}, "too_many", "groups"),
])
def test_bad_lists_are_refused_with_a_reason(change: dict[str, Any], reason: str,
                                             fragment: str) -> None:
    with pytest.raises(StaffListRefused, match=fragment) as err:
        parse_staff_list(json.dumps(body(**change)).encode())
    assert err.value.reason == reason


def test_acceptance_checks_signature_club_merchant_and_version_in_order() -> None:
    env = signed(body())
    assert accept_staff_list(env, TRUSTED, club="acme", merchant="M-7",
                             current_version=1).version == 2
    tampered = dict(env, payload=base64.b64encode(json.dumps(body(version=9)).encode())
                    .decode())
    for envelope, kwargs, reason in [
        (tampered, {}, "bad_signature"),
        (dict(env, key_id="other"), {}, "unknown_key"),
        (env, {"club": "zeta"}, "foreign_club"),
        (env, {"merchant": "M-8"}, "foreign_merchant"),
        (env, {"current_version": 2}, "stale"),
    ]:
        args: dict[str, Any] = {"club": "acme", "merchant": "M-7", "current_version": 1,
                                **kwargs}
        with pytest.raises(StaffListRefused) as err:
            accept_staff_list(envelope, TRUSTED, **args)
        assert err.value.reason == reason


def test_union_of_groups_and_roles() -> None:
    doc = body(groups={"refunder": {"permissions": {"refund": ["add"], "later": ["view"],
                                                    "sale": ["fly"]}}},
               staff=[{"staff_id": "7", "name": "Two", "groups": ["cashier", "refunder"],
                       "pin": PIN}])
    staff_list = parse_staff_list(json.dumps(doc).encode())
    granted = staff_list.permissions_of(staff_list.staff[0])
    assert perm.REFUND in granted and perm.SELL in granted and perm.STAFF_ADD not in granted
    assert set(staff_list.ignored) == {"later", "sale.fly"}
    assert perm.role_of(["refunder"], frozenset({perm.REFUND})) == "manager"
    assert perm.role_of(["x"], frozenset({perm.SELL})) == "cashier"
    assert perm.role_of(["cashier", "manager"], frozenset()) == "manager"
    # The default groups keep what the roles could do before permissions.
    assert perm.REFUND not in perm.DEFAULT_GROUPS["cashier"]
    assert perm.SELL not in perm.DEFAULT_GROUPS["technician"]
    assert perm.as_table(perm.DEFAULT_GROUPS["technician"]) == {
        "clock": ["add"], "report": ["view"], "settings": ["view", "edit"]}
