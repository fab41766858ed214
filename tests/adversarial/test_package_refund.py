"""(1.3) A refund of a package sale at the till: refused ``package_used`` while the
package it sold was used, nothing recorded; allowed before the club applied the sale;
a check-in and a refund at once on the same package: exactly one wins. The club's
record comes from the real simulated club (hw_sim Ledger) fed this store's own wire
events, so both sides' arithmetic is checked against each other."""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.offline_queue import AlreadyRefunded, RefundNotPossible, Store
from agent.offline_queue.events import epoch_us
from agent.offline_queue.package_uses import PackageRefused, UseCheck
from agent.rules import packages as pk
from hw_sim.club.ledger import Ledger
from tests.agent.offline_queue.helpers import AT, member_record, sale_body

TERMINAL = "T-0001"
TODAY = AT.date()
CHECK = UseCheck(TODAY, 0, epoch_us(AT) * 2, None)


class Till:
    """One store (this terminal) and the club it syncs with, by hand."""

    def __init__(self, tmp: Path) -> None:
        self.store = Store.open(tmp / "s.db", TERMINAL, "M-7")
        self.club = Ledger(tmp / "club.db", clock=lambda: AT + timedelta(hours=1))
        self.club.upsert_members([member_record("m-1", applied={})])
        self.sync()

    def sell(self, sku: str, qty: int = 1) -> str:
        body = sale_body(earned=())
        body["lines"] = [{"sku": sku, "category": "packages", "qty": qty,
                          "unit_price": 12000}]
        body["gross"] = body["payable"] = 12000 * qty
        return self.store.outbox.append("sale", body, at=AT, staff_id="m1",
                                        offline=False).id

    def refund(self, sale_id: str, lines: list[dict[str, int]] | None = None) -> str:
        if lines is None:
            return self.store.outbox.append("refund", {"sale_id": sale_id, "reason": "r"},
                                            at=AT, staff_id="m1", offline=False).id
        return self.store.outbox.append("refund_lines", {"sale_id": sale_id, "reason": "r",
                                                         "lines": lines},
                                        at=AT, staff_id="m1", offline=False).id

    def use(self, package_id: str) -> int | None:
        body = {"member_id": "m-1", "package_id": package_id, "units": 1,
                "identified_by": None}
        return self.store.outbox.append_package_use(body, at=AT, staff_id="c1",
                                                    offline=False, check=CHECK)[1]

    def sync(self) -> None:
        """Send every pending event to the club, ack, and take the member back."""
        events = [json.loads(text) for (text,) in self.store.db.execute_sql(
            "SELECT body FROM events WHERE state = 'pending' ORDER BY seq").fetchall()]
        if events:
            result = self.club.receive_batch(TERMINAL, events)
            self.store.outbox.apply_ack(result.accepted, result.rejected, result.applied_seq)
        rec = self.club.member("m-1")
        assert rec is not None
        v = self.store.members.members_version()
        self.store.members.apply_changes({"from_version": v, "to_version": v + 1,
                                          "members": [{**rec, "version": v + 1}]})

    def packages(self) -> list[dict[str, Any]]:
        return [dict(p) for p in pk.member_packages(self.store.members.member("m-1"))]

    def left(self, package_id: str) -> int:
        return self.store.members.usable_balances("m-1").get(pk.visits_kind(package_id), 0)

    def refunds(self) -> int:
        return int(self.store.db.execute_sql(
            "SELECT count(*) FROM events WHERE type IN ('refund', 'refund_lines')"
        ).fetchone()[0])


@pytest.fixture
def till() -> Iterator[Till]:
    with tempfile.TemporaryDirectory() as tmp:
        t = Till(Path(tmp))
        yield t
        t.store.close()


def test_a_used_package_is_not_refunded_and_nothing_is_recorded(till: Till) -> None:
    sale_id = till.sell("gym-10")
    till.sync()
    (pkg,) = till.packages()
    till.use(pkg["package_id"])  # one visit, not yet at the club
    for lines in (None, [{"line": 0, "qty": 1}]):
        with pytest.raises(RefundNotPossible) as refused:
            till.refund(sale_id, lines)
        assert refused.value.reason == "package_used"
        assert refused.value.params == {"package_id": pkg["package_id"], "used": 1,
                                        "visits": 10}
        assert "1 of the package's visits were used" in str(refused.value)
    assert till.refunds() == 0 and till.left(pkg["package_id"]) == 9
    till.sync()  # the use at the club: still refused
    with pytest.raises(RefundNotPossible):
        till.refund(sale_id)
    print("figure: refund after 1 of 10 visits: refused package_used, 0 events recorded")


