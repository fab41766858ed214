"""One agent per state directory: an exclusive ``flock`` held for the agent's lifetime."""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from agent.errors import ClubtermError

#: In the state directory; held (flock) for the agent's lifetime, holds its PID.
LOCK_NAME = "agent.lock"


class AgentAlreadyRunning(ClubtermError):
    """Another agent holds the state directory; this one must not touch it."""


class StateDirLock:
    """One agent per state directory: an exclusive ``flock`` on ``agent.lock``.

    The kernel drops the lock when the process ends however it ends (kill -9
    included), so a stale lock file never keeps an agent from starting; the file
    itself stays, holding the PID of the last agent that took it.
    """

    def __init__(self, state_dir: Path):
        self.path = state_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise AgentAlreadyRunning (naming the holder's PID)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise ClubtermError(f"cannot open the lock file {self.path}: {exc.strerror}; "
                                f"may the agent's user write {self.path.parent}?") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = self._holder(fd)
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ClubtermError(f"cannot lock {self.path}: {exc.strerror}") from None
            who = f"PID {holder}" if holder else "its PID is not known yet"
            raise AgentAlreadyRunning(
                f"another agent is already running on the state directory "
                f"{self.path.parent} ({who}; lock file {self.path}). This one stops "
                f"without touching the socket or the store. Stop the other one first "
                f"(systemctl stop clubterm, or kill {holder or '<PID>'}), or give this "
                f"configuration its own [paths] state_dir and socket."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    @staticmethod
    def _holder(fd: int) -> int | None:
        try:
            text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def release(self) -> None:
        """Let the next agent in (the file stays: unlinking it would race a newcomer)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
