"""Pure checks behind the local API's resource limits (no I/O, the time passed in).

:func:`check_request_values` walks one decoded request once and says what, if
anything, is out of bounds: nesting deeper than the limit, a number a JSON client
cannot hold exactly (beyond 2^53 - 1), text longer than the limit, or text that is
not valid Unicode (a lone surrogate, which ``json`` accepts as ``"\\ud800"`` but
which can never be stored, logged or sent back). :class:`LogLimiter` keeps a
client that provokes the same log line thousands of times a second from filling
the disk.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# The largest integer every JSON client holds exactly (an IEEE double's 53 bits).
MAX_SAFE_INTEGER = 2**53 - 1
# json's parse_int hook turns longer digit strings into this marker instead of
# building a huge int (the walk then reports it as out of range).
_MAX_INT_DIGITS = 17


class _OutOfRange:
    """Stands for a number literal with more digits than any allowed value has."""

    def __repr__(self) -> str:
        return "<number out of range>"


OUT_OF_RANGE: Any = _OutOfRange()


def parse_int(text: str) -> Any:
    """``json.loads`` ``parse_int`` hook: no huge int is ever built from a request."""
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        return OUT_OF_RANGE
    return int(text)


def reject_constant(name: str) -> Any:
    """``json.loads`` ``parse_constant`` hook: NaN and Infinity are not JSON."""
    raise ValueError(f"{name} is not a JSON value")


@dataclass(frozen=True)
class ValueProblem:
    """What is wrong with a request, as the transport reports it.

    ``kind`` is ``"depth"`` (-32600), ``"text"`` (not valid Unicode: -32700),
    ``"number"`` or ``"length"`` (-32602). ``param`` is the top-level parameter
    that holds the offending value, when there is one.
    """

    kind: str
    message: str
    param: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


def _encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_request_values(params: Any, *, max_depth: int, max_text_chars: int
                         ) -> ValueProblem | None:
    """Walk ``params`` once (iteratively: depth cannot blow the stack) for bounds.

    ``params`` is depth 1; a value nested ``max_depth`` containers deep is allowed,
    one more is not.
    """
    stack: list[tuple[Any, int, str | None]] = [(params, 1, None)]
    while stack:
        value, depth, top = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > max_depth:
                return ValueProblem(
                    "depth", f"The request is nested too deeply (more than {max_depth} levels).",
                    top, {"max_depth": max_depth})
            if isinstance(value, dict):
                for key, item in value.items():
                    name = key if top is None else top
                    problem = _text_problem(key, name, max_text_chars)
                    if problem is not None:
                        return problem
                    stack.append((item, depth + 1, name))
            else:
                stack.extend((item, depth + 1, top) for item in value)
        elif isinstance(value, str):
            problem = _text_problem(value, top, max_text_chars)
            if problem is not None:
                return problem
        elif value is OUT_OF_RANGE or (
                isinstance(value, int) and not isinstance(value, bool)
                and not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER):
            return _number_problem(top)
        elif isinstance(value, float) and (not math.isfinite(value)
                                           or abs(value) > MAX_SAFE_INTEGER):
            return _number_problem(top)
    return None


def _where(param: str | None) -> str:
    return f"the parameter {param!r}" if param is not None else "the request"


def _number_problem(param: str | None) -> ValueProblem:
    return ValueProblem(
        "number",
        f"A number in {_where(param)} is too large (at most {MAX_SAFE_INTEGER:,}).",
        param, {"max": MAX_SAFE_INTEGER})


def _text_problem(text: str, param: str | None, max_text_chars: int) -> ValueProblem | None:
    if len(text) > max_text_chars:
        return ValueProblem(
            "length",
            f"A text in {_where(param)} is too long (at most {max_text_chars:,} characters).",
            param, {"max_chars": max_text_chars})
    if not _encodable(text):
        return ValueProblem(
            "text", f"A text in {_where(param)} is not valid Unicode (a lone surrogate).",
            param)
    return None


class LogLimiter:
    """At most ``burst`` log lines per ``period_s`` for each kind of line.

    :meth:`allow` answers ``None`` while a kind is over its budget (the line is
    counted, not logged) and otherwise the number of lines of that kind suppressed
    since the last one logged, so the caller can say "(suppressed K similar)".
    A token bucket: the budget refills evenly over the period.
    """

    def __init__(self, burst: int = 10, period_s: float = 60.0,
                 clock: Callable[[], float] | None = None):
        import time

        self.burst = burst
        self.period_s = period_s
        self.clock = clock or time.monotonic
        self._tokens: dict[str, tuple[float, float]] = {}  # kind -> (tokens, at)
        self.suppressed: dict[str, int] = {}

    def allow(self, kind: str) -> int | None:
        """May a line of ``kind`` be logged now? ``None`` if not, else the count suppressed."""
        now = self.clock()
        tokens, at = self._tokens.get(kind, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.burst / self.period_s)
        if tokens < 1.0:
            self._tokens[kind] = (tokens, now)
            self.suppressed[kind] = self.suppressed.get(kind, 0) + 1
            return None
        self._tokens[kind] = (tokens - 1.0, now)
        return self.suppressed.pop(kind, 0)

    def pending(self) -> dict[str, int]:
        """Counts suppressed and not yet reported, by kind (reported at shutdown)."""
        return dict(self.suppressed)
