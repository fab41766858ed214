"""Run one terminal's ClubLink in its own process (the kill test SIGKILLs it).

    python -m tests.agent.sync.link_process CONFIG
"""

from __future__ import annotations

import signal
import sys
import threading

from agent.config import load_config
from agent.sync import ClubLink
from tests.agent.sync.conftest import FAST, make_bundle_state, open_store


def main() -> None:
    config = load_config(sys.argv[1])
    store = open_store(config.db_path, config.terminal_id, config.merchant_id)
    link = ClubLink(config, store, make_bundle_state(config), tuning=FAST)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    link.start()
    print("started", flush=True)
    done.wait()
    link.stop()
    store.close()


if __name__ == "__main__":
    main()
