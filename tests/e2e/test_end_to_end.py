"""End to end: a virtual contactless card on the real pcscd → the member through the API →
quote → commit → the event at the simulated club → ack → balances agree on both sides.
And no test PAN anywhere: store, logs, MQTT traffic."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from agent.localapi.client import SocketClient, SyncClient
from hw_sim import cards
from tests.agent.protocol.traffic import traffic_errors
from tests.e2e.terminal import Sniffer, assert_no_test_pan, club_terminal

pytestmark = [pytest.mark.needs_pcscd, pytest.mark.needs_mosquitto]


def test_tap_to_balance_at_the_club(pcscd: Any, mosquitto: Any, make_club: Any,
                                    club_pki: Any) -> None:
    club = make_club(mosquitto)
    sniffer = Sniffer(mosquitto)
    with club_terminal(mosquitto, club, club_pki, pcsc_socket=pcscd.socket) as term:
        agent = term.start()
        term.wait_synced()

        async def scenario() -> dict[str, Any]:
            client = SocketClient(term.files.socket)
            await client.call("events.subscribe")
            events = client.events().__aiter__()
            session = pcscd.insert(cards.visa_contactless())
            tapped = time.monotonic()
            card: dict[str, Any] = {}
            while card.get("type") != "card":
                card = await asyncio.wait_for(events.__anext__(), 20)
            identified_s = time.monotonic() - tapped
            session.remove()
            assert card["source"] == "pcsc" and card["masked"] == "411111******1111"
            assert card["token"].startswith("pan:")
            assert card["member"]["member_id"] == "m-1001"
            member = await client.call("member.identify", {"token": card["token"]})
            assert member["balances"]["points"] == 1200
            login = await client.call("staff.login", {"staff_id": "1", "pin": "1234"})
            quote = await client.call("sale.quote", {
                "lines": [{"sku": "espresso", "category": "coffee", "qty": 2, "unit_price": 250},
                          {"sku": "cake", "category": "bakery", "qty": 1, "unit_price": 4550}],
                "token": card["token"], "redeem_points": 1000})
            assert quote["member"]["masked"] == "411111******1111"
            sale = await client.call("sale.commit", {"quote_id": quote["quote_id"],
                                                     "payment": "card",
                                                     "session": login["session"]})
            await client.close()
            return {"quote": quote, "sale": sale, "identified_s": identified_s,
                    "token": card["token"]}

        out = asyncio.run(scenario())
        quote, sale = out["quote"], out["sale"]
        club.wait_applied("T-0001", sale["seq"], timeout=30)
        at_club = club.ledger.events("T-0001")
        assert [e["id"] for e in at_club if e["type"] == "sale"] == [sale["sale_id"]]
        earned = sum(p["points"] for p in quote["points_earned"])
        expected_points = 1200 - quote["redeemed_points"] + earned
        assert club.ledger.member("m-1001")["balances"]["points"] == expected_points

        # The terminal shows the same balance once the ack and the member change are in.
        deadline = time.monotonic() + 20
        while True:
            status = term.status()
            with SyncClient(term.files.socket) as c:
                here = c.call("member.identify", {"token": out["token"]})["balances"]
            if status["queue"]["pending"] == 0 and here["points"] == expected_points:
                break
            assert time.monotonic() < deadline, (status, here)
            time.sleep(0.2)
        assert here == {k: v for k, v in club.ledger.member("m-1001")["balances"].items()
                        if v or k in here}
        assert out["identified_s"] < 5.0

        agent.stop()
        sniffer.stop()
        # No test PAN anywhere: the store (and its WAL), the agent's log, the MQTT traffic.
        state = [p.read_bytes() for p in term.files.state_dir.iterdir() if p.is_file()]
        assert_no_test_pan(*state, agent.output().encode(), *sniffer.payloads)
        assert any(t.endswith("/terminals/T-0001/events") for t in sniffer.topics)
        # Every captured MQTT message matches the committed schemas (docs/protocol/).
        assert traffic_errors(sniffer.topics, sniffer.payloads) == []
        print(f"figure: {len(sniffer.topics)} MQTT messages on "
              f"{len(set(sniffer.topics))} topics validated against the schemas")
