"""`clubterm status` and `clubterm sale` as thin clients of a running agent."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.agent.daemon.support import ROOT, AgentProcess, terminal_dir


def clubterm(config: object, *args: str, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent", "--config", str(config), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=60,
                          env={**os.environ, **(env or {})})


def test_status_and_sale_commands() -> None:
    with terminal_dir() as files:
        agent = AgentProcess(files, None)
        try:
            agent.wait_socket()
            out = clubterm(files.config, "status")
            assert out.returncode == 0, out.stderr
            assert "T-0001" in out.stdout and "OFFLINE" in out.stdout
            assert "version 42" in out.stdout
            status = json.loads(clubterm(files.config, "status", "--json").stdout)
            assert status["queue"]["pending"] == 0

            quote = clubterm(files.config, "sale", "--amount", "12000", "--phone",
                             "0912 000 0000", "--quote-only")
            assert quote.returncode == 0, quote.stdout + quote.stderr
            assert "to pay     108.00 EUR" in quote.stdout  # gold: 10 % off
            assert "not recorded" in quote.stdout

            sale = clubterm(files.config, "sale", "--amount", "12000", "--phone",
                            "0912 000 0000", "--redeem-points", "max", "--staff-id", "1",
                            "--json", env={"CLUBTERM_PIN": "1234"})
            assert sale.returncode == 0, sale.stdout + sale.stderr
            result = json.loads(sale.stdout)
            assert result["commit"]["seq"] == 1
            assert result["quote"]["redeemed_points"] == 1200

            wrong = clubterm(files.config, "sale", "--amount", "100", "--staff-id", "1",
                             "--pin", "0000")
            assert wrong.returncode == 1 and "PIN is not right" in wrong.stdout
            needs = clubterm(files.config, "sale", "--amount", "100")
            assert needs.returncode == 2 and "staff sign-in" in needs.stderr
            assert "1 waiting" in clubterm(files.config, "status").stdout
        finally:
            agent.stop()
        gone = clubterm(files.config, "status")
        assert gone.returncode == 3 and "not running" in gone.stdout
