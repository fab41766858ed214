"""Signed envelopes: each refusal has its own reason; a refused bundle never replaces a good one."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.errors import BundleRejected, RulesError
from agent.rules import (
    BundleState,
    accept_envelope,
    load_private_key,
    load_trusted_keys,
    sign_payload,
    write_keypair,
)
from tests.agent.rules.conftest import spec_bundle

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
KEY = Ed25519PrivateKey.generate()
OTHER = Ed25519PrivateKey.generate()
TRUSTED = {"club-2026-1": KEY.public_key()}


def envelope(key=KEY, key_id="club-2026-1", **top):
    return sign_payload(json.dumps(spec_bundle(**top)).encode(), key, key_id=key_id)


def accept(env, current_version=None, club="acme", merchant="M-7", now=NOW):
    return accept_envelope(env, TRUSTED, club=club, merchant=merchant,
                           current_version=current_version, now=now)


def test_good_envelope_is_accepted():
    b = accept(envelope(), current_version=41)
    assert b.version == 42 and len(b.rules) == 5


def tampered():
    env = envelope()
    payload = base64.b64decode(env["payload"]).replace(b'"version": 42', b'"version": 43')
    env["payload"] = base64.b64encode(payload).decode()
    return env


@pytest.mark.parametrize(("make", "kwargs", "reason"), [
    (lambda: envelope(key_id="club-2025-9"), {}, "unknown_key"),
    (lambda: envelope(key=OTHER), {}, "bad_signature"),
    (tampered, {}, "bad_signature"),
    (lambda: {"key_id": "club-2026-1", "payload": "***", "sig": ""}, {}, "malformed"),
    (lambda: {"payload": "", "sig": ""}, {}, "malformed"),
    (lambda: "not an object", {}, "malformed"),
    (lambda: sign_payload(b"{not json", KEY, key_id="club-2026-1"), {}, "malformed"),
    (lambda: envelope(version="x"), {}, "malformed"),
    (lambda: envelope(club="other"), {}, "foreign_club"),
    (lambda: envelope(merchant="M-8"), {}, "foreign_merchant"),
    (envelope, {"current_version": 42}, "downgrade"),
    (envelope, {"current_version": 50}, "downgrade"),
    (envelope, {"now": dt.datetime(2026, 12, 20, 8, 0, tzinfo=dt.UTC)}, "expired"),
])
def test_refusals_have_distinct_reasons(make, kwargs, reason):
    with pytest.raises(BundleRejected) as err:
        accept(make(), **kwargs)
    assert err.value.reason == reason
    assert str(err.value)


def test_bundle_state_keeps_the_last_good_bundle():
    state = BundleState(TRUSTED, club="acme", merchant="M-7")
    assert state.current is None and state.problem() is None
    assert state.offer(envelope(), NOW)
    assert state.version == 42
    assert not state.offer(envelope(version=41), NOW)
    assert state.version == 42 and state.refused_reason == "downgrade"
    assert state.problem().startswith("downgrade: ")
    assert not state.offer(envelope(key=OTHER, version=43), NOW)
    assert state.version == 42 and state.refused_reason == "bad_signature"
    assert state.offer(envelope(version=43), NOW)
    assert state.version == 43 and state.problem() is None


def test_same_envelope_again_is_not_a_refusal():
    state = BundleState(TRUSTED, club="acme", merchant="M-7")
    env = envelope()
    assert state.offer(env, NOW)
    assert not state.offer(dict(env), NOW)
    assert state.refused_reason is None and state.version == 42


def test_restore_keeps_an_expired_bundle_but_checks_the_signature():
    state = BundleState(TRUSTED, club="acme", merchant="M-7")
    b = state.restore(envelope(expires_at="2020-01-01T00:00:00Z"))
    assert state.current is b
    with pytest.raises(BundleRejected) as err:
        state.restore(envelope(key=OTHER))
    assert err.value.reason == "bad_signature"
    with pytest.raises(BundleRejected) as err:
        state.restore(envelope(merchant="M-9"))
    assert err.value.reason == "foreign_merchant"


def test_key_files(tmp_path):
    priv, pub = write_keypair(tmp_path, "club-2026-1")
    assert stat.S_IMODE(os.stat(priv).st_mode) == 0o600
    assert pub.name == "club-2026-1.pub"
    keys = load_trusted_keys(tmp_path)
    assert list(keys) == ["club-2026-1"]
    env = sign_payload(json.dumps(spec_bundle()).encode(), load_private_key(priv),
                       key_id="club-2026-1")
    assert accept_envelope(env, keys, club="acme", merchant="M-7", current_version=None,
                           now=NOW).version == 42
    with pytest.raises(RulesError, match="exists already"):
        write_keypair(tmp_path, "club-2026-1")


def test_bad_key_files(tmp_path):
    with pytest.raises(RulesError, match="no such directory"):
        load_trusted_keys(tmp_path / "nope")
    (tmp_path / "junk.pub").write_text("hello")
    with pytest.raises(RulesError, match=r"junk\.pub: not a PEM public key"):
        load_trusted_keys(tmp_path)
    with pytest.raises(RulesError, match="cannot read"):
        load_private_key(tmp_path / "missing.pem")


def test_a_v1_literal_bundle_replaces_the_old_one():
    # Seen (#17): a club following protocol v1 literally wrote one date range as a bare
    # pair; the agent refused the whole bundle ("must be a list of pairs") and kept the
    # old one, so the club's Nowruz promotion never ran anywhere.
    state = BundleState(TRUSTED, club="acme", merchant="M-7")
    assert state.offer(envelope(), NOW)
    literal = spec_bundle(version=43)
    literal["rules"].append({"id": "nowruz", "kind": "discount", "priority": 5,
                             "when": {"dates": ["2027-03-20", "2027-04-02"],
                                      "hours": ["09:00", "21:00"]},
                             "then": {"percent_bps": 1500}})
    assert state.offer(sign_payload(json.dumps(literal).encode(), KEY, key_id="club-2026-1"),
                       NOW)
    assert state.version == 43 and state.problem() is None
    (rule,) = [r for r in state.current.rules if r.id == "nowruz"]
    assert rule.dates == ((dt.date(2027, 3, 20), dt.date(2027, 4, 2)),)
    assert len(rule.hours) == 1
