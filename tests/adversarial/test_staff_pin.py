"""PIN sign-in under attack, over the real local API socket (#13 item 2).

Each test drives the real server, services and store through `tests.agent.localapi.
harness` and prints its figure.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import pytest

from agent.errors import ApiError
from agent.localapi.client import SocketClient
from agent.localapi.server import ServerLimits
from agent.localapi.sessions import PIN_MAX_ATTEMPTS, PIN_MAX_TRACKED
from tests.agent.localapi.harness import Harness, run


async def _reason(call: Any) -> str:
    try:
        await call
    except ApiError as exc:
        return str((exc.data or {}).get("reason"))
    return "signed_in"


def _count_checks(h: Harness) -> list[str]:
    """Record every PIN the store checks (the scrypt runs), by staff id."""
    checked: list[str] = []
    real = h.store.records.verify_staff_pin

    def counting(staff_id: str, pin: str) -> bool:
        checked.append(staff_id)
        return real(staff_id, pin)

    h.store.records.verify_staff_pin = counting  # type: ignore[method-assign]
    return checked


def test_50_concurrent_guesses_for_one_id_get_at_most_the_limit_checked() -> None:
    async def scenario(h: Harness) -> None:
        checked = _count_checks(h)
        clients = [SocketClient(h.path, timeout_s=30) for _ in range(50)]
        h.clients.extend(clients)
        for c in clients:
            await c.connect()
        started = time.monotonic()
        # 50 connections, 50 different wrong PINs for the manager, all at once.
        reasons = await asyncio.gather(*(
            _reason(c.call("staff.login", {"staff_id": "mg", "pin": f"{i:04d}"}))
            for i, c in enumerate(clients) if f"{i:04d}" != "9999"))
        took = time.monotonic() - started
        print(f"figure: 50 concurrent guesses for one id: {len(checked)} PINs checked, "
              f"{reasons.count('bad_credentials')} wrong, {reasons.count('locked_out')} "
              f"refused before any check, in {took * 1000:.0f} ms")
        assert len(checked) <= PIN_MAX_ATTEMPTS <= 10
        assert reasons.count("bad_credentials") == len(checked)
        assert reasons.count("locked_out") == 50 - len(checked)
        # The right PIN is refused too while the id is locked.
        assert await _reason(h.client().call("staff.login", {"staff_id": "mg", "pin": "9999"})
                             ) == "locked_out"
        assert len(checked) <= PIN_MAX_ATTEMPTS
    # 50 connections from one user: more than the API's per-user cap (16), raised
    # here so that the PIN throttle is shown to hold on its own, whatever the caps.
    run(scenario, limits=ServerLimits(max_connections=64, max_connections_per_user=64))


def test_unknown_ids_take_as_long_as_known_ones() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        await c.call("agent.status")
        known: list[float] = []
        unknown: list[float] = []

        async def timed(staff_id: str, pin: str) -> float:
            t = time.perf_counter()
            assert await _reason(c.call("staff.login", {"staff_id": staff_id, "pin": pin})) \
                == "bad_credentials"
            return time.perf_counter() - t

        await timed("warm-up", "1111")  # the dummy hash is made on first use
        for i in range(12):
            known.append(await timed("c1", "0000"))
            await c.call("staff.login", {"staff_id": "c1", "pin": "1234"})  # clears the count
            unknown.append(await timed(f"ghost-{i}", "0000"))
        k, u = statistics.median(known), statistics.median(unknown)
        print(f"figure: median answer to a wrong PIN: known id {k * 1000:.1f} ms, unknown id "
              f"{u * 1000:.1f} ms (ratio {u / k:.2f}, 12 each)")
        assert 0.5 <= u / k <= 2.0
    run(scenario)


def test_a_flood_of_unknown_ids_never_unlocks_a_locked_id(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    # The dummy scrypt is made cheap so that 1,001+ failures run in seconds; the
    # bookkeeping under attack is the real one.
    monkeypatch.setattr("agent.offline_queue.staff_records.verify_absent", lambda pin: False)

    async def scenario(h: Harness) -> None:
        now = [1000.0]
        h.services.monotonic = lambda: now[0]
        c = h.client()
        for _ in range(PIN_MAX_ATTEMPTS):
            await _reason(c.call("staff.login", {"staff_id": "mg", "pin": "0000"}))
        assert await _reason(c.call("staff.login", {"staff_id": "mg", "pin": "9999"})
                             ) == "locked_out"
        flood = PIN_MAX_TRACKED + 1 + 100
        clients = [h.client() for _ in range(8)]

        async def attacker(k: int) -> list[str]:
            return [await _reason(clients[k].call("staff.login",
                                                  {"staff_id": f"x{k}-{i}", "pin": "1"}))
                    for i in range(k, flood, len(clients))]

        started = time.monotonic()
        reasons = [r for rs in await asyncio.gather(*(attacker(k) for k in range(8)))
                   for r in rs]
        took = time.monotonic() - started
        print(f"figure: {flood} unknown ids in {took:.1f} s: "
              f"{reasons.count('bad_credentials')} checked, "
              f"{reasons.count('too_many_attempts')} refused (table of {PIN_MAX_TRACKED} full)"
              f"; tracked ids {len(getattr(h.services, 'pin_attempts', ()))}")
        # The locked manager is still locked, with the right PIN too.
        assert await _reason(c.call("staff.login", {"staff_id": "mg", "pin": "9999"})
                             ) == "locked_out"
        assert len(reasons) == flood
        assert reasons.count("too_many_attempts") == flood - (PIN_MAX_TRACKED - 1)
        # A minute later the window has passed: the manager signs in again.
        now[0] += 61
        assert await _reason(c.call("staff.login", {"staff_id": "mg", "pin": "9999"})
                             ) == "signed_in"
    run(scenario)
