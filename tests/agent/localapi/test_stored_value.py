"""(1.3) Stored value and gift cards through the local API of the real agent: top-ups and
gift cards sold as catalogue products (outside the rules), the ``stored_value`` and
``gift_card`` tenders, ``value.balance``, refunds putting value back, and refusals
(reason codes) for bad, huge and hostile params — nothing recorded on a refusal."""

from __future__ import annotations

from typing import Any

from tests.agent.localapi import harness
from tests.agent.localapi.harness import Harness, run
from tests.agent.localapi.test_methods import expect

GOLD = "nfc:04A1B2"
DEMO_CARD = "code:GIFT-DEMO-100"


def _sales(h: Harness) -> list[dict[str, Any]]:
    return [e for e in h.outbox() if e["type"] == "sale"]


async def _sell(h: Harness, s: str, lines: list[dict[str, Any]], token: str | None = None,
                **commit: Any) -> dict[str, Any]:
    c = h.client()
    q = await c.call("sale.quote", {"lines": lines, **({"token": token} if token else {})})
    r = await c.call("sale.commit", {"quote_id": q["quote_id"], "session": s, **commit})
    return {"quote": q, **r}


async def _balance(h: Harness, s: str, token: str) -> dict[str, Any]:
    r = await h.client().call("value.balance", {"token": token, "session": s})
    return r  # type: ignore[no-any-return]


def test_topup_outside_the_rules_then_spend_it_as_a_tender() -> None:
    async def scenario(h: Harness) -> None:
        s = await h.login()
        # Sara is gold (10 % off everything): a top-up is sold at its price all the same.
        r = await _sell(h, s, [{"sku": "value-wallet-50"}], GOLD)
        assert r["quote"]["payable"] == 5000 and r["quote"]["points_earned"] == []
        assert r["quote"]["topups"][0]["kind"] == "value.wallet"
        sale = _sales(h)[-1]
        assert sale["topups"][0]["amount"] == 5000 and sale["topups"][0]["expires"]
        bal = await _balance(h, s, GOLD)
        wallet = next(b for b in bal["balances"] if b["kind"] == "value.wallet")
        assert (wallet["amount"], wallet["spendable"], wallet["name"]) == (5000, 5000, "Wallet")
        # A coffee with a top-up in one basket: the discount only on the coffee.
        mixed = await h.client().call("sale.quote", {"token": GOLD, "lines": [
            {"sku": "cafe-espresso"}, {"sku": "value-wallet-open", "amount": 1234}]})
        assert mixed["line_details"][1]["benefits"] == {"discount": 0, "points": 0, "rules": []}
        assert mixed["payable"] == mixed["lines"][0]["unit_price"] - sum(
            d["amount"] for d in mixed["discounts"]) + 1234
        # Pay a croissant partly from the wallet, partly cash.
        q = await h.client().call("sale.quote", {"token": GOLD, "lines": [
            {"sku": "bake-croissant", "qty": 10}]})
        pay = q["payable"]
        r2 = await h.client().call("sale.commit", {"quote_id": q["quote_id"], "session": s,
                                                   "tenders": [
            {"method": "stored_value", "kind": "value.wallet", "amount": pay - 100},
            {"method": "cash", "amount": 500}]})
        assert r2["receipt"]["change_due"] == 400
        e = next(x for x in _sales(h) if x["id"] == r2["sale_id"])
        assert {"method": "stored_value", "kind": "value.wallet", "amount": pay - 100} \
            in e["tenders"]
        assert sum(t["amount"] for t in e["tenders"]) == e["payable"]
        bal = await _balance(h, s, GOLD)
        wallet = next(b for b in bal["balances"] if b["kind"] == "value.wallet")
        assert wallet["amount"] == 5000 - (pay - 100)
        # More than is left: insufficient_value, nothing recorded, the quote stays.
        before = len(h.outbox())
        q = await h.client().call("sale.quote", {"token": GOLD, "amount": 9000})
        err = await expect(-32003, h.client().call("sale.commit", {
            "quote_id": q["quote_id"], "session": s, "tenders": [
                {"method": "stored_value", "kind": "value.wallet", "amount": q["payable"]}]}))
        assert err.data["reason"] == "insufficient_value"
        assert len(h.outbox()) == before
        print(f"figure: wallet 5000 topped up, {pay - 100} spent, {q['payable']} refused")
    run(scenario)


