"""A bundle put in use is frozen out of the garbage collector, and still freed.

``BundleState`` calls ``settle()`` (``gc.freeze()``) after a bundle is put in use, so
that full collections during quotes do not walk its tens of thousands of objects.
A frozen object is never collected by the collector, only by reference counting: the
attack is a terminal that takes bundle after bundle for days; each replaced bundle
must still be freed, or the agent grows without bound.
"""

from __future__ import annotations

import gc
import json
import weakref

from agent.rules import BundleState, parse_bundle, sign_payload
from tests.agent.rules.conftest import spec_bundle
from tests.agent.rules.test_envelope import KEY, NOW, TRUSTED, envelope


def _rules(n: int, version: int) -> dict:
    bundle = spec_bundle(version=version)
    bundle["rules"] = [{"id": f"r{i}", "kind": "discount", "when": {"skus": [f"s{i}"]},
                        "then": {"percent_bps": 1000}} for i in range(n)]
    return bundle


def test_a_bundle_in_use_is_frozen_out_of_the_collector():
    state = BundleState(TRUSTED, club="acme", merchant="M-7")
    before = gc.get_freeze_count()
    assert state.offer(envelope(version=7), NOW)
    assert gc.get_freeze_count() > before
    rule = state.current.rules[0]
    assert not any(rule is o for o in gc.get_objects())  # no generation holds it
    print(f"figure: {gc.get_freeze_count()} objects frozen after a bundle was put in use")


def test_replaced_bundles_are_freed_though_frozen():
    state = BundleState(TRUSTED, club="acme", merchant="M-7")
    gone = []
    for version in range(10, 40):
        env = sign_payload(json.dumps(_rules(200, version)).encode(), KEY, key_id="club-2026-1")
        assert state.offer(env, NOW)
        gone.append(weakref.ref(state.current.rules[-1]))
    gc.disable()  # only reference counting may free them
    try:
        alive = [ref for ref in gone[:-1] if ref() is not None]
    finally:
        gc.enable()
    assert not alive, f"{len(alive)} replaced bundles are still alive"
    assert gone[-1]() is not None
    print(f"figure: 29 replaced 200-rule bundles freed, {len(alive)} left")


def test_parse_bundle_alone_freezes_nothing():
    before = gc.get_freeze_count()
    parse_bundle(json.dumps(_rules(50, 3)).encode())
    assert gc.get_freeze_count() == before
