"""The local API's resource limits (issue #13.6, #13.13): caps, hostile JSON, log floods."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from agent.localapi import BUSY, MAX_DEPTH, MAX_TEXT_CHARS
from agent.localapi.client import ApiUnavailable, SocketClient
from agent.localapi.limits import (
    MAX_SAFE_INTEGER,
    OUT_OF_RANGE,
    LogLimiter,
    check_request_values,
)
from agent.localapi.server import ServerLimits
from tests.agent.localapi.harness import Harness, read_json, run

# ---------------------------------------------------------------- pure checks


def _nest(depth: int) -> object:
    value: object = 1
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(("params", "kind", "param"), [
    ({"amount": 2**53 - 1}, None, None),
    ({"amount": -(2**53 - 1)}, None, None),
    ({"amount": 2**53}, "number", "amount"),
    ({"amount": 2**63}, "number", "amount"),
    ({"lines": [{"qty": 1, "unit_price": -(2**64)}]}, "number", "lines"),
    ({"x": OUT_OF_RANGE}, "number", "x"),
    ({"x": 1e300}, "number", "x"),
    ({"x": float("inf")}, "number", "x"),
    ({"x": 12.5, "ok": True, "none": None}, None, None),
    ({"note": "é" * MAX_TEXT_CHARS}, None, None),
    ({"note": "y" * (MAX_TEXT_CHARS + 1)}, "length", "note"),
    ({"y" * (MAX_TEXT_CHARS + 1): 1}, "length", "y" * (MAX_TEXT_CHARS + 1)),
    ({"name": "a\ud800b"}, "text", "name"),
    ({"n": {"\udfff": 1}}, "text", "n"),
    ({"x": _nest(MAX_DEPTH)}, None, None),          # params + 31 lists = 32 containers
    ({"x": _nest(MAX_DEPTH + 1)}, "depth", "x"),
])
def test_check_request_values(params: dict[str, object], kind: str | None,
                              param: str | None) -> None:
    problem = check_request_values(params, max_depth=MAX_DEPTH, max_text_chars=MAX_TEXT_CHARS)
    assert (problem.kind if problem else None) == kind
    if problem is not None:
        assert problem.param == param
        assert problem.message.endswith(".") and "\ud800" not in problem.message


def test_check_is_iterative_for_deep_values() -> None:
    problem = check_request_values({"x": _nest(100_000)}, max_depth=MAX_DEPTH,
                                   max_text_chars=MAX_TEXT_CHARS)
    assert problem is not None and problem.kind == "depth"


def test_log_limiter_allows_a_burst_then_counts_then_refills() -> None:
    now = [0.0]
    limiter = LogLimiter(burst=3, period_s=60.0, clock=lambda: now[0])
    assert [limiter.allow("refused") for _ in range(5)] == [0, 0, 0, None, None]
    assert limiter.allow("other") == 0          # kinds have their own budget
    assert limiter.pending() == {"refused": 2}
    now[0] = 20.0                               # one line's worth refilled (60 s / 3)
    assert limiter.allow("refused") == 2        # "(suppressed 2 similar)"
    assert limiter.allow("refused") is None
    now[0] = 1000.0
    assert [limiter.allow("refused") for _ in range(4)] == [1, 0, 0, None]


# ---------------------------------------------------------------- connection caps


async def _open(h: Harness) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw connection that the server has registered (it answered a request)."""
    r, w = await h.raw()
    w.write(b'{"jsonrpc":"2.0","id":0,"method":"agent.status"}\n')
    reply = await read_json(r)
    assert reply["id"] == 0, reply
    return r, w


async def _refused(h: Harness) -> dict[str, object]:
    r, w = await h.raw()
    reply = await read_json(r)
    assert await asyncio.wait_for(r.read(), 5) == b""  # then closed
    w.close()
    assert isinstance(reply, dict)
    return reply


def test_per_user_cap_refuses_with_one_error_line_and_spares_the_others() -> None:
    async def scenario(h: Harness) -> None:
        held = [await _open(h) for _ in range(3)]
        reply = await _refused(h)
        error = reply["error"]
        assert isinstance(error, dict)
        assert reply["id"] is None and error["code"] == BUSY
        assert "too many connections" in str(error["message"])
        # #17: every error carries data.reason.
        assert error["data"] == {"limit": "connections_per_user", "max": 3, "reason": "busy"}
        assert h.server.refused == 1
        for r, w in held:  # undisturbed
            w.write(b'{"jsonrpc":"2.0","id":7,"method":"agent.status"}\n')
            assert (await read_json(r))["id"] == 7
        held[0][1].close()  # one leaves: a slot is free again
        for _ in range(50):
            if len(h.server.connections) == 2:
                break
            await asyncio.sleep(0.02)
        await _open(h)
    run(scenario, limits=ServerLimits(max_connections=10, max_connections_per_user=3))


