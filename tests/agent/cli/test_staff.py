"""``clubterm staff`` through the real entry point, on a simulated terminal's store
(#22 item 6): what a technician types, the mistakes they make, and a running agent."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from agent.cli import main
from agent.errors import ApiError
from agent.localapi.client import SocketClient
from agent.offline_queue import Store
from hw_sim.terminal import TerminalFiles
from tests.agent.daemon.support import ROOT, AgentProcess, terminal_dir


@pytest.fixture
def files() -> Iterator[TerminalFiles]:
    with terminal_dir() as made:  # staff 1, 2, 3 seeded (hw_sim.terminal.STAFF)
        yield made


def staff(files: TerminalFiles, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
          *argv: str, stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    try:
        code = main(["--config", str(files.config), "staff", *argv])
    except SystemExit as exc:  # argparse's own errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def stored(files: TerminalFiles, staff_id: str, pin: str) -> tuple[dict[str, object] | None, bool]:
    with Store.open(files.db, "T-0001", "M-7") as store:
        return store.records.staff(staff_id), store.records.verify_staff_pin(staff_id, pin)


def test_add_list_set_pin_disable_enable(files, capsys, monkeypatch) -> None:
    code, out, err = staff(files, capsys, monkeypatch, "add", "7", "--name", " Sara K. ",
                           "--role", "cashier", "--badge", "04aa0000beef", "--pin-stdin",
                           stdin="2468\n")
    assert (code, err) == (0, "")
    assert out == "added staff member 7 (Sara K., cashier); signs in with PIN and 1 badge(s)\n"
    record, pin_ok = stored(files, "7", "2468")
    assert pin_ok and record is not None and record["badges"] == ["nfc:04AA0000BEEF"]
    assert record["created_by"] == "cli:" + __import__("getpass").getuser()

    code, out, _ = staff(files, capsys, monkeypatch, "list")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["ID", "NAME", "ROLE", "ACTIVE", "PIN", "BADGES"]
    assert ["7", "Sara", "K.", "cashier", "yes", "yes", "1"] in [line.split() for line in lines]
    assert "04AA0000BEEF" not in out  # badges are counted, not shown

    code, out, _ = staff(files, capsys, monkeypatch, "set-pin", "7", "--pin-stdin",
                         stdin="13579\n")
    assert code == 0 and stored(files, "7", "13579")[1] and not stored(files, "7", "2468")[1]

    code, out, _ = staff(files, capsys, monkeypatch, "disable", "7")
    assert code == 0 and "disabled" in out and not stored(files, "7", "13579")[1]
    _, out, _ = staff(files, capsys, monkeypatch, "list", "--json")
    assert "7" not in [row["staff_id"] for row in json.loads(out)]
    _, out, _ = staff(files, capsys, monkeypatch, "list", "--all", "--json")
    [row] = [r for r in json.loads(out) if r["staff_id"] == "7"]
    assert row["active"] is False and row["badges"] == 1 and row["has_pin"] is True
    # A new PIN for a disabled member leaves them disabled.
    staff(files, capsys, monkeypatch, "set-pin", "7", "--pin-stdin", stdin="1111\n")
    assert not stored(files, "7", "1111")[1]
    code, out, _ = staff(files, capsys, monkeypatch, "enable", "7")
    assert code == 0 and stored(files, "7", "1111")[1]

    code, out, _ = staff(files, capsys, monkeypatch, "set-badges", "7")
    assert code == 0 and stored(files, "7", "1111")[0]["badges"] == []  # type: ignore[index]


@pytest.mark.parametrize(("argv", "stdin", "message"), [
    (["add", "8", "--name", "X", "--role", "boss", "--pin-stdin"], "1234\n",
     "invalid choice: 'boss' (choose from 'cashier', 'manager', 'technician')"),
    (["add", "8", "--name", "X", "--role", "cashier", "--pin-stdin"], "\n", "the PIN is empty"),
    (["add", "8", "--name", "X", "--role", "cashier", "--pin-stdin"], "", "the PIN is empty"),
    (["add", "8", "--name", "X", "--role", "cashier", "--pin-stdin"], "12ab\n",
     "the PIN must be 4 to 12 digits"),
    (["add", "8", "--name", "X", "--role", "cashier", "--pin-stdin"], "123\n",
     "the PIN must be 4 to 12 digits"),
    (["add", "1", "--name", "X", "--role", "cashier", "--pin-stdin"], "1234\n",
     "staff member '1' already exists"),
    (["add", "8", "--name", "X", "--role", "cashier", "--badge", "nfc:04AA000002",
      "--pin-stdin"], "1234\n", "belongs to staff member 2 (Reza Karimi)"),
    (["add", "8", "--name", "X", "--role", "cashier", "--badge", "pan:oops", "--pin-stdin"],
     "1234\n", "'pan:oops' is not a badge token"),
    (["add", "8 8", "--name", "X", "--role", "cashier", "--pin-stdin"], "1234\n",
     "the staff id must be 1 to 32 characters without spaces"),
    (["add", "8", "--name", "  ", "--role", "cashier", "--pin-stdin"], "1234\n",
     "the name must be 1 to 100 printable characters"),
    (["add", "8", "--name", "X", "--role", "cashier"], "1234\n",
     "standard input is not a terminal, so the PIN cannot be asked for: pipe it in with "
     "--pin-stdin"),
    (["add", "8", "--name", "X", "--role", "cashier", "--no-pin"], "",
     "without a PIN the staff member needs a badge (--badge)"),
    (["add", "8", "--name", "X", "--role", "cashier", "--pin", "1234"], "",
     "a PIN is never given on the command line"),
    (["set-pin", "1", "--pin=1234"], "", "a PIN is never given on the command line"),
    (["set-pin", "99", "--pin-stdin"], "1234\n", "there is no staff member '99'"),
    (["disable", "99"], "", "there is no staff member '99'"),
])
def test_bad_input_is_a_clear_error_and_changes_nothing(files, capsys, monkeypatch, argv, stdin,
                                                        message) -> None:
    with Store.open(files.db, "T-0001", "M-7") as store:
        before = store.records.list_staff(include_inactive=True)
    code, _out, err = staff(files, capsys, monkeypatch, *argv, stdin=stdin)
    assert code == 2 and message in err, err
    assert "1234" not in err  # a PIN is never echoed
    with Store.open(files.db, "T-0001", "M-7") as store:
        assert store.records.list_staff(include_inactive=True) == before


def test_help_explains_roles_pin_and_badges(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["staff", "add", "--help"])
    out = capsys.readouterr().out
    for text in ("--pin-stdin", "technician", "Never on the command line", "nfc:<UID",
                 "The agent may keep running"):
        assert text in out


def test_no_store_and_a_store_owned_by_another_user(files, capsys, monkeypatch, tmp_path) -> None:
    code, _, err = staff(files, capsys, monkeypatch, "list", "--db", str(tmp_path / "none.db"))
    assert code == 2 and "there is no store at" in err and "start the agent once" in err
    if os.geteuid() != 0:
        pytest.skip("the owner check applies to root")
    os.chown(files.db, 1, -1)
    code, _, err = staff(files, capsys, monkeypatch, "list")
    assert code == 2 and "run this as the store's owner, e.g. 'sudo -u" in err


def test_works_while_the_agent_runs(files) -> None:
    """Through the real command (a subprocess, PIN on stdin) while the real agent
    serves: the new member signs in at once; disabled, they no longer can."""
    agent = AgentProcess(files, None)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def clubterm(*argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "agent", "--config", str(files.config),
                               "staff", *argv], input=stdin, capture_output=True, text=True,
                              env=env, cwd=ROOT, timeout=60)

    async def login(pin: str) -> str:
        async with SocketClient(files.socket) as client:
            try:
                return str((await client.call("staff.login",
                                              {"staff_id": "42", "pin": pin}))["role"])
            except ApiError as exc:
                return str((exc.data or {}).get("reason"))

    try:
        agent.wait_socket()
        done = clubterm("add", "42", "--name", "Tech Tina", "--role", "technician",
                        "--pin-stdin", stdin="8642\n")
        assert done.returncode == 0, done.stderr
        assert "8642" not in done.stdout + done.stderr
        assert asyncio.run(login("8642")) == "technician"
        assert clubterm("disable", "42").returncode == 0
        assert asyncio.run(login("8642")) == "bad_credentials"
    finally:
        assert agent.stop() == 0
    assert "8642" not in agent.output()
