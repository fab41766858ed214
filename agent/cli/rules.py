"""`clubterm rules`: try, verify and sign rule bundles.

- ``rules quote``: compute a sale from a bundle file, as a terminal would, and print
  the ``sale`` numbers plus the explanation as JSON (a club tries a bundle with it
  before publishing).
- ``rules verify``: would this terminal accept the signed bundle, and if not, why.
- ``rules sign`` / ``rules keygen``: for the simulated club, tests and club tooling.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any, Literal

from agent.errors import ClubtermError, RulesError

QUOTE_EPILOG = """\
files:
  --bundle   a signed envelope {"key_id", "payload", "sig"} as published on the
             rules topic (its signature is not checked here: use 'rules verify'),
             or with --unsigned a bare bundle JSON (rules.md).
  --basket   a JSON file: a list of lines [{"sku", "category", "qty", "unit_price"}],
             {"lines": [...]} or a bare amount; or the amount itself, such as
             --basket 5050 (minor units, one line with no sku or category).
  --member   a member record as in protocol.md (its balances are used as they are).

example:
  clubterm rules quote --unsigned --bundle bundle.json --basket basket.json \\
      --member sara.json --token-kind nfc --at 2026-11-24T10:00:00+01:00 \\
      --redeem-points max --use-credit credit.club

