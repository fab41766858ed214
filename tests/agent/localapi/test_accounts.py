"""(1.3) House accounts through the real agent's local API: ``account.status``,
``account.pay`` and paying on account with ``sale.commit`` tenders; refusals with reason
codes and nothing recorded; bad, huge and hostile params."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.agent.localapi.harness import Harness, run
from tests.agent.localapi.test_methods import expect

ACCOUNT = {"member_id": "ac-1", "holder": "account", "version": 11, "name": "Pars Print Co.",
           "status": "active", "identifiers": ["code:ACCT-2001"], "credit_limit": 10_000,
           "authorised": ["m-1"], "balances": {"owed": 2000}, "applied": {}}
OTHER = {"member_id": "m-9", "version": 11, "name": "Zed", "status": "active", "tier": "bronze",
         "identifiers": ["nfc:0909"], "balances": {"points": 0}, "applied": {}}


def _seed(h: Harness, *records: dict[str, Any]) -> None:
    v = h.store.members.members_version()
    assert h.store.members.apply_changes({"from_version": v, "to_version": v + 1,
                                          "members": list(records or (ACCOUNT, OTHER))})


PAYABLE: dict[str, int] = {}


async def _quote(h: Harness, amount: int, token: str | None = "nfc:04A1B2") -> str:
    """A quote's id (its payable in PAYABLE: Sara's gold discounts lower it)."""
    params: dict[str, Any] = {"amount": amount}
    if token is not None:
        params["token"] = token
    q = await h.client().call("sale.quote", params)
    PAYABLE[str(q["quote_id"])] = int(q["payable"])
    return str(q["quote_id"])


def _types(h: Harness) -> list[str]:
    return [str(e["type"]) for e in h.outbox()]


def test_status_pay_on_account_and_payment() -> None:
    async def scenario(h: Harness) -> None:
        _seed(h)
        c = h.client()
        s = await h.login()
        st = await c.call("account.status", {"session": s, "member_id": "m-1"})
        acct = st["accounts"][0]
        assert (acct["account_id"], acct["owed"], acct["credit_limit"], acct["available"]) == \
            ("ac-1", 2000, 10_000, 8000)
        assert acct["authorised"] == [{"member_id": "m-1", "name": "Sara K."}]
        # The account card and the buyer's card both find it.
        assert (await c.call("account.status", {"session": s, "token": "code:ACCT-2001"})
                )["accounts"][0]["account_id"] == "ac-1"
        assert (await c.call("account.status", {"session": s, "token": "nfc:04A1B2"})
                )["accounts"][0]["account_id"] == "ac-1"
        assert (await c.call("account.status", {"session": s, "token": "nfc:0909"})
                )["accounts"] == []
        q = await _quote(h, 5000)
        r = await c.call("sale.commit", {"quote_id": q, "session": s,
                                         "tenders": [{"method": "account", "amount": 3000,
                                                      "account_id": "ac-1"},
                                                     {"method": "cash",
                                                      "amount": PAYABLE[q] - 3000}]})
        sale = next(e for e in h.outbox() if e["id"] == r["sale_id"])
        assert sale["tenders"][0] == {"method": "account", "amount": 3000, "account_id": "ac-1"}
        assert sale["payment"] == "other"
        charge = next(e for e in h.outbox() if e["type"] == "account_charge")
        assert (charge["sale_id"], charge["member_id"], charge["amount"]) == \
            (r["sale_id"], "m-1", 3000)
        assert charge["seq"] == sale["seq"] + 1
        paid = await c.call("account.pay", {"session": s, "account_id": "ac-1", "amount": 1500,
                                            "method": "card"})
        assert paid["account"]["owed"] == 2000 + 3000 - 1500
        await c.call("account.pay", {"session": s, "account_id": "ac-1", "amount": 100})
        day = await c.call("day.summary", {})
        assert day["account_payments"] == {"count": 2, "by_method": {"card": 1500, "cash": 100}}
        assert day["cash"]["account_payments"] == 100
        assert day["by_tender"]["account"] == {"count": 1, "payable": 3000}
        # Refunding the sale (a manager) gives the charge back.
        m = await h.login("mg", "9999")
        await c.call("sale.refund", {"session": m, "sale_id": r["sale_id"], "reason": "x"})
        st = await c.call("account.status", {"session": s, "account_id": "ac-1"})
        assert st["accounts"][0]["owed"] == 400
        assert _types(h) == ["sale", "account_charge", "account_payment", "account_payment",
                             "refund", "account_refund"]
    run(scenario)


def test_refusals_record_nothing() -> None:
    async def scenario(h: Harness) -> None:
        _seed(h)
        c = h.client()
        s = await h.login()

        async def commit(tenders: list[dict[str, Any]], token: str | None = "nfc:04A1B2",
                         amount: int = 1000, code: int = -32602) -> dict[str, Any]:
            q = await _quote(h, amount, token)
            if len(tenders) == 1 and tenders[0].get("amount") == amount:
                tenders = [{**tenders[0], "amount": PAYABLE[q]}]
            err = await expect(code, c.call("sale.commit", {
                "quote_id": q, "session": s, "tenders": tenders}))
            assert isinstance(err.data, dict)
            return err.data

        acct = {"method": "account", "amount": 1000, "account_id": "ac-1"}
        # Not an authorised buyer; no buyer at all.
        assert (await commit([acct], "nfc:0909", code=-32006))["reason"] == \
            "account_not_authorised"
        assert (await commit([acct], None, code=-32006))["reason"] == "account_not_authorised"
        # Over the limit (owed 2000 + 8001 > 10000).
        data = await commit([{**acct, "amount": 20_000}], amount=20_000, code=-32003)
        assert (data["reason"], data["available"]) == ("account_limit", 8000)
        # Unknown account, a member's id as an account, a missing or hostile account id.
        for bad, code, reason in (
                ({**acct, "account_id": "ac-404"}, -32007, "account_unknown"),
                ({**acct, "account_id": "m-1"}, -32007, "account_unknown"),
                ({"method": "account", "amount": 1000}, -32602, "bad_account"),
                ({**acct, "account_id": "x" * 101}, -32602, "bad_account"),
                ({**acct, "account_id": {"$gt": ""}}, -32602, "bad_account"),
                ({**acct, "account_id": "ac-1\u202e"}, -32602, "bad_account")):
            data = await commit([bad], code=code)
            assert data["reason"] == reason, bad
        # A huge id is cut off by the server's own string limit before it is read.
        assert (await commit([{**acct, "account_id": "x" * 100_000}]))["reason"] in (
            "bad_param", "bad_account")
        two = [{**acct, "amount": 1}, {**acct, "amount": 1, "account_id": "ac-2"}]
        assert (await commit(two))["reason"] == "bad_account"
        err = await expect(-32602, c.call("sale.commit", {
            "quote_id": await _quote(h, 100), "session": s, "payment": "account"}))
        assert isinstance(err.data, dict) and err.data["reason"] == "bad_account"
        # A member's card is not an account card.
        data = await commit([{"method": "account", "amount": 1000,
                              "account_token": "nfc:0909"}], code=-32007)
        assert data["reason"] == "account_unknown"
        assert _types(h) == []
        # account.pay: more than owed, bad amounts and methods, unknown account.
        for params, reason in (({"amount": 2001}, "account_overpaid"),
                               ({"amount": 0}, "bad_amount"),
                               ({"amount": 2**60}, "bad_param"),  # the server's number bound
                               ({"amount": 10, "method": "iou"}, "bad_method"),
                               ({"amount": True}, "wrong_type"),
                               ({"amount": 10, "account_id": "ac-404"}, "account_unknown")):
            err = await expect((-32007 if reason == "account_unknown" else -32602),
                               c.call("account.pay", {"session": s, "account_id": "ac-1",
                                                      "method": "cash", **params}))
            assert isinstance(err.data, dict) and err.data["reason"] == reason, params
        err = await expect(-32602, c.call("account.status", {"session": s, "token": "code:A",
                                                             "account_id": "ac-1"}))
        assert _types(h) == []
    run(scenario)


def test_the_account_card_pays_for_anyone_and_is_not_a_member() -> None:
    async def scenario(h: Harness) -> None:
        _seed(h)
        c = h.client()
        s = await h.login()
        err = await expect(-32001, c.call("member.identify", {"code": "ACCT-2001"}))
        assert isinstance(err.data, dict) and err.data["reason"] == "account_card"
        r = await c.call("sale.commit", {
            "quote_id": await _quote(h, 1200, None), "session": s,
            "tenders": [{"method": "account", "amount": 1200,
                         "account_token": "code:ACCT-2001"}]})
        sale = next(e for e in h.outbox() if e["id"] == r["sale_id"])
        assert sale["tenders"] == [{"method": "account", "amount": 1200, "account_id": "ac-1",
                                    "identified_by": "code:ACCT-2001"}]
        charge = next(e for e in h.outbox() if e["type"] == "account_charge")
        assert (charge["member_id"], charge["identified_by"]) == (None, "code:ACCT-2001")
    run(scenario)


def test_two_tills_commit_at_once_only_the_limit_passes() -> None:
    async def scenario(h: Harness) -> None:
        _seed(h)
        s = await h.login()
        quotes = [await _quote(h, 6000) for _ in range(4)]
        assert 4000 < PAYABLE[quotes[0]] <= 8000
        clients = [h.client() for _ in quotes]

        async def commit(c: Any, q: str) -> str:
            try:
                await c.call("sale.commit", {"quote_id": q, "session": s, "tenders": [
                    {"method": "account", "amount": PAYABLE[q], "account_id": "ac-1"}]})
                return "ok"
            except Exception as exc:  # the refusal is the result
                return str(getattr(exc, "data", {}).get("reason"))

        outcomes = await asyncio.gather(*(commit(c, q) for c, q in zip(clients, quotes,
                                                                         strict=True)))
        # owed 2000: one sale fits under 10000, a second would pass it.
        print(f"figure: 4 tills x {PAYABLE[quotes[0]]} on account (limit 10000, owed 2000)"
              f" -> {sorted(outcomes)}")
        assert sorted(outcomes) == ["account_limit"] * 3 + ["ok"]
        assert _types(h) == ["sale", "account_charge"]
    run(scenario)


def test_offline_risk_limit_from_the_bundle() -> None:
    async def scenario(h: Harness) -> None:
        import dataclasses

        _seed(h)
        h.online = False
        bundle = h.bundle
        h.bundle = dataclasses.replace(bundle, offline=dataclasses.replace(
            bundle.offline, max_account_charge=1500)) if bundle.offline is not None else \
            bundle
        c = h.client()
        s = await h.login()
        acct = {"method": "account", "amount": 1000, "account_id": "ac-1"}
        await c.call("sale.commit", {"quote_id": await _quote(h, 1000, None), "session": s,
                                     "tenders": [{**acct, "account_token": "code:ACCT-2001",
                                                  "account_id": None}]})
        err = await expect(-32003, c.call("sale.commit", {
            "quote_id": await _quote(h, 1000, None), "session": s,
            "tenders": [{**acct, "account_token": "code:ACCT-2001", "account_id": None}]}))
        assert isinstance(err.data, dict) and err.data["reason"] == "account_offline_limit"
        assert err.data["available"] == 500
        h.online = True
        await c.call("sale.commit", {"quote_id": await _quote(h, 1000, None), "session": s,
                                     "tenders": [{**acct, "account_token": "code:ACCT-2001",
                                                  "account_id": None}]})
        assert _types(h).count("account_charge") == 2
    run(scenario)


def test_a_payment_is_taken_once_per_key_whatever_the_timing() -> None:
    async def scenario(h: Harness) -> None:
        _seed(h)
        s = await h.login()
        params = {"session": s, "account_id": "ac-1", "amount": 300, "payment_id": "till-1-7"}
        # Four registers send the same payment at once, then one again later.
        answers = await asyncio.gather(*(h.client().call("account.pay", params)
                                         for _ in range(4)))
        again = await h.client().call("account.pay", params)
        ids = {a["event_id"] for a in [*answers, again]}
        assert len(ids) == 1 and again["repeated"] is True
        assert _types(h) == ["account_payment"]
        assert again["account"]["owed"] == 1700
        print(f"figure: 5 sends of one payment key -> {len(ids)} payment recorded")
        err = await expect(-32602, h.client().call("account.pay", {**params,
                                                                   "payment_id": "x" * 65}))
        assert isinstance(err.data, dict)
    run(scenario)
