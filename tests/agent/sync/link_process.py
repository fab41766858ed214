"""Run one terminal's ClubLink in its own process (the kill test SIGKILLs it).

    python -m tests.agent.sync.link_process CONFIG [SLOW_LOG]

With SLOW_LOG, a ``ping`` is made slow (a test-injected handler: it appends its id
to SLOW_LOG, then blocks for a minute), so a test can kill the agent mid-command and
count how many times a command really ran.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from typing import Any

from agent.config import load_config
from agent.sync import ClubLink, commands
from tests.agent.sync.conftest import FAST, make_bundle_state, open_store


def slow_ping(slow_log: str) -> None:
    real = commands.HANDLERS["ping"]

    def run(cmd: Any, ctx: Any, out: Any) -> dict[str, Any]:
        with open(slow_log, "a") as f:
            f.write(cmd.id + "\n")
        print("running " + cmd.id, flush=True)
        time.sleep(60)
        return real(cmd, ctx, out)

    commands.HANDLERS["ping"] = run


def main() -> None:
    config = load_config(sys.argv[1])
    if len(sys.argv) > 2:
        slow_ping(sys.argv[2])
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
