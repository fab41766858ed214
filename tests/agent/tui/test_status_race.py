"""A status answer that was read before an event must not overwrite what the event said.

Seen while moving the UI tests onto the real agent: a link event makes the UI ask for
the whole status; the agent read its queue (0 waiting) and answered after the queue
event that followed a sale had said 1, so the bar showed "Queue 0" for 30 s.
"""

from __future__ import annotations

import asyncio
from typing import Any

from textual.widgets import Static

from .conftest import ready, sign_in, wait_for


async def test_a_late_status_answer_does_not_hide_a_newer_queue_count(make_app, api) -> None:
    real_call = api.call
    answered = asyncio.Event()

    async def slow_status(method: str, params: Any = None) -> Any:
        result = await real_call(method, params)
        if method == "agent.status" and slow:
            await asyncio.sleep(0.5)      # the answer is on its way while things happen
            answered.set()
        return result

    slow = False
    api.call = slow_status
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await sign_in(pilot)
        bar = app.screen.query_one("StatusBar", Static)
        slow = True
        api.set_online(False)            # the UI asks for the status; it reads 0 waiting
        await pilot.pause(0.1)
        api.store.outbox.append("expense", {"amount": 100, "category": "misc", "note": None},
                                at=api.clock(), staff_id="1", offline=True)
        api.push_event({"type": "queue", "pending": 1, "oldest_at": None, "rejected": 0})
        await wait_for(pilot, lambda: "Queue 1" in str(bar.content))
        await wait_for(pilot, answered.is_set)
        slow = False
        await pilot.pause(0.8)           # the old answer has landed, and the asked-again one
        assert "Queue 1" in str(bar.content), str(bar.content)
        assert "OFFLINE" in str(bar.content)
