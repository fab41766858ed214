"""sale.commit with split tenders (protocol 1.1) against the real agent: what is
recorded, what a v1 club reads in `payment`, change, refusals, cash-up by tender."""

from __future__ import annotations

from typing import Any

from agent.rules.tenders import TenderRefused, settle
from tests.agent.localapi.harness import Harness, run
from tests.agent.localapi.test_methods import expect


async def _quote(h: Harness, amount: int) -> str:
    q = await h.client().call("sale.quote", {"amount": amount})
    return str(q["quote_id"])


def _event(h: Harness, sale_id: str) -> dict[str, Any]:
    return next(e for e in h.outbox() if e["id"] == sale_id)


def test_split_tenders_change_and_v1_payment() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        s = await h.login()
        # Card 30.00 + cash 50.00 handed over for 65.00: change 15.00 from the cash.
        r = await c.call("sale.commit", {"quote_id": await _quote(h, 6500), "session": s,
                                         "tenders": [{"method": "card", "amount": 3000},
                                                     {"method": "cash", "amount": 5000}]})
        e = _event(h, r["sale_id"])
        assert e["tenders"] == [{"method": "card", "amount": 3000},
                                {"method": "cash", "amount": 3500}]
        assert e["payment"] == "other"  # mixed: what a v1 club reads
        assert (r["receipt"]["tendered"], r["receipt"]["change_due"]) == (8000, 1500)
        # One voucher: v1 reads "other"; v1's `payment` alone still works.
        r = await c.call("sale.commit", {"quote_id": await _quote(h, 1000), "session": s,
                                         "tenders": [{"method": "voucher", "amount": 1000}]})
        assert _event(h, r["sale_id"])["payment"] == "other"
        r = await c.call("sale.commit", {"quote_id": await _quote(h, 700), "session": s,
                                         "payment": "card"})
        e = _event(h, r["sale_id"])
        assert (e["payment"], e["tenders"]) == ("card", [{"method": "card", "amount": 700}])
        summary = await c.call("day.summary", {})
        assert summary["by_tender"]["card"] == {"count": 2, "payable": 3700}
        assert summary["by_tender"]["cash"] == {"count": 1, "payable": 3500}
        assert summary["by_tender"]["voucher"] == {"count": 1, "payable": 1000}
        assert summary["cash"]["sales"] == 3500
    run(scenario)


def test_tenders_that_cannot_pay_are_refused_with_reasons_and_the_quote_stays() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        s = await h.login()
        quote_id = await _quote(h, 2000)
        base = {"quote_id": quote_id, "session": s}
        for tenders, reason in [
                ([{"method": "card", "amount": 1999}], "tenders_short"),
                ([{"method": "card", "amount": 2500}], "tenders_over"),
                ([{"method": "cash", "amount": 100}, {"method": "card", "amount": 2500}],
                 "tenders_over"),
                ([{"method": "bitcoin", "amount": 2000}], "bad_method"),
                ([{"method": "cash", "amount": -5}], "bad_tenders"),
                ([{"method": "cash", "amount": 1.5}], "bad_tenders"),
                ([], "bad_tenders"), ("cash", "bad_tenders"),
                ([{"method": "cash", "amount": 250}] * 9, "bad_tenders")]:
            err = await expect(-32602, c.call("sale.commit", {**base, "tenders": tenders}))
            assert isinstance(err.data, dict) and err.data["reason"] == reason, tenders
        assert not [e for e in h.outbox() if e["type"] == "sale"]
        err = await expect(-32602, c.call("sale.commit", {**base, "payment": "iou"}))
        assert isinstance(err.data, dict) and err.data["reason"] == "bad_method"
        r = await c.call("sale.commit", {**base, "tenders": [
            {"method": "cash", "amount": 1000}, {"method": "cash", "amount": 1000}]})
        assert _event(h, r["sale_id"])["tenders"] == [{"method": "cash", "amount": 2000}]
        # A retry of the commit with other tenders gets the first answer.
        again = await c.call("sale.commit", {**base, "payment": "card"})
        assert again["sale_id"] == r["sale_id"]
    run(scenario)


def test_settle_takes_change_from_the_last_cash_and_never_more_than_the_cash() -> None:
    s = settle([("cash", 500), ("card", 1000), ("cash", 2000)], 3000)
    # One row per method, in the order first paid: cash 500 + (2000 − 500 change).
    assert s.tenders == (("cash", 2000), ("card", 1000))
    assert (s.tendered, s.change_due, s.payment) == (3500, 500, "other")
    assert sum(a for _m, a in s.tenders) == 3000
    try:
        settle([("card", 10)], 0)
    except TenderRefused as exc:
        assert exc.reason == "tenders_over"
    else:
        raise AssertionError("a card over a free sale gives no change")
    assert settle([("cash", 0)], 0).tenders == ()
