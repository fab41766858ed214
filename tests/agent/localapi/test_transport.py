"""The JSON-RPC transport: framing, bad requests, slow and idle clients, batches."""

from __future__ import annotations

import asyncio
import json
import os
import stat

from agent.localapi.server import ServerLimits
from tests.agent.localapi.harness import Harness, read_json, run


def test_socket_mode_is_0660() -> None:
    async def scenario(h: Harness) -> None:
        mode = stat.S_IMODE(os.stat(h.path).st_mode)
        assert mode == 0o660
    run(scenario)


def test_not_json_gets_parse_error_and_connection_stays() -> None:
    async def scenario(h: Harness) -> None:
        r, w = await h.raw()
        w.write(b"{not json\n")
        reply = await read_json(r)
        assert reply["error"]["code"] == -32700 and reply["id"] is None
        w.write(b'{"jsonrpc":"2.0","id":5,"method":"agent.status"}\n')
        reply = await read_json(r)
        assert reply["id"] == 5 and reply["result"]["terminal_id"] == "T-0001"
        w.close()
    run(scenario)


def test_invalid_requests() -> None:
    async def scenario(h: Harness) -> None:
        r, w = await h.raw()
        cases = [
            (b'[]', -32600),
            (b'42', -32600),
            (b'{"id":1,"method":"agent.status"}', -32600),            # no jsonrpc
            (b'{"jsonrpc":"2.0","id":1}', -32600),                     # no method
            (b'{"jsonrpc":"2.0","id":1,"method":"nope.nope"}', -32601),
            (b'{"jsonrpc":"2.0","id":1,"method":"agent.status","params":[1]}', -32602),
            (b'{"jsonrpc":"2.0","id":1,"method":"sale.quote","params":{"amount":"x"}}', -32602),
            (b'{"jsonrpc":"2.0","id":1,"method":"sale.quote","params":{}}', -32602),
            (b'{"jsonrpc":"2.0","id":{"a":1},"method":"agent.status"}', -32600),
        ]
        for raw, code in cases:
            w.write(raw + b"\n")
            reply = await read_json(r)
            assert reply["error"]["code"] == code, (raw, reply)
            assert reply["error"]["message"][-1] in ".?!", "a sentence for a cashier"
        w.close()
    run(scenario)


def test_batch_and_notifications() -> None:
    async def scenario(h: Harness) -> None:
        r, w = await h.raw()
        batch = [
            {"jsonrpc": "2.0", "id": 1, "method": "agent.status"},
            {"jsonrpc": "2.0", "method": "agent.status"},            # notification: no reply
            {"jsonrpc": "2.0", "id": 2, "method": "member.identify",
             "params": {"phone": "0912 123 4567"}},
            {"jsonrpc": "2.0", "id": 3, "method": "nope"},
            5,
        ]
        w.write(json.dumps(batch).encode() + b"\n")
        reply = await read_json(r)
        assert isinstance(reply, list) and len(reply) == 4
        by_id = {x["id"]: x for x in reply}
        assert by_id[1]["result"]["merchant_id"] == "M-7"
        assert by_id[2]["result"]["member_id"] == "m-1"
        assert by_id[3]["error"]["code"] == -32601
        assert by_id[None]["error"]["code"] == -32600
        w.close()
    run(scenario)


def test_line_over_1_mib_drops_only_that_client() -> None:
    async def scenario(h: Harness) -> None:
        good = h.client()
        await good.call("agent.status")
        r, w = await h.raw()
        w.write(b'{"jsonrpc":"2.0","id":1,"method":"agent.status","params":{"x":"'
                + b"y" * (1024 * 1024 + 10) + b'"}}\n')
        try:
            await w.drain()
        except ConnectionError:
            pass
        reply = await read_json(r)
        assert reply["error"]["code"] in (-32600, -32700)
        assert await asyncio.wait_for(r.read(), 5) == b""  # dropped
        assert (await good.call("agent.status"))["terminal_id"] == "T-0001"
    run(scenario)


def test_exactly_1_mib_line_is_accepted() -> None:
    async def scenario(h: Harness) -> None:
        r, w = await h.raw()
        # Texts of at most 4,096 characters each (the per-text limit), filling the line.
        head = b'{"jsonrpc":"2.0","id":1,"method":"agent.status","params":{"x":["'
        tail = b'"]}}'
        room = 1024 * 1024 - len(head) - len(tail)
        texts = [b"y" * 4000] * (room // 4003)
        texts.append(b"y" * (room - 4003 * len(texts)))
        line = head + b'","'.join(texts) + tail
        assert len(line) == 1024 * 1024
        w.write(line + b"\n")
        reply = await read_json(r)
        assert reply["result"]["terminal_id"] == "T-0001"
    run(scenario)


def test_client_that_sends_nothing_is_dropped() -> None:
    async def scenario(h: Harness) -> None:
        good = h.client()
        r, _w = await h.raw()
        assert await asyncio.wait_for(r.read(), 5) == b""
        assert (await good.call("agent.status"))["online"] is True
    run(scenario, limits=ServerLimits(first_request_timeout_s=0.3, idle_timeout_s=0.6))


def test_client_that_reads_nothing_is_dropped_others_unharmed() -> None:
    async def scenario(h: Harness) -> None:
        watcher = h.client()
        await watcher.call("events.subscribe")
        events = watcher.events().__aiter__()
        # A subscriber that never reads: its queue overflows and it is dropped.
        _r, w = await h.raw(limit=16 * 1024)
        w.write(b'{"jsonrpc":"2.0","id":1,"method":"events.subscribe"}\n')
        await w.drain()
        await asyncio.sleep(0.1)
        assert len(h.server.connections) == 2
        reader_conn = min(h.server.connections.values(), key=lambda c: c.id)

        async def collect() -> list[int]:
            return [(await asyncio.wait_for(events.__anext__(), 5))["i"] for _ in range(3000)]

        collector = asyncio.create_task(collect())
        for i in range(3000):
            h.server.broadcast({"type": "test", "i": i, "pad": "x" * 2000})
            if i % 20 == 0:
                # Bursts as fast as a reading client can take them, however slow
                # the machine: the reader's queue never fills, the other one's does.
                for _ in range(500):
                    if reader_conn.queue.qsize() < 100:
                        break
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.002)
        assert await collector == list(range(3000))
        for _ in range(50):
            if len(h.server.connections) == 1:
                break
            await asyncio.sleep(0.1)
        assert len(h.server.connections) == 1
        assert (await watcher.call("agent.status"))["terminal_id"] == "T-0001"
    run(scenario, limits=ServerLimits(send_queue_max=200, write_timeout_s=1))


def test_several_clients_get_events_and_answers() -> None:
    async def scenario(h: Harness) -> None:
        clients = [h.client() for _ in range(5)]
        await asyncio.gather(*(c.call("events.subscribe") for c in clients))
        iters = [c.events().__aiter__() for c in clients]
        h.server.broadcast({"type": "card", "token": "nfc:04A1B2"})
        for it in iters:
            ev = await asyncio.wait_for(it.__anext__(), 5)
            assert ev == {"type": "card", "token": "nfc:04A1B2"}
        results = await asyncio.gather(*(c.call("member.identify", {"token": "nfc:04A1B2"})
                                         for c in clients for _ in range(10)))
        assert {r["member_id"] for r in results} == {"m-1"}
    run(scenario)
