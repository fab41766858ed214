"""Enrolment over HTTPS (docs/provisioning.md): a code for a certificate and the
terminal's configuration. ``GET /v1/ca`` answers the club CA's PEM (not JSON)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from agent.protocol.base import Id, Message, Object, Text

Pem = Annotated[str, msgspec.Meta(max_length=64 * 1024)]


class LookupRequest(Message):
    """``POST /v1/enrolment/lookup``: which terminal a code is for (does not use it)."""

    code: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    #: The device's key, so a device retrying after a lost answer is answered again.
    public_key: Pem | None = None


class LookupAnswer(Message):
    terminal_id: Id
    club_id: Id
    merchant_id: Id
    profile: Text | None = None
    expires_at: Text | None = None


class EnrolRequest(Message):
    """``POST /v1/enrolment``: use the code, with a CSR (ECDSA P-256, CN = terminal id)."""

    code: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    csr: Pem


class EnrolAnswer(Message, kw_only=True):
    """The terminal's configuration; ``pan_key`` sealed for the device's key."""

    terminal_id: Id
    club_id: Id
    merchant_id: Id
    certificate: Pem
    ca_certificate: Pem
    broker_url: Text | None = None
    #: (1.1) every broker of a cluster; a v1 club sends ``broker_url`` only.
    broker_urls: list[Text] | None = None
    central_url: Text
    default_country_code: Text | None = None
    rules_keys: dict[Id, Pem] = msgspec.field(default_factory=dict)
    profile: Text | None = None
    #: (1.2) ``club``, ``merchant:{id}`` or ``group:{id}`` (club.md "Member scopes").
    member_scope: Text | None = None
    pan_key: Object


class RenewRequest(Message):
    """``POST /v1/terminals/{terminal_id}/certificate`` (mutual TLS, the current cert)."""

    csr: Pem


class RenewAnswer(Message):
    certificate: Pem
    ca_certificate: Pem
    not_after: Text
