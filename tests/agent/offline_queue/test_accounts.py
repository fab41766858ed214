"""(1.3) House accounts in the store: a sale on account and its ``account_charge`` are one
write; the account's limit, buyers and status are checked inside it; refunds and
payments change ``owed`` exactly (docs/protocol/club.md "House accounts")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.errors import StorageError
from agent.offline_queue import AccountRefused, Store
from tests.agent.offline_queue.helpers import AT, member_record, sale_body


def account_record(account_id: str = "ac-1", *, limit: int = 10_000, owed: int = 0,
                   authorised: tuple[str, ...] = ("m-1",), status: str = "active",
                   version: int = 1, applied: dict[str, int] | None = None) -> dict[str, Any]:
    return {"member_id": account_id, "holder": "account", "version": version,
            "name": "Acme Ltd", "status": status, "identifiers": ["nfc:AC0001"],
            "balances": {"owed": owed}, "credit_limit": limit,
            "authorised": list(authorised), "applied": applied or {}}


def on_account(body: dict[str, Any], amount: int, account_id: str = "ac-1",
               token: str | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {"method": "account", "amount": amount, "account_id": account_id}
    if token is not None:
        row["identified_by"] = token
    rest = body["payable"] - amount
    body["tenders"] = [row] + ([{"method": "cash", "amount": rest}] if rest else [])
    body["payment"] = "other"
    return body


def fill(store: Store, *records: dict[str, Any]) -> None:
    store.members.import_snapshot([json.dumps(r) for r in records], 1, True)


def owed(store: Store, account_id: str = "ac-1") -> int:
    return store.members.usable_balances(account_id).get("owed", 0)


def types_recorded(store: Store) -> list[str]:
    rows = store.db.execute_sql("SELECT type FROM events ORDER BY seq").fetchall()
    return [str(r[0]) for r in rows]


@pytest.fixture
def acc_store(tmp_path: Path) -> Store:
    s = Store.open(tmp_path / "s.db", "T-0001", "M-7")
    fill(s, member_record("m-1"), member_record("m-2", tokens=("nfc:0002",)), account_record())
    yield s  # type: ignore[misc]
    s.close()


def test_sale_on_account_records_its_charge_in_the_same_write(acc_store: Store) -> None:
    sale = acc_store.outbox.append("sale", on_account(sale_body(payable=3000), 2000), at=AT,
                                   staff_id="s-1", offline=False, check_funds=True)
    rows = acc_store.db.execute_sql(
        "SELECT seq, type, member_id, ref_id, body FROM events ORDER BY seq").fetchall()
    assert [(r[1], r[2]) for r in rows] == [("sale", "m-1"), ("account_charge", "ac-1")]
    charge = json.loads(rows[1][4])
    assert charge["sale_id"] == sale.id and rows[1][3] == sale.id
    assert (charge["amount"], charge["member_id"], charge["account_id"]) == (2000, "m-1", "ac-1")
    assert rows[1][0] == sale.seq + 1
    assert owed(acc_store) == 2000
    # The member's own balances are untouched by the charge.
    assert acc_store.members.usable_balances("m-1").get("owed") is None


def test_unauthorised_buyer_refused_nothing_recorded(acc_store: Store) -> None:
    with pytest.raises(AccountRefused) as err:
        acc_store.outbox.append("sale", on_account(sale_body("m-2", payable=500), 500),
                                at=AT, staff_id=None, offline=False)
    assert err.value.reason == "account_not_authorised"
    assert types_recorded(acc_store) == []
    # An anonymous buyer too — unless the account card was shown.
    with pytest.raises(AccountRefused):
        acc_store.outbox.append("sale", on_account(sale_body(None, payable=500), 500),
                                at=AT, staff_id=None, offline=False)
    with pytest.raises(AccountRefused):  # another account's / a forged token
        acc_store.outbox.append("sale", on_account(sale_body(None, payable=500), 500,
                                                   token="nfc:FORGED"),
                                at=AT, staff_id=None, offline=False)
    acc_store.outbox.append("sale", on_account(sale_body(None, payable=500), 500,
                                               token="nfc:AC0001"),
                            at=AT, staff_id=None, offline=False)
    assert types_recorded(acc_store) == ["sale", "account_charge"]
    assert owed(acc_store) == 500


def test_limit_closed_and_unknown(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db", "T-0001", "M-7")
    fill(store, member_record("m-1"), account_record(limit=1000, owed=700),
         account_record("ac-2", status="closed"))
    with pytest.raises(AccountRefused) as err:
        store.outbox.append("sale", on_account(sale_body(payable=301), 301), at=AT,
                            staff_id=None, offline=False)
    assert err.value.reason == "account_limit"
    assert err.value.params["available"] == 300
    store.outbox.append("sale", on_account(sale_body(payable=300), 300), at=AT,
                        staff_id=None, offline=False)
    assert owed(store) == 1000
    for account, reason in (("ac-2", "account_closed"), ("ac-9", "account_unknown"),
                            ("m-1", "account_unknown")):
        with pytest.raises(AccountRefused) as err:
            store.outbox.append("sale", on_account(sale_body(payable=10), 10, account),
                                at=AT, staff_id=None, offline=False)
        assert err.value.reason == reason
    assert types_recorded(store) == ["sale", "account_charge"]
    store.close()


def test_offline_limit_exact(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db", "T-0001", "M-7")
    fill(store, member_record("m-1"), account_record(limit=10_000, owed=5000))
    outcomes = []
    for _ in range(3):
        try:
            store.outbox.append("sale", on_account(sale_body(payable=400), 400), at=AT,
                                staff_id=None, offline=True, account_offline_max=1000)
            outcomes.append("ok")
        except AccountRefused as exc:
            outcomes.append(exc.reason)
    assert outcomes == ["ok", "ok", "account_offline_limit"]
    # Online the same charge passes: only the credit limit holds.
    store.outbox.append("sale", on_account(sale_body(payable=400), 400), at=AT,
                        staff_id=None, offline=False, account_offline_max=1000)
    assert owed(store) == 5000 + 1200
    store.close()


def test_refunds_give_the_charge_back(acc_store: Store) -> None:
    body = sale_body(payable=3000)
    body["lines"] = [{"sku": "a", "category": None, "qty": 2, "unit_price": 1000},
                     {"sku": "b", "category": None, "qty": 1, "unit_price": 1000}]
    body["gross"] = 3000
    sale = acc_store.outbox.append("sale", on_account(body, 2500), at=AT, staff_id=None,
                                   offline=False)
    assert owed(acc_store) == 2500
    acc_store.outbox.append("refund_lines", {"sale_id": sale.id, "reason": None,
                                             "lines": [{"line": 0, "qty": 1}]},
                            at=AT, staff_id=None, offline=False)
    assert owed(acc_store) == 1500  # its payable (1000) back on account first
    acc_store.outbox.append("refund_lines", {"sale_id": sale.id, "reason": None,
                                             "lines": [{"line": 0, "qty": 1},
                                                       {"line": 1, "qty": 1}]},
                            at=AT, staff_id=None, offline=False)
    assert owed(acc_store) == 0  # never more than was charged (2500, not 3000)
    assert types_recorded(acc_store) == ["sale", "account_charge", "refund_lines",
                                         "account_refund", "refund_lines", "account_refund"]
    sale2 = acc_store.outbox.append("sale", on_account(sale_body(payable=700), 700), at=AT,
                                    staff_id=None, offline=False)
    assert owed(acc_store) == 700
    acc_store.outbox.append("refund", {"sale_id": sale2.id, "reason": "void"}, at=AT,
                            staff_id=None, offline=False)
    assert owed(acc_store) == 0


def test_payment_reduces_owed_and_is_never_a_deposit(acc_store: Store) -> None:
    acc_store.outbox.append("sale", on_account(sale_body(payable=900), 900), at=AT,
                            staff_id=None, offline=False)
    acc_store.outbox.append("account_payment", {"account_id": "ac-1", "amount": 400,
                                                "method": "cash", "note": None},
                            at=AT, staff_id="s-1", offline=False)
    assert owed(acc_store) == 500
    with pytest.raises(AccountRefused) as err:
        acc_store.outbox.append("account_payment", {"account_id": "ac-1", "amount": 501,
                                                    "method": "card"},
                                at=AT, staff_id="s-1", offline=False)
    assert err.value.reason == "account_overpaid"
    assert owed(acc_store) == 500


def test_companion_failing_records_neither(acc_store: Store,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Both or neither: a failure after the sale row, before its charge, rolls back."""
    def boom(*_a: Any, **_k: Any) -> None:
        raise OSError("disk pulled")

    monkeypatch.setattr(acc_store.outbox, "_companion_in_tx", boom)
    seq_before = acc_store.db.meta_int("last_seq")
    with pytest.raises(StorageError):
        acc_store.outbox.append("sale", on_account(sale_body(payable=900), 900), at=AT,
                                staff_id=None, offline=False)
    assert types_recorded(acc_store) == []
    assert acc_store.db.meta_int("last_seq") == seq_before
    assert owed(acc_store) == 0


