"""(1.3) Family pools through the real agent: a pooled member sees, earns and redeems the
family's points; the sale names the pool; a father's sale shows at once for his son."""

from __future__ import annotations

from tests.agent.localapi.harness import Harness, run
from tests.agent.offline_queue.helpers import member_record
from tests.agent.offline_queue.test_pools import pool_record


def test_pooled_members_share_the_pool() -> None:
    async def scenario(h: Harness) -> None:
        v = h.store.members.members_version()
        h.store.members.apply_changes({"from_version": v, "to_version": v + 1, "members": [
            member_record("m-5", tokens=("code:CLUB-1005",), points=3, pool="pl-1",
                          version=v + 1),
            member_record("m-6", tokens=("code:CLUB-1006",), points=0, pool="pl-1",
                          version=v + 1),
            {**pool_record(1000), "version": v + 1}]})
        c = h.client()
        s = await h.login()
        father = await c.call("member.identify", {"code": "CLUB-1005"})
        assert (father["balances"]["points"], father["pool_id"]) == (1000, "pl-1")
        q = await c.call("sale.quote", {"amount": 5000, "token": "code:CLUB-1005",
                                        "redeem_points": 100})
        assert q["redeemed_points"] == 100
        r = await c.call("sale.commit", {"quote_id": q["quote_id"], "session": s})
        sale = next(e for e in h.outbox() if e["id"] == r["sale_id"])
        assert (sale["member_id"], sale["pool_id"]) == ("m-5", "pl-1")
        earned = sum(p["points"] for p in q["points_earned"])
        son = await c.call("member.identify", {"code": "CLUB-1006"})
        assert son["balances"]["points"] == 1000 - 100 + earned
        assert r["receipt"]["member"]["balances"]["points"] == 1000 - 100 + earned
        profile = await c.call("member.profile", {"session": s, "member_id": "m-6"})
        assert profile["balances"]["points"] == 1000 - 100 + earned
        print(f"figure: father redeemed 100 and earned {earned}; son sees "
              f"{son['balances']['points']}")
    run(scenario)


def test_a_pool_the_terminal_does_not_hold_is_not_used() -> None:
    async def scenario(h: Harness) -> None:
        v = h.store.members.members_version()
        h.store.members.apply_changes({"from_version": v, "to_version": v + 1, "members": [
            member_record("m-7", tokens=("code:CLUB-1007",), points=30, pool="pl-404",
                          version=v + 1)]})
        c = h.client()
        s = await h.login()
        me = await c.call("member.identify", {"code": "CLUB-1007"})
        assert me["balances"]["points"] == 30 and "pool_id" not in me
        q = await c.call("sale.quote", {"amount": 1000, "token": "code:CLUB-1007"})
        r = await c.call("sale.commit", {"quote_id": q["quote_id"], "session": s})
        sale = next(e for e in h.outbox() if e["id"] == r["sale_id"])
        assert "pool_id" not in sale
    run(scenario)