def test_an_unused_package_is_refunded_and_both_sides_agree(till: Till) -> None:
    sale_id = till.sell("gym-10")
    till.sync()
    (pkg,) = till.packages()
    till.refund(sale_id)
    # Taken off here at once: no check-in of the refunded package at this till.
    assert till.left(pkg["package_id"]) == 0
    with pytest.raises(PackageRefused):
        till.use(pkg["package_id"])
    with pytest.raises(AlreadyRefunded):
        till.refund(sale_id)
    till.sync()
    (pkg,) = till.packages()
    assert pkg["revoked"] == TODAY.isoformat() and till.left(pkg["package_id"]) == 0
    assert pk.state_on(pkg, TODAY).state == "expired"
    club = till.club.member("m-1")
    assert club is not None and club["balances"][pk.visits_kind(pkg["package_id"])] == 0


def test_a_sale_the_club_has_not_applied_is_refundable(till: Till) -> None:
    sale_id = till.sell("gym-10")
    till.refund(sale_id)  # offline: the package exists nowhere yet
    till.sync()  # the club applies the sale, then its refund
    (pkg,) = till.packages()
    assert pkg["revoked"] and till.left(pkg["package_id"]) == 0


def test_a_renewal_is_refused_only_when_its_visits_were_used(till: Till) -> None:
    first = till.sell("wash-5")
    till.sync()
    second = till.sell("wash-5")
    till.sync()
    (pkg,) = till.packages()
    pid = pkg["package_id"]
    for _ in range(5):  # the first five: the renewal's visits are still there
        till.use(pid)
    till.refund(second, [{"line": 0, "qty": 1}])
    assert till.left(pid) == 0
    till.sync()
    (pkg,) = till.packages()
    assert (pkg["visits_total"], till.left(pid), "revoked" in pkg) == (5, 0, False)
    with pytest.raises(RefundNotPossible) as refused:
        till.refund(first)
    assert refused.value.params["used"] == 5


def test_one_unit_of_two_then_the_other(till: Till) -> None:
    sale_id = till.sell("wash-5", qty=2)
    till.sync()
    (pkg,) = till.packages()
    pid = pkg["package_id"]
    till.use(pid)
    till.refund(sale_id, [{"line": 0, "qty": 1}])  # 9 left ≥ 5: the latest unit goes
    assert till.left(pid) == 4
    with pytest.raises(RefundNotPossible):  # not synced: the first unit, 4 < 5 left
        till.refund(sale_id, [{"line": 0, "qty": 1}])
    till.sync()
    with pytest.raises(RefundNotPossible):  # synced: the same answer
        till.refund(sale_id, [{"line": 0, "qty": 1}])
    assert till.left(pid) == 4 and till.refunds() == 1


def test_a_used_membership_is_not_refunded(till: Till) -> None:
    sale_id = till.sell("gym-month")
    till.sync()
    (pkg,) = till.packages()
    till.use(pkg["package_id"])
    with pytest.raises(RefundNotPossible) as refused:
        till.refund(sale_id)
    assert refused.value.params == {"package_id": pkg["package_id"], "used": 1,
                                    "visits": None}
    unused = till.sell("coffee")  # another sale: refundable
    till.refund(unused)


