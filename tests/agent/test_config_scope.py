"""``[club] member_scope`` and ``lookup_timeout_s`` (issue #20): good values load in
their wire form, and a value that would widen an MQTT subscription or hang a till is
refused naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load_config
from agent.errors import ConfigError
from tests.agent.test_config import GOOD, write


def load(tmp_path: Path, extra: str) -> object:
    return load_config(write(tmp_path, GOOD + extra))


@pytest.mark.parametrize(("value", "scope"), [
    ('"club"', "club"), ('"merchant"', "merchant:M-7"), ('"merchant:M-9"', "merchant:M-9"),
    ('"group:north-1"', "group:north-1"),
])
def test_scopes_load_in_their_wire_form(tmp_path: Path, value: str, scope: str) -> None:
    cfg = load_config(write(tmp_path, GOOD + f"member_scope = {value}\n"))
    assert cfg.member_scope == scope
    assert cfg.lookup_timeout_s == 2.0


def test_defaults_are_club_wide(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    assert (cfg.member_scope, cfg.lookup_timeout_s) == ("club", 2.0)


@pytest.mark.parametrize("line", [
    'member_scope = "group:#"', 'member_scope = "merchant:M/+"', 'member_scope = "group:"',
    'member_scope = "shop:M-7"', 'member_scope = "group:' + "x" * 129 + '"',
    "member_scope = 7", "lookup_timeout_s = 60", "lookup_timeout_s = -1",
    "lookup_timeout_s = true", 'lookup_timeout_s = "2"',
])
def test_bad_values_are_refused_by_key(tmp_path: Path, line: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, line + "\n")
    key = line.split(" ", 1)[0]
    assert f"[club.{key}]" in str(err.value), str(err.value)


def test_zero_turns_the_lookup_off(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD + "lookup_timeout_s = 0\n"))
    from agent.sync.lookup import member_lookup
    assert member_lookup(cfg) is None
