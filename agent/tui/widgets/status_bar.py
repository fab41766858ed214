"""The status line on every screen: link, queue, rules, readers, who is signed in."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.widgets import Static

from agent.tui.i18n import current, tr
from agent.tui.labels import reader_state, role_name
from agent.tui.state import AgentStatus, StaffSession

READY_STATES = frozenset({"ready", "ok"})


def status_text(
    status: AgentStatus, staff: StaffSession | None, tz_now: datetime | None = None
) -> Text:
    """The status line as styled text (pure, for tests and the widget)."""
    loc = current()
    parts: list[Text] = []
    if not status.connected:
        parts.append(Text(tr("● No agent"), style="bold red"))
    elif not status.known:
        parts.append(Text(tr("● Connecting…"), style="yellow"))
    else:
        since = (
            loc.time(
                status.since.astimezone(tz_now.tzinfo) if tz_now and status.since else status.since
            )
            if status.since
            else ""
        )
        if status.online:
            parts.append(Text(tr("● Online since {time}", time=since), style="bold green"))
        else:
            parts.append(
                Text(tr("● OFFLINE since {time}", time=since), style="bold white on dark_red")
            )
        pending_style = "yellow" if status.pending else ""
        parts.append(Text(tr("Queue {n}", n=loc.number(status.pending)), style=pending_style))
        if status.rejected:
            parts.append(Text(tr("Rejected {n}", n=loc.number(status.rejected)), style="red"))
        if status.rules_version is None:
            parts.append(Text(tr("No rules"), style="bold red"))
        else:
            style = "red" if status.rules_problem else ""
            parts.append(Text(tr("Rules v{v}", v=loc.number(status.rules_version)), style=style))
        bad = [r for r in status.readers if r.state not in READY_STATES]
        if not status.readers:
            parts.append(Text(tr("No readers"), style="yellow"))
        elif not bad:
            parts.append(Text(tr("Readers ✓"), style="green"))
        else:
            names = ", ".join(f"{r.name}: {reader_state(r.state)}" for r in bad)
            parts.append(Text(tr("Readers: {names}", names=names), style="bold red"))
    if staff is not None:
        parts.append(
            Text(tr("{name} ({role})", name=staff.name, role=role_name(staff.role)), style="bold")
        )
    sep = Text(" │ ", style="dim")
    if loc.rtl and loc.visual_bidi:
        parts.reverse()
    return sep.join(parts)


class StatusBar(Static):
    """Draws the app's :class:`AgentStatus`; refreshed whenever it changes."""

    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $text; padding: 0 1; }
    """

    def on_mount(self) -> None:
        self.watch(self.app, "agent_status", self._redraw, init=True)
        self.watch(self.app, "staff", self._redraw, init=False)

    def _redraw(self, _value: object = None) -> None:
        app = self.app
        self.update(
            status_text(
                app.agent_status,
                app.staff,  # type: ignore[attr-defined]
                app.now(),
            )
        )  # type: ignore[attr-defined]
