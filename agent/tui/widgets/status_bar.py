"""The status line on every screen: link, queue, rules, readers, who is signed in."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.widgets import Static

from agent.tui.i18n import N_, current, display, plain, tr
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

    When it does not fit ``width`` cells: "Readers ✓" goes, the name loses its
    role, "Rules v42" becomes "v42", then the rules version, the name (cut with
    "…" first) and the queue go; the link state and reader problems always stay.
    """
    loc = current()
    parts: list[tuple[int, Text]] = []  # (keep priority: higher stays longer, text)
    rules_at = -1  # where "Rules v42" is in parts, if shown
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
            rules_at = len(parts)
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
    name: tuple[int, Text] | None = None
    if staff is not None:
        # Who is signed in outlasts "Readers ✓" (#15 item 11); when that is not
        # enough, the name loses its role and then outlasts the rules version
        # (60 columns: "● Online since 10:00 │ Queue 0 │ Rules v42 │ Mina Rahimi").
        name = (2, Text(tr("{name} ({role})", name=staff.name, role=role_name(staff.role)),
                        style="bold"))
        parts.append(name)
    sep = Text(" │ ", style="dim")

    def too_wide() -> bool:
        return width is not None and len(parts) > 1 and \
            sum(p.cell_len for _k, p in parts) + 3 * (len(parts) - 1) > width

    while too_wide() and min(k for k, _p in parts) < 2:
        parts.remove(min(parts, key=lambda item: item[0]))
    if too_wide() and name is not None and staff is not None:
        parts[parts.index(name)] = (3, Text(display(str(plain(staff.name))), style="bold"))
    if too_wide() and rules_at >= 0 and status.rules_version is not None:
        # "Rules v42" → "v42": the version stays beside the name.
        keep, text = parts[rules_at]
        parts[rules_at] = (keep, Text(loc.digits(f"v{status.rules_version}"), style=text.style))
    while too_wide():
        # Ties: the earlier part goes first (the rules version before the name).
        drop = min(parts, key=lambda item: item[0])
        if name is not None and staff is not None and drop[1].style == "bold" \
                and drop is parts[-1] and width is not None:
            # The name, last: cut it to the room left rather than lose it.
            room = width - sum(p.cell_len + 3 for _k, p in parts[:-1])
            if room >= 6:
                parts[-1] = (drop[0], Text(display(str(plain(staff.name))[: room - 1] + "…"),
                                           style="bold"))
                continue
        parts.remove(drop)
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
