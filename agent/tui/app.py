"""The Textual application: sign-in, role-dependent screens, status, idle sign-out."""

from __future__ import annotations

import asyncio
import random
import time as _time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from textual import events, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.screen import Screen

from agent.errors import ClubtermError
from agent.localapi import LocalApi
from agent.tui.i18n import N_, load_locale, set_locale, tr
from agent.tui.messages import AgentReconnected, CardRead
from agent.tui.screens.appointments import AppointmentsScreen
from agent.tui.screens.base import translate_bindings
from agent.tui.screens.cash import CashScreen
from agent.tui.screens.clock import ClockScreen
from agent.tui.screens.members import MembersScreen
from agent.tui.screens.report import ReportScreen
from agent.tui.screens.sale import SaleScreen
from agent.tui.screens.signin import SignInScreen
from agent.tui.state import (
    HELD_BASKET_S,
    AgentStatus,
    HeldBasket,
    StaffSession,
    apply_event,
    status_from_result,
)

# (key, mode, label): the screens in nav-bar order.
NAV: tuple[tuple[str, str, str], ...] = (
    ("f2", "sale", N_("Sale")),
    ("f3", "clock", N_("Clock")),
    ("f4", "cash", N_("Cash")),
    ("f5", "appointments", N_("Diary")),
    ("f6", "members", N_("Members")),
    ("f7", "report", N_("Report")),
)
SCREENS: dict[str, Callable[[], Screen[Any]]] = {
    "sale": SaleScreen,
    "clock": ClockScreen,
    "cash": CashScreen,
    "appointments": AppointmentsScreen,
    "members": MembersScreen,
    "report": ReportScreen,
}
# What each role sees. A technician services the box; the status bar is theirs.
ROLE_MODES: dict[str, tuple[str, ...]] = {
    "cashier": ("sale", "clock", "cash", "appointments", "members", "report"),
    "manager": ("sale", "clock", "cash", "appointments", "members", "report"),
    "technician": ("clock",),
}
STATUS_REFRESH_S = 30.0
# After the agent's connection ends (a restart, an upgrade), the UI tries again
# after a jittered delay that doubles from the first to the last figure.
RECONNECT_FIRST_S = 0.25
RECONNECT_MAX_S = 5.0
# How long one key may take to be handled before the next is sent anyway (a
# handler that waits on the app itself must not hold the keyboard up for good).
KEY_SETTLE_S = 0.25


