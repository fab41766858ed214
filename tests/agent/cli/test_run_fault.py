"""`clubterm run --stall-link-when FILE`: the fault test of the watchdog hangs only the
club link's threads, only while FILE exists (tests/packaging drives it under systemd)."""

from __future__ import annotations

import threading
from pathlib import Path

from agent.cli import build_parser
from agent.cli.run import StallingStore


class Store:
    def queue_stats(self) -> str:
        return "stats"


def test_off_by_default() -> None:
    args = build_parser().parse_args(["run"])
    assert args.stall_link_when is None


def test_hangs_link_threads_only_while_the_file_exists(tmp_path: Path) -> None:
    trigger = tmp_path / "stall-link"
    store = StallingStore(Store(), trigger)
    results: list[str] = []

    def worker() -> None:
        results.append(store.queue_stats())

    t = threading.Thread(target=worker, daemon=True)
    t.start()
    t.join(5)
    assert results == ["stats"]
    trigger.touch()
    # The event loop's thread (here: the main thread) is never held.
    assert store.queue_stats() == "stats"
    stuck = threading.Thread(target=worker, daemon=True)
    stuck.start()
    stuck.join(0.5)
    assert stuck.is_alive() and results == ["stats"]


def test_the_link_gets_every_store_part_wrapped(tmp_path: Path) -> None:
    from agent.cli.run import _stalling_link

    class Part:
        def call(self) -> str:
            return "ok"

    class Parts:
        outbox = members = bundles = commands = records = catalogue = Part()

    seen: dict[str, object] = {}

    def fake_link(cfg: object, parts: object, bundle_state: object, on_event: object) -> object:
        seen.update(vars(parts) if hasattr(parts, "__dict__") else
                    {n: getattr(parts, n) for n in ("outbox", "members", "bundles",
                                                    "commands", "records", "catalogue")})
        return parts

    import agent.sync
    real = agent.sync.ClubLink
    agent.sync.ClubLink = fake_link  # type: ignore[assignment,misc]
    try:
        _stalling_link(tmp_path / "stall")(None, Parts(), None, None)
    finally:
        agent.sync.ClubLink = real  # type: ignore[misc]
    assert sorted(seen) == ["bundles", "catalogue", "commands", "members", "outbox", "records"]
    assert all(isinstance(p, StallingStore) for p in seen.values())
