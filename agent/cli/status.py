"""`clubterm status`: what the running agent says about itself (a local-API client)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from agent.cli.local_api import amount_text, socket_path
from agent.safe_text import escape_for_terminal, json_for_terminal


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `status` command."""
    p = sub.add_parser(
        "status",
        help="show the running agent's state (link, queue, rules, readers)",
        description="Ask the running agent over its local API (agent.status) and print "
                    "its state. Exit code 0 when it answers, 3 when it is not running.",
    )
    p.add_argument("--json", action="store_true", help="print the raw JSON answer")
    p.add_argument("--follow", "-f", action="store_true",
                   help="then print every event (card reads, link, queue, readers) as it "
                        "happens, until Ctrl-C")
    p.add_argument("--quote-amount", type=int, metavar="AMOUNT", default=None,
                   help="with --follow: quote a sale of AMOUNT (minor units) for every "
                        "member whose card is read (the demo uses this)")
    p.add_argument("--socket", metavar="PATH", default=None,
                   help="the agent's socket (default: from the configuration)")
    p.set_defaults(func=_status)


def format_status(s: dict[str, Any]) -> str:
    """The status as lines a technician reads on SSH."""
    queue = s.get("queue") or {}
    lines = [
        f"terminal     {s.get('terminal_id')}  (merchant {s.get('merchant_id')})",
        f"club link    {'online' if s.get('online') else 'OFFLINE'}"
        + (f" since {s['link_since']}" if s.get("link_since") else "")
        + (f" via {s['broker']}" if s.get("broker") else ""),
        f"queue        {queue.get('pending', 0)} waiting"
        + (f", oldest {queue['oldest_at']}" if queue.get("oldest_at") else "")
        + (f", {queue['rejected']} rejected" if queue.get("rejected") else ""),
        "rules        " + (f"version {s['rules_version']}" if s.get("rules_version") is not None
                            else "none yet")
        + (f"  PROBLEM: {s['rules_problem']}" if s.get("rules_problem") else ""),
        f"members      cache version {s.get('members_version')}",
    ]
    if "catalogue_version" in s:  # an agent of 1.1 with the product catalogue
        lines.append("catalogue    " + (
            f"version {s['catalogue_version']}, {s.get('catalogue_products', 0)} products"
            if s.get("catalogue_version") is not None else "none yet")
            + (f"  PROBLEM: {s['catalogue_problem']}" if s.get("catalogue_problem") else ""))
    readers = s.get("readers") or []
    if not readers:
        lines.append("readers      none")
    for i, r in enumerate(readers):
        label = "readers" if i == 0 else ""
        lines.append(f"{label:<12} {r.get('name')} ({r.get('kind')}): {r.get('state')}")
    printer = s.get("printer")
    if isinstance(printer, dict):
        last = printer.get("last_job") or {}
        lines.append(f"printer      {printer.get('kind')} {printer.get('address')}: "
                     f"{printer.get('state')}"
                     + (f" ({printer['detail']})" if printer.get("detail") else "")
                     + f", {printer.get('printed', 0)} printed, {printer.get('failed', 0)} failed"
                     + (f", last {last.get('result')} {last.get('sale_id')}" if last else ""))
    if s.get("agent_version"):
        lines.append(f"agent        {s['agent_version']}, up {s.get('uptime_s', 0):.0f} s")
    # Every value came from the agent (reader names, problems): shown, never obeyed.
    return "\n".join(escape_for_terminal(line) for line in lines)


def _status(args: argparse.Namespace) -> int:
    from agent.errors import ApiError
    from agent.localapi.client import ApiUnavailable, SyncClient

    path = socket_path(args)
    if args.follow:
        return _follow(path, args.json, args.quote_amount)
    try:
        with SyncClient(path, timeout_s=10) as client:
            status = client.call("agent.status")
    except ApiUnavailable as exc:
        print(f"clubterm: {exc}")
        return 3
    except ApiError as exc:
        print(f"clubterm: the agent answered: {escape_for_terminal(exc)}")
        return 1
    print(json_for_terminal(status, indent=2) if args.json else format_status(status))
    return 0


def format_event(e: dict[str, Any]) -> str:
    """One event notification as one line, escaped for the terminal.

    Member names come from the club and may hold anything (ESC sequences that
    retitle the window or clear the screen): they are shown, never obeyed.
    """
    return escape_for_terminal(_event_line(e))


def _event_line(e: dict[str, Any]) -> str:
    kind = e.get("type")
    if kind == "card":
        member = e.get("member")
        who = (f"{member.get('name')} ({member.get('member_id')}, {member.get('tier')}, "
               f"{member.get('status')}), points {member.get('balances', {}).get('points', 0)}"
               if member else "no member for this card")
        return f"card     {e.get('source')} {e.get('masked') or e.get('token')}: {who}"
    if kind == "read_failed":
        return f"card     {e.get('source')} {e.get('reader')}: {e.get('message')}"
    if kind == "reader":
        detail = f" ({e['detail']})" if e.get("detail") else ""
        return f"reader   {e.get('name')} ({e.get('kind')}): {e.get('state')}{detail}"
    if kind == "link":
        return f"link     {'online' if e.get('online') else 'offline'}"
    if kind == "queue":
        return f"queue    {e.get('pending')} waiting"
    if kind == "rules":
        return f"rules    version {e.get('version')}" + (
            f" PROBLEM: {e['problem']}" if e.get("problem") else "")
    if kind == "members":
        return f"members  cache version {e.get('version')}"
    if kind == "sale":
        return f"sale     {e.get('sale_id')} seq {e.get('seq')} payable {e.get('payable')}"
    return f"{kind or 'event':<8} {json.dumps(e, ensure_ascii=False)}"


def _follow(path: str, as_json: bool, quote_amount: int | None = None) -> int:
    import asyncio
    import time

    from agent.localapi.client import ApiUnavailable, SocketClient

    async def follow() -> int:
        client = SocketClient(path, timeout_s=10)
        status = await client.call("agent.status")
        print(json_for_terminal(status) if as_json else format_status(status))
        print("-- events (Ctrl-C to stop) --", flush=True)
        async for event in client.events():
            stamp = time.strftime("%H:%M:%S")
            line = json_for_terminal(event) if as_json else format_event(event)
            print(f"{stamp} {line}", flush=True)
            member = event.get("member") if event.get("type") == "card" else None
            if quote_amount and member and member.get("status") == "active":
                await _show_quote(client, event["token"], quote_amount, as_json)
        print("clubterm: the agent closed the connection")
        return 1

    async def _show_quote(client: SocketClient, token: str, amount: int, raw: bool) -> None:
        from agent.errors import ApiError

        try:
            q = await client.call("sale.quote", {"amount": amount, "token": token,
                                                 "redeem_points": "max"})
        except ApiError as exc:
            print(f"         quote: {escape_for_terminal(exc)}", flush=True)
            return
        if raw:
            print(json_for_terminal({"quote": q}), flush=True)
            return
        mu, cur = q.get("minor_units"), q.get("currency") or ""
        off = sum(d["amount"] for d in q.get("discounts") or [])
        points = sum(p["points"] for p in q.get("points_earned") or [])
        print(f"         quote for {amount_text(amount, mu)} {cur}: "
              f"discount {amount_text(off, mu)}, "
              f"{q.get('redeemed_points', 0)} points redeemed, pay "
              f"{amount_text(q.get('payable'), mu)}, earns {points} points", flush=True)

    try:
        return asyncio.run(follow())
    except ApiUnavailable as exc:
        print(f"clubterm: {exc}")
        return 3
