"""The status model and the status line (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from agent.tui.i18n import load_locale, set_locale
from agent.tui.state import AgentStatus, StaffSession, apply_event, status_from_result
from agent.tui.widgets.status_bar import status_text

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
RESULT = {"terminal_id": "T-1", "online": True, "link_since": "2026-11-22T08:30:00+00:00",
          "rules_version": 42, "rules_problem": None, "queue": {"pending": 2, "rejected": 0},
          "readers": [{"name": "MSR", "kind": "msr", "state": "ready"}],
          "currency": "EUR", "minor_units": 2, "timezone": "Europe/Berlin"}


def test_status_from_result_and_events() -> None:
    status = status_from_result(RESULT, NOW)
    assert status.known and status.online and status.pending == 2 and status.currency == "EUR"
    status = apply_event(status, {"type": "link", "online": False, "since": NOW.isoformat()}, NOW)
    assert not status.online and status.since == NOW
    status = apply_event(status, {"type": "reader", "name": "MSR", "state": "error"}, NOW)
    assert status.readers[0].state == "error"
    status = apply_event(status, {"type": "reader", "name": "PCSC", "state": "ready"}, NOW)
    assert [r.name for r in status.readers] == ["MSR", "PCSC"]
    status = apply_event(status, {"type": "rules", "version": 43, "problem": "expired"}, NOW)
    assert status.rules_version == 43 and status.rules_problem == "expired"
    assert apply_event(status, {"type": "sale", "payable": 5}, NOW) == status


def test_status_line_drops_least_urgent_parts_first() -> None:
    set_locale(load_locale("en"))
    status = apply_event(status_from_result(RESULT, NOW),
                         {"type": "reader", "name": "MSR", "state": "error"}, NOW)
    staff = StaffSession("s", "1", "Mina Rahimi", "cashier")
    full = status_text(status, staff).plain
    assert full == ("● Online since 08:30 │ Queue 2 │ Rules v42 │ Readers: MSR: error"
                    " │ Mina Rahimi (Cashier)")
    short = status_text(status, staff, width=50).plain
    assert short == "● Online since 08:30 │ Readers: MSR: error"
    assert status_text(AgentStatus(connected=False), None).plain == "● No agent"
