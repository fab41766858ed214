"""Every API answer goes to a handler the call names as a bound method: a
mistyped handler is a mypy error and an AttributeError at the call, never an
answer silently dropped (#14 item 6). Replaces the old string-tag check."""

from __future__ import annotations

import ast
import pathlib
from types import SimpleNamespace
from typing import Any

import pytest

import agent.tui
from agent.errors import ApiError
from agent.localapi import NOT_ALLOWED
from agent.tui.messages import ApiDone, ApiFailed
from agent.tui.screens.appointments import AppointmentsScreen
from agent.tui.screens.base import ApiCaller

TUI = pathlib.Path(agent.tui.__file__).parent


def test_a_mistyped_handler_fails_at_the_call() -> None:
    screen = AppointmentsScreen()
    with pytest.raises(AttributeError, match="done_lsit"):
        screen.call_api("appointment.list", {}, on_done=screen.done_lsit)  # type: ignore[attr-defined]


def test_a_call_without_a_handler_is_refused() -> None:
    screen = AppointmentsScreen()
    with pytest.raises(TypeError, match="on_done"):
        screen.call_api("appointment.list", {})  # type: ignore[call-arg]


def _handler_ok(node: ast.expr, names: set[str], local: set[str]) -> bool:
    """``self.name``, ``partial(self.name, …)`` or a local chosen among them."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return node.value.id == "self" and node.attr in names
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return node.func.id == "partial" and _handler_ok(node.args[0], names, local)
    return isinstance(node, ast.Name) and node.id in local


def test_every_call_site_passes_bound_handlers() -> None:
    """Static belt to mypy's braces: each ``call_api(…)`` names ``on_done`` (and
    any ``on_failed``) as a method of its own class, and no tag string."""
    checked = 0
    for path in sorted(TUI.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
            names = {f.name for f in ast.walk(cls) if isinstance(f, ast.FunctionDef)}
            # Locals assigned from a choice of handlers (cash: expense or receipt).
            local = {t.id for a in ast.walk(cls) if isinstance(a, ast.Assign)
                     and isinstance(a.value, ast.IfExp)
                     and _handler_ok(a.value.body, names, set())
                     and _handler_ok(a.value.orelse, names, set())
                     for t in a.targets if isinstance(t, ast.Name)}
            for call in (n for n in ast.walk(cls) if isinstance(n, ast.Call)):
                func = call.func
                if not (isinstance(func, ast.Attribute) and func.attr == "call_api"):
                    continue
                kws = {k.arg: k.value for k in call.keywords}
                assert "on_done" in kws, (path.name, cls.name, call.lineno)
                for kind in ("on_done", "on_failed"):
                    if kind in kws:
                        assert _handler_ok(kws[kind], names, local), (
                            path.name, cls.name, call.lineno, kind)
                checked += 1
    print(f"figure: {checked} call_api call sites checked")
    assert checked > 25


class _Caller(ApiCaller):
    """ApiCaller without a Textual app: records what the default handling does."""

    def __init__(self) -> None:
        self.seen: list[Any] = []
        self.app = SimpleNamespace(sign_out=lambda reason: self.seen.append(("sign_out", reason)))

    def show_error(self, error: ApiError) -> None:
        self.seen.append(("shown", error.code))


def test_answers_go_to_the_named_handlers_and_failures_default() -> None:
    caller = _Caller()
    caller.on_api_done(ApiDone("x.y", {"a": 1}, lambda r: caller.seen.append(("done", r))))
    caller.on_api_failed(ApiFailed("x.y", ApiError(-1, "boom"), None))
    # A handler returning False asks for the default display as well.
    caller.on_api_failed(ApiFailed("x.y", ApiError(-2, "two"),
                                   lambda e: caller.seen.append(("own", e.code)) or False))
    caller.on_api_failed(ApiFailed("x.y", ApiError(-3, "three"), lambda e: True))
    # A session the agent ended signs out whatever the call's own handler.
    ended = ApiError(NOT_ALLOWED, "ended", {"reason": "session_expired"})
    caller.on_api_failed(ApiFailed("x.y", ended, lambda e: True))
    assert caller.seen[:4] == [("done", {"a": 1}), ("shown", -1), ("own", -2), ("shown", -2)]
    assert caller.seen[4][0] == "sign_out" and len(caller.seen) == 5