def test_club_reflecting_the_charge_keeps_owed_exact(acc_store: Store) -> None:
    acc_store.outbox.append("sale", on_account(sale_body(payable=900), 900), at=AT,
                            staff_id=None, offline=False)
    seq = acc_store.db.meta_int("last_seq")
    version = acc_store.members.members_version()
    assert acc_store.members.apply_changes({
        "from_version": version, "to_version": version + 1,
        "members": [account_record(owed=900, version=version + 1,
                                   applied={"T-0001": seq})]})
    assert owed(acc_store) == 900


def test_rejected_sale_drops_its_charge(acc_store: Store) -> None:
    sale = acc_store.outbox.append("sale", on_account(sale_body(payable=900), 900), at=AT,
                                   staff_id=None, offline=False)
    acc_store.outbox.apply_ack([], [(sale.id, "malformed: x")], None)
    assert owed(acc_store) == 0
    # A refund of the refused sale gives nothing back (its charge never counted).
    acc_store.outbox.append("refund", {"sale_id": sale.id, "reason": None}, at=AT,
                            staff_id=None, offline=False)
    assert owed(acc_store) == 0
    assert "account_refund" not in types_recorded(acc_store)


def test_malformed_account_tenders_refused(acc_store: Store) -> None:
    from agent.offline_queue import InvalidEvent

    body = sale_body(payable=900)
    body["tenders"] = [{"method": "account", "amount": 900}]
    with pytest.raises(InvalidEvent):
        acc_store.outbox.append("sale", body, at=AT, staff_id=None, offline=False)
    body["tenders"] = [{"method": "account", "amount": 400, "account_id": "ac-1"},
                       {"method": "account", "amount": 500, "account_id": "ac-1"}]
    with pytest.raises(InvalidEvent):
        acc_store.outbox.append("sale", body, at=AT, staff_id=None, offline=False)
    assert types_recorded(acc_store) == []


