"""Staff sessions of the local API: who is signed in, with which role, until when.

Sessions live in the agent's memory only: a restart signs everyone out, which is
what a shop expects after a reboot. A session ends after ``idle_s`` without use
or ``max_s`` after sign-in, whichever comes first.

Two more pure tables, time passed in, guard how a session is obtained:
:class:`PinAttempts` counts PIN attempts per staff id (an attempt is counted
before its PIN is checked) and :class:`BadgeTaps` holds the short-lived,
single-use references of staff badges tapped on this terminal's own readers.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from agent.errors import ApiError
from agent.localapi import NOT_ALLOWED, NOT_FOUND

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
    # "feature.action" strings (agent.staff.permissions); refreshed from the store on use.
    permissions: frozenset[str] = field(default_factory=frozenset)


class SessionTable:
    """Issue, check and end staff sessions."""

    def __init__(self, *, idle_s: float = DEFAULT_IDLE_S, max_s: float = DEFAULT_MAX_S,
                 clock: Callable[[], float] = time.monotonic):
        self.idle_s = idle_s
        self.max_s = max_s
        self.clock = clock
        self._sessions: dict[str, Session] = {}

    def open(self, staff_id: str, name: str, role: str,
             permissions: Iterable[str] = ()) -> Session:
        """Start a session for a staff member whose identity was checked."""
        self._purge()
        now = self.clock()
        token = "s-" + secrets.token_urlsafe(24)
        session = Session(token, staff_id, name, role, now, now, frozenset(permissions))
        self._sessions[token] = session
        return session

    def end_staff(self, staff_ids: Iterable[str]) -> int:
        """End every session of these staff members (removed from the staff list)."""
        gone = set(staff_ids)
        tokens = [t for t, s in self._sessions.items() if s.staff_id in gone]
        for token in tokens:
            del self._sessions[token]
        return len(tokens)

    def staff_ids(self) -> set[str]:
        """Who has a live session."""
        self._purge()
        return {s.staff_id for s in self._sessions.values()}

    def check(self, token: object) -> Session:
        """The live session ``token``, else ApiError. What its staff member may do is
        checked by the caller, by permission (``Services._session``)."""
        if not isinstance(token, str) or not token:
            raise ApiError(NOT_ALLOWED, "Please sign in first.", {"reason": "no_session"})
        session = self._sessions.get(token)
        now = self.clock()
        if session is None or self._expired(session, now):
            self._sessions.pop(token, None)
            raise ApiError(NOT_ALLOWED, "Your sign-in has expired. Please sign in again.",
                           {"reason": "session_expired"})
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


# PIN attempts (documented in docs/local-api.md). An attempt is counted when it
# starts, so concurrent guesses cannot all pass the check before any is counted.
PIN_MAX_ATTEMPTS = 5
PIN_WINDOW_S = 60.0
# Staff ids tracked at once. When every tracked id still has attempts within the
# window, a PIN sign-in for an id not tracked yet is refused (never forgotten).
PIN_MAX_TRACKED = 1000


class PinAttempts:
    """Failed (or still running) PIN attempts per staff id, within a sliding window.

    :meth:`reserve` counts an attempt before the PIN is checked and refuses it
    when the id already has ``max_attempts`` within ``window_s``; :meth:`succeeded`
    forgets the id. The table holds at most ``max_tracked`` ids: entries whose
    attempts all left the window are evicted, a live entry never is, and when all
    are live a new id is refused (``reason: "too_many_attempts"``) until one expires.
    """

    def __init__(self, *, max_attempts: int = PIN_MAX_ATTEMPTS,
                 window_s: float = PIN_WINDOW_S, max_tracked: int = PIN_MAX_TRACKED):
        self.max_attempts = max_attempts
        self.window_s = window_s
        self.max_tracked = max_tracked
        # staff id → attempt times, oldest first; the dict is ordered by last attempt.
        self._attempts: OrderedDict[str, list[float]] = OrderedDict()

    def reserve(self, staff_id: str, now: float) -> None:
        """Count one attempt for ``staff_id``, or raise ApiError if it may not try now."""
        times = self._attempts.get(staff_id)
        if times is None:
            self._evict(now)
            if len(self._attempts) >= self.max_tracked:
                raise ApiError(NOT_ALLOWED, "Too many wrong PINs on this terminal; please "
                               "wait a minute or use your badge.",
                               {"reason": "too_many_attempts"})
            times = self._attempts[staff_id] = []
        times[:] = [t for t in times if now - t < self.window_s]
        if len(times) >= self.max_attempts:
            raise ApiError(NOT_ALLOWED, "Too many wrong PINs; please wait a minute or use "
                           "your badge.", {"reason": "locked_out"})
        times.append(now)
        self._attempts.move_to_end(staff_id)

    def succeeded(self, staff_id: str) -> None:
        """The PIN was right: the id starts afresh."""
        self._attempts.pop(staff_id, None)

    def locked(self, staff_id: str, now: float) -> bool:
        """True if ``staff_id`` may not try a PIN now."""
        times = self._attempts.get(staff_id, [])
        return sum(1 for t in times if now - t < self.window_s) >= self.max_attempts

    def _evict(self, now: float) -> None:
        # Ordered by last attempt: the first entries are the stalest.
        while self._attempts:
            staff_id, times = next(iter(self._attempts.items()))
            if times and now - times[-1] < self.window_s:
                return
            del self._attempts[staff_id]

    def __len__(self) -> int:
        return len(self._attempts)


# Staff badge taps (documented in docs/local-api.md).
TAP_TTL_S = 15.0
TAP_PREFIX = "tap:"
MAX_TAPS = 64


@dataclass(frozen=True)
class BadgeTap:
    """A staff badge tapped on one of this terminal's readers."""

    ref: str
    staff_id: str
    badge: str
    reader: str
    at: float


