"""`clubterm sale`: quote and record a sale through the running agent (scripts, SSH)."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from agent.cli.local_api import amount_text, socket_path
from agent.safe_text import escape_for_terminal


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `sale` command."""
    p = sub.add_parser(
        "sale",
        help="quote a sale and record it through the running agent",
        description="Quote a sale (sale.quote) and, unless --quote-only, record it "
                    "(sale.commit) under a staff sign-in. The PIN can also come from "
                    "$CLUBTERM_PIN so it does not show in the process list.",
    )
    p.add_argument("--amount", type=int, required=True,
                   help="the amount in minor units (12000 = 120.00)")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--token", help="the member's identifier token (pan:…, nfc:…, code:…)")
    who.add_argument("--phone", help="the member's phone number")
    who.add_argument("--code", help="the member's printed club code")
    p.add_argument("--redeem-points", metavar="N|max", default=None,
                   help="points to redeem, or 'max'")
    p.add_argument("--use-credit", metavar="KIND", action="append", default=[],
                   help="a credit balance to spend (repeatable), e.g. credit.club")
    p.add_argument("--payment", default="cash", choices=("cash", "card", "other"))
    p.add_argument("--staff-id", help="staff id to sign in with (with --pin)")
    p.add_argument("--pin", help="the staff PIN (or set $CLUBTERM_PIN)")
    p.add_argument("--badge", help="a staff badge's tap reference (tap:..., from its card "
                   "event, within 15 s) to sign in with instead of a PIN")
    p.add_argument("--quote-only", action="store_true", help="show the quote, record nothing")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--socket", metavar="PATH", default=None,
                   help="the agent's socket (default: from the configuration)")
    p.set_defaults(func=_sale)


def format_quote(q: dict[str, Any]) -> str:
    """A quote as a cashier reads it."""
    mu = q.get("minor_units")
    cur = q.get("currency") or ""
    lines = []
    member = q.get("member")
    if member:
        lines.append(f"member     {member.get('name')} ({member.get('member_id')}, "
                     f"{member.get('tier')}), points {member.get('balances', {}).get('points', 0)}")
    else:
        lines.append("member     none (anonymous sale)")
    lines.append(f"gross      {amount_text(q.get('gross'), mu)} {cur}")
    for d in q.get("discounts") or []:
        lines.append(f"discount   -{amount_text(d['amount'], mu)}  ({d['rule']})")
    if q.get("redeemed_points"):
        lines.append(f"points     -{amount_text(q.get('redeemed_value'), mu)}  "
                     f"({q['redeemed_points']} points)")
    for c in q.get("credits_used") or []:
        lines.append(f"credit     -{amount_text(c['amount'], mu)}  ({c['kind']})")
    lines.append(f"to pay     {amount_text(q.get('payable'), mu)} {cur}")
    earned = sum(p["points"] for p in q.get("points_earned") or [])
    if earned:
        lines.append(f"earns      {earned} points")
    for c in q.get("credits_earned") or []:
        lines.append(f"earns      {amount_text(c['amount'], mu)} {c['kind']}")
    if q.get("rules_version") is None:
        lines.append("note       no rule bundle: no benefits")
    return "\n".join(lines)


def _sale(args: argparse.Namespace) -> int:
    from agent.errors import ApiError, ClubtermError
    from agent.localapi.client import ApiUnavailable, SyncClient

    params: dict[str, Any] = {"amount": args.amount}
    if args.redeem_points is not None:
        rp = args.redeem_points
        if rp != "max" and not rp.isdigit():
            raise ClubtermError("--redeem-points must be a number or 'max'")
        params["redeem_points"] = rp if rp == "max" else int(rp)
    if args.use_credit:
        params["use_credit"] = list(args.use_credit)
    pin = args.pin or os.environ.get("CLUBTERM_PIN")
    if not args.quote_only and not args.badge and not (args.staff_id and pin):
        raise ClubtermError("recording a sale needs a staff sign-in: --staff-id and --pin "
                            "(or $CLUBTERM_PIN), or --badge; or use --quote-only")
    out: dict[str, Any] = {}
    try:
        with SyncClient(socket_path(args), timeout_s=30) as client:
            if args.token or args.phone or args.code:
                ident = ({"token": args.token} if args.token else
                         {"phone": args.phone} if args.phone else {"code": args.code})
                member = client.call("member.identify", ident)
                params["token"] = _token_for(ident, member, args)
            quote = client.call("sale.quote", params)
            out["quote"] = quote
            if not args.quote_only:
                login = client.call("staff.login", {"token": args.badge} if args.badge
                                    else {"staff_id": args.staff_id, "pin": pin})
                out["commit"] = client.call("sale.commit", {
                    "quote_id": quote["quote_id"], "payment": args.payment,
                    "session": login["session"]})
                client.call("staff.logout", {"session": login["session"]})
    except ApiUnavailable as exc:
        print(f"clubterm: {exc}")
        return 3
    except ApiError as exc:
        if args.json:
            print(json.dumps({"error": {"code": exc.code, "message": str(exc),
                                        "data": exc.data}, **out}, ensure_ascii=False))
        else:
            print(f"clubterm: {escape_for_terminal(exc)}")
        return 1
    if args.json:
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    # The member's name comes from the club: shown, never obeyed by the terminal.
    print("\n".join(escape_for_terminal(line) for line in format_quote(out["quote"]).split("\n")))
    if "commit" in out:
        c = out["commit"]
        print(f"recorded   sale {c['sale_id']} (seq {c['seq']})")
    else:
        print("not recorded (--quote-only)")
    return 0


def _token_for(ident: dict[str, str], member: dict[str, Any], args: argparse.Namespace) -> str:
    """The token to quote with: the given one, else the tel:/code: token of the input."""
    if "token" in ident:
        return ident["token"]
    if "code" in ident:
        return "code:" + ident["code"].strip()
    from agent.carddata.tokens import tel_token
    from agent.config import default_config_path, load_config
    from agent.errors import ConfigError

    country = "1"
    try:
        country = load_config(args.config or default_config_path(),
                              check_secrets=False).default_country_code
    except ConfigError:
        pass
    return tel_token(ident["phone"], country)
