"""peewee models over the tables of :mod:`agent.offline_queue.schema`.

The tables themselves are created by the versioned migrations (plain SQL, so a
released schema never changes when a model does); these models only map them.
They are bound to one database by :class:`BoundModels`.
"""

from __future__ import annotations

from typing import Any

import peewee


class _Base(peewee.Model):
    class Meta:
        legacy_table_names = False


class Meta(_Base):
    key = peewee.TextField(primary_key=True)
    value = peewee.TextField()

    class Meta:
        table_name = "meta"
        without_rowid = True


class Event(_Base):
    seq = peewee.IntegerField(primary_key=True)
    id = peewee.TextField(unique=True)
    type = peewee.TextField()
    at = peewee.TextField()
    at_us = peewee.IntegerField()
    member_id = peewee.TextField(null=True)
    ref_id = peewee.TextField(null=True)
    recorded_by = peewee.TextField(null=True)
    state = peewee.TextField()
    reason = peewee.TextField(null=True)
    recorded_at = peewee.TextField()
    sent_at = peewee.TextField(null=True)
    attempts = peewee.IntegerField(default=0)
    acked_at = peewee.TextField(null=True)
    state_at = peewee.TextField()
    redeemed_value = peewee.IntegerField(default=0)
    credit_used = peewee.IntegerField(default=0)
    purchases = peewee.IntegerField(default=0)
    spend = peewee.IntegerField(default=0)
    size = peewee.IntegerField(default=0)
    body = peewee.TextField()

    class Meta:
        table_name = "events"


class EventDelta(_Base):
    member_id = peewee.TextField()
    seq = peewee.IntegerField()
    kind = peewee.TextField()
    amount = peewee.IntegerField()

    class Meta:
        table_name = "event_deltas"
        primary_key = peewee.CompositeKey("member_id", "seq", "kind")
        without_rowid = True


class Member(_Base):
    member_id = peewee.TextField(primary_key=True)
    version = peewee.IntegerField()
    applied_here = peewee.IntegerField(default=0)
    gen = peewee.IntegerField(default=0)
    provisional = peewee.IntegerField(default=0)
    record = peewee.TextField()

    class Meta:
        table_name = "members"


class MemberToken(_Base):
    token = peewee.TextField(primary_key=True)
    member_id = peewee.TextField(index=True)

    class Meta:
        table_name = "member_tokens"
        without_rowid = True


class Bundle(_Base):
    slot = peewee.TextField(primary_key=True)
    version = peewee.IntegerField(null=True)
    envelope = peewee.TextField()
    reason = peewee.TextField(null=True)
    saved_at = peewee.TextField()

    class Meta:
        table_name = "bundles"
        without_rowid = True


class CommandResult(_Base):
    id = peewee.TextField(primary_key=True)
    result = peewee.TextField()
    at = peewee.TextField()

    class Meta:
        table_name = "command_results"
        without_rowid = True


class _Audited(_Base):
    created_by = peewee.TextField(null=True)
    created_at = peewee.TextField()
    updated_by = peewee.TextField(null=True)
    updated_at = peewee.TextField()


class Staff(_Audited):
    staff_id = peewee.TextField(primary_key=True)
    name = peewee.TextField()
    role = peewee.TextField()
    pin_hash = peewee.TextField(null=True)
    active = peewee.IntegerField(default=1)

    class Meta:
        table_name = "staff"


class StaffBadge(_Base):
    token = peewee.TextField(primary_key=True)
    staff_id = peewee.TextField()

    class Meta:
        table_name = "staff_badges"
        without_rowid = True


class Attendance(_Audited):
    event_id = peewee.TextField(primary_key=True)
    staff_id = peewee.TextField()
    action = peewee.TextField()
    at = peewee.TextField()
    at_us = peewee.IntegerField()
    identified_by = peewee.TextField(null=True)

    class Meta:
        table_name = "attendance"


class Appointment(_Audited):
    appointment_id = peewee.TextField(primary_key=True)
    customer = peewee.TextField(null=True)
    service = peewee.TextField(null=True)
    staff_id = peewee.TextField(null=True)
    start = peewee.TextField()
    start_us = peewee.IntegerField()
    end_us = peewee.IntegerField()
    minutes = peewee.IntegerField()
    note = peewee.TextField(null=True)
    status = peewee.TextField()

    class Meta:
        table_name = "appointments"


class CashEntry(_Audited):
    event_id = peewee.TextField(primary_key=True)
    kind = peewee.TextField()
    amount = peewee.IntegerField()
    category = peewee.TextField(null=True)
    note = peewee.TextField(null=True)
    at = peewee.TextField()
    at_us = peewee.IntegerField()

    class Meta:
        table_name = "cash_entries"


ALL_MODELS = (Meta, Event, EventDelta, Member, MemberToken, Bundle, CommandResult, Staff,
              StaffBadge, Attendance, Appointment, CashEntry)


class BoundModels:
    """The models bound to one database, so several stores can be open at once
    (tests, the CLI beside a running agent) without a global binding."""

    def __init__(self, db: peewee.Database):
        def bind(model: type[_Base]) -> Any:
            meta = model._meta
            attrs = {"database": db, "table_name": meta.table_name,
                     "without_rowid": meta.without_rowid}
            if isinstance(meta.primary_key, peewee.CompositeKey):
                attrs["primary_key"] = peewee.CompositeKey(*meta.primary_key.field_names)
            bound: Any = type(model.__name__, (model,), {
                "Meta": type("Meta", (), attrs), "__module__": __name__})
            return bound

        self.Meta = bind(Meta)
        self.Event = bind(Event)
        self.EventDelta = bind(EventDelta)
        self.Member = bind(Member)
        self.MemberToken = bind(MemberToken)
        self.Bundle = bind(Bundle)
        self.CommandResult = bind(CommandResult)
        self.Staff = bind(Staff)
        self.StaffBadge = bind(StaffBadge)
        self.Attendance = bind(Attendance)
        self.Appointment = bind(Appointment)
        self.CashEntry = bind(CashEntry)