def test_gift_card_sold_spent_at_once_and_refunded() -> None:
    async def scenario(h: Harness) -> None:
        s = await h.login()
        m = await h.login("mg", "9999")
        r = await _sell(h, s, [{"sku": "value-gift-100"}])
        card = r["receipt"]["gift_cards_issued"][0]
        assert card["amount"] == 10000 and card["token"].startswith("code:GC-")
        bal = await _balance(h, s, card["token"])
        assert bal["holder"] == "gift_card" and bal["balances"][0]["spendable"] == 10000
        # A typed code in lower case finds the card (codes are matched as stored).
        q = await h.client().call("sale.quote", {"lines": [{"sku": "cafe-espresso",
                                                            "qty": 4}]})
        pay = await h.client().call("sale.commit", {
            "quote_id": q["quote_id"], "session": s,
            "tenders": [{"method": "gift_card", "token": card["token"].lower(),
                         "amount": q["payable"]}]})
        redeems = [e for e in h.outbox() if e["type"] == "gift_card_redeem"]
        assert [(x["sale_id"], x["amount"], x["card_id"]) for x in redeems] == [
            (pay["sale_id"], q["payable"], card["card_id"])]
        assert (await _balance(h, s, card["token"]))["balances"][0]["amount"] == \
            10000 - q["payable"]
        # The card as a member's token: refused with its reason.
        err = await expect(-32001, h.client().call("sale.quote", {"amount": 100,
                                                                 "token": card["token"]}))
        assert err.data["reason"] == "gift_card"
        # The sale it paid is refunded whole: the value goes back on the card.
        err = await expect(-32008, h.client().call("sale.refund", {
            "session": m, "reason": "test", "sale_id": pay["sale_id"],
            "lines": [{"line": 0, "qty": 1}]}))
        assert err.data["reason"] == "refund_whole_value"
        await h.client().call("sale.refund", {"session": m, "sale_id": pay["sale_id"],
                                              "reason": "back"})
        assert (await _balance(h, s, card["token"]))["balances"][0]["amount"] == 10000
        # The sale of the card itself refunded: the card is emptied.
        await h.client().call("sale.refund", {"session": m, "sale_id": r["sale_id"],
                                              "reason": "back"})
        assert (await _balance(h, s, card["token"]))["balances"][0]["amount"] == 0
        err = await expect(-32003, _sell(h, s, [{"sku": "cafe-espresso"}], tenders=[
            {"method": "gift_card", "token": card["token"], "amount": 250}]))
        assert err.data["reason"] == "gift_card_empty"
    run(scenario)


def test_two_tills_cannot_overspend_one_card() -> None:
    async def scenario(h: Harness) -> None:
        import asyncio
        s = await h.login()
        r = await _sell(h, s, [{"sku": "value-gift-open", "amount": 1000}])
        token = r["receipt"]["gift_cards_issued"][0]["token"]
        quotes = [await h.client().call("sale.quote", {"amount": 300}) for _ in range(6)]

        async def pay(q: dict[str, Any]) -> str:
            try:
                await h.client().call("sale.commit", {
                    "quote_id": q["quote_id"], "session": s,
                    "tenders": [{"method": "gift_card", "token": token, "amount": 300}]})
                return "ok"
            except Exception as exc:
                return str(getattr(exc, "data", {}).get("reason"))
        outcomes = await asyncio.gather(*(pay(q) for q in quotes))
        assert sorted(outcomes) == ["insufficient_value"] * 3 + ["ok"] * 3
        assert (await _balance(h, s, token))["balances"][0]["amount"] == 100
        print(f"figure: 6 commits x 300 at once on a card of 1000 -> {outcomes.count('ok')} "
              "recorded, 100 left")
    run(scenario)


