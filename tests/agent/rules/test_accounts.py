"""(1.3) House accounts, the pure arithmetic (agent/rules/accounts.py): the worked examples
of docs/rules.md "House accounts", and properties of charges and refund reversals."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.rules.accounts import available, charge_refusal, payment_refusal, refund_reversal
from agent.rules.tenders import TenderRefused, settle, tender_account

ACME: dict[str, Any] = {"member_id": "ac-1", "holder": "account", "status": "active",
                        "credit_limit": 500_000, "authorised": ["m-1001", "m-1002"],
                        "identifiers": ["code:ACCT-2001"]}


@pytest.mark.parametrize(("owed", "amount", "buyer", "token", "unsynced", "offline_max",
                          "reason"), [
    # docs/rules.md: owes 1,200.00 of 5,000.00; Sara buys 3,800.00 on it: exactly the limit.
    (120_000, 380_000, "m-1001", None, 0, None, None),
    (120_000, 380_001, "m-1001", None, 0, None, "account_limit"),
    (120_000, 1_000, "m-1003", None, 0, None, "account_not_authorised"),
    (120_000, 1_000, None, None, 0, None, "account_not_authorised"),
    (120_000, 1_000, None, "code:ACCT-2001", 0, None, None),   # the account card
    (120_000, 1_000, "m-1003", "code:CLUB-1003", 0, None, "account_not_authorised"),
    # Offline with 200.00 allowed unsynced: 150.00 charged already, 50.00 more fits.
    (120_000, 5_000, "m-1002", None, 15_000, 20_000, None),
    (120_000, 5_001, "m-1002", None, 15_000, 20_000, "account_offline_limit"),
])
def test_worked_examples(owed: int, amount: int, buyer: str | None, token: str | None,
                         unsynced: int, offline_max: int | None, reason: str | None) -> None:
    refusal = charge_refusal(ACME, owed, amount, buyer=buyer, token=token, unsynced=unsynced,
                             offline_max=offline_max)
    assert (refusal.reason if refusal else None) == reason


def test_closed_unknown_and_not_an_account() -> None:
    assert charge_refusal({**ACME, "status": "closed"}, 0, 1, buyer="m-1001",
                          token=None).reason == "account_closed"  # type: ignore[union-attr]
    assert charge_refusal(None, 0, 1, buyer="m-1001",
                          token=None).reason == "account_unknown"  # type: ignore[union-attr]
    person = {"member_id": "m-1001", "balances": {"points": 5}}
    assert charge_refusal(person, 0, 1, buyer="m-1001",
                          token=None).reason == "account_unknown"  # type: ignore[union-attr]
    # A malformed limit is no credit at all.
    assert charge_refusal({**ACME, "credit_limit": "lots"}, 0, 1, buyer="m-1001",
                          token=None).reason == "account_limit"  # type: ignore[union-attr]
    assert payment_refusal(ACME, 100, 101).reason == "account_overpaid"  # type: ignore[union-attr]
    assert payment_refusal(ACME, 100, 100) is None


def test_refund_reversal_examples() -> None:
    # Sale 30.00, 25.00 on account: a line of 10.00 back gives 10.00 to the account,
    # the rest (20.00 payable) only the 15.00 left of the charge.
    assert refund_reversal(2500, 0, 1000) == 1000
    assert refund_reversal(2500, 1000, 2000) == 1500
    assert refund_reversal(2500, 2500, 500) == 0
    assert refund_reversal(2500, 1000, None) == 1500  # a whole refund: what is left
    # The account was paid off since the sale: it is not put in credit.
    assert refund_reversal(2500, 0, None, owed=300) == 300
    assert refund_reversal(2500, 0, 1000, owed=0) == 0


@given(st.integers(0, 10**9), st.lists(st.integers(0, 10**8), max_size=12))
def test_reversals_never_give_back_more_than_charged(charged: int, parts: list[int]) -> None:
    back = 0
    for payable in parts:
        give = refund_reversal(charged, back, payable)
        assert 0 <= give <= payable
        back += give
    back += refund_reversal(charged, back, None)
    assert back == charged


@given(st.integers(0, 10**9), st.integers(0, 10**9), st.integers(1, 10**9))
def test_a_charge_passes_exactly_when_it_fits(limit: int, owed: int, amount: int) -> None:
    account = {**ACME, "credit_limit": limit}
    refusal = charge_refusal(account, owed, amount, buyer="m-1001", token=None)
    assert (refusal is None) == (owed + amount <= limit)
    assert available(account, owed) == max(0, limit - owed)


@given(st.integers(1, 10**6), st.integers(0, 10**6), st.integers(0, 10**6))
def test_settlement_on_account_never_gives_change_from_it(payable: int, on_account: int,
                                                          cash: int) -> None:
    raw = [{"method": "account", "amount": on_account, "account_id": "ac-1"},
           {"method": "cash", "amount": cash}]
    try:
        settled = settle([("account", on_account), ("cash", cash)], payable)
    except TenderRefused:
        assert on_account + cash < payable or on_account > payable
        return
    assert tender_account(raw) == "ac-1"
    assert settled.on_account() + dict(settled.tenders).get("cash", 0) == payable
    assert settled.on_account() == on_account
