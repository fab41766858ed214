"""Staff, attendance, appointments, expenses and cash receipts."""

from datetime import timedelta

import pytest

from agent.offline_queue import AppointmentConflict, RecordNotFound, Store

from .conftest import Clock
from .helpers import AT


def test_staff_with_badges_and_a_hashed_pin(store: Store, clock: Clock) -> None:
    store.records.put_staff("s-1", "Ali", "cashier", by="tech", badges=["nfc:AA"], pin="4821")
    raw = store.db.execute_sql("SELECT pin_hash FROM staff").fetchone()[0]
    assert raw.startswith("scrypt$") and "4821" not in raw
    assert store.records.verify_staff_pin("s-1", "4821")
    assert not store.records.verify_staff_pin("s-1", "4822")
    clock.advance(minutes=1)
    changed = store.records.put_staff("s-1", "Ali R.", "manager", by="mgr")
    assert changed["badges"] == ["nfc:AA"] and changed["role"] == "manager"
    assert changed["created_by"] == "tech" and changed["updated_by"] == "mgr"
    assert changed["updated_at"] > changed["created_at"]
    assert store.records.verify_staff_pin("s-1", "4821")  # no new PIN given: kept
    assert store.records.staff_by_badge("nfc:AA")["staff_id"] == "s-1"
    store.records.set_staff_active("s-1", False, by="mgr")
    assert store.records.staff_by_badge("nfc:AA") is None and store.records.list_staff() == []
    assert not store.records.verify_staff_pin("s-1", "4821")
    with pytest.raises(RecordNotFound):
        store.records.set_staff_active("nobody", False, by="mgr")
    with pytest.raises(ValueError):
        store.records.put_staff("s-2", "X", "boss", by=None)


def test_attendance_is_an_event_and_a_row(store: Store) -> None:
    e = store.records.clock_staff("s-1", "in", at=AT, by="s-1", identified_by="nfc:AA",
                                  offline=True)
    assert e.body["type"] == "attendance" and e.body["staff_id"] == "s-1"
    rows = store.records.attendance_between(AT - timedelta(hours=1), AT + timedelta(hours=1))
    assert [(r["staff_id"], r["action"], r["event_id"]) for r in rows] == [("s-1", "in", e.id)]


def test_appointments_do_not_overlap_for_one_staff(store: Store) -> None:
    a, ev_a = store.records.create_appointment(customer="m-1", service="cut", staff_id="s-1",
                                       start=AT, minutes=30, note=None, by="s-9", at=AT,
                                       offline=False)
    assert ev_a.body["action"] == "create" and ev_a.body["staff_id"] == "s-1"
    with pytest.raises(AppointmentConflict) as info:
        store.records.create_appointment(customer="m-2", service="cut", staff_id="s-1",
                                 start=AT + timedelta(minutes=29), minutes=10, note=None,
                                 by="s-9", at=AT, offline=False)
    assert info.value.other_id == a["appointment_id"]
    # Back to back is fine, and another staff member is free.
    store.records.create_appointment(customer="m-2", service="cut", staff_id="s-1",
                             start=AT + timedelta(minutes=30), minutes=10, note=None,
                             by="s-9", at=AT, offline=False)
    store.records.create_appointment(customer="m-3", service="cut", staff_id="s-2",
                             start=AT, minutes=30, note=None, by="s-9", at=AT, offline=False)
    moved, ev_m = store.records.update_appointment(a["appointment_id"], by="s-8", at=AT,
                                           offline=False, start=AT - timedelta(minutes=30))
    assert moved["updated_by"] == "s-8" and ev_m.body["action"] == "update"
    store.records.cancel_appointment(a["appointment_id"], by="s-8", at=AT, offline=False)
    day = store.records.appointments_between(AT - timedelta(hours=2), AT + timedelta(hours=2))
    assert len(day) == 2
    assert store.records.appointment(a["appointment_id"])["status"] == "cancelled"
    with pytest.raises(RecordNotFound):
        store.records.cancel_appointment(a["appointment_id"], by="s-8", at=AT, offline=False)
    assert [e.event["action"] for e in store.outbox.events()
            if e.type == "appointment"] == ["create", "create", "create", "update", "cancel"]


def test_expenses_and_cash_receipts(store: Store) -> None:
    store.records.add_cash_entry("expense", 1200, "milk", "2 l", by="s-1", at=AT, offline=True)
    store.records.add_cash_entry("cash_receipt", 50000, "float", "", by="s-1",
                         at=AT + timedelta(hours=1), offline=True)
    rows = store.records.cash_entries(AT - timedelta(hours=1), AT + timedelta(hours=2))
    assert [(r["kind"], r["amount"], r["created_by"]) for r in rows] == [
        ("expense", 1200, "s-1"), ("cash_receipt", 50000, "s-1")]
    assert store.outbox.queue_stats().by_type == {"expense": 1, "cash_receipt": 1}