def test_a_refund_after_the_account_was_paid_off_does_not_put_it_in_credit(
        acc_store: Store) -> None:
    """Found by the property below: charge 1, pay all 501 owed, refund the sale: the
    account owes 0, not -1 (the 1 goes back to the customer like any refund)."""
    body = sale_body(payable=1)
    sale_id = acc_store.outbox.append("sale", on_account(body, 1), at=AT, staff_id=None,
                                      offline=False).id
    acc_store.outbox.append("account_payment", {"account_id": "ac-1", "amount": owed(acc_store),
                                                "method": "cash"},
                            at=AT, staff_id=None, offline=False)
    acc_store.outbox.append("refund", {"sale_id": sale_id, "reason": None}, at=AT,
                            staff_id=None, offline=False)
    assert owed(acc_store) == 0


def test_owed_stays_within_zero_and_the_limit_whatever_the_order() -> None:
    """Property: any mix of charges, refunds (whole and by line) and payments keeps
    0 <= owed <= credit_limit, and owed is always charges - reversals - payments."""
    import tempfile

    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=30, deadline=None)
    @given(st.lists(st.tuples(st.sampled_from(["charge", "pay", "refund", "line"]),
                              st.integers(1, 6000)), max_size=30))
    def run(ops: list[tuple[str, int]]) -> None:
        with tempfile.TemporaryDirectory() as d:
            store = Store.open(Path(d) / "s.db", "T-0001", "M-7")
            fill(store, member_record("m-1"), account_record(limit=10_000, owed=500))
            sales: list[str] = []
            for op, n in ops:
                try:
                    if op == "charge":
                        body = sale_body(payable=n)
                        body["lines"] = [{"sku": "a", "category": None, "qty": 2,
                                          "unit_price": n // 2},
                                         {"sku": "b", "category": None, "qty": 1,
                                          "unit_price": n % 2}]
                        sales.append(store.outbox.append(
                            "sale", on_account(body, n), at=AT, staff_id=None,
                            offline=False).id)
                    elif op == "pay":
                        store.outbox.append("account_payment", {"account_id": "ac-1",
                                                                "amount": n, "method": "cash"},
                                            at=AT, staff_id=None, offline=False)
                    elif sales:
                        sale_id = sales[n % len(sales)]
                        body = {"sale_id": sale_id, "reason": None} if op == "refund" else \
                            {"sale_id": sale_id, "reason": None, "lines": [{"line": 0,
                                                                            "qty": 1}]}
                        store.outbox.append("refund" if op == "refund" else "refund_lines",
                                            body, at=AT, staff_id=None, offline=False)
                except (AccountRefused, ValueError):
                    pass
                o = owed(store)
                assert 0 <= o <= 10_000
            amounts = {t: sum(int(json.loads(b)["amount"]) for (b,) in store.db.execute_sql(
                "SELECT body FROM events WHERE type = ?", (t,)).fetchall())
                for t in ("account_charge", "account_refund", "account_payment")}
            assert owed(store) == 500 + amounts["account_charge"] - amounts["account_refund"] \
                - amounts["account_payment"]
            store.close()

    run()
