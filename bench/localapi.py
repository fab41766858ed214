"""The local API under a flood (``python -m bench.localapi``), issue #13.6.

Starts the real agent (``python -m agent run``, real server and services, a seeded
store), signs a cashier in on its own connection, then attacks the socket from
forked processes: ``--connections`` opened at once, and ``--requests`` requests
of about 1 MiB each (one text field of just under 1 MiB) sent on the connections
the agent accepted. During the attack the cashier sells (``sale.quote`` then
``sale.commit``) again and again. Run as root, the attackers take other user ids
(60001…), so the per-user cap is what stops them and the cashier can also open a
fresh connection mid-attack; otherwise they share the cashier's user id.

Prints: connections accepted/refused, the replies to the big requests, the agent's
resident memory before and at its peak (VmHWM), and the sale's round trip.
``tests/adversarial/test_localapi_flood.py`` runs the same with assertions.

Options: ``--connections``, ``--requests``, ``--attackers``, ``--json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import select
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

TARGET_RSS_GROWTH_MB = 50.0
TARGET_SALE_MS = 100.0


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _reset_peak(pid: int) -> bool:
    """Reset the process's VmHWM (Linux: ``5`` to clear_refs); False if not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _big_request(req_id: int, size: int) -> bytes:
    head = {"jsonrpc": "2.0", "id": req_id, "method": "member.enrol",
            "params": {"phone": "0912 000 0000", "name": ""}}
    frame = json.dumps(head, separators=(",", ":")).encode()
    room = size - len(frame) - 1
    return frame.replace(b'"name":""', b'"name":"' + b"y" * room + b'"') + b"\n"


