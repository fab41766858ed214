"""Rule bundles and staff lists share one acceptance policy (club, merchant, version).

The same hostile documents — another club's, another merchant's, a replayed older
version, a replay of the version in use, and one that is wrong in every way at once —
are offered as a rule bundle and as a staff list; both refuse each for the same
reason (the older version is ``downgrade`` for a bundle, ``stale`` for a list) and
name the same first problem.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from agent.errors import BundleRejected
from agent.rules import accept_envelope, sign_payload
from agent.rules.envelope import acceptance_refusal
from agent.staff.staff_list import StaffListRefused, accept_staff_list
from tests.agent.rules.conftest import spec_bundle
from tests.agent.rules.test_envelope import KEY, TRUSTED
from tests.agent.staff.test_staff_list import body as staff_body

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
KEY_ID = "club-2026-1"

CASES = [  # (club, merchant, version) of the document; version 5 is in use here
    (("acme", "M-7", 6), None),
    (("other", "M-7", 6), "foreign_club"),
    (("acme", "M-9", 6), "foreign_merchant"),
    (("acme", "M-7", 4), "older"),
    (("acme", "M-7", 5), "older"),
    (("other", "M-9", 1), "foreign_club"),  # every rule broken: the club is named first
]


def _bundle(club: str, merchant: str, version: int):
    payload = json.dumps(spec_bundle(club=club, merchant=merchant, version=version)).encode()
    try:
        accept_envelope(sign_payload(payload, KEY, key_id=KEY_ID), TRUSTED, club="acme",
                        merchant="M-7", current_version=5, now=NOW)
    except BundleRejected as exc:
        return exc.reason, str(exc)
    return None


def _staff(club: str, merchant: str, version: int):
    doc = staff_body(club_id=club, merchant_id=merchant, version=version)
    try:
        accept_staff_list(sign_payload(json.dumps(doc).encode(), KEY, key_id=KEY_ID),
                          TRUSTED, club="acme", merchant="M-7", current_version=5)
    except StaffListRefused as exc:
        return exc.reason, str(exc)
    return None


@pytest.mark.parametrize(("doc", "expected"), CASES)
def test_bundles_and_staff_lists_refuse_alike(doc, expected):
    bundle, staff = _bundle(*doc), _staff(*doc)
    if expected is None:
        assert bundle is None and staff is None
        return
    older = {"older": ("downgrade", "stale")}.get(expected, (expected, expected))
    assert bundle is not None and staff is not None
    assert (bundle[0], staff[0]) == older
    # The same words, but for the document's name.
    assert bundle[1].replace("bundle", "list") == staff[1]


def test_the_policy_names_the_first_rule_broken():
    refuse = acceptance_refusal("list", club_of="x", merchant_of="y", version=0, club="acme",
                                merchant="M-7", current_version=0, not_newer="stale")
    assert refuse == ("foreign_club", "the list is for club 'x', this terminal is 'acme'")
    assert acceptance_refusal("bundle", club_of="acme", merchant_of="M-7", version=1,
                              club="acme", merchant="M-7", current_version=None,
                              not_newer="downgrade") is None
