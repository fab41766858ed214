"""``python -m hw_sim``: drive the simulated hardware by hand (the demo).

  python -m hw_sim list-cards
  python -m hw_sim pcscd [--dir DIR] [--port 35963]     # an isolated pcscd + vpcd (root)
  python -m hw_sim tap --card visa-contactless [--hold 1.5] [--port 35963]
  python -m hw_sim serve [--dir /run/clubterm-sim]     # pty MSR + scanner FIFO
  python -m hw_sim swipe [--card visa] [--dir ...] [--noise] [--half]
  python -m hw_sim scan CODE [--keymap us] [--dir ...] [--slow]
  python -m hw_sim printer [--port 9100] [--dir ...] [--state ok]  # ESC/POS sink
  python -m hw_sim receipt-png [DIR/receipt-0001.bin] [receipt.png]  # default: last
  python -m hw_sim scan --product "Espresso"                   # a demo product by name
  python -m hw_sim scan --gift-card                            # the demo gift card
  python -m hw_sim list-products

``tap`` inserts a virtual card into pcscd's vpcd reader (the system pcscd with
``/etc/reader.conf.d/vpcd`` listens on 35963), holds it, and removes it.
``serve`` keeps the simulated serial reader (``<dir>/msr``, a pty) and the
scanner FIFO (``<dir>/scanner.events``) alive, as ``terminal_profiles/sim.toml``
expects; ``swipe`` and ``scan`` then feed them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from hw_sim import cards, keys
from hw_sim.serial_msr import TEST_PANS, VirtualSerialMsr, track_data
from hw_sim.vpcd import DEFAULT_PORT, VpcdSession

DEFAULT_DIR = Path(os.environ.get("CLUBTERM_SIM_DIR", "/run/clubterm-sim"))
# scripts/demo writes where its simulated readers are (sim dir, vpcd port) here, so
# `tap`, `swipe` and `scan` find the running demo without --dir/--port.
DEMO_POINTER = Path(os.environ.get("CLUBTERM_DEMO_POINTER", "/tmp/clubterm-demo.current"))


def running_demo() -> dict[str, str]:
    """``{"sim_dir", "vpcd_port", ...}`` of the running demo, or {} (none, or gone)."""
    try:
        lines = DEMO_POINTER.read_text().splitlines()
    except OSError:
        return {}
    found = dict(line.split("=", 1) for line in lines if "=" in line)
    return found if Path(found.get("sim_dir", "/nonexistent")).is_dir() else {}


def default_dir() -> Path:
    """``$CLUBTERM_SIM_DIR``, else the running demo's, else /run/clubterm-sim."""
    if "CLUBTERM_SIM_DIR" in os.environ:
        return DEFAULT_DIR
    return Path(running_demo().get("sim_dir") or DEFAULT_DIR)


def default_port() -> int:
    """The running demo's vpcd port, else the system pcscd's (35963)."""
    port = running_demo().get("vpcd_port", "")
    return int(port) if port.isdigit() and int(port) > 0 else DEFAULT_PORT


def _members_by_token() -> dict[str, str]:
    """The demo club's members by identifier token (pan: tokens with its pan key)."""
    import json
    from importlib import resources

    from agent.carddata.tokens import pan_token

    doc = json.loads(resources.files("hw_sim.club").joinpath("demo_members.json").read_text())
    key = bytes.fromhex(doc["pan_key_hex"])
    names = {t: f"{m.get('name')} ({m.get('member_id')})" for m in doc["members"]
             for t in m.get("identifiers", [])}
    for info in cards.CARDS.values():
        if info.pan:
            token = pan_token(key, info.pan)
            if token in names:
                names[info.pan] = names[token]
    return names


