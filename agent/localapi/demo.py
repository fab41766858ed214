"""The real agent in a temporary directory: for demos, training and the UI's tests.

:class:`DemoAgent` is not a stand-in. It runs the agent's own parts — the
:class:`~agent.offline_queue.Store` (SQLite, in a temporary directory), the
:class:`~agent.localapi.services.Services`, the
:class:`~agent.localapi.server.ApiServer` on a Unix socket and the rules engine
with the example bundle of ``rules.md`` (``hw_sim.club.bundles``) — seeded with
demo staff, members and the simulated club's product catalogue
(``hw_sim.club.catalogue``), and it implements :class:`~agent.localapi.LocalApi` by
talking to that socket with the real :class:`~agent.localapi.client.SocketClient`.
So whatever the demo answers, refuses or records, the agent does too: there is
no second copy of its logic to drift (harlequin tests its app on a real
in-memory adapter; httpx runs a real app in-process behind its transport).

What the daemon would learn from its readers and its club link, the demo is
told by hand, through the daemon's own code: :meth:`DemoAgent.tap` publishes
what :func:`agent.assembly.card_notification` makes of a card, badge or code;
:meth:`DemoAgent.set_reader` what :func:`agent.assembly.reader_notification`
makes of a reader's state; :meth:`DemoAgent.set_online` the link's own state
(``agent.sync.LinkState``), which ``agent.status`` then reports.

Time is injectable: ``clock`` (aware datetimes) drives the store and the
services, and by default their monotonic time too, so a test that moves the
clock ages quotes, sessions, badge taps and PIN lockouts with it.

``clubterm tui --demo`` runs the UI against one; the directory goes when the
UI exits. Nothing leaves the machine: there is no club link.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.carddata.tokens import nid_token
from agent.localapi import QUOTE_TTL_SECONDS

if TYPE_CHECKING:  # imported where used: `clubterm tui --demo` loads them in a thread
    from agent.localapi.client import SocketClient
    from agent.localapi.server import ServerLimits
    from agent.localapi.sessions import SessionTable

TERMINAL_ID = "T-0001"
MERCHANT_ID = "M-7"
CLUB_ID = "acme"
COUNTRY_CODE = "98"
RULES_VERSION = 42
MEMBERS_VERSION = 9812


@dataclass(frozen=True)
class DemoStaff:
    """A staff member of the demo: number, name, role, PIN and badge token."""

    staff_id: str
    name: str
    role: str
    pin: str
    badge: str


#: The demo's staff (docs/tui.md, "Demo data").
DEMO_STAFF: tuple[DemoStaff, ...] = (
    DemoStaff("1", "Mina Rahimi", "cashier", "1234", "nfc:04AA000001"),
    DemoStaff("2", "Reza Karimi", "manager", "4321", "nfc:04AA000002"),
    DemoStaff("3", "Tom Berger", "technician", "9999", "nfc:04AA000003"),
    DemoStaff("4", "Leila Ahmadi", "cashier", "2468", "nfc:04AA000004"),
)


def _member(member_id: str, name: str, status: str, tier: str, identifiers: list[str],
            balances: dict[str, int]) -> dict[str, Any]:
    return {"member_id": member_id, "version": 1, "name": name, "status": status,
            "tier": tier, "groups": [], "identifiers": identifiers, "balances": balances,
            "stats": {}, "applied": {}}


#: The demo's members as the club's snapshot gives them (docs/tui.md, "Demo data").
#: Sara's bank card reads as ``411111******1111`` (``tap(..., masked=...)``).
DEMO_MEMBERS: tuple[dict[str, Any], ...] = (
    _member("m-1", "Sara K.", "active", "gold",
            ["pan:9f2c1e0b7a6d5c4b3a291807f6e5d4c3", "nfc:04A1B2C3D4E5F6",
             "tel:+989121234567", "code:CLUB-1001"],
            {"points": 1200, "credit.club": 5000, "credit.merchant:M-7": 2000,
             "value.wallet": 7500, "units.wash": 5}),
    _member("m-2", "Ali R.", "active", "silver",
            ["nfc:04B0B0B0B0B0B0", "tel:+989351112233", "code:CLUB-1002"], {"points": 300}),
    _member("m-3", "Omid N.", "blocked", "bronze",
            ["nfc:04C0C0C0C0C0C0", "tel:+989190000000", "code:CLUB-1003"], {"points": 50}),
    _member("m-4", "Nora B.", "lost_card", "silver",
            ["pan:0a0b0c0d0e0f10111213141516171819", "code:CLUB-1004"], {"points": 800}),
    # (1.3) A house account Sara and Ali may buy on (its card: code ACCT-2001), a family
    # pool and its two members, father and son (docs/tui.md, "Demo data").
    {**_member("ac-1", "Pars Print Co.", "active", "gold", ["code:ACCT-2001"],
               {"owed": 120000}),
     "holder": "account", "credit_limit": 500000, "authorised": ["m-1", "m-2"]},
    {**_member("pl-1", "Karimi family", "active", "silver", [], {"points": 2500}),
     "holder": "pool"},
    {**_member("m-5", "Ali Karimi", "active", "silver",
               ["nfc:04D0D0D0D0D0D0", "code:CLUB-1005"], {}), "pool": "pl-1"},
    {**_member("m-6", "Omid Karimi", "active", "bronze", ["code:CLUB-1006"], {}),
     "pool": "pl-1"},
    # (1.3) A gift card: a holder record, no person (``python -m hw_sim scan --gift-card``).
    {"member_id": "gc-demo-100", "version": 1, "holder": "gift_card", "name": None,
     "status": "active", "identifiers": ["code:GIFT-DEMO-100"],
     "balances": {"value.gift": 10000}, "expires": "2030-12-31", "stats": {}, "applied": {}},
)

#: (#19 lifecycle) Parisa S.: national code 001-234567-9 (the demo pan_key's ``nid:``
#: token), near gold (the demo bundle's upgrade: 500.00 or 10 purchases in 30 days),
#: two members referred; ``nfc:04E6E6E6E6E6E6`` is a spare card to link to her.
DEMO_MEMBERS += (
    {**_member("m-7", "Parisa S.", "active", "silver",
               ["nfc:04D5D5D5D5D5D5", "tel:+989125550000", "code:CLUB-1007",
                "nid:9e0aa8dcbb0efb19a9931644bdf6e088"], {"points": 640}),
     "stats": {"purchase_count": 23, "last_purchase": "2026-11-20", "spend_30d": 45000,
               "tier_window": {"days": 30, "spend": 45000, "purchases": 8}},
     "referrals": {"count": 2, "earned": {"points": 150}}},
)


def demo_packages(today: date) -> dict[str, list[dict[str, Any]]]:
    """(#19 packages) Sara's 10-visit gym pass (7 left) and Ali's monthly membership,
    expired 3 days ago with 7 grace days: dates relative to ``today`` so the demo is
    the same any day (docs/tui.md, "Demo data")."""
    def day(n: int) -> str:
        return (today + timedelta(days=n)).isoformat()
    return {
        "m-1": [{"package_id": "pk-demo-gym", "sku": "gym-10", "name": "10-visit gym pass",
                 "visits_total": 10, "starts": day(-20), "expires": day(70),
                 "grace_days": 7, "freezable_days": 30, "frozen": []}],
        "m-2": [{"package_id": "pk-demo-month", "sku": "gym-month", "name": "Monthly membership",
                 "visits_total": None, "starts": day(-33), "expires": day(-3),
                 "grace_days": 7, "freezable_days": 0, "frozen": []}],
    }


#: Visits left on the demo's packages (the rest were used before the demo began).
_DEMO_VISITS_LEFT = {"pk-demo-gym": 7}


def add_demo_packages(record: dict[str, Any], today: date, as_member: str | None = None
                      ) -> None:
    """Give ``record`` the demo packages of ``as_member`` (default its own id) and
    their visits left: the one place both demos (``--demo`` and the simulated club's)
    take them from."""
    held = demo_packages(today).get(as_member or str(record.get("member_id")))
    if not held:
        return
    record["packages"] = held
    record["balances"] = {**(record.get("balances") or {}),
                          **{f"visits.{p['package_id']}": _DEMO_VISITS_LEFT[p["package_id"]]
                             for p in held if p["visits_total"] is not None}}


for _record in DEMO_MEMBERS:
    add_demo_packages(_record, datetime.now().date())

#: The spare demo card (no member holds it): link it to a member, or reissue with it.
DEMO_SPARE_CARD = "nfc:04E6E6E6E6E6E6"
#: The demo's pan_key, as the simulated club's demo (bytes 00..1f): keys ``nid:`` tokens.
DEMO_PAN_KEY = bytes(range(32))

#: The demo terminal's readers: (name, kind), and which reader a source reads on.
DEMO_READERS: tuple[tuple[str, str], ...] = (
    ("ACS ACR122U 00 00", "pcsc"), ("MSR", "msr"), ("Barcode", "hid"))
_READER_OF_SOURCE = {"pcsc": "ACS ACR122U 00 00", "nfc": "ACS ACR122U 00 00", "msr": "MSR",
                     "hid": "Barcode"}


def _utc_now() -> datetime:
    return datetime.now(UTC)


def example_bundle(now: datetime) -> Any:
    """The rules.md example bundle (the simulated club's), parsed, issued ``now``."""
    from agent.rules import parse_bundle
    from hw_sim.club.bundles import encode_bundle, make_bundle

    return parse_bundle(encode_bundle(make_bundle(CLUB_ID, MERCHANT_ID, RULES_VERSION,
                                                  now=now)))


# Seeded stores, made once per process and copied for each agent: hashing the
# staff PINs (scrypt) is what costs, and a test suite starts many agents.
_SEEDED: dict[str, Path] = {}
_SEEDING = threading.Lock()


def _seeded(staff: tuple[DemoStaff, ...], members: tuple[Mapping[str, Any], ...],
            members_version: int, catalogue: bool = True) -> Path:
    """A closed store file holding these staff and members (made on first use)."""
    key = json.dumps([[list(vars(s).values()) for s in staff], list(members), members_version,
                      catalogue], sort_keys=True)
    with _SEEDING:
        path = _SEEDED.get(key)
        if path is not None and path.exists():
            return path
        return _seed(key, staff, members, members_version, catalogue)


def demo_catalogue() -> Any:
    """The simulated club's catalogue (``hw_sim.club.catalogue``), parsed."""
    from agent.catalogue import parse_catalogue
    from hw_sim.club.catalogue import encode_catalogue, make_catalogue

    return parse_catalogue(encode_catalogue(make_catalogue(CLUB_ID, MERCHANT_ID)))


def _seed(key: str, staff: tuple[DemoStaff, ...], members: tuple[Mapping[str, Any], ...],
          members_version: int, catalogue: bool = True) -> Path:
    directory = Path(tempfile.mkdtemp(prefix="clubterm-demo-seed-"))
    atexit.register(shutil.rmtree, directory, True)
    path = directory / "clubterm.db"
    from agent.offline_queue import Store

    store = Store.open(path, TERMINAL_ID, MERCHANT_ID)
    try:
        store.members.import_snapshot([json.dumps(m) for m in members], members_version, True)
        for person in staff:
            store.records.put_staff(person.staff_id, person.name, person.role, by=None,
                            badges=[person.badge], pin=person.pin)
        if catalogue:
            store.catalogue.replace_catalogue(demo_catalogue())
    finally:
        store.close()
    _SEEDED[key] = path
    return path


class DemoAgent:
    """The agent's own store, services and socket server in a directory of its own.

    ``directory``: where the store and the socket live (default: a new temporary
    directory, removed by :meth:`aclose`/:meth:`shutdown`). ``clock``: the time the
    agent records and prices with; ``monotonic``: its timer for quotes, sessions,
    taps and PIN lockouts (default: seconds of ``clock``). ``staff``/``members``:
    the seed (default: the demo's). Tests make its writes fail as a full disk
    would through the store's fault hook (``agent.store.db.before_write``). ``bundle=False`` starts
    without rules, as a terminal the club has not sent any yet; ``catalogue=False``
    without a product catalogue (a v1 club's terminal).

    The socket server starts on first use (:meth:`start`, :meth:`call`,
    :meth:`events`), in the running event loop.
    """

    def __init__(self, directory: Path | str | None = None, *,
                 clock: Callable[[], datetime] = _utc_now,
                 monotonic: Callable[[], float] | None = None,
                 staff: Iterable[DemoStaff] = DEMO_STAFF,
                 members: Sequence[Mapping[str, Any]] = DEMO_MEMBERS,
                 members_version: int = MEMBERS_VERSION,
                 bundle: bool = True, online: bool = True,
                 limits: ServerLimits | None = None,
                 quote_ttl_s: float = QUOTE_TTL_SECONDS,
                 readers: Iterable[tuple[str, str]] = DEMO_READERS,
                 catalogue: bool = True):
        from agent.localapi.ports import DbThread
        from agent.localapi.server import ApiServer
        from agent.localapi.services import AgentView, Services
        from agent.offline_queue import Store

        self._own_directory = directory is None
        self.directory = Path(tempfile.mkdtemp(prefix="clubterm-demo-")
                              if directory is None else directory)
        self.path = self.directory / "agent.sock"
        self.clock = clock
        self.monotonic = monotonic or (lambda: self.clock().timestamp())
        db_path = self.directory / "clubterm.db"
        shutil.copyfile(_seeded(tuple(staff), tuple(members), members_version, catalogue),
                        db_path)
        self.store = Store.open(db_path, TERMINAL_ID, MERCHANT_ID, clock=lambda: self.clock())
        self.bundle: Any = example_bundle(self.clock()) if bundle else None
        self.online = online
        self.link_since: datetime = self.clock()
        self.readers: list[dict[str, Any]] = [
            {"name": name, "kind": kind, "state": "ready", "detail": None}
            for name, kind in readers]
        self.view = AgentView(TERMINAL_ID, MERCHANT_ID, COUNTRY_CODE,
                              bundle=lambda: self.bundle, online=lambda: self.online,
                              link_since=lambda: self.link_since,
                              readers=lambda: [dict(r) for r in self.readers],
                              nid_token=lambda digits: nid_token(DEMO_PAN_KEY, digits))
        self.db = DbThread()
        self.services = Services(self.view, self.db, outbox=self.store.outbox,
                                 members=self.store.members, records=self.store.records,
                                 catalogue=self.store.catalogue,
                                 clock=lambda: self.clock(), monotonic=self.monotonic,
                                 quote_ttl_s=quote_ttl_s)
        # The services' own session table (on ``monotonic``): expire_sessions ends them.
        self.sessions: SessionTable = self.services.sessions
        self.server = ApiServer(self.path, self.services, limits=limits)
        self.view.broadcast = self.server.broadcast
        self._started = False
        self._closed = False
        self._client: SocketClient | None = None
        self._taps: set[asyncio.Task[dict[str, Any]]] = set()

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Listen on the socket (once; every LocalApi call does this first)."""
        if not self._started:
            self._started = True
            await self.server.start()

    async def aclose(self) -> None:
        """Stop the server, close the store and remove the directory if it is the demo's."""
        await self.close()
        if self._started:
            await self.server.close(grace_s=1.0)
        self.shutdown()

    def shutdown(self) -> None:
        """Close the store and remove the directory (also after the event loop ended)."""
        if self._closed:
            return
        self._closed = True
        self.db.close()
        self.store.close()
        if self._own_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    # ------------------------------------------------------------------ LocalApi

    def client(self, timeout_s: float = 10.0) -> SocketClient:
        """A new client of the agent's socket (what the UI and the CLI use); it
        connects on first use, so after :meth:`start`."""
        from agent.localapi.client import SocketClient

        return SocketClient(self.path, timeout_s=timeout_s)

    def _api(self) -> SocketClient:
        if self._client is None:
            self._client = self.client()
        return self._client

    async def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Call ``method`` over the agent's socket."""
        await self.start()
        return await self._api().call(method, params)

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Subscribe over the agent's socket and yield each notification."""
        await self.start()
        async for event in self._api().events():
            yield event

    async def close(self) -> None:
        """Disconnect this object's client (the agent keeps running)."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    @property
    def subscribers(self) -> int:
        """How many clients are subscribed to events (tests wait for the UI)."""
        return sum(1 for conn in self.server.connections.values()
                   if conn.subscribed and not conn.closed)

    # ------------------------------------------------------------------ the world

    def tap(self, token: str, *, source: str = "nfc", masked: str | None = None,
            reader: str | None = None) -> asyncio.Task[dict[str, Any]]:
        """Present a card, a staff badge or a code on a reader, as a driver reports it.

        The notification is the daemon's (:func:`agent.assembly.card_notification`):
        the member looked up in the store, or a staff badge's single-use tap.
        Returns the task publishing it (await it for the notification).
        """
        from agent.drivers.events import CardPresented

        bin6 = masked[:6] if masked and source in ("pcsc", "msr") else None
        event = CardPresented(source, reader or _READER_OF_SOURCE.get(source, source),  # type: ignore[arg-type]
                              token, token.split(":", 1)[0], masked, bin6)
        task = asyncio.get_running_loop().create_task(self._present(event))
        self._taps.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(self._taps.discard)
        return task

    async def _present(self, event: Any) -> dict[str, Any]:
        from agent.assembly import card_notification

        await self.start()
        notification = await card_notification(self.services, event)
        self.server.broadcast(notification)
        return notification

    def set_online(self, online: bool) -> None:
        """The club link comes up or goes down: ``agent.status`` says so, and
        subscribers get the link's event as the daemon relays it."""
        from agent.sync import LinkState

        self.online = online
        self.link_since = self.clock()
        pending = int(self.store.outbox.queue_stats().pending)
        state = LinkState(online, self.link_since, None, pending)
        self.push_event({"type": "link", **state.to_dict()})

    def set_reader(self, name: str, state: str, detail: str | None = None) -> None:
        """A reader changes state (connecting, ready, error, retry)."""
        from agent.assembly import reader_notification
        from agent.drivers.events import ReaderState

        kind = "pcsc"
        for row in self.readers:
            if row["name"] == name:
                row["state"], row["detail"] = state, detail
                kind = row["kind"]
        self.push_event(reader_notification(ReaderState(name, kind, state, detail or "")))  # type: ignore[arg-type]

    def push_event(self, event: Mapping[str, Any]) -> None:
        """Send ``event`` to every subscriber, as the daemon relays its link's events
        (``rules``, ``queue``, ``members``, ...)."""
        self.server.broadcast(dict(event))

    def expire_sessions(self) -> None:
        """End every staff session, as the agent does after its idle or maximum time."""
        self.sessions.end_staff(self.sessions.staff_ids())

    def recorded(self, event_type: str | None = None) -> list[dict[str, Any]]:
        """The events recorded so far (the outbox, oldest first), optionally of one type."""
        return [entry.event for entry in self.store.outbox.events()
                if event_type is None or entry.event.get("type") == event_type]


class DemoStarting:
    """A :class:`DemoAgent` being built in a thread, and a LocalApi that waits for it.

    ``clubterm tui --demo`` starts one before it loads the UI: importing the agent's
    parts, opening the store and hashing the demo PINs then overlap the UI's own
    start, and the first call waits for whatever is left.
    """

    def __init__(self, **kwargs: Any):
        self._ready = threading.Event()
        self._agent: DemoAgent | None = None
        self._error: BaseException | None = None
        threading.Thread(target=self._build, args=(kwargs,), name="clubterm-demo",
                         daemon=True).start()

    def _build(self, kwargs: dict[str, Any]) -> None:
        try:
            self._agent = DemoAgent(**kwargs)
        except BaseException as exc:  # handed to the first caller
            self._error = exc
        finally:
            self._ready.set()

    async def agent(self) -> DemoAgent:
        """The demo agent, once built (raises what building it raised)."""
        if not self._ready.is_set():
            await asyncio.to_thread(self._ready.wait)
        if self._agent is None:
            assert self._error is not None
            raise self._error
        return self._agent

    async def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Call ``method`` on the demo agent."""
        return await (await self.agent()).call(method, params)

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """The demo agent's notifications."""
        async for event in (await self.agent()).events():
            yield event

    async def close(self) -> None:
        """Disconnect from the demo agent (it keeps running)."""
        if self._agent is not None:
            await self._agent.close()

    def shutdown(self) -> None:
        """Wait for the build, then close the store and remove the folder."""
        self._ready.wait()
        if self._agent is not None:
            self._agent.shutdown()


__all__ = ["DEMO_MEMBERS", "DEMO_STAFF", "DemoAgent", "DemoStaff", "DemoStarting",
           "demo_catalogue", "example_bundle"]
