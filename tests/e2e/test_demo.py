"""scripts/demo starts everything, shows a tapped card's member and a quote, prints a
sale of a product scanned by name on its simulated printer, and cleans up."""

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

from agent.localapi.client import SyncClient
from hw_sim.club.catalogue import find_product
from tests.agent.daemon.support import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.needs_pcscd, pytest.mark.needs_mosquitto]


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                    reason="the demo's private pcscd needs root (unshare -m)")
@pytest.mark.skipif(shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists(),
                    reason="mosquitto is not installed")
def test_demo_identifies_a_tapped_card_and_cleans_up(tmp_path: Path) -> None:
    out_path = tmp_path / "demo.out"
    env = {**os.environ, "CLUBTERM_DEMO_PYTHON": sys.executable,
           "CLUBTERM_DEMO_POINTER": str(tmp_path / "demo.current")}
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
                       capture_output=True, timeout=30, env=env)
        deadline = time.monotonic() + 20
        while "quote for 120.00 EUR" not in out_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        text = out_path.read_text()
        assert "411111******1111: Sara K. (m-1001, gold, active)" in text, text
        assert "quote for 120.00 EUR: discount 12.00" in text, text
        # The instructions fit 80 columns and say how to scan a product by name and
        # where the receipts go.
        howto = (Path(folder) / "HOWTO.txt").read_text()
        # (with the interpreter of a checkout's .venv, as a user runs it)
        commands = [line.replace(sys.executable, ".venv/bin/python")
                    for line in howto.splitlines() if " -m hw_sim " in line]
        assert commands and all(len(line) <= 80 for line in commands), howto
        assert "scan --product croissant" in howto and "receipt-png" in howto, howto
        # A product scanned by name, then a sale: it prints on the demo's printer.
        scan = re.search(r"(-m hw_sim scan --product croissant)", howto)
        assert scan
        subprocess.run([sys.executable, *scan.group(1).split()], check=True, cwd=ROOT,
                       capture_output=True, timeout=30, env=env)
        croissant = find_product("croissant")["barcodes"][0]
        deadline = time.monotonic() + 20
        while croissant not in out_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        with SyncClient(Path(folder) / "agent.sock", timeout_s=20) as client:
            login = client.call("staff.login", {"staff_id": "1", "pin": "1234"})
            quote = client.call("sale.quote", {"lines": [{"barcode": croissant, "qty": 2}],
                                               "token": "tel:+989121234567"})
            sale = client.call("sale.commit", {"quote_id": quote["quote_id"],
                                               "payment": "cash", "session": login["session"]})
        printed = Path(folder) / "sim" / "printer" / "receipt-0001.bin"
        deadline = time.monotonic() + 20
        while not printed.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)  # the printer writes the file when the connection ends
        png = subprocess.run([sys.executable, "-m", "hw_sim", "receipt-png",
                              str(tmp_path / "r.png")], cwd=ROOT, capture_output=True,
                             text=True, timeout=30, env=env)
        assert png.returncode == 0, png.stderr
        assert "Croissant" in png.stdout and "on bakery" in png.stdout, png.stdout
        assert sale["sale_id"] in png.stdout and (tmp_path / "r.png").stat().st_size > 0
    finally:
        os.killpg(demo.pid, signal.SIGINT)
        demo.wait(30)
    assert not Path(folder).exists()
    left = subprocess.run(["pgrep", "-f", folder], capture_output=True, text=True).stdout
    assert not left.strip(), f"processes left behind: {left}"
    assert "4111111111111111" not in out_path.read_text()