def _race(till: Till, sale_id: str, pid: str) -> list[str]:
    """A refund of the sale and a check-in of its package, released at once; what won."""
    barrier = threading.Barrier(2)
    won: list[str] = []

    def refund() -> None:
        barrier.wait(10)
        try:
            till.refund(sale_id)
            won.append("refund")
        except RefundNotPossible as exc:
            assert exc.reason == "package_used"

    def check_in() -> None:
        barrier.wait(10)
        try:
            till.use(pid)
            won.append("check-in")
        except PackageRefused as exc:
            assert exc.reason == "package_used_up"

    threads = [threading.Thread(target=refund), threading.Thread(target=check_in)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return won


def test_a_check_in_and_a_refund_at_once_exactly_one_wins(tmp_path: Path) -> None:
    rounds, outcomes = 12, {"refund": 0, "check-in": 0}
    for n in range(rounds):
        (tmp_path / str(n)).mkdir()
        till = Till(tmp_path / str(n))  # a fresh package each round, on its last state
        sale_id = till.sell("gym-10")
        till.sync()
        (pkg,) = till.packages()
        pid = pkg["package_id"]
        won = _race(till, sale_id, pid)
        assert len(won) == 1, won
        outcomes[won[0]] += 1
        till.sync()
        rec = till.club.member("m-1")
        assert rec is not None
        assert rec["balances"][pk.visits_kind(pid)] == (0 if won == ["refund"] else 9)
        assert till.left(pid) == rec["balances"][pk.visits_kind(pid)]
        till.store.close()
    print(f"figure: {rounds} rounds of a check-in and a refund at once: exactly one won "
          f"each time ({outcomes['refund']} refunds, {outcomes['check-in']} check-ins)")


def test_the_api_refuses_with_a_reason_and_a_sentence() -> None:
    """``sale.refund`` of a gym pass checked in once, through the real agent: -32008
    ``package_used`` with the count; nothing recorded; the unused one is refunded."""
    import asyncio

    from agent.errors import ApiError
    from tests.agent.localapi.harness import Harness, run

    async def scenario(h: Harness) -> None:
        c = h.client()
        cashier, manager = await h.login(), await h.login("mg", "9999")
        sales = []
        for _ in range(2):
            q = await c.call("sale.quote", {"lines": [{"sku": "gym-10", "qty": 1}],
                                            "token": "nfc:04A1B2"})
            sales.append((await c.call("sale.commit", {"quote_id": q["quote_id"],
                                                       "session": cashier}))["sale_id"])
        # The club applied both sales: two packages, as the simulated club makes them.
        record = h.store.members.member("m-1")
        assert record is not None
        seqs = [e["seq"] for e in h.outbox() if e["type"] == "sale"]
        packages = [{"package_id": f"pk-{sale_id[-12:]}-0-0", "sku": "gym-10", "name": "Gym",
                     "visits_total": 10, "starts": h.now.date().isoformat(),
                     "expires": "2099-01-01", "grace_days": 0, "freezable_days": 0,
                     "frozen": [], "sold_by": [{"sale_id": sale_id, "line": 0,
                                                "visits": 10, "days": 90}]}
                    for sale_id in sales]
        v = h.store.members.members_version()
        h.store.members.apply_changes({"from_version": v, "to_version": v + 1, "members": [{
            **record, "version": v + 1, "packages": packages,
            "applied": {h.store.outbox.terminal_id: max(seqs)},
            "balances": {**record["balances"],
                         **{pk.visits_kind(p["package_id"]): 10 for p in packages}}}]})
        await c.call("package.checkin", {"session": cashier, "token": "nfc:04A1B2",
                                         "package_id": packages[0]["package_id"]})
        before = len(h.outbox())
        try:
            await asyncio.wait_for(c.call("sale.refund", {"session": manager,
                                                          "sale_id": sales[0],
                                                          "reason": "changed mind"}), 5)
        except ApiError as exc:
            assert isinstance(exc.data, dict) and exc.code == -32008
            assert (exc.data["reason"], exc.data["used"]) == ("package_used", 1)
            assert str(exc) == ("1 of the package's visits were used: it cannot be "
                                "refunded here; ask the club.")
            shown = _shown(exc)
            assert shown["en"] == str(exc) and shown["fa"].startswith("بسته")
            assert len(set(shown.values())) == 5  # each language its own sentence
        else:
            raise AssertionError("a used package was refunded")
        assert len(h.outbox()) == before
        done = await c.call("sale.refund", {"session": manager, "sale_id": sales[1],
                                            "reason": "changed mind"})
        assert done["whole"] is True
        listed = await c.call("package.list", {"session": cashier, "token": "nfc:04A1B2"})
        left = {p["package_id"]: p["visits_left"] for p in listed["packages"]}
        assert left == {packages[0]["package_id"]: 9, packages[1]["package_id"]: 0}
        # The club applies the refund and revokes that pass: no longer listed.
        record = h.store.members.member("m-1")
        assert record is not None
        seqs = [e["seq"] for e in h.outbox()]
        v = h.store.members.members_version()
        h.store.members.apply_changes({"from_version": v, "to_version": v + 1, "members": [{
            **record, "version": v + 1,
            "packages": [packages[0], {**packages[1], "sold_by": [],
                                       "revoked": h.now.date().isoformat()}],
            "applied": {h.store.outbox.terminal_id: max(seqs)},
            "balances": {**record["balances"], pk.visits_kind(packages[0]["package_id"]): 9,
                         pk.visits_kind(packages[1]["package_id"]): 0}}]})
        listed = await c.call("package.list", {"session": cashier, "token": "nfc:04A1B2"})
        assert [p["package_id"] for p in listed["packages"]] == [packages[0]["package_id"]]
    run(scenario)


def _shown(error: Exception) -> dict[str, str]:
    """What the till shows for ``error`` in each of its languages (logical order)."""
    from agent.errors import ApiError
    from agent.tui import i18n
    from agent.tui.errors import error_logical

    assert isinstance(error, ApiError)
    before = i18n.current()
    try:
        out = {}
        for code in ("en", "fa", "ar", "he", "vi"):
            i18n.set_locale(i18n.load_locale(code))
            out[code] = error_logical(error)
        return out
    finally:
        i18n.set_locale(before)