async def _settled(node: Any, timeout: float) -> None:
    """Wait until ``node`` and its ancestors up to the screen handled their messages.

    A callback queued behind a node's messages runs once they are handled; if
    handling them queued more (an Input posts Submitted to itself, which then
    bubbles to its parent), the node is asked again. Messages bubble upwards,
    so the nodes are drained from the widget to its screen.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while node is not None:
        for _ in range(8):
            done = asyncio.Event()
            if not node.call_later(done.set):
                break  # the node is closing
            try:
                await asyncio.wait_for(done.wait(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                return
            if node._message_queue.empty():
                break
        if isinstance(node, Screen):
            return
        node = node.parent


class ClubtermApp(App[None]):
    """The staff terminal UI over a :class:`~agent.localapi.LocalApi`.

    ``locale`` is a language code (``en``, ``fa``); ``idle_signout_s`` signs the
    staff member out after that long without a key or card (0 = never);
    ``clock`` gives the current aware time (tests pin it).
    """

    # Absolute, so that subclasses in other files (bench, tests) find it.
    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "clubterm"
    ENABLE_COMMAND_PALETTE = False
    # Screens narrower than the smallest till's 80 columns get the ``narrow``
    # class; their .tcss stacks panels instead of putting them side by side.
    HORIZONTAL_BREAKPOINTS = [(0, "narrow"), (80, "wide")]  # noqa: RUF012 - App declares it
    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(key, f"goto('{mode}')", label, show=False) for key, mode, label in NAV),
        Binding("f10", "sign_out", N_("Sign out"), show=True, priority=True),
        Binding("ctrl+q", "quit", N_("Quit"), show=False, priority=True),
    ]

    agent_status: reactive[AgentStatus] = reactive(AgentStatus, always_update=True)
    staff: reactive[StaffSession | None] = reactive(None, always_update=True)

    def __init__(
        self,
        api: LocalApi,
        *,
        locale: str = "en",
        idle_signout_s: float = 300.0,
        clock: Callable[[], datetime] | None = None,
        confirm_above: int = 0,
    ) -> None:
        self.ui_locale = load_locale(locale)
        set_locale(self.ui_locale)
        super().__init__()
        translate_bindings(self)
        self.api = api
        self.idle_signout_s = idle_signout_s
        # A sale paying this many minor units or more asks for Enter twice (0: never).
        self.confirm_above = confirm_above
        self._clock = clock or (lambda: datetime.now(UTC))
        self._last_activity = _time.monotonic()
        self._events_seen = 0  # status notifications applied so far (see refresh_status)
        self._tz: ZoneInfo | None = None
        self._session_modes: list[str] = []
        self.started_at = _time.perf_counter()
        self._held_basket: HeldBasket | None = None
        self._keys: asyncio.Queue[events.Key] | None = None

    # ------------------------------------------------------------------ time

    def now(self) -> datetime:
        """The current time in the club's time zone (else the box's)."""
        moment = self._clock()
        return moment.astimezone(self._tz) if self._tz else moment.astimezone()

    # ------------------------------------------------------------- lifecycle

    def on_mount(self) -> None:
        self._keys = asyncio.Queue()
        self.run_worker(self._send_keys(), group="keys", exclusive=True)
        self.add_mode("signin", SignInScreen)
        self.switch_mode("signin")
        self.watch_agent_events()
        self.refresh_status()
        self.set_interval(STATUS_REFRESH_S, self.refresh_status)
        if self.idle_signout_s > 0:
            self.set_interval(min(5.0, self.idle_signout_s / 4), self._check_idle)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Key, events.MouseDown)):
            self._last_activity = _time.monotonic()
        if isinstance(event, events.Key) and not event.is_forwarded \
                and self._keys is not None:
            # Textual hands each key to the widget focused when the key arrives
            # and lets it work later, and moves the focus later still: keys that
            # arrive in one burst (a POS keyboard macro, a laggy SSH session)
            # all went to the first field and raced the Enter handlers
            # ("20⏎5⏎7⏎" gave three lines of 2,057; "20⏎Tab CLUB-1002⏎" left
            # "20CLUB-1002" in Amount). Keys queue here and go out one at a time,
            # each once the last one, and what it set off, was handled.
            self._keys.put_nowait(event)
            return
        await super().on_event(event)

    async def _send_keys(self) -> None:
        assert self._keys is not None
        while True:
            key = await self._keys.get()
            target = self.focused or self.screen
            await super().on_event(key)
            await _settled(target, KEY_SETTLE_S)
            # Focus changes and screen switches are callbacks on the app itself.
            await _settled(self, KEY_SETTLE_S)

    def _check_idle(self) -> None:
        if self.staff is None:
            return
        if _time.monotonic() - self._last_activity >= self.idle_signout_s:
            self.sign_out(reason=tr("Signed out after no activity."))

    # ---------------------------------------------------------------- agent

    @work(group="status", exclusive=True)
    async def refresh_status(self, tries: int = 3) -> None:
        """Ask the agent for its status (at start, every 30 s, and on link events)."""
        asked_after = self._events_seen
        try:
            result = await self.api.call("agent.status")
        except (ClubtermError, OSError, ConnectionError, EOFError):
            self.agent_status = AgentStatus(connected=False)
            return
        if self._events_seen != asked_after and tries > 1:
            # An event came while the answer was on its way: the answer may be older
            # than it (a queue count read before a sale), so ask again rather than
            # let it overwrite what the event said.
            self.refresh_status(tries - 1)
            return
        self._apply_status(result)

    def _apply_status(self, result: Any) -> None:
        status = status_from_result(result, self._clock())
        if status.timezone:
            try:
                self._tz = ZoneInfo(status.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                self._tz = None
        self.agent_status = status

    @work(group="events", exclusive=True)
    async def watch_agent_events(self) -> None:
        """Follow the agent's notifications for as long as the app runs.

        When the connection ends (the agent restarts), the status bar says so at
        once and the UI reconnects with jittered backoff; once the agent answers
        again the status is refreshed, the screen is told (a sale re-prices its
        basket) and card events flow again.
        """
        delay = RECONNECT_FIRST_S
        first = True
        while True:
            try:
                result = await self.api.call("agent.status")
                self._apply_status(result)
                if not first:
                    self.screen.post_message(AgentReconnected())
                first = False
                delay = RECONNECT_FIRST_S
                async for event in self.api.events():
                    self.handle_agent_event(event)
            except (ClubtermError, OSError, ConnectionError, EOFError):
                pass
            first = False
            self.agent_status = AgentStatus(connected=False)
            await asyncio.sleep(random.uniform(delay / 2, delay))
            delay = min(delay * 2, RECONNECT_MAX_S)

    def handle_agent_event(self, event: dict[str, Any]) -> None:
        """Route one notification: cards to the screen, the rest to the status."""
        if event.get("type") == "card":
            self._last_activity = _time.monotonic()
            self.screen.post_message(CardRead(event))
            return
        self._events_seen += 1
        self.agent_status = apply_event(self.agent_status, event, self._clock())
        if event.get("type") == "link":
            self.refresh_status()

    # ------------------------------------------------------------- sessions

    def nav_items(self) -> list[tuple[str, str, str]]:
        """The nav entries the signed-in role may use."""
        if self.staff is None:
            return []
        allowed = ROLE_MODES.get(self.staff.role, ())
        return [item for item in NAV if item[1] in allowed]

    async def sign_in(self, staff: StaffSession) -> None:
        """Open the screens ``staff``'s role may use and show the first."""
        self.staff = staff
        self._last_activity = _time.monotonic()
        modes = ROLE_MODES.get(staff.role, ())
        self._session_modes = list(modes)
        for mode in modes:
            self.add_mode(mode, SCREENS[mode])
        if modes:
            await self.switch_mode(modes[0])

    def sign_out(self, reason: str | None = None) -> None:
        """Back to sign-in; every screen of the session is dropped."""
        self.run_worker(self._sign_out(reason), group="session", exclusive=True)

    async def _sign_out(self, reason: str | None) -> None:
        if self.staff is None:
            return
        session = self.staff.session
        self.staff = None
        try:
            # staff.logout is the agent's extension of the spec; an agent
            # without it (or one that already ended the session) is fine too.
            await self.api.call("staff.logout", {"session": session})
        except (ClubtermError, OSError, ConnectionError, EOFError):
            pass
        await self.switch_mode("signin")
        for mode in self._session_modes:
            await self.remove_mode(mode)
        self._session_modes = []
        screen = self.screen
        if isinstance(screen, SignInScreen) and reason:
            screen.say(reason, "info")

    def hold_basket(self, basket: HeldBasket) -> None:
        """Keep a half-made sale for when its staff member signs in again."""
        self._held_basket = basket

    def take_held_basket(self, staff_id: str) -> HeldBasket | None:
        """The basket ``staff_id`` left, if recent (once: it is handed over)."""
        held = self._held_basket
        if held is None or held.staff_id != staff_id:
            return None
        self._held_basket = None
        if _time.monotonic() - held.held_at > HELD_BASKET_S:
            return None
        return held

    # -------------------------------------------------------------- actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide session keys (sign out, screens) while nobody is signed in."""
        if action in ("sign_out", "goto") and self.staff is None:
            return False
        return True

    async def action_goto(self, mode: str) -> None:
        """Show screen ``mode`` if the signed-in role may use it."""
        if self.staff is None or mode not in ROLE_MODES.get(self.staff.role, ()):
            self.bell()
            return
        # Close dialogs first so a function key always lands on a screen.
        while len(self.screen_stack) > 1:
            self.pop_screen()
        await self.switch_mode(mode)

    def action_sign_out(self) -> None:
        """Sign the staff member out now."""
        self.sign_out(reason=tr("Signed out."))

    async def action_quit(self) -> None:
        await self.api.close()
        self.exit()
