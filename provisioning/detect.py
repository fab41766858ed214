"""Find the readers attached to this box and propose the terminal profile that fits.

:func:`detect_hardware` is the I/O shell (pcscd through pyscard, ``/dev/input/by-id``,
serial ports by their udev names); :func:`rank_profiles` and :func:`reader_present`
are pure functions over what was found, tested with plain lists.
"""

from __future__ import annotations

import fnmatch
import glob
import logging
from dataclasses import dataclass, field
from pathlib import Path

from agent.config import Profile, ReaderSpec, list_profiles, load_profile
from agent.errors import ConfigError

log = logging.getLogger(__name__)

# Where udev puts stable names for serial ports (and our own 60-clubterm.rules names).
SERIAL_GLOBS = ("/dev/serial/by-id/*", "/dev/clubterm-*", "/dev/ttyUSB*", "/dev/ttyACM*")
INPUT_GLOB = "/dev/input/by-id/*"


@dataclass(frozen=True)
class Hardware:
    """What is attached: PC/SC reader names, input device paths, serial device paths."""

    pcsc_readers: tuple[str, ...] = ()
    input_devices: tuple[str, ...] = ()
    serial_ports: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())  # e.g. "pcscd is not running"

    def to_json(self) -> dict[str, list[str]]:
        """What the club is told about the box at enrolment."""
        return {"pcsc": list(self.pcsc_readers), "input": list(self.input_devices),
                "serial": list(self.serial_ports)}


def pcsc_reader_names() -> tuple[list[str], str | None]:
    """Reader names from pcscd, or ``([], why)`` when pcscd or pyscard is unavailable."""
    try:
        from smartcard.System import readers
    except ImportError:
        return [], "pyscard is not installed; PC/SC readers not checked"
    try:
        return [str(r) for r in readers()], None
    except Exception as exc:  # pyscard raises several unrelated types when pcscd is down
        return [], (f"pcscd is not reachable ({exc.__class__.__name__}); "
                    f"is the pcscd service running?")


def detect_hardware(*, input_glob: str = INPUT_GLOB,
                    serial_globs: tuple[str, ...] = SERIAL_GLOBS,
                    pcsc: bool = True) -> Hardware:
    """Look at what is attached now."""
    notes: list[str] = []
    names: list[str] = []
    if pcsc:
        names, why = pcsc_reader_names()
        if why:
            notes.append(why)
    inputs = sorted(glob.glob(input_glob))
    serial: list[str] = []
    for pattern in serial_globs:
        serial.extend(sorted(glob.glob(pattern)))
    return Hardware(tuple(names), tuple(inputs), tuple(dict.fromkeys(serial)), tuple(notes))


def reader_present(spec: ReaderSpec, hw: Hardware) -> str | None:
    """The attached thing that satisfies ``spec``, or None."""
    if spec.kind == "pcsc":
        pattern = spec.reader or "*"
        return next((n for n in hw.pcsc_readers if fnmatch.fnmatchcase(n, pattern)), None)
    if spec.kind == "evdev":
        pattern = spec.device or ""
        return next((d for d in hw.input_devices if fnmatch.fnmatchcase(d, pattern)), None)
    pattern = spec.device or ""
    found = next((d for d in hw.serial_ports if fnmatch.fnmatchcase(d, pattern)), None)
    if found is None and spec.device and Path(spec.device).exists():
        found = spec.device
    return found


@dataclass(frozen=True)
class ProfileMatch:
    """How well one profile fits the attached hardware."""

    name: str
    description: str
    found: tuple[tuple[str, str], ...]  # (reader name in the profile, what satisfied it)
    missing: tuple[str, ...]

    @property
    def complete(self) -> bool:
        """Every reader of the profile is attached."""
        return not self.missing


def rank_profiles(profiles: list[Profile], hw: Hardware) -> list[ProfileMatch]:
    """Profiles best first: complete ones with the most readers, then partial ones.

    A profile with more readers that all match is more specific than one with fewer,
    so a Pi with an NFC reader, scanner and magstripe reader is proposed the profile
    naming all three, not the one naming two.
    """
    matches = []
    for profile in profiles:
        found: list[tuple[str, str]] = []
        missing: list[str] = []
        for spec in profile.readers:
            what = reader_present(spec, hw)
            if what is None:
                missing.append(spec.name)
            else:
                found.append((spec.name, what))
        matches.append(ProfileMatch(profile.name, profile.description, tuple(found),
                                    tuple(missing)))
    return sorted(matches, key=lambda m: (not m.complete, -len(m.found), len(m.missing), m.name))


def shipped_profiles(exclude: tuple[str, ...] = ("sim",)) -> list[Profile]:
    """The shipped profiles (the simulated box is only chosen by name)."""
    out = []
    for name in list_profiles():
        if name in exclude:
            continue
        try:
            out.append(load_profile(name))
        except ConfigError as exc:
            log.warning("terminal profile %s is broken: %s", name, exc)
    return out


def propose_profile(hw: Hardware, profiles: list[Profile] | None = None) -> ProfileMatch | None:
    """The best complete match, or None if no profile has all its readers attached."""
    ranked = rank_profiles(shipped_profiles() if profiles is None else profiles, hw)
    if ranked and ranked[0].complete and ranked[0].found:
        return ranked[0]
    return None
