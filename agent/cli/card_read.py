"""``clubterm card read``: wait for one card or code on the profile's readers.

The technician's check of a reader at a shop: it starts the readers of the
configured terminal profile (or only the one named with ``--reader``), waits for
one card, tag or code, and prints what ``clubterm card decode`` prints — source,
masked card number / UID / code, expiry, token kind — plus the reader and, for
chip cards, the APDU count. A failed read or a timeout is a clear error (exit 1).
It works with any PC/SC reader, not only the simulated ones.

``--pcsc NAME`` reads from the PC/SC reader NAME (an fnmatch pattern, e.g.
``"ACS ACR122U*"``) without a terminal profile or an enrolled configuration: a
technician checks a reader before enrolment. Without a provisioned ``pan_key``
only the masked number and the card kind are shown; no token is computed.
"""

from __future__ import annotations

import argparse
import queue
import sys
import time
from typing import Any

from agent.cli.card_report import format_card_report, mm_yy, pan_key_of
from agent.errors import ClubtermError, ConfigError


def event_report(event: Any, *, has_key: bool, why_no_key: str | None) -> dict[str, Any]:
    """The report dict (``card decode``'s keys) of a CardPresented event."""
    report: dict[str, Any] = {
        "source": event.source,
        "reader": event.reader,
        "masked": event.masked,
        "bin6": event.bin6,
        "expiry": mm_yy(event.expiry),
        "token_kind": event.token_kind,
        "token": event.token,
    }
    if event.bin6 is not None and not has_key:            # a bank card: a PAN token
        # Read with a throwaway key: the token would match nothing at the club.
        report["token"] = None
        report["token_note"] = "no token computed: needs a provisioned pan_key" + (
            f": {why_no_key}" if why_no_key else "")
    if event.source in ("pcsc", "nfc"):
        report["apdus"] = event.apdus
    if event.info:
        report["tag_text"] = event.info
    return report


def _named_pcsc_reader(args: argparse.Namespace,
                       pattern: str) -> tuple[list[Any], bytes, bool, str | None]:
    """The PC/SC reader ``pattern`` with no profile, and the pan_key if this machine
    is enrolled (else a throwaway key: the report then leaves the token out)."""
    import os

    from agent.drivers.pcsc import PcscReader

    if not pattern.strip() or len(pattern) > 200 or not pattern.isprintable():
        raise ConfigError("--pcsc needs a PC/SC reader name (as 'pcsc_scan' or "
                          "'clubterm doctor' lists it), e.g. 'ACS ACR122U*'")
    key, why = pan_key_of(args)
    if key is None:
        why = f"this machine is not enrolled ({why})" if why else "this machine is not enrolled"
        return ([PcscReader("pcsc", pattern, os.urandom(32), diagnostics=True)],
                b"", False, why)
    return [PcscReader("pcsc", pattern, key, diagnostics=True)], key, True, None


def card_read_command(args: argparse.Namespace) -> int:
    """Wait for one card/code and print its report; 0 read, 1 failed read or timeout."""
    import os

    from agent.config import load_config
    from agent.drivers import build_readers
    from agent.drivers.events import CardPresented, ReaderEvent, ReaderState, ReadFailed

    pcsc = getattr(args, "pcsc", None)
    if pcsc is not None:
        readers, pan_key, has_key, why_no_key = _named_pcsc_reader(args, str(pcsc))
    else:
        cfg = load_config(getattr(args, "config", None), check_secrets=False)
        why_no_key = None
        try:
            pan_key = cfg.read_pan_key()
            has_key = True
        except ClubtermError as exc:
            # Still useful before enrolment: the reader is checked, the token left out.
            pan_key, has_key, why_no_key = os.urandom(32), False, str(exc)
        readers = build_readers(cfg, pan_key, only=getattr(args, "reader", None),
                                diagnostics=True)
        if not readers:
            raise ConfigError("the terminal profile has no readers", path=str(cfg.path))
    timeout = float(getattr(args, "timeout", 30.0) or 30.0)
    events: queue.Queue[ReaderEvent] = queue.Queue()
    states: dict[str, ReaderState] = {}
    shown: dict[str, tuple[str, str]] = {}
    names = ", ".join(r.name for r in readers)
    print(f"Present a card or code to: {names} (waiting {timeout:g} s)", file=sys.stderr)
    for reader in readers:
        reader.start(events.put)
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                detail = "; ".join(
                    f"{s.name}: {s.state}{f' ({s.detail})' if s.detail else ''}"
                    for s in states.values()
                )
                print(f"clubterm: no card or code within {timeout:g} s"
                      + (f" — readers: {detail}" if detail else ""), file=sys.stderr)
                return 1
            try:
                event = events.get(timeout=left)
            except queue.Empty:
                continue
            if isinstance(event, ReaderState):
                states[event.name] = event
                # Say each ready/error once, not at every retry.
                if event.state in ("ready", "error") \
                        and shown.get(event.name) != (event.state, event.detail):
                    shown[event.name] = (event.state, event.detail)
                    print(f"  {event.name}: {event.state}"
                          f"{f' ({event.detail})' if event.detail else ''}", file=sys.stderr)
            elif isinstance(event, ReadFailed):
                print(f"clubterm: {event.reader}: {event.message}", file=sys.stderr)
                return 1
            elif isinstance(event, CardPresented):
                report = event_report(event, has_key=has_key, why_no_key=why_no_key)
                print(format_card_report(report, bool(getattr(args, "json", False))))
                return 0
    finally:
        for reader in readers:
            reader.stop()
