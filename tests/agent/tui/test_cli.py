"""`clubterm tui` options and how it finds its API."""

from __future__ import annotations

import argparse
import asyncio

from agent.cli import tui
from agent.localapi.demo import DemoAgent, DemoStarting


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default=None)
    sub = parser.add_subparsers()
    tui.register(sub)
    return parser.parse_args(["tui", *argv])


def test_options() -> None:
    args = parse("--demo", "--locale", "fa", "--idle-signout", "60")
    assert parse().idle_signout is None
    assert args.demo and args.locale == "fa" and args.idle_signout == 60
    assert args.func is tui.run


def test_demo_api_is_the_real_agent_in_a_folder_it_removes() -> None:
    api = tui.build_api(parse("--demo"))
    assert isinstance(api, DemoStarting)  # built in a thread while the UI loads
    agent = asyncio.run(api.agent())
    assert isinstance(agent, DemoAgent)
    folder = agent.directory
    assert (folder / "clubterm.db").exists()
    status = asyncio.run(api.call("agent.status"))
    assert status["terminal_id"] == "T-0001" and status["rules_version"] == 42
    api.shutdown()
    assert not folder.exists()


def test_fake_is_a_hidden_alias_of_demo_that_says_so(capsys) -> None:
    api = tui.build_api(parse("--fake"))
    try:
        assert isinstance(api, DemoStarting)
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--demo" in err and "real agent" in err
    finally:
        api.shutdown()


def test_locale_from_environment(monkeypatch) -> None:
    monkeypatch.setenv("LANG", "fa_IR.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    assert tui._locale(parse()) == "fa_IR.UTF-8"
    assert tui._locale(parse("--locale", "en")) == "en"