def _attacker(sock_path: str, uid: int | None, connections: int, requests: int,
              request_bytes: int, report_fd: int, hold_fd: int) -> None:
    """The body of one forked attacker: open, flood, report, hold until told."""
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    socks: list[socket.socket] = []
    errors = 0
    for _ in range(connections):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(sock_path)  # blocking: waits while the listen backlog is full
        except OSError:
            errors += 1
            s.close()
            continue
        socks.append(s)
    # A refused connection has its one error line (and EOF) waiting already.
    refused, accepted = 0, []
    deadline = time.monotonic() + 1.5
    pending = list(socks)
    while pending and time.monotonic() < deadline:
        ready, _, _ = select.select(pending, [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        for s in ready:
            data = s.recv(4096)
            refused += b'"code":-32000' in data
            s.close()
            pending.remove(s)
    accepted = pending
    os.write(report_fd, (json.dumps({"opened": len(socks), "connect_errors": errors,
                                     "refused": refused, "accepted": len(accepted)})
                         + "\n").encode())
    codes: dict[str, int] = {}
    lock = threading.Lock()
    todo = list(range(requests))

    def sender(s: socket.socket) -> None:
        s.settimeout(60)
        buf = b""
        while True:
            with lock:
                if not todo:
                    return
                req_id = todo.pop()
            try:
                s.sendall(_big_request(req_id, request_bytes))
                while b"\n" not in buf:
                    chunk = s.recv(65536)
                    if not chunk:
                        raise ConnectionError("closed")
                    buf += chunk
                line, buf = buf.split(b"\n", 1)
                reply = json.loads(line)
                key = str(reply.get("error", {}).get("code", "ok"))
            except (OSError, ValueError) as exc:
                key = type(exc).__name__
            with lock:
                codes[key] = codes.get(key, 0) + 1
            if key not in ("-32602", "-32600", "-32700", "ok"):
                return  # this connection is gone; others take the rest

    threads = [threading.Thread(target=sender, args=(s,)) for s in accepted]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    os.write(report_fd, (json.dumps({"replies": codes}) + "\n").encode())
    os.read(hold_fd, 1)  # hold the connections until the parent is done
    for s in accepted:
        s.close()


def _fork_attacker(sock_path: str, uid: int | None, connections: int, requests: int,
                   request_bytes: int) -> tuple[int, Any, int]:
    report_r, report_w = os.pipe()
    hold_r, hold_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: plain sockets and threads only, then _exit
        code = 0
        try:
            os.close(report_r)
            os.close(hold_w)
            _attacker(sock_path, uid, connections, requests, request_bytes, report_w, hold_r)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(report_w)
    os.close(hold_r)
    return pid, os.fdopen(report_r, "r"), hold_w


async def _sell(client: Any, session: str) -> float:
    """One normal sale: quote then commit; answers the round trip in ms."""
    t0 = time.perf_counter()
    quote = await client.call("sale.quote", {"amount": 1250, "token": "tel:+989120000000"})
    receipt = await client.call("sale.commit", {"quote_id": quote["quote_id"],
                                                "session": session})
    assert receipt["sale_id"]
    return (time.perf_counter() - t0) * 1000


def run_flood(files: Any, agent_pid: int, *, connections: int = 300, requests: int = 100,
              attackers: int = 3, request_bytes: int = 1024 * 1024 - 64) -> dict[str, Any]:
    """Flood the agent at ``files.socket`` (process ``agent_pid``); answer the figures."""
    from agent.localapi.client import ApiUnavailable, SocketClient

    as_root = os.geteuid() == 0
    if as_root:  # let the attackers' user ids reach the socket
        for d in (files.socket.parent, *files.socket.parents):
            if d == Path("/tmp") or d == Path("/"):
                break
            os.chmod(d, os.stat(d).st_mode | 0o011)
        os.chmod(files.socket, 0o666)
    results: dict[str, Any] = {"as_root": as_root, "attackers": attackers,
                               "connections": connections, "requests": requests,
                               "request_bytes": request_bytes}

    async def cashier_setup() -> tuple[Any, str]:
        client = SocketClient(files.socket, timeout_s=30)
        login = await client.call("staff.login", {"staff_id": "1", "pin": "1234"})
        for _ in range(3):  # warm
            await _sell(client, login["session"])
        return client, str(login["session"])

    loop = asyncio.new_event_loop()
    try:
        client, session = loop.run_until_complete(cashier_setup())
        time.sleep(0.5)
        rss_before = _status_kb(agent_pid, "VmRSS")
        peak_reset = _reset_peak(agent_pid)
        children = []
        per = [connections // attackers + (i < connections % attackers) for i in range(attackers)]
        reqs = [requests // attackers + (i < requests % attackers) for i in range(attackers)]
        t_attack = time.monotonic()
        cpu_before = _cpu_s(agent_pid)
        for i in range(attackers):
            uid = 60001 + i if as_root else None
            children.append(_fork_attacker(str(files.socket), uid, per[i], reqs[i],
                                           request_bytes))
        opened = [json.loads(report.readline() or "{}") for _pid, report, _hold in children]
        # The cashier sells while the big requests arrive.
        sale_ms: list[float] = []
        fresh: dict[str, Any] = {}

        async def during() -> None:
            for _ in range(10):
                sale_ms.append(await _sell(client, session))
                await asyncio.sleep(0.05)
            other = SocketClient(files.socket, timeout_s=30)
            try:
                ms = await _sell(other, session)
                fresh.update(served=True, ms=round(ms, 1))
            except ApiUnavailable as exc:
                fresh.update(served=False, reason=str(exc))
            finally:
                await other.close()

        loop.run_until_complete(during())
        done = [json.loads(report.readline() or "{}") for _pid, report, _hold in children]
        attack_s = time.monotonic() - t_attack
        agent_cpu = _cpu_s(agent_pid) - cpu_before
        rss_peak = _status_kb(agent_pid, "VmHWM")
        sale_ms.append(loop.run_until_complete(_sell(client, session)))  # still served after
        # Every child holds copies of the earlier children's pipes: close all, then reap.
        for _pid, report, hold in children:
            os.close(hold)
            report.close()
        for pid, _report, _hold in children:
            os.waitpid(pid, 0)
        time.sleep(0.3)
        rss_after = _status_kb(agent_pid, "VmRSS")
        loop.run_until_complete(client.close())
    finally:
        loop.close()
    replies: dict[str, int] = {}
    for d in done:
        for k, v in d.get("replies", {}).items():
            replies[k] = replies.get(k, 0) + v
    ordered = sorted(sale_ms)
    results.update(
        opened=sum(o.get("opened", 0) for o in opened),
        connect_errors=sum(o.get("connect_errors", 0) for o in opened),
        accepted=sum(o.get("accepted", 0) for o in opened),
        refused=sum(o.get("refused", 0) for o in opened),
        big_replies=replies, attack_s=round(attack_s, 2), agent_cpu_s=round(agent_cpu, 2),
        load_avg=round(os.getloadavg()[0], 1), cpus=os.cpu_count(),
        rss_before_mb=round(rss_before / 1024, 1),
        rss_peak_mb=round(rss_peak / 1024, 1), peak_reset=peak_reset,
        rss_growth_mb=round((rss_peak - rss_before) / 1024, 1),
        rss_after_mb=round(rss_after / 1024, 1),
        sales=len(sale_ms), sale_p50_ms=round(ordered[len(ordered) // 2], 1),
        sale_max_ms=round(ordered[-1], 1), fresh_connection=fresh,
        sale_each_ms=[round(x, 1) for x in sale_ms],
    )
    return results


def describe(r: dict[str, Any]) -> str:
    """The figures as lines for a person."""
    fresh = r["fresh_connection"]
    fresh_text = (f"served in {fresh['ms']} ms" if fresh.get("served")
                  else f"refused ({fresh.get('reason')})")
    return "\n".join([
        f"attack: {r['attackers']} processes ({'other uids' if r['as_root'] else 'same uid'}), "
        f"{r['connections']} connections at once, {r['requests']} requests of "
        f"{r['request_bytes'] / 1048576:.2f} MiB ({r['attack_s']} s; agent CPU "
        f"{r['agent_cpu_s']} s; box load {r['load_avg']} on {r['cpus']} CPUs)",
        f"connections          accepted {r['accepted']}   refused {r['refused']}   "
        f"connect errors {r['connect_errors']}",
        f"big requests         replies by code {r['big_replies']}",
        f"agent RSS            before {r['rss_before_mb']} MB   peak {r['rss_peak_mb']} MB   "
        f"growth {r['rss_growth_mb']} MB (target < {TARGET_RSS_GROWTH_MB:.0f})   "
        f"after {r['rss_after_mb']} MB",
        f"cashier sale         quote+commit p50 {r['sale_p50_ms']} ms   max "
        f"{r['sale_max_ms']} ms over {r['sales']} (target < {TARGET_SALE_MS:.0f}); each "
        f"{r['sale_each_ms']}",
        f"fresh connection     {fresh_text}",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.localapi", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=300)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--attackers", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.agent.daemon.support import AgentProcess, NotifyListener, terminal_dir

    with terminal_dir() as files:
        notify = NotifyListener(files.root / "notify.sock")
        agent = AgentProcess(files, notify)
        try:
            notify.wait_for("READY=1", timeout=30)
            results = run_flood(files, agent.proc.pid, connections=args.connections,
                                requests=args.requests, attackers=args.attackers)
        finally:
            with contextlib.suppress(Exception):
                agent.stop()
            notify.close()
    print(json.dumps(results) if args.json else describe(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
