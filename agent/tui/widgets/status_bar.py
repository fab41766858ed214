"""The status line on every screen: link, queue, rules, readers, who is signed in."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.widgets import Static

from agent.tui.i18n import N_, current, tr
from agent.tui.labels import reader_state, role_name
from agent.tui.state import AgentStatus, StaffSession

READY_STATES = frozenset({"ready", "ok"})
# The printer states the status bar shows (agent.status printer.state).
PRINTER_STATES = {
    "paper_out": N_("paper out"),
    "cover_open": N_("cover open"),
    "offline": N_("not reachable"),
    "error": N_("error"),
}


def status_text(
    status: AgentStatus,
    staff: StaffSession | None,
    tz_now: datetime | None = None,
    width: int | None = None,
) -> Text:
    """The status line as styled text (pure, for tests and the widget).

    When it does not fit ``width`` cells, the least urgent parts go first
    ("Readers ✓", who is signed in, the rules version, the queue); the link
    state and reader problems always stay.
    """
    loc = current()
    parts: list[tuple[int, Text]] = []  # (keep priority: higher stays longer, text)
    if not status.connected:
        parts.append((9, Text(tr("● No agent"), style="bold red")))
    elif not status.known:
        parts.append((9, Text(tr("● Connecting…"), style="yellow")))
    else:
        since = ""
        if status.since is not None:
            moment = status.since.astimezone(tz_now.tzinfo) if tz_now else status.since
            since = loc.time(moment)
        if status.online:
            parts.append((9, Text(tr("● Online since {time}", time=since), style="bold green")))
        else:
            parts.append(
                (9, Text(tr("● OFFLINE since {time}", time=since), style="bold white on dark_red"))
            )
        parts.append(
            (
                4,
                Text(
                    tr("Queue {n}", n=loc.number(status.pending)),
                    style="yellow" if status.pending else "",
                ),
            )
        )
        if status.rejected:
            parts.append((5, Text(tr("Rejected {n}", n=loc.number(status.rejected)), style="red")))
        if status.rules_version is None:
            parts.append((8, Text(tr("No rules"), style="bold red")))
        else:
            parts.append(
                (
                    3 if not status.rules_problem else 7,
                    Text(
                        tr("Rules v{v}", v=loc.number(status.rules_version)),
                        style="red" if status.rules_problem else "",
                    ),
                )
            )
        bad = [r for r in status.readers if r.state not in READY_STATES]
        if not status.readers:
            parts.append((6, Text(tr("No readers"), style="yellow")))
        elif not bad:
            parts.append((1, Text(tr("Readers ✓"), style="green")))
        else:
            names = ", ".join(f"{r.name}: {reader_state(r.state)}" for r in bad)
            parts.append((8, Text(tr("Readers: {names}", names=names), style="bold red")))
        printer = PRINTER_STATES.get(status.printer or "")
        if printer is not None:  # only a printer that needs the cashier (#16)
            parts.append((8, Text(tr("Printer: {state}", state=current().gettext(printer)),
                                  style="bold red")))
    if staff is not None:
        # Who is signed in outlasts "Readers ✓" (#15 item 11); the rules
        # version, the queue and any problem outlast it.
        parts.append(
            (
                2,
                Text(
                    tr("{name} ({role})", name=staff.name, role=role_name(staff.role)), style="bold"
                ),
            )
        )
    sep = Text(" │ ", style="dim")
    if width is not None:
        while len(parts) > 1 and sum(p.cell_len for _k, p in parts) + 3 * (len(parts) - 1) > width:
            parts.remove(min(parts, key=lambda item: item[0]))
    texts = [text for _keep, text in parts]
    if loc.rtl and loc.visual_bidi:
        texts.reverse()
    return sep.join(texts)


class StatusBar(Static):
    """Draws the app's :class:`AgentStatus`; refreshed whenever it changes."""

    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $text; padding: 0 1; }
    """

    def on_mount(self) -> None:
        self.watch(self.app, "agent_status", self._redraw, init=True)
        self.watch(self.app, "staff", self._redraw, init=False)

    def on_resize(self) -> None:
        self._redraw()

    def _redraw(self, _value: object = None) -> None:
        app = self.app
        width = self.size.width or None
        self.update(
            status_text(
                app.agent_status,  # type: ignore[attr-defined]
                app.staff,  # type: ignore[attr-defined]
                app.now(),  # type: ignore[attr-defined]
                width=width,
            )
        )