class BadgeTaps:
    """Short-lived, single-use references to staff badge taps.

    The card event of a staff badge carries a reference, never the badge token;
    ``staff.login``/``staff.clock`` take the reference within ``ttl_s`` of the tap,
    once. A raw badge token is never a credential on its own.
    """

    def __init__(self, *, ttl_s: float = TAP_TTL_S, max_taps: int = MAX_TAPS):
        self.ttl_s = ttl_s
        self.max_taps = max_taps
        self._taps: OrderedDict[str, BadgeTap] = OrderedDict()

    def issue(self, staff_id: str, badge: str, reader: str, now: float) -> BadgeTap:
        """A fresh reference for a tap of ``badge`` (owned by ``staff_id``)."""
        self._purge(now)
        while len(self._taps) >= self.max_taps:
            self._taps.popitem(last=False)
        tap = BadgeTap(TAP_PREFIX + secrets.token_urlsafe(18), staff_id, badge, reader, now)
        self._taps[tap.ref] = tap
        return tap

    def take(self, ref: str, now: float) -> BadgeTap:
        """Use the tap ``ref`` (it is gone afterwards), or raise ApiError."""
        self._purge(now)
        tap = self._taps.pop(ref, None) if ref.startswith(TAP_PREFIX) else None
        if tap is None:
            if ref.startswith(TAP_PREFIX):
                raise ApiError(NOT_ALLOWED, "This badge tap has expired or was already "
                               "used; please tap your badge again.",
                               {"reason": "badge_tap_expired"})
            # The same answer for a card that is no badge and for a badge token
            # sent without a tap: a copied token is told nothing.
            raise ApiError(NOT_FOUND, "This card does not belong to any staff member, or "
                           "was not tapped on this terminal's reader; please tap your staff "
                           "badge.", {"reason": "badge_not_tapped"})
        return tap

    def give_back(self, tap: BadgeTap, now: float) -> None:
        """Make a tap usable again when its use recorded nothing (till it expires)."""
        if now - tap.at < self.ttl_s:
            self._taps[tap.ref] = tap

    def _purge(self, now: float) -> None:
        for ref in [r for r, t in self._taps.items() if now - t.at >= self.ttl_s]:
            del self._taps[ref]

    def __len__(self) -> int:
        return len(self._taps)
