"""The real agent answers with (at least) the keys FakeLocalApi answers, and the same
error codes: the terminal UI is built against the fake and must work on a real box."""

from __future__ import annotations

import asyncio
from typing import Any

from agent.errors import ApiError
from agent.localapi.client import SocketClient
from agent.localapi.fake import FakeLocalApi
from tests.agent.daemon.support import AgentProcess, terminal_dir


async def conversation(api: Any, phone: str) -> dict[str, Any]:
    """The same calls, in the same order, against either implementation."""
    out: dict[str, Any] = {}

    async def call(name: str, method: str, params: dict[str, Any]) -> Any:
        try:
            out[name] = await api.call(method, params)
        except ApiError as exc:
            out[name] = {"error": exc.code}
        return out[name]

    await call("status", "agent.status", {})
    member = await call("identify", "member.identify", {"phone": phone})
    session = (await call("login", "staff.login", {"staff_id": "1", "pin": "1234"}))["session"]
    quote = await call("quote", "sale.quote", {"amount": 12000, "token": member["token"],
                                               "redeem_points": "max"})
    await call("commit", "sale.commit", {"quote_id": quote["quote_id"], "payment": "card",
                                         "session": session})
    await call("commit_again_expired", "sale.commit", {"quote_id": "q-none", "session": session})
    await call("clock", "staff.clock", {"staff_id": "1", "pin": "1234", "action": "in"})
    await call("clock_twice", "staff.clock", {"staff_id": "1", "pin": "1234", "action": "in"})
    await call("expense", "expense.add", {"amount": 500, "category": "milk", "note": "",
                                          "session": session})
    await call("summary", "day.summary", {"session": session})
    appt = {"customer": member["member_id"], "service": "cut", "staff_id": "2",
            "start": "2030-01-01T10:00:00+01:00", "minutes": 30, "session": session}
    await call("appointment", "appointment.create", appt)
    await call("overlap", "appointment.create", {**appt, "start": "2030-01-01T10:10:00+01:00"})
    await call("list", "appointment.list", {"date": "2030-01-01"})
    await call("refund_as_cashier", "sale.refund", {"sale_id": out["commit"]["sale_id"],
                                                    "reason": "x", "session": session})
    await call("enrol", "member.enrol", {"name": "New", "phone": "0935 111 2222",
                                         "session": session})
    await call("badge", "staff.login", {"token": "nfc:04AA000002"})
    await call("unknown", "member.identify", {"code": "NOPE-0"})
    await call("no_method", "nope.nope", {})
    return out


def missing_keys(fake: Any, real: Any, path: str = "") -> list[str]:
    """Keys the fake has and the real answer lacks (two levels deep, lists by first item)."""
    if isinstance(fake, dict) and isinstance(real, dict):
        gaps = [f"{path}.{k}" for k in fake if k not in real]
        if path.count(".") < 2:
            for k in fake:
                # balances and error data depend on the data; explain entries are the
                # rules engine's own (the UI falls back to their text).
                if k in real and k not in ("balances", "data", "explain"):
                    gaps += missing_keys(fake[k], real[k], f"{path}.{k}")
        return gaps
    if isinstance(fake, list) and isinstance(real, list) and fake and real:
        return missing_keys(fake[0], real[0], f"{path}[0]")
    return []


def test_real_agent_answers_like_the_fake() -> None:
    fake = asyncio.run(conversation(FakeLocalApi(), "0912 123 4567"))
    with terminal_dir() as files:
        agent = AgentProcess(files, None)
        try:
            agent.wait_socket()

            async def real_conversation() -> dict[str, Any]:
                client = SocketClient(files.socket)
                try:
                    return await conversation(client, "0912 000 0000")
                finally:
                    await client.close()

            real = asyncio.run(real_conversation())
        finally:
            agent.stop()
    assert list(fake) == list(real)
    for name in fake:
        if isinstance(fake[name], dict) and "error" in fake[name]:
            assert real[name] == fake[name], name
            continue
        assert not missing_keys(fake[name], real[name], name), name
