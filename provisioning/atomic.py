"""Crash-safe file writes: temp file, fsync, rename, fsync the folder.

Every file provisioning writes goes through :func:`write_atomic`, so a power cut
leaves either the old file or the new one, never a torn mix. Secrets are created
with their final mode from the first byte (``os.open`` with ``0o600``), so there is
no moment where a key is readable by others.
"""

from __future__ import annotations

import os
from pathlib import Path

from agent.errors import ProvisioningError


def fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace(src: Path, dst: Path) -> None:
    # One seam so the tests can simulate a crash exactly between write and rename.
    os.replace(src, dst)


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644, owner: int | None = None,
                 group: int | None = None) -> None:
    """Replace ``path`` with ``data`` atomically, with ``mode`` (and owner) from the start."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    except FileExistsError:
        tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    except OSError as exc:
        raise ProvisioningError(f"cannot write {path}: {exc.strerror}") from None
    try:
        try:
            # umask may have removed bits we asked for; set the exact mode.
            os.fchmod(fd, mode)
            if owner is not None or group is not None:
                os.fchown(fd, -1 if owner is None else owner, -1 if group is None else group)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        _replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ProvisioningError(f"cannot write {path}: {exc.strerror}") from None
    fsync_dir(path.parent)


def make_dir(path: Path, *, mode: int = 0o750, owner: int | None = None,
             group: int | None = None) -> None:
    """Create ``path`` (and parents) with ``mode``; fix the mode if it exists."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, mode)
        if owner is not None or group is not None:
            os.chown(path, -1 if owner is None else owner, -1 if group is None else group)
    except OSError as exc:
        raise ProvisioningError(f"cannot create folder {path}: {exc.strerror}") from None