By default every rule is listed with the reason it applied or not; --brief lists
only the rules the terminal's index looks at (as the running agent does).
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``rules quote|verify|sign|keygen``."""
    parser = sub.add_parser("rules", help="try, verify and sign rule bundles",
                            description="Try, verify and sign rule bundles (rules.md).")
    rsub = parser.add_subparsers(dest="rules_command", metavar="ACTION")
    parser.set_defaults(func=lambda args: _usage(parser))

    q = rsub.add_parser(
        "quote", help="compute a sale from a bundle and print it as JSON",
        description="Compute a sale exactly as a terminal would and print the sale "
                    "numbers (gross, discounts, net, redeemed_points, redeemed_value, "
                    "credits_used, payable, points_earned, credits_earned, "
                    "lottery_entries, rules_version) and the explanation as JSON.",
        epilog=QUOTE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    q.add_argument("--bundle", required=True, metavar="FILE", help="bundle envelope or JSON")
    q.add_argument("--unsigned", action="store_true",
                   help="FILE is a bare bundle, not a signed envelope")
    q.add_argument("--member", metavar="FILE", help="member record JSON (default: no member)")
    q.add_argument("--token-kind", metavar="KIND", choices=("pan", "nid", "nfc", "code", "tel"),
                   help="how the customer was identified: pan, nid, nfc, code or tel")
    q.add_argument("--bin", metavar="DIGITS", help="first six digits of the bank card")
    q.add_argument("--basket", required=True, metavar="FILE", help="basket JSON ('-': stdin)")
    q.add_argument("--at", required=True, metavar="RFC3339",
                   help="time of the sale with its offset, e.g. 2026-11-24T10:00:00+01:00")
    q.add_argument("--redeem-points", metavar="N|max", help="points to redeem, or 'max'")
    q.add_argument("--use-credit", metavar="KIND", nargs="+", action="extend", default=[],
                   help="credit kinds to spend, in this order (e.g. credit.club)")
    q.add_argument("--offline", action="store_true",
                   help="quote as a terminal without a link to the club")
    q.add_argument("--pending", type=int, default=0, metavar="N",
                   help="events waiting to be sent (offline limits; default 0)")
    q.add_argument("--oldest-pending-hours", type=float, default=None, metavar="H",
                   help="age of the oldest waiting event (offline limits)")
    q.add_argument("--redeemed-today", type=int, default=0, metavar="AMOUNT",
                   help="value of points this member redeemed today here (minor units)")
    q.add_argument("--credit-used-today", type=int, default=0, metavar="AMOUNT",
                   help="credit this member used today here (minor units)")
    q.add_argument("--code", metavar="CODE", nargs="+", action="extend", default=[],
                   help="promo, coupon or voucher codes given for the sale")
    q.add_argument("--used-code", metavar="CODE", nargs="+", action="extend", default=[],
                   help="single-use codes to treat as already used")
    q.add_argument("--reward", metavar="RULE", nargs="+", action="extend", default=[],
                   help="reward rules the customer takes for points")
    q.add_argument("--coupon-seed", metavar="TEXT",
                   help="makes issued coupon codes (the agent uses the quote id); without "
                        "it no coupon is issued")
    q.add_argument("--brief", action="store_true",
                   help="list only the rules the index looks at, as the agent does")
    q.set_defaults(func=_quote)

    v = rsub.add_parser(
        "verify", help="say whether a terminal would accept a signed bundle",
        description="Check a signed bundle as a terminal would: signature by a trusted "
                    "key (DIR/<key_id>.pub), club, merchant, version and expiry. Exits 0 "
                    "when it would be accepted, 1 with the reason when not.")
    v.add_argument("--bundle", required=True, metavar="FILE", help="the signed envelope JSON")
    v.add_argument("--keys", required=True, metavar="DIR", help="directory of <key_id>.pub")
    v.add_argument("--club", help="this terminal's club (default: the configuration's)")
    v.add_argument("--merchant", help="this terminal's merchant (default: the configuration's)")
    v.add_argument("--current-version", type=int, metavar="N",
                   help="the bundle version the terminal has now (refuses N or lower)")
    v.add_argument("--at", metavar="RFC3339", help="check expiry at this time (default: now)")
    v.set_defaults(func=_verify)

    s = rsub.add_parser(
        "sign", help="sign a bundle JSON into an envelope",
        description="Sign the bytes of PAYLOAD exactly as they are with an Ed25519 key and "
                    "print the envelope {key_id, payload, sig}. The payload is checked "
                    "first (use --no-check to sign it anyway).")
    s.add_argument("payload", metavar="PAYLOAD.json", help="the bundle JSON")
    s.add_argument("--key", required=True, metavar="PRIVATE.pem", help="Ed25519 private key")
    s.add_argument("--key-id", required=True, metavar="ID",
                   help="key id terminals know the public key by")
    s.add_argument("--out", metavar="FILE", help="write the envelope here (default: stdout)")
    s.add_argument("--no-check", action="store_true", help="do not validate the bundle first")
    s.set_defaults(func=_sign)

    k = rsub.add_parser(
        "keygen", help="make an Ed25519 bundle-signing key pair",
        description="Write OUT/ID.pem (private, mode 0600; keep it at the club) and "
                    "OUT/ID.pub (give it to terminals at provisioning).")
    k.add_argument("--out", required=True, metavar="DIR")
    k.add_argument("--key-id", required=True, metavar="ID")
    k.set_defaults(func=_keygen)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _read_json(path: str, what: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"{path}: cannot read the {what}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise RulesError(f"{path}: the {what} is not UTF-8 text") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise RulesError(f"{path}: the {what} is not valid JSON: {exc}") from None


def _time(text: str, option: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise RulesError(f"{option}: not an RFC 3339 time: {text!r}") from None
    if value.tzinfo is None:
        raise RulesError(f"{option}: give the UTC offset too, e.g. {text}+01:00")
    return value


def _bundle_from_file(path: str, unsigned: bool) -> Any:
    from agent.rules import parse_bundle

    data = _read_json(path, "bundle")
    is_envelope = isinstance(data, dict) and "payload" in data and "sig" in data
    if is_envelope:
        try:
            payload = base64.b64decode(str(data["payload"]), validate=True)
        except (binascii.Error, ValueError):
            raise RulesError(f"{path}: the envelope's payload is not valid base64") from None
        try:
            return parse_bundle(payload)
        except RulesError as exc:
            raise RulesError(f"{path}: {exc}") from None
    if not unsigned:
        raise RulesError(f"{path} is a bare bundle, not a signed envelope; "
                         f"pass --unsigned to try it")
    try:
        return parse_bundle(json.dumps(data).encode())
    except RulesError as exc:
        raise RulesError(f"{path}: {exc}") from None


def _quote(args: argparse.Namespace) -> int:
    from agent.errors import LimitExceeded
    from agent.rules import MemberView, QuoteContext, QuoteRequest, lines_from_json, quote

    bundle = _bundle_from_file(args.bundle, args.unsigned)
    basket: Any
    if args.basket.isdigit() and not Path(args.basket).exists():
        basket = int(args.basket)  # a bare amount, as the help says
    else:
        basket = _read_json(args.basket, "basket")
    try:
        lines = lines_from_json(basket)
    except RulesError as exc:
        raise RulesError(f"{args.basket}: {exc}") from None
    member = None
    if args.member:
        record = _read_json(args.member, "member record")
        try:
            member = MemberView(record)
        except RulesError as exc:
            raise RulesError(f"{args.member}: {exc}") from None
    redeem: int | Literal["max"] | None = None
    if args.redeem_points is not None:
        if args.redeem_points == "max":
            redeem = "max"
        elif args.redeem_points.isdigit():
            redeem = int(args.redeem_points)
        else:
            raise RulesError(f"--redeem-points: a whole number or 'max', "
                             f"not {args.redeem_points!r}")
    bin6 = args.bin
    if bin6 is not None:
        bin6 = bin6.strip()[:6]
        if len(bin6) != 6 or not bin6.isdigit():
            raise RulesError("--bin: give the first six digits of the card")
    oldest = None if args.oldest_pending_hours is None else args.oldest_pending_hours * 3600
    ctx = QuoteContext(_time(args.at, "--at"), offline=args.offline,
                       redeemed_today=args.redeemed_today,
                       credit_used_today=args.credit_used_today,
                       pending_count=args.pending, oldest_pending_age_s=oldest,
                       used_codes=frozenset(c.strip().upper() for c in args.used_code),
                       coupon_seed=args.coupon_seed)
    request = QuoteRequest(lines, token_kind=args.token_kind, bin6=bin6,
                           redeem_points=redeem,
                           use_credit=list(args.use_credit), codes=list(args.code),
                           rewards=list(args.reward))
    try:
        result = quote(bundle, request, member, ctx, use_index=args.brief)
    except LimitExceeded as exc:
        raise RulesError(f"over the limit {exc.limit}: {exc}") from None
    json.dump(result.to_dict(), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from agent.errors import BundleRejected
    from agent.rules import accept_envelope, load_trusted_keys

    envelope = _read_json(args.bundle, "bundle envelope")
    trusted = load_trusted_keys(args.keys)
    club, merchant = args.club, args.merchant
    notes = []
    if club is None or merchant is None:
        from agent.config import load_config

        try:
            config = load_config(args.config, check_secrets=False)
            club = club or config.club_id
            merchant = merchant or config.merchant_id
        except ClubtermError:
            pass
    if club is None or merchant is None:
        # Without a terminal to compare with, take the bundle's own and say so.
        from agent.rules import verify_envelope

        try:
            peek = verify_envelope(envelope, trusted)
        except BundleRejected as exc:
            print(f"refused ({exc.reason}): {exc}")
            return 1
        if club is None:
            club = peek.club
            notes.append("club not checked (no --club and no configuration)")
        if merchant is None:
            merchant = peek.merchant
            notes.append("merchant not checked (no --merchant and no configuration)")
    now = _time(args.at, "--at") if args.at else dt.datetime.now(dt.UTC)
    try:
        bundle = accept_envelope(envelope, trusted, club=club, merchant=merchant,
                                 current_version=args.current_version, now=now)
    except BundleRejected as exc:
        print(f"refused ({exc.reason}): {exc}")
        return 1
    print(f"accepted: {bundle.summary()}")
    for note in notes:
        print(f"note: {note}")
    for rule in bundle.rules:
        if rule.unknown is not None:
            print(f"warning: rule {rule.id} will never apply: {rule.unknown}")
    return 0


def _sign(args: argparse.Namespace) -> int:
    from agent.rules import load_private_key, parse_bundle, sign_payload

    try:
        payload = Path(args.payload).read_bytes()
    except OSError as exc:
        raise RulesError(f"{args.payload}: cannot read: {exc.strerror}") from None
    if not args.no_check:
        try:
            parse_bundle(payload)
        except RulesError as exc:
            raise RulesError(f"{args.payload}: {exc} (nothing signed)") from None
    envelope = sign_payload(payload, load_private_key(args.key), key_id=args.key_id)
    text = json.dumps(envelope) + "\n"
    if args.out:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise RulesError(f"{args.out}: cannot write: {exc.strerror}") from None
    else:
        sys.stdout.write(text)
    return 0


def _keygen(args: argparse.Namespace) -> int:
    from agent.rules import write_keypair

    try:
        private, public = write_keypair(args.out, args.key_id)
    except OSError as exc:
        raise RulesError(f"{args.out}: cannot write the key: {exc.strerror}") from None
    print(f"private key: {private} (mode 0600; keep it at the club)")
    print(f"public key:  {public} (install on terminals as a trusted rules key)")
    return 0
