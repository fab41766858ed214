"""The club status carries the receipt printer's state (#16, club.md 1.2): null
without one, the state after set_printer, and a change republishes the status."""

from __future__ import annotations

import json

from agent.offline_queue import Store
from tests.agent.sync.test_core import TOPICS, make_core, online, perform, publishes, store

__all__ = ["store"]


def test_status_has_the_printer_and_a_change_republishes_it(store: Store) -> None:
    core = make_core(store)
    (first,) = publishes(online(store, core), TOPICS.status)
    assert json.loads(first.payload)["printer"] is None
    core.set_printer({"kind": "network", "state": "paper_out",
                      "detail": "the printer is out of paper", "failed": 1})
    later = perform(store, core.tick(5.0))
    (status,) = publishes(later, TOPICS.status)
    assert json.loads(status.payload)["printer"] == {
        "kind": "network", "state": "paper_out", "detail": "the printer is out of paper",
        "failed": 1}
    core.set_printer({"kind": "network", "state": "paper_out",
                      "detail": "the printer is out of paper", "failed": 1})
    assert publishes(perform(store, core.tick(10.0)), TOPICS.status) == []
