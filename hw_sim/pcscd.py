"""An isolated pcscd with the vpcd driver, for tests, benchmarks and the demo.

pcscd 1.9.9 ignores ``PCSCLITE_CSOCK_NAME`` (its socket is compiled in as
``/run/pcscd/pcscd.comm``) while the client library honours it. So each
isolated pcscd runs in its own mount namespace (``unshare -m``, needs root or
CAP_SYS_ADMIN) in which a private directory is bind-mounted over ``/run``: its
socket appears outside as ``<root>/run/pcscd/pcscd.comm``; point clients at it
with ``PCSCLITE_CSOCK_NAME`` (libpcsclite reads it once per process). Nothing is
shared with the system pcscd or with another instance. vpcd listens on a free
port (and the next one, its second slot).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from hw_sim.vpcd import VirtualCard, VpcdSession

VPCD_LIB = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"


def free_port_pair() -> int:
    """A port p such that p and p+1 are free (vpcd opens one per slot)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port >= 65535:
            continue
        with socket.socket() as s2:
            try:
                s2.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for vpcd")


def pcscd_available() -> bool:
    """True when pcscd, unshare and the vpcd driver are installed."""
    return bool(shutil.which("pcscd") and shutil.which("unshare") and Path(VPCD_LIB).exists())


@dataclass
class PcscService:
    """A running isolated pcscd with one vpcd reader entry."""

    root: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    log_level: str = "-e"
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.root / "pcscd.log"

    @property
    def conf_dir(self) -> Path:
        return self.root / "reader.conf.d"

    @property
    def socket(self) -> Path:
        """The pcscd socket; give it to clients as PCSCLITE_CSOCK_NAME."""
        return self.root / "run" / "pcscd" / "pcscd.comm"

    @property
    def env(self) -> dict[str, str]:
        """Environment for a client process (e.g. ``python -m agent card read``)."""
        return {**os.environ, "PCSCLITE_CSOCK_NAME": str(self.socket)}

    def write_conf(self) -> None:
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "vpcd").write_text(
            'FRIENDLYNAME "Virtual PCD"\n'
            f"DEVICENAME   /dev/null:0x{self.port:X}\n"
            f"LIBPATH      {VPCD_LIB}\n"
            f"CHANNELID    0x{self.port:X}\n"
        )

    def start(self, timeout: float = 10.0) -> None:
        """Start pcscd and wait for its socket and for vpcd's port."""
        run = self.root / "run"
        run.mkdir(parents=True, exist_ok=True)
        if self.socket.exists():
            self.socket.unlink()
        pid_file = run / "pcscd" / "pcscd.pid"
        if pid_file.exists():
            pid_file.unlink()
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c",
             f'mount --bind "{run}" /run && exec pcscd -f -c "{self.conf_dir}" {self.log_level}'],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pcscd exited: {self.log_path.read_text()[-2000:]}")
            has_vpcd = (self.conf_dir / "vpcd").exists()
            if self.socket.exists() and (not has_vpcd or self._port_open()):
                return
            time.sleep(0.05)
        raise RuntimeError("pcscd did not start in time")

    def _port_open(self) -> bool:
        # Probe without connecting (a connection would insert a card): try to bind.
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", self.port))
            except OSError:
                return True
            return False

    def stop(self) -> None:
        """Stop pcscd (SIGTERM, then SIGKILL)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        """Stop and start again (same socket, same vpcd port)."""
        self.stop()
        self.start()

    def unplug_reader(self) -> None:
        """The vpcd reader goes away.

        pcsc-lite 1.9.9 does not re-read ``reader.conf.d`` on SIGUSR1 (``pcscd -H``),
        so a serial-configured reader such as vpcd cannot vanish from a running
        pcscd: pcscd is restarted without it (the driver sees pcscd go, then come
        back with no matching reader). Live USB unplug goes through the PnP
        notification path, which only real hardware exercises.
        """
        (self.conf_dir / "vpcd").unlink()
        self.restart()

    def plug_reader(self) -> None:
        """Plug the vpcd reader back (pcscd restarted with it)."""
        self.write_conf()
        self.restart()

    def wait_card_state(self, present: bool, reader: str = "Virtual PCD 00 00",
                        timeout: float = 5.0) -> None:
        """Wait until pcscd itself sees the slot with (or without) a card.

        vpcd notices a removed card only at its next poll; a card inserted before
        that would meet the old connection. Tests wait for "empty" after removing.
        """
        from smartcard import scard

        hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if hr != scard.SCARD_S_SUCCESS:
            raise RuntimeError("pcscd is not reachable")
        try:
            state = scard.SCARD_STATE_UNAWARE
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                hr, states = scard.SCardGetStatusChange(ctx, 200, [(reader, state)])
                if hr == scard.SCARD_S_SUCCESS:
                    state = states[0][1] & ~scard.SCARD_STATE_CHANGED
                    if bool(state & scard.SCARD_STATE_PRESENT) == present:
                        return
            raise RuntimeError(f"{reader} did not become {'present' if present else 'empty'}")
        finally:
            scard.SCardReleaseContext(ctx)

    def insert(self, card: VirtualCard, timeout: float = 5.0) -> VpcdSession:
        """Insert a virtual card (an instance from hw_sim.cards) into slot 0."""
        return VpcdSession(card, port=self.port).insert(timeout)