def test_bad_huge_and_hostile_params_are_refused_with_reasons() -> None:
    async def scenario(h: Harness) -> None:
        s = await h.login()
        c = h.client()
        before = len(h.outbox())
        q = await c.call("sale.quote", {"amount": 500})
        base = {"quote_id": q["quote_id"], "session": s}
        for tenders, reason in [
                ([{"method": "stored_value", "amount": 500}], "bad_tenders"),
                ([{"method": "stored_value", "kind": "points", "amount": 500}], "bad_tenders"),
                ([{"method": "stored_value", "kind": "value.x" * 50, "amount": 500}],
                 "bad_tenders"),
                ([{"method": "gift_card", "amount": 500}], "bad_tenders"),
                ([{"method": "gift_card", "token": ["x"], "amount": 500}], "bad_tenders"),
                ([{"method": "gift_card", "token": "code:" + "A" * 400, "amount": 500}],
                 "bad_tenders"),
                ([{"method": "gift_card", "token": DEMO_CARD, "amount": 0}], "bad_tenders"),
                ([{"method": "gift_card", "token": DEMO_CARD, "amount": 2**60}],
                 "bad_tenders"),
                ([{"method": "gift_card", "token": DEMO_CARD, "amount": 100}] * 5,
                 "bad_tenders")]:
            err = await expect(-32602, c.call("sale.commit", {**base, "tenders": tenders}))
            # bad_param: the server's own bound on every number (2^53-1) came first.
            assert err.data["reason"] in (reason, "bad_param"), tenders
        err = await expect(-32602, c.call("sale.commit", {**base, "payment": "gift_card"}))
        assert err.data["reason"] == "bad_method"
        # A card number typed as a gift card code never gets further.
        err = await expect(-32602, c.call("sale.commit", {**base, "tenders": [
            {"method": "gift_card", "token": "code:4111111111111111", "amount": 500}]}))
        err = await expect(-32001, c.call("sale.commit", {**base, "tenders": [
            {"method": "gift_card", "token": "code:NO-SUCH-CARD", "amount": 500}]}))
        assert err.data["reason"] == "gift_card_unknown"
        err = await expect(-32003, c.call("sale.commit", {**base, "tenders": [
            {"method": "stored_value", "kind": "value.wallet", "amount": 500}]}))
        assert err.data["reason"] == "member_needed"
        err = await expect(-32602, c.call("sale.commit", {**base, "tenders": [
            {"method": "gift_card", "token": DEMO_CARD, "amount": 600}]}))
        assert err.data["reason"] == "tenders_over"  # no change is given from a card
        # Selling: a top-up with no member, an open amount without one or huge.
        err = await expect(-32003, c.call("sale.quote", {"lines": [{"sku": "value-wallet-50"}]}))
        assert err.data["reason"] == "member_needed"
        for amount in (None, 0, -5, 10**13, "12", True):
            line: dict[str, Any] = {"sku": "value-gift-open"}
            if amount is not None:
                line["amount"] = amount
            err = await expect(-32602, c.call("sale.quote", {"lines": [line]}))
            assert err.data["reason"] == "amount_needed", amount
        err = await expect(-32602, c.call("sale.quote", {"lines": [
            {"sku": "value-gift-100", "qty": 3}]}))
        assert err.data["reason"] == "bad_value_line"
        # Over the wallet's max_balance (1000.00): over_max_balance.
        err = await expect(-32003, c.call("sale.quote", {"token": GOLD, "lines": [
            {"sku": "value-wallet-open", "amount": 100001}]}))
        assert err.data["reason"] == "over_max_balance"
        # A blank card already someone's cannot be loaded as a gift card.
        err = await expect(-32602, c.call("sale.quote", {"lines": [
            {"sku": "value-gift-100", "card_token": GOLD}]}))
        assert err.data["reason"] == "gift_card_token_taken"
        # value.balance: unknown, malformed, card data.
        for token, code in (("code:NOPE", -32007), ("x", -32602), (None, -32602),
                            ("code:4111111111111111", -32602)):
            await expect(code, c.call("value.balance", {"token": token, "session": s}))
        await expect(-32006, c.call("value.balance", {"token": DEMO_CARD}))
        assert len(h.outbox()) == before
        # The quote is still good after every refusal.
        card = (await _sell(h, s, [{"sku": "value-gift-100"}]))["receipt"]["gift_cards_issued"][0]
        ok = await c.call("sale.commit", {**base, "tenders": [
            {"method": "gift_card", "token": card["token"], "amount": 500}]})
        assert ok["receipt"]["tenders"] == [{"method": "gift_card", "amount": 500,
                                             "card_id": card["card_id"]}]
    run(scenario)


