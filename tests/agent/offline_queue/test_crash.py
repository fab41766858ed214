"""kill -9 while appending: integrity ok, every returned append kept, no seq gap."""

import os
from pathlib import Path

from .crash import crash_loop


def test_sigkill_while_appending(tmp_path: Path) -> None:
    kills = int(os.environ.get("CLUBTERM_CRASH_KILLS", "40"))
    report = crash_loop(tmp_path / "clubterm.db", kills, seed=7)
    assert report.integrity == ["ok"]
    assert report.confirmed, "the child never got to append"
    assert report.last_seq >= max(report.confirmed)
