"""`clubterm tui` options and how it finds its API."""

from __future__ import annotations

import argparse
import importlib.util

import pytest

from agent.cli import tui
from agent.errors import ClubtermError
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


@pytest.mark.skipif(importlib.util.find_spec("agent.localapi.client") is not None,
                    reason="the real client exists")
def test_without_the_real_client_says_what_to_do(tmp_path) -> None:
    with pytest.raises(ClubtermError, match="--fake"):
        tui.build_api(parse("--socket", str(tmp_path / "agent.sock")))


def test_locale_from_environment(monkeypatch) -> None:
    monkeypatch.setenv("LANG", "fa_IR.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    assert tui._locale(parse()) == "fa_IR.UTF-8"
    assert tui._locale(parse("--locale", "en")) == "en"
