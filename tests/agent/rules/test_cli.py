"""`clubterm rules ...` through agent.cli.main, with real files and keys."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from agent.cli import main
from tests.agent.rules.conftest import MEMBER, SPEC_BASKET, SPEC_BUNDLE, spec_bundle

SALE_KEYS = {"gross", "discounts", "net", "redeemed_points", "redeemed_value", "credits_used",
             "payable", "points_earned", "credits_earned", "lottery_entries", "rules_version",
             "explain"}


@pytest.fixture
def files(tmp_path):
    def write(name, data):
        path = tmp_path / name
        path.write_text(json.dumps(data) if not isinstance(data, str) else data)
        return str(path)

    return write


@pytest.fixture
def signed(tmp_path, files, capsys):
    keys = tmp_path / "keys"
    assert main(["rules", "keygen", "--out", str(keys), "--key-id", "club-2026-1"]) == 0
    bundle = files("bundle.json", SPEC_BUNDLE)
    env = str(tmp_path / "env.json")
    assert main(["rules", "sign", "--key", str(keys / "club-2026-1.pem"),
                 "--key-id", "club-2026-1", bundle, "--out", env]) == 0
    capsys.readouterr()
    return env, str(keys)


def quote_args(files, *extra, bundle="--unsigned"):
    args = ["rules", "quote", "--basket", files("basket.json", SPEC_BASKET),
            "--member", files("member.json", MEMBER), "--at", "2026-11-24T10:00:00+01:00"]
    if bundle == "--unsigned":
        args += ["--unsigned", "--bundle", files("bundle.json", SPEC_BUNDLE)]
    else:
        args += ["--bundle", bundle]
    return args + list(extra)


def test_quote_prints_the_sale_keys_and_explain(files, capsys):
    assert main(quote_args(files, "--redeem-points", "1000", "--token-kind", "nfc")) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == SALE_KEYS
    assert (out["net"], out["payable"], out["redeemed_points"]) == (4345, 3345, 1000)
    assert out["points_earned"] == [{"rule": "base-points", "points": 33},
                                    {"rule": "tuesday-x2", "points": 33}]
    assert [e["rule"] for e in out["explain"] if "rule" in e] == [
        "gold10", "coffee-2", "base-points", "tuesday-x2", "cashback"]


def test_quote_lists_every_rule_unless_brief(files, capsys):
    args = quote_args(files, "--at", "2026-11-25T21:30:00+01:00")
    assert main(args) == 0
    full = json.loads(capsys.readouterr().out)["explain"]
    assert any(e.get("rule") == "tuesday-x2" and not e["applied"] for e in full)
    assert main([*args, "--brief"]) == 0
    brief = json.loads(capsys.readouterr().out)["explain"]
    assert not any(e.get("rule") == "tuesday-x2" for e in brief)
    assert brief[-1]["rules"] == 1


def test_quote_from_a_signed_envelope(files, signed, capsys):
    env, _ = signed
    assert main(quote_args(files, bundle=env)) == 0
    assert json.loads(capsys.readouterr().out)["net"] == 4345


def test_quote_credit_offline_and_bin(files, capsys):
    bundle = files("b2.json", spec_bundle(rules=[
        {"id": "bank", "kind": "discount", "when": {"bins": ["411111"], "anonymous": True},
         "then": {"percent_bps": 500}}]))
    args = ["rules", "quote", "--unsigned", "--bundle", bundle, "--basket",
            files("amount.json", "1000"), "--member", files("member.json", MEMBER),
            "--at", "2026-11-24T10:00:00+01:00", "--bin", "4111111111111111",
            "--use-credit", "credit.club", "--offline", "--redeemed-today", "1900"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["discounts"] == [{"rule": "bank", "amount": 50}]
    assert out["credits_used"] == [{"kind": "credit.club", "amount": 100}]
    assert out["payable"] == 850


@pytest.mark.parametrize(("extra", "message"), [
    (["--redeem-points", "5000"], "over the limit balance"),
    (["--redeem-points", "lots"], "--redeem-points: a whole number or 'max'"),
    (["--use-credit", "credit.gold"], "over the limit accepted"),
    (["--at", "2026-11-24T10:00:00"], "give the UTC offset"),
    (["--bin", "41"], "--bin: give the first six digits"),
])
def test_quote_request_errors(files, capsys, extra, message):
    assert main(quote_args(files, *extra)) == 2
    assert message in capsys.readouterr().err


def test_quote_bad_files(files, tmp_path, capsys):
    base = ["rules", "quote", "--basket", files("basket.json", SPEC_BASKET),
            "--at", "2026-11-24T10:00:00+01:00"]
    assert main([*base, "--bundle", files("b.json", SPEC_BUNDLE)]) == 2
    assert "pass --unsigned" in capsys.readouterr().err
    assert main([*base, "--unsigned", "--bundle", str(tmp_path / "none.json")]) == 2
    assert "cannot read the bundle" in capsys.readouterr().err
    assert main([*base, "--unsigned", "--bundle", files("bad.json", "{oops")]) == 2
    assert "the bundle is not valid JSON" in capsys.readouterr().err
    broken = spec_bundle(rules=[{"id": "x", "kind": "discount", "when": {"tiers": "gold"},
                                 "then": {"amount": 1}}])
    assert main([*base, "--unsigned", "--bundle", files("broken.json", broken)]) == 2
    assert "rule 'x': 'tiers' must be a list of strings" in capsys.readouterr().err
    good = files("good.json", SPEC_BUNDLE)
    args = ["rules", "quote", "--unsigned", "--bundle", good, "--at", "2026-11-24T10:00:00Z"]
    assert main([*args, "--basket", files("bk.json", [{"sku": "a", "qty": 1}])]) == 2
    assert "line 1: 'unit_price' must be a whole number" in capsys.readouterr().err


def test_verify_accepts_and_refuses(signed, capsys, tmp_path):
    env, keys = signed
    base = ["rules", "verify", "--bundle", env, "--keys", keys, "--at", "2026-11-22T00:00:00Z"]
    assert main([*base, "--club", "acme", "--merchant", "M-7", "--current-version", "41"]) == 0
    assert capsys.readouterr().out.startswith("accepted: club acme, merchant M-7, version 42")
    assert main([*base, "--club", "acme", "--merchant", "M-8"]) == 1
    assert "refused (foreign_merchant)" in capsys.readouterr().out
    assert main([*base, "--club", "acme", "--merchant", "M-7", "--current-version", "42"]) == 1
    assert "refused (downgrade)" in capsys.readouterr().out
    assert main([*base[:-2], "--at", "2027-01-01T00:00:00Z", "--club", "acme",
                 "--merchant", "M-7"]) == 1
    assert "refused (expired)" in capsys.readouterr().out
    other = tmp_path / "other"
    assert main(["rules", "keygen", "--out", str(other), "--key-id", "club-2026-1"]) == 0
    capsys.readouterr()
    assert main(["rules", "verify", "--bundle", env, "--keys", str(other), "--club", "acme",
                 "--merchant", "M-7"]) == 1
    assert "refused (bad_signature)" in capsys.readouterr().out


def test_verify_warns_about_rules_that_never_apply(tmp_path, files, capsys):
    keys = tmp_path / "k"
    main(["rules", "keygen", "--out", str(keys), "--key-id", "k1"])
    bundle = files("b.json", spec_bundle(rules=[{"id": "odd", "kind": "stamp"}]))
    env = str(tmp_path / "e.json")
    assert main(["rules", "sign", "--key", str(keys / "k1.pem"), "--key-id", "k1", bundle,
                 "--out", env]) == 0
    capsys.readouterr()
    assert main(["rules", "verify", "--bundle", env, "--keys", str(keys), "--club", "acme",
                 "--merchant", "M-7", "--at", "2026-11-22T00:00:00Z"]) == 0
    assert "warning: rule odd will never apply" in capsys.readouterr().out


def test_sign_checks_the_bundle_first(tmp_path, files, capsys):
    keys = tmp_path / "k"
    assert main(["rules", "keygen", "--out", str(keys), "--key-id", "k1"]) == 0
    assert stat.S_IMODE(os.stat(keys / "k1.pem").st_mode) == 0o600
    capsys.readouterr()
    bad = files("bad.json", {"club": "acme"})
    assert main(["rules", "sign", "--key", str(keys / "k1.pem"), "--key-id", "k1", bad]) == 2
    assert "nothing signed" in capsys.readouterr().err
    assert main(["rules", "sign", "--key", str(keys / "k1.pem"), "--key-id", "k1",
                 "--no-check", bad]) == 0
    env = json.loads(capsys.readouterr().out)
    assert set(env) == {"key_id", "payload", "sig"} and env["key_id"] == "k1"
    assert main(["rules", "sign", "--key", str(keys / "k1.pub"), "--key-id", "k1", bad,
                 "--no-check"]) == 2
    assert "not an unencrypted PEM private key" in capsys.readouterr().err


def test_help_texts(capsys):
    with pytest.raises(SystemExit):
        main(["rules", "quote", "--help"])
    out = capsys.readouterr().out
    assert "--redeem-points" in out and "example:" in out


def test_the_documented_example_prints_example_b(capsys):
    ex = str(Path(__file__).resolve().parents[3] / "docs" / "examples" / "rules") + "/"
    assert main(["rules", "quote", "--unsigned", "--bundle", ex + "bundle.json",
                 "--basket", ex + "basket.json", "--member", ex + "member.json",
                 "--at", "2026-11-24T10:00:00+01:00", "--redeem-points", "1000"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["payable"], out["points_earned"][1]["points"]) == (3345, 33)
    assert out["credits_earned"][0]["amount"] == 66


def test_the_documented_offline_example_with_a_bare_amount(capsys):
    # docs/rules.md's second example: "--basket 5050" is the amount, not a file name.
    ex = str(Path(__file__).resolve().parents[3] / "docs" / "examples" / "rules") + "/"
    assert main(["rules", "quote", "--unsigned", "--bundle", ex + "bundle.json",
                 "--basket", "5050", "--member", ex + "member.json",
                 "--at", "2026-11-24T10:00:00+01:00", "--offline", "--pending", "4000",
                 "--redeemed-today", "1500", "--redeem-points", "max"]) == 0
    out = json.loads(capsys.readouterr().out)
    # gold10: 505 off 5050 → 4545; offline allowance 2000 − 1500 = 500 points.
    assert (out["gross"], out["net"], out["redeemed_points"]) == (5050, 4545, 500)
    assert main(["rules", "quote", "--unsigned", "--bundle", ex + "bundle.json",
                 "--basket", "no-such.json", "--at", "2026-11-24T10:00:00+01:00"]) == 2
    assert "cannot read the basket" in capsys.readouterr().err


def test_quote_with_codes_rewards_and_a_coupon_seed(files, capsys):
    rules = [{"id": "summer10", "kind": "discount", "when": {"codes": ["SUMMER10"]},
              "then": {"percent_bps": 1000}},
             {"id": "next", "kind": "coupon", "when": {}, "then": {"for_rule": "summer10",
                                                                  "prefix": "NX-"}},
             {"id": "coffee", "kind": "reward", "when": {"categories": ["coffee"]},
              "then": {"cost_points": 300}}]
    bundle = files("b.json", spec_bundle(rules=rules))
    args = ["rules", "quote", "--unsigned", "--bundle", bundle, "--basket",
            files("basket.json", SPEC_BASKET), "--member", files("m.json", MEMBER),
            "--at", "2026-11-24T10:00:00+01:00", "--code", "summer10", "--reward", "coffee",
            "--coupon-seed", "cli-1"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["discounts"] == [{"rule": "summer10", "amount": 505},
                                {"rule": "coffee", "amount": 225}]
    assert out["rewards"] == [{"rule": "coffee", "points": 300}]
    assert out["coupons_issued"][0]["code"].startswith("NX-")


def test_verify_knows_the_issue_21_keys(tmp_path, files, capsys):
    # min_points, min_spend_days, purchase_count_every, referral and fee were warned
    # about as "will never apply"; they are conditions and kinds now.
    keys = tmp_path / "k"
    main(["rules", "keygen", "--out", str(keys), "--key-id", "k1"])
    rules = [
        {"id": "a", "kind": "discount", "when": {"min_points": 100}, "then": {"amount": 1}},
        {"id": "b", "kind": "points", "when": {"min_spend_days": {"days": 90, "amount": 1}},
         "then": {"per_visit": 1}},
        {"id": "c", "kind": "credit", "when": {"purchase_count_every": 10},
         "then": {"amount": 500, "kind": "credit.club"}},
        {"id": "d", "kind": "referral", "when": {}, "then": {"percent_bps": 500,
                                                             "kind": "credit.club"}},
        {"id": "e", "kind": "fee", "when": {"anonymous": True}, "then": {"percent_bps": 100}},
    ]
    bundle = files("b.json", spec_bundle(rules=rules))
    env = str(tmp_path / "e.json")
    assert main(["rules", "sign", "--key", str(keys / "k1.pem"), "--key-id", "k1", bundle,
                 "--out", env]) == 0
    capsys.readouterr()
    assert main(["rules", "verify", "--bundle", env, "--keys", str(keys), "--club", "acme",
                 "--merchant", "M-7", "--at", "2026-11-22T00:00:00Z"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("accepted") and "warning" not in out
    # A wrong shape is an error that says the bundle is invalid, not a warning.
    bad = files("bad.json", spec_bundle(rules=[{"id": "x", "kind": "discount",
                                                "when": {"min_spend_days": 90},
                                                "then": {"amount": 1}}]))
    assert main(["rules", "sign", "--key", str(keys / "k1.pem"), "--key-id", "k1", bad]) == 2
    assert "'min_spend_days' must be an object" in capsys.readouterr().err