def cmd_list_cards(args: argparse.Namespace) -> int:
    from hw_sim.terminal import STAFF

    members = _members_by_token()
    staff = {badge: f"staff {sid} {name} ({role}, PIN {pin})"
             for sid, name, role, pin, badge in STAFF}

    def owner(pan: str | None, uid: str | None) -> str:
        key = pan if pan else f"nfc:{uid}"
        return staff.get(key) or members.get(key) or "no member in the demo club"

    print("Virtual chip/contactless cards (tap --card NAME), and whose they are in the demo:")
    for info in cards.CARDS.values():
        ident = f"PAN {info.pan}" if info.pan else f"UID {info.uid}"
        outcome = f"token {info.token_kind}" if info.token_kind else "read fails (read again)"
        print(f"  {info.name:18} {ident:22} {outcome:24} {owner(info.pan, info.uid)}")
        print(f"  {'':18} {info.description}")
    print("Magstripe test cards (swipe --card NAME):")
    for name, pan in TEST_PANS.items():
        print(f"  {name:18} PAN {pan:18} {owner(pan, None)}")
    print("Codes (scan CODE): " + ", ".join(
        f"{t[5:]} {n}" for t, n in members.items() if t.startswith("code:")))
    return 0


def cmd_tap(args: argparse.Namespace) -> int:
    info = cards.CARDS.get(args.card)
    if info is None:
        print(f"hw_sim: unknown card {args.card!r}; see 'python -m hw_sim list-cards'",
              file=sys.stderr)
        return 2
    if args.port is None:
        args.port = default_port()
    try:
        session = VpcdSession(info.make(), port=args.port, host=args.host).insert()  # type: ignore[arg-type]
    except OSError as exc:
        print(f"hw_sim: cannot reach vpcd on {args.host}:{args.port} ({exc.strerror or exc}); "
              "is pcscd running with the vpcd reader?", file=sys.stderr)
        return 1
    print(f"inserted {info.name}; holding {args.hold:.1f} s")
    session.closed.wait(args.hold)
    session.remove()
    print(f"removed ({session.apdus} APDUs answered)")
    return 0


def cmd_pcscd(args: argparse.Namespace) -> int:
    from hw_sim.pcscd import PcscService, free_port_pair, pcscd_available

    if not pcscd_available():
        print("hw_sim: pcscd, unshare or the vpcd driver is not installed", file=sys.stderr)
        return 1
    import signal

    def _stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)      # stop pcscd too, not only this process
    service = PcscService(root=args.dir, port=args.port or free_port_pair())
    service.write_conf()
    service.start()
    print(f"isolated pcscd running, vpcd on port {service.port}. In the agent's and the "
          f"demo's shells:\n  export PCSCLITE_CSOCK_NAME={service.socket}\n"
          f"  python -m hw_sim tap --port {service.port} --card visa-contactless")
    sys.stdout.flush()
    try:
        assert service.proc is not None
        service.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        service.stop()
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    directory: Path = args.dir
    directory.mkdir(parents=True, exist_ok=True)
    msr = VirtualSerialMsr(directory / "msr")
    keys.make_fifo(directory / "scanner.events")
    control = keys.make_fifo(directory / "msr.in")
    print(f"serial MSR on {directory / 'msr'} -> {os.readlink(directory / 'msr')}")
    print(f"scanner FIFO {directory / 'scanner.events'}; swipes via {control}")
    fd = os.open(control, os.O_RDWR)
    buf = b""
    try:
        while True:
            buf += os.read(fd, 4096)
            *lines, buf = buf.split(b"\n")
            for line in lines:
                text = line.decode("ascii", errors="replace")
                if text.startswith("HALF "):
                    msr.half_swipe(text[5:])
                elif text.startswith("NOISE "):
                    msr.swipe(text[6:], noise=True)
                elif text:
                    msr.swipe(text)
    except KeyboardInterrupt:
        return 0
    finally:
        os.close(fd)
        msr.unplug()