def test_offline_day_limit_per_card() -> None:
    async def scenario(h: Harness) -> None:
        s = await h.login()
        r = await _sell(h, s, [{"sku": "value-gift-open", "amount": 50000}])
        token = r["receipt"]["gift_cards_issued"][0]["token"]
        h.online = False
        # The demo bundle: offline at most 200.00 of stored value per card and day.
        outcomes = []
        for _ in range(3):
            q = await h.client().call("sale.quote", {"amount": 8000})
            try:
                await h.client().call("sale.commit", {
                    "quote_id": q["quote_id"], "session": s,
                    "tenders": [{"method": "gift_card", "token": token, "amount": 8000}]})
                outcomes.append("ok")
            except Exception as exc:
                outcomes.append(str(getattr(exc, "data", {}).get("reason")))
        assert outcomes == ["ok", "ok", "offline_value_limit"]
        h.online = True  # online again: the club's balance is the limit
        q = await h.client().call("sale.quote", {"amount": 8000})
        await h.client().call("sale.commit", {"quote_id": q["quote_id"], "session": s,
                                              "tenders": [{"method": "gift_card",
                                                           "token": token, "amount": 8000}]})
        print("figure: offline 2 x 80.00 taken, the 3rd refused (limit 200.00/card/day)")
    run(scenario)


def test_a_product_paid_in_units_uses_the_members_units() -> None:
    async def scenario(h: Harness) -> None:
        s = await h.login()
        m = await h.login("mg", "9999")
        gold = {**harness.GOLD, "version": 4,
                "balances": {**harness.GOLD["balances"], "units.wash": 2}}
        h.store.members.apply_changes({"from_version": 10, "to_version": 11,
                                       "members": [gold]})
        c = h.client()
        q = await c.call("sale.quote", {"token": GOLD, "lines": [
            {"sku": "wash-basic", "units": True}, {"sku": "cafe-espresso"}]})
        assert q["units_used"] == [{"line": 0, "kind": "units.wash", "units": 1}]
        assert q["lines"][0]["unit_price"] == 0  # the wash costs no money
        r = await c.call("sale.commit", {"quote_id": q["quote_id"], "session": s})
        assert r["receipt"]["units_used"][0]["units"] == 1
        bal = await _balance(h, s, GOLD)
        assert next(b for b in bal["balances"] if b["kind"] == "units.wash")["amount"] == 1
        err = await expect(-32003, c.call("sale.quote", {"token": GOLD, "lines": [
            {"sku": "wash-basic", "units": True, "qty": 2}]}))
        assert err.data["reason"] == "insufficient_value"
        err = await expect(-32602, c.call("sale.quote", {"token": GOLD, "lines": [
            {"sku": "cafe-espresso", "units": True}]}))
        assert err.data["reason"] == "no_units_price"
        err = await expect(-32003, c.call("sale.quote", {"lines": [
            {"sku": "wash-basic", "units": True}]}))
        assert err.data["reason"] == "member_needed"
        # A whole refund gives the unit back.
        await c.call("sale.refund", {"session": m, "sale_id": r["sale_id"], "reason": "x"})
        bal = await _balance(h, s, GOLD)
        assert next(b for b in bal["balances"] if b["kind"] == "units.wash")["amount"] == 2
    run(scenario)


def test_a_commit_retried_after_a_restart_still_gets_the_gift_card_code() -> None:
    async def scenario(h: Harness) -> None:
        s = await h.login()
        c = h.client()
        q = await c.call("sale.quote", {"lines": [{"sku": "value-gift-100"}]})
        first = await c.call("sale.commit", {"quote_id": q["quote_id"], "session": s})
        h.services._committed.clear()  # as after an agent restart: answered from the store
        again = await c.call("sale.commit", {"quote_id": q["quote_id"], "session": s})
        assert again["sale_id"] == first["sale_id"] and again["receipt"]["restored"]
        assert again["receipt"]["gift_cards_issued"] == first["receipt"]["gift_cards_issued"]
    run(scenario)