def test_total_cap_and_the_client_says_why() -> None:
    async def scenario(h: Harness) -> None:
        _held = [await _open(h) for _ in range(2)]
        reply = await _refused(h)
        assert reply["error"]["data"]["limit"] == "connections"  # type: ignore[index]
        client = SocketClient(h.path, timeout_s=5)
        with pytest.raises(ApiUnavailable, match="too many connections"):
            await client.call("agent.status")
        await client.close()
        assert h.server.per_user == {h.server.connections[1].peer_uid: 2}
    run(scenario, limits=ServerLimits(max_connections=2, max_connections_per_user=5))


def test_a_flood_of_refusals_logs_a_few_lines_and_a_count(
        caplog: pytest.LogCaptureFixture) -> None:
    async def scenario(h: Harness) -> None:
        _held = await _open(h)
        for _ in range(40):
            await _refused(h)
        assert h.server.refused == 40
    with caplog.at_level(logging.INFO, logger="agent.localapi.server"):
        run(scenario, limits=ServerLimits(max_connections=1, log_lines_per_minute=5))
    refused = [r.getMessage() for r in caplog.records if "refused a connection" in r.getMessage()]
    assert len(refused) == 5
    assert any("35 more refused lines were suppressed" in r.getMessage()
               for r in caplog.records)
    print(f"figure: 40 refused connections, {len(refused)} log lines")


# ---------------------------------------------------------------- hostile JSON


REQ = '{"jsonrpc":"2.0","id":%d,"method":"%s","params":%s}'


@pytest.mark.parametrize(("line", "code", "reply_id"), [
    # 100,000 deep: json would recurse; the agent answers and keeps the connection.
    (b'{"jsonrpc":"2.0","id":1,"method":"agent.status","params":{"x":'
     + b"[" * 100_000 + b"]" * 100_000 + b"}}", -32600, None),
    ((REQ % (2, "agent.status", '{"x":' + json.dumps(_nest(MAX_DEPTH + 1)) + "}")).encode(),
     -32600, 2),
    # A lone surrogate, as a JSON escape and as (invalid) UTF-8 bytes.
    ((REQ % (3, "member.identify", '{"code":"A\\ud800"}')).encode(), -32700, 3),
    (b'{"jsonrpc":"2.0","id":4,"method":"member.identify","params":{"code":"A\xed\xa0\x80"}}',
     -32700, None),
    (b'{"jsonrpc":"2.0","id":5,"method":"agent.status","params":{"x":"\xff\xfe"}}',
     -32700, None),
    # Numbers no JSON client holds exactly.
    ((REQ % (6, "sale.quote", '{"amount":9223372036854775808}')).encode(), -32602, 6),
    ((REQ % (7, "sale.quote", '{"lines":[{"qty":1,"unit_price":' + "9" * 5000 + "}]}"))
     .encode(), -32602, 7),
    ((REQ % (8, "sale.quote", '{"amount":1e400}')).encode(), -32602, 8),
    ((REQ % (9, "sale.quote", '{"amount":NaN}')).encode(), -32700, None),
    # Text over the per-text limit; too many values; a method name of 1 MiB.
    ((REQ % (10, "member.identify", '{"code":"' + "c" * 100_000 + '"}')).encode(), -32602, 10),
    ((REQ % (11, "agent.status", '{"x":[' + ",".join(["0"] * 30_000) + "]}")).encode(),
     -32600, None),
    ((REQ % (12, "m" * 500_000, "{}")).encode(), -32601, 12),
])
def test_hostile_json_gets_the_proper_error_and_the_connection_stays(
        line: bytes, code: int, reply_id: int | None) -> None:
    async def scenario(h: Harness) -> None:
        r, w = await h.raw()
        w.write(line + b"\n")
        reply = await read_json(r)
        assert reply["error"]["code"] == code, reply
        assert reply["id"] == reply_id
        message = reply["error"]["message"]
        assert message[-1] in ".?!" and len(message) < 200, "a sentence a person can read"
        w.write(b'{"jsonrpc":"2.0","id":99,"method":"agent.status"}\n')
        assert (await read_json(r))["result"]["terminal_id"] == "T-0001"
        w.close()
    run(scenario)


