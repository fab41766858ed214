"""Every API answer has a handler: a mistyped tag is an error at the call, not an
answer silently dropped (#14 item 6)."""

from __future__ import annotations

import ast
import pathlib

import pytest

import agent.tui
from agent.tui.screens.appointments import AppointmentsScreen

TUI = pathlib.Path(agent.tui.__file__).parent


def test_a_mistyped_tag_raises_at_the_call() -> None:
    screen = AppointmentsScreen()
    with pytest.raises(LookupError, match="done_lsit"):
        screen.call_api("lsit", "appointment.list", {})


def test_every_literal_tag_in_the_ui_has_a_handler() -> None:
    """Static check of each ``call_api("tag", …)`` against the class's methods."""
    from agent.tui.screens import base

    checked = 0
    for path in sorted(TUI.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
            names = {f.name for f in ast.walk(cls) if isinstance(f, ast.FunctionDef)}
            for call in (n for n in ast.walk(cls) if isinstance(n, ast.Call)):
                func = call.func
                if not (isinstance(func, ast.Attribute) and func.attr == "call_api"
                        and call.args):
                    continue
                first = call.args[0]
                tags = ([first.value] if isinstance(first, ast.Constant)
                        else [f"{first.values[0].value}{a}"            # f"clock_{action}"
                              for a in ("in", "out")]
                        if isinstance(first, ast.JoinedStr)
                        and isinstance(first.values[0], ast.Constant)
                        and first.values[0].value == "clock_" else [])
                for tag in tags:
                    if "#" in str(tag):
                        continue
                    checked += 1
                    assert f"done_{tag}" in names or f"failed_{tag}" in names, (
                        path.name, cls.name, tag)
    print(f"figure: {checked} call_api tags checked")
    assert checked > 20
    assert base.ApiCaller  # the dispatcher under test

