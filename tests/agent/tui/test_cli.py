"""`clubterm tui` options and how it finds its API."""

from __future__ import annotations

import argparse

from agent.cli import tui
from agent.localapi.fake import FakeLocalApi


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default=None)
    sub = parser.add_subparsers()
    tui.register(sub)
    return parser.parse_args(["tui", *argv])


def test_options() -> None:
    args = parse("--fake", "--locale", "fa", "--idle-signout", "60")
    assert parse().idle_signout is None
    assert args.fake and args.locale == "fa" and args.idle_signout == 60
    assert args.func is tui.run


def test_fake_api() -> None:
    assert isinstance(tui.build_api(parse("--fake")), FakeLocalApi)


def test_locale_from_environment(monkeypatch) -> None:
    monkeypatch.setenv("LANG", "fa_IR.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    assert tui._locale(parse()) == "fa_IR.UTF-8"
    assert tui._locale(parse("--locale", "en")) == "en"