def cmd_swipe(args: argparse.Namespace) -> int:
    pan = TEST_PANS.get(args.card, args.card)
    text = track_data(pan)
    prefix = "HALF " if args.half else "NOISE " if args.noise else ""
    control = args.dir / "msr.in"
    try:
        fd = os.open(control, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        print(f"hw_sim: {control} is not served; run 'python -m hw_sim serve' first",
              file=sys.stderr)
        return 1
    os.write(fd, (prefix + text + "\n").encode("ascii"))
    os.close(fd)
    print(f"swiped {pan[:6]}...{pan[-4:]}")
    return 0


def cmd_list_products(args: argparse.Namespace) -> int:
    from hw_sim.club.catalogue import demo_products

    for p in demo_products():
        unit = "/kg" if p["unit"] == "weight" else ""
        barcode = p["barcodes"][0] if p["barcodes"] else "(no barcode: find it by name)"
        print(f"{p['names']['en']:<24} {p['names']['fa']:<22} {p['price'] / 100:>7.2f}{unit:<3} "
              f"{p['category']:<8} {barcode}")
    print("Scan one: python -m hw_sim scan --product NAME (or its barcode)")
    return 0


#: (1.3) The demo club's printed gift card (hw_sim/club/demo_members.json): 100.00.
DEMO_GIFT_CARD = "GIFT-DEMO-100"


def cmd_scan(args: argparse.Namespace) -> int:
    if args.gift_card:
        args.code = DEMO_GIFT_CARD
    if args.product is not None:
        from hw_sim.club.catalogue import find_product

        try:
            product = find_product(args.product)
        except LookupError as exc:
            print(f"hw_sim: {exc}", file=sys.stderr)
            return 2
        if not product["barcodes"]:
            print(f"hw_sim: {product['names']['en']} has no barcode (a service); find it by "
                  f"name at the till", file=sys.stderr)
            return 2
        args.code = product["barcodes"][0]
    if not args.code:
        print("hw_sim: give a CODE or --product NAME", file=sys.stderr)
        return 2
    events = keys.type_text(args.code, keymap=args.keymap, start=time.time(),
                            key_gap=0.25 if args.slow else 0.006)
    try:
        keys.write_events(args.dir / "scanner.events", events, realtime=args.slow)
    except OSError as exc:
        print(f"hw_sim: {args.dir / 'scanner.events'}: {exc.strerror}; is the demo (or "
              "'python -m hw_sim serve') running? Give its folder with --dir",
              file=sys.stderr)
        return 1
    print(f"scanned {args.code!r}" + (f" ({args.product})" if args.product else ""))
    return 0


def cmd_printer(args: argparse.Namespace) -> int:
    from hw_sim.printer import PtySimPrinter, SimPrinter

    args.dir.mkdir(parents=True, exist_ok=True)
    if args.pty:
        serial = PtySimPrinter(args.dir / "printer.tty", state=args.state,
                               hang_after=args.hang_after).start()
        print(f"simulated serial printer on {serial.link} (kind = \"serial\")", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            serial.close()
        return 0
    printer = SimPrinter(args.host, args.port, directory=args.dir, state=args.state,
                         hang_after=args.hang_after).start()
    print(f"simulated printer on {printer.address}; receipts in {args.dir}/receipt-*.bin; "
          f"state: echo paper_out > {args.dir}/printer.state", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        printer.close()
    return 0


def cmd_receipt_png(args: argparse.Namespace) -> int:
    from hw_sim.escpos_decode import decode, render_png

    if args.bin is not None and args.bin.suffix.lower() == ".png" and args.out_default:
        args.bin, args.out = None, args.bin  # `receipt-png r.png`: the last receipt to r.png
    if args.bin is None:
        # The last receipt of the running demo's printer (receipt-NNNN.bin sort in order).
        printed = sorted((default_dir() / "printer").glob("receipt-*.bin"))
        if not printed:
            print(f"hw_sim: no receipt in {default_dir() / 'printer'} yet; record a sale "
                  "first, or give the receipt's .bin file", file=sys.stderr)
            return 1
        args.bin = printed[-1]
    decoded = decode(args.bin.read_bytes())
    render_png(decoded).save(args.out)
    print("\n".join(decoded.lines))
    print(f"qr: {decoded.qr}  cuts: {decoded.cuts}  drawer: {len(decoded.drawer)}  "
          f"images: {len(decoded.images)}  -> {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hw_sim", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list-cards", help="the virtual cards and their PANs/UIDs") \
        .set_defaults(func=cmd_list_cards)
    tap = sub.add_parser("tap", help="insert a virtual card into vpcd, hold, remove")
    tap.add_argument("--card", default="visa-contactless")
    tap.add_argument("--hold", type=float, default=1.5, help="seconds (default 1.5)")
    tap.add_argument("--port", type=int, default=None,
                     help="vpcd port (default: the running demo's, else 35963)")
    tap.add_argument("--host", default="127.0.0.1")
    tap.set_defaults(func=cmd_tap)
    pcscd = sub.add_parser("pcscd", help="run an isolated pcscd with a vpcd reader")
    pcscd.add_argument("--dir", type=Path, default=Path("/tmp/clubterm-sim-pcscd"))
    pcscd.add_argument("--port", type=int, default=0, help="vpcd port (default: a free one)")
    pcscd.set_defaults(func=cmd_pcscd)
    serve = sub.add_parser("serve", help="run the pty magstripe reader and the scanner FIFO")
    serve.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    serve.set_defaults(func=cmd_serve)
    swipe = sub.add_parser("swipe", help="swipe a magstripe test card on the pty reader")
    swipe.add_argument("--card", default="visa", help=f"{', '.join(TEST_PANS)} or a PAN")
    swipe.add_argument("--dir", type=Path, default=None,
                       help="the simulated readers' folder (default: the running demo's)")
    swipe.add_argument("--noise", action="store_true", help="line noise before the swipe")
    swipe.add_argument("--half", action="store_true", help="a swipe cut short")
    swipe.set_defaults(func=cmd_swipe)
    sub.add_parser("list-products", help="the demo catalogue's products and barcodes") \
        .set_defaults(func=cmd_list_products)
    scan = sub.add_parser("scan", help="type a code on the simulated barcode scanner")
    scan.add_argument("code", nargs="?", default=None)
    scan.add_argument("--product", default=None,
                      help="scan the barcode of this demo product (its name, any case)")
    scan.add_argument("--gift-card", action="store_true",
                      help=f"scan the demo's printed gift card ({DEMO_GIFT_CARD}): its "
                           "balance outside a sale, or pay with it (F8, 5)")
    scan.add_argument("--keymap", default="us")
    scan.add_argument("--slow", action="store_true", help="type like a person (not a scan)")
    scan.add_argument("--dir", type=Path, default=None,
                      help="the simulated readers' folder (default: the running demo's)")
    scan.set_defaults(func=cmd_scan)
    printer = sub.add_parser("printer", help="a simulated ESC/POS network printer (TCP 9100)")
    printer.add_argument("--host", default="127.0.0.1")
    printer.add_argument("--port", type=int, default=9100)
    printer.add_argument("--dir", type=Path, default=None,
                         help="where receipts are written (default: the running demo's)")
    printer.add_argument("--state", default="ok",
                         help="ok, paper_out, paper_low, cover_open, hang or refuse")
    printer.add_argument("--pty", action="store_true",
                         help="a serial printer on a pty linked at DIR/printer.tty instead")
    printer.add_argument("--hang-after", type=int, default=0,
                         help="with --state hang: bytes read before it stops")
    printer.set_defaults(func=cmd_printer)
    png = sub.add_parser("receipt-png", help="decode a recorded receipt and draw it as PNG")
    png.add_argument("bin", type=Path, nargs="?", default=None,
                     help="a recorded receipt (default: the running demo's last one)")
    png.add_argument("out", type=Path, nargs="?", default=None,
                     help="the picture to write (default: receipt.png)")
    png.set_defaults(func=cmd_receipt_png)
    args = parser.parse_args(argv)
    if getattr(args, "dir", "unset") is None:
        args.dir = default_dir()
    if args.command == "receipt-png":
        args.out_default = args.out is None
        args.out = args.out or Path("receipt.png")
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
