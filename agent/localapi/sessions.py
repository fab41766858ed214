"""Staff sessions of the local API: who is signed in, with which role, until when.

Sessions live in the agent's memory only: a restart signs everyone out, which is
what a shop expects after a reboot. A session ends after ``idle_s`` without use
or ``max_s`` after sign-in, whichever comes first.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from agent.errors import ApiError
from agent.localapi import NOT_ALLOWED

ROLES = ("cashier", "manager", "technician")

# Session lifetime (documented in docs/local-api.md).
DEFAULT_IDLE_S = 30 * 60
DEFAULT_MAX_S = 12 * 3600


@dataclass
class Session:
    """One signed-in staff member."""

    token: str
    staff_id: str
    name: str
    role: str
    started: float
    last_used: float


class SessionTable:
    """Issue, check and end staff sessions."""

    def __init__(self, *, idle_s: float = DEFAULT_IDLE_S, max_s: float = DEFAULT_MAX_S,
                 clock: Callable[[], float] = time.monotonic):
        self.idle_s = idle_s
        self.max_s = max_s
        self.clock = clock
        self._sessions: dict[str, Session] = {}

    def open(self, staff_id: str, name: str, role: str) -> Session:
        """Start a session for a staff member whose identity was checked."""
        self._purge()
        now = self.clock()
        token = "s-" + secrets.token_urlsafe(24)
        session = Session(token, staff_id, name, role, now, now)
        self._sessions[token] = session
        return session

    def check(self, token: object, roles: Iterable[str]) -> Session:
        """The live session ``token`` if its role is one of ``roles``; else ApiError."""
        allowed = tuple(roles)
        if not isinstance(token, str) or not token:
            raise ApiError(NOT_ALLOWED, "Please sign in first.", {"reason": "no_session"})
        session = self._sessions.get(token)
        now = self.clock()
        if session is None or self._expired(session, now):
            self._sessions.pop(token, None)
            raise ApiError(NOT_ALLOWED, "Your sign-in has expired. Please sign in again.",
                           {"reason": "session_expired"})
        if session.role not in allowed:
            raise ApiError(
                NOT_ALLOWED,
                f"A {session.role} may not do this; ask a {' or '.join(allowed)}.",
                {"reason": "role", "role": session.role, "needs": list(allowed)},
            )
        session.last_used = now
        return session

    def close(self, token: str) -> bool:
        """End a session (sign out). False if there was none."""
        return self._sessions.pop(token, None) is not None

    def _expired(self, session: Session, now: float) -> bool:
        return now - session.last_used > self.idle_s or now - session.started > self.max_s

    def _purge(self) -> None:
        now = self.clock()
        for token in [t for t, s in self._sessions.items() if self._expired(s, now)]:
            del self._sessions[token]

    def __len__(self) -> int:
        self._purge()
        return len(self._sessions)
