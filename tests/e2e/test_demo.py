"""scripts/demo starts everything, shows a tapped card's member and a quote, and cleans up."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.agent.daemon.support import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.needs_pcscd, pytest.mark.needs_mosquitto]


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                    reason="the demo's private pcscd needs root (unshare -m)")
@pytest.mark.skipif(shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists(),
                    reason="mosquitto is not installed")
def test_demo_identifies_a_tapped_card_and_cleans_up(tmp_path: Path) -> None:
    out_path = tmp_path / "demo.out"
    env = {**os.environ, "CLUBTERM_DEMO_PYTHON": sys.executable}
    with out_path.open("wb") as out:
        demo = subprocess.Popen([str(ROOT / "scripts" / "demo"), "--log"], stdout=out,
                                stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while "-- events" not in out_path.read_text() and time.monotonic() < deadline:
            assert demo.poll() is None, out_path.read_text()
            time.sleep(0.2)
        text = out_path.read_text()
        assert "-- events" in text, text
        folder = re.search(r"demo folder (\S+)", text).group(1)  # type: ignore[union-attr]
        tap = re.search(r"(-m hw_sim tap --card visa-contactless(?: --port \d+)?)", text)
        assert tap
        subprocess.run([sys.executable, *tap.group(1).split()], check=True, cwd=ROOT,
                       capture_output=True, timeout=30)
        deadline = time.monotonic() + 20
        while "quote for 120.00 EUR" not in out_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        text = out_path.read_text()
        assert "411111******1111: Sara K. (m-1001, gold, active)" in text, text
        assert "quote for 120.00 EUR: discount 12.00" in text, text
    finally:
        os.killpg(demo.pid, signal.SIGINT)
        demo.wait(30)
    assert not Path(folder).exists()
    left = subprocess.run(["pgrep", "-f", folder], capture_output=True, text=True).stdout
    assert not left.strip(), f"processes left behind: {left}"
    assert "4111111111111111" not in out_path.read_text()