def test_a_safe_integer_at_the_bound_reaches_the_method() -> None:
    async def scenario(h: Harness) -> None:
        with pytest.raises(Exception) as info:
            await h.client().call("sale.quote", {"amount": MAX_SAFE_INTEGER})
        # The method's own rule (at most 10^12 minor units), not the transport's.
        assert "too large" not in str(info.value)
        # #17: every error carries data.reason.
        assert getattr(info.value, "data", None) == {"param": "amount", "reason": "bad_amount"}
    run(scenario)


def test_large_lines_are_read_a_few_at_a_time_and_small_ones_pass_by() -> None:
    """Many clients sending 1 MiB lines at once: the agent holds a few, others wait."""
    async def scenario(h: Harness) -> None:
        cashier = h.client()
        await cashier.call("agent.status")
        text = "y" * (MAX_TEXT_CHARS - 10)
        big = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "agent.status",
                          "params": {"x": [text] * 240}}).encode() + b"\n"
        assert len(big) > 900_000
        conns = [await h.raw() for _ in range(12)]
        for _r, w in conns:
            w.write(big)
        worst = 0.0
        for _ in range(20):
            t0 = asyncio.get_running_loop().time()
            await cashier.call("agent.status")
            worst = max(worst, asyncio.get_running_loop().time() - t0)
        answers = [await read_json(r, timeout=30) for r, _w in conns]
        assert all(a["id"] == 1 and "result" in a for a in answers)
        print(f"figure: 12 clients x {len(big) >> 10} KiB lines, small call worst "
              f"{worst * 1000:.0f} ms")
    run(scenario, limits=ServerLimits(large_lines_at_once=2))


# ---------------------------------------------------------------- [local_api] configuration


def test_local_api_section_sets_the_caps_and_refuses_bad_values(tmp_path: Path) -> None:
    from agent.config import load_config
    from agent.daemon import Agent
    from agent.errors import ConfigError
    from tests.agent.test_config import GOOD, write

    cfg = load_config(write(tmp_path, GOOD))
    assert (cfg.api_max_connections, cfg.api_max_connections_per_user,
            cfg.api_idle_timeout_s) == (64, 16, 600)
    cfg = load_config(write(tmp_path, GOOD + "\n[local_api]\nmax_connections = 8\n"
                            "max_connections_per_user = 4\nidle_timeout_s = 60\n"))
    limits = Agent._api_limits(cfg)
    assert (limits.max_connections, limits.max_connections_per_user,
            limits.idle_timeout_s) == (8, 4, 60.0)
    for extra, key in [("max_connections = 5000", "local_api.max_connections"),
                       ("max_connections = 0", "local_api.max_connections"),
                       ("max_connections = 8\nmax_connections_per_user = 9",
                        "local_api.max_connections_per_user"),
                       ('idle_timeout_s = "soon"', "local_api.idle_timeout_s")]:
        with pytest.raises(ConfigError) as info:
            load_config(write(tmp_path, GOOD + "\n[local_api]\n" + extra + "\n"))
        assert info.value.key == key, extra


def test_a_stalled_large_line_loses_its_slot_and_the_next_gets_through() -> None:
    """Slow loris: 100 KiB and then nothing. The slot is taken back after the timeout."""
    async def scenario(h: Harness) -> None:
        r1, w1 = await h.raw()
        w1.write(b'{"jsonrpc":"2.0","id":1,"method":"agent.status","params":{"x":"'
                 + b"y" * 100_000)
        await w1.drain()
        await asyncio.sleep(0.1)  # it holds the only slot now
        r2, w2 = await h.raw()
        texts = ",".join(['"' + "z" * 4000 + '"'] * 50)
        w2.write(('{"jsonrpc":"2.0","id":2,"method":"agent.status","params":{"x":[' + texts
                  + "]}}\n").encode())
        t0 = asyncio.get_running_loop().time()
        reply = await read_json(r2, timeout=10)
        waited = asyncio.get_running_loop().time() - t0
        assert reply["id"] == 2 and "result" in reply
        assert await asyncio.wait_for(r1.read(), 5) == b""  # the stalled one was dropped
        assert 0.3 < waited < 5
        print(f"figure: a 200 KiB line waited {waited:.2f} s behind a stalled one")
    run(scenario, limits=ServerLimits(large_lines_at_once=1, large_line_timeout_s=0.5))
