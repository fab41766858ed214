"""safe_text: what a terminal would obey, and how it is shown instead."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from agent.safe_text import escape_for_terminal, is_unsafe, json_for_terminal, unsafe_char


def test_table() -> None:
    assert escape_for_terminal("Sara K.") == "Sara K."
    assert escape_for_terminal("سارا\u200f") == "سارا\u200f"
    assert escape_for_terminal("Eve\x1b]0;x\x07") == "Eve\\x1b]0;x\\x07"
    assert escape_for_terminal("a\nb\rc\x9bd\x7f") == "a\\x0ab\\x0dc\\x9bd\\x7f"
    assert escape_for_terminal("x\u202ey\u2066") == "x\\u202ey\\u2066"
    assert unsafe_char("note\nline\ttab", multiline=True) is None
    assert unsafe_char("note\r", multiline=True) == "\r"
    assert unsafe_char("name\n") == "\n"
    assert json.loads(json_for_terminal({"n": "a\x9b\u202e\x1b"})) == {"n": "a\x9b\u202e\x1b"}


@given(st.text(max_size=100))
def test_escaped_text_holds_nothing_a_terminal_obeys(text: str) -> None:
    shown = escape_for_terminal(text)
    assert not any(is_unsafe(ch) for ch in shown)
    assert "\u2028" not in shown and "\u2029" not in shown


@given(st.recursive(st.none() | st.text(max_size=20) | st.integers(),
                    lambda kids: st.lists(kids, max_size=3)
                    | st.dictionaries(st.text(max_size=5), kids, max_size=3), max_leaves=10))
def test_terminal_json_is_the_same_json(value: object) -> None:
    text = json_for_terminal(value, indent=2)
    assert json.loads(text) == value
    assert not any(is_unsafe(ch) and ch != "\n" for ch in text)
