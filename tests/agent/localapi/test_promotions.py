"""Issue 21 through the local API: limits and single-use codes hold across sales at
this terminal (its own events count), and the new sale keys are recorded."""

from __future__ import annotations

import json

import pytest

from agent.errors import ApiError
from agent.rules import parse_bundle
from tests.agent.localapi.harness import Harness, run
from tests.agent.rules.conftest import spec_bundle

RULES = [
    {"id": "welcome-5", "kind": "discount", "when": {"once_per_member": True},
     "then": {"amount": 500}},
    {"id": "vip-once", "kind": "discount", "when": {"anonymous": True, "codes": ["VIP-1"],
                                                    "single_use": True},
     "then": {"amount": 300}},
    {"id": "next", "kind": "coupon", "when": {}, "then": {"for_rule": "welcome-5",
                                                          "prefix": "NX-"}},
    {"id": "fee", "kind": "fee", "when": {"anonymous": True}, "then": {"amount": 10}},
]


def test_once_per_member_and_single_use_code_hold_at_this_terminal() -> None:
    async def scenario(h: Harness) -> None:
        h.bundle = parse_bundle(json.dumps(spec_bundle(rules=RULES)))
        c = h.client()
        session = await h.login()
        q = await c.call("sale.quote", {"amount": 5000, "token": "nfc:04A1B2",
                                        "codes": ["vip-1"]})
        assert q["discounts"] == [{"rule": "vip-once", "amount": 300},
                                  {"rule": "welcome-5", "amount": 500}]
        assert q["uses"] == [{"rule": "welcome-5", "amount": 500}]
        assert q["coupons_issued"][0]["code"].startswith("NX-")
        r = await c.call("sale.commit", {"quote_id": q["quote_id"], "payment": "cash",
                                         "session": session})
        # The voucher for the next order is on the receipt, to print.
        assert r["receipt"]["coupons_issued"] == q["coupons_issued"]
        ev = h.outbox()[0]
        assert ev["uses"] == q["uses"] and ev["fees"] == [{"rule": "fee", "amount": 10}]
        assert ev["codes_used"] == [{"rule": "vip-once", "code": "VIP-1", "single_use": True}]
        # Second sale: the member used welcome-5 (pending here), the code is spent.
        again = await c.call("sale.quote", {"amount": 5000, "token": "nfc:04A1B2",
                                            "codes": ["VIP-1"]})
        assert again["discounts"] == []
        why = {e["rule"]: e.get("why") for e in again["explain"] if "rule" in e}
        assert why["welcome-5"] == "max_per_member" and why["vip-once"] == "codes"
        # A walk-in with the same code at this terminal: refused too.
        anon = await c.call("sale.quote", {"amount": 5000, "codes": ["VIP-1"]})
        assert anon["discounts"] == []
        # A sale without issue-21 rows keeps version 1's keys only.
        h.bundle = parse_bundle(json.dumps(spec_bundle()))
        plain = await c.call("sale.quote", {"amount": 5000, "token": "nfc:04A1B2"})
        await c.call("sale.commit", {"quote_id": plain["quote_id"], "payment": "cash",
                                     "session": session})
        assert not {"uses", "fees", "codes_used"} & set(h.outbox()[-1])
    run(scenario)


@pytest.mark.parametrize("codes", ["VIP-1", ["x" * 65], [1], ["a"] * 11])
def test_bad_codes_are_refused_with_a_clear_message(codes: object) -> None:
    async def scenario(h: Harness) -> None:
        with pytest.raises(ApiError) as info:
            await h.client().call("sale.quote", {"amount": 100, "codes": codes})
        assert info.value.code == -32602 and "codes must be a list" in str(info.value)
    run(scenario)
