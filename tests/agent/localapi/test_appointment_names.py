"""A customer who is not a member is booked with a name and a phone (#15 item 13).

The diary used to hide the name in the note behind an invisible separator, so the
club received "Ali R.\u2063…" as a note. The name is now its own parameter, kept
with the booking and sent as the appointment event's ``customer_name``.
"""

from __future__ import annotations

from tests.agent.localapi.harness import Harness, run
from tests.agent.localapi.test_methods import expect

BASE = {"service": "haircut", "staff_id": "mg", "start": "2026-11-24T10:00:00+01:00",
        "minutes": 30}


def test_a_non_member_is_listed_by_name_and_the_club_gets_it() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        session = await h.login()
        made = await c.call("appointment.create", {**BASE, "session": session,
                                                   "phone": "0912 111 2222",
                                                   "customer_name": "  Ali R. "})
        (listed,) = await c.call("appointment.list", {"date": "2026-11-24"})
        assert listed["customer"] == "tel:+989121112222" and listed["customer_name"] == "Ali R."
        assert listed["note"] == ""
        # Moving it keeps the name; a member booked instead forgets it.
        await c.call("appointment.update", {"appointment_id": made["appointment_id"],
                                            "start": "2026-11-24T11:00:00+01:00",
                                            "session": session})
        (moved,) = await c.call("appointment.list", {"date": "2026-11-24"})
        assert moved["customer_name"] == "Ali R."
        await c.call("appointment.update", {"appointment_id": made["appointment_id"],
                                            "customer": "m-1", "session": session})
        (member,) = await c.call("appointment.list", {"date": "2026-11-24"})
        assert member["customer_name"] == "Sara K."
        events = [e for e in h.outbox() if e["type"] == "appointment"]
        assert [e.get("customer_name") for e in events] == ["Ali R.", "Ali R.", None]
    run(scenario)


def test_a_hostile_name_is_refused_and_nothing_is_booked() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        session = await h.login()
        hostile = {"A" * 101: "too long", "Ali\x1b[2J": "control_character",
                   "Ali \u202eR.": "control_character", "4111 1111 1111 1111": "card_number"}
        for name, why in hostile.items():
            err = await expect(-32602, c.call("appointment.create", {
                **BASE, "session": session, "phone": "09121112222", "customer_name": name}))
            assert err.data["param"] == "customer_name"
            if why != "too long":
                assert err.data["reason"] == why
        assert [e for e in h.outbox() if e["type"] == "appointment"] == []
        print(f"figure: {len(hostile)} hostile names refused, 0 bookings recorded")
    run(scenario)


def test_a_note_or_service_with_a_card_number_or_escape_is_refused() -> None:
    # Seen: appointment notes and services skipped the checks every other text gets,
    # so a card number typed into a note went to the store, the queue and the club.
    async def scenario(h: Harness) -> None:
        c = h.client()
        session = await h.login()
        for key, text, why in (("note", "card 4111111111111111", "card_number"),
                               ("note", "hi\x1b[2J", "control_character"),
                               ("service", "cut 4111 1111 1111 1111", "card_number"),
                               ("service", "cut\x07", "control_character")):
            err = await expect(-32602, c.call("appointment.create", {
                **BASE, "session": session, "customer": "m-1", key: text}))
            assert (err.data["param"], err.data["reason"]) == (key, why)
        ok = await c.call("appointment.create", {**BASE, "session": session, "customer": "m-1",
                                                 "note": "line one\nline\ttwo"})
        assert ok["appointment_id"]
        assert "4111" not in h.store.path.read_bytes().decode("latin-1")
    run(scenario)


def test_a_customer_that_is_a_card_number_is_refused() -> None:
    async def scenario(h: Harness) -> None:
        c = h.client()
        session = await h.login()
        await expect(-32602, c.call("appointment.create", {
            **BASE, "session": session, "customer": "tel:4111111111111111"}))
        await expect(-32001, c.call("appointment.create", {
            **BASE, "session": session, "customer": "local:4111111111111111"}))
        assert [e for e in h.outbox() if e["type"] == "appointment"] == []
    run(scenario)
