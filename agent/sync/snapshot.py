"""The member snapshot over HTTPS (mutual TLS), streamed into the store.

``GET {central_url}/v1/clubs/{club_id}/members?since={version}`` answers NDJSON, one
record a line, and ``X-Members-Version``. The body is handed to the store line by
line as it arrives, so a large club never sits in memory whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

import requests

from agent.errors import ClubtermError, LinkError


class SnapshotSink(Protocol):
    """The part of the store a snapshot is written to."""

    def import_snapshot(self, lines: Iterable[bytes | str], version: int, full: bool) -> None: ...


@dataclass(frozen=True)
class SnapshotClient:
    """Fetches member snapshots with the terminal's certificate."""

    central_url: str
    club_id: str
    ca_file: Path | None
    cert_file: Path | None
    key_file: Path | None
    timeout_s: float = 30.0

    def url(self) -> str:
        return f"{self.central_url.rstrip('/')}/v1/clubs/{quote(self.club_id)}/members"

    def fetch_into(self, sink: SnapshotSink, since: int) -> int:
        """Fetch the records changed after ``since`` into ``sink``; returns the new version.

        ``since`` 0 is the full set (the store replaces its cache). Raises
        :class:`LinkError` for network, TLS and HTTP failures and a bad answer.
        """
        cert = None
        if self.cert_file is not None and self.key_file is not None:
            cert = (str(self.cert_file), str(self.key_file))
        verify: str | bool = str(self.ca_file) if self.ca_file is not None else True
        try:
            with requests.get(self.url(), params={"since": since}, cert=cert, verify=verify,
                              stream=True, timeout=self.timeout_s,
                              headers={"Accept": "application/x-ndjson"}) as resp:
                if resp.status_code != 200:
                    raise LinkError(f"member snapshot: HTTP {resp.status_code} from {self.url()}")
                header = resp.headers.get("X-Members-Version", "")
                if not header.isdigit():
                    raise LinkError("member snapshot: no usable X-Members-Version header")
                version = int(header)
                lines = (line for line in resp.iter_lines() if line)
                sink.import_snapshot(lines, version, since == 0)
                return version
        except requests.RequestException as exc:
            raise LinkError(f"member snapshot from {self.url()} failed: {exc}") from None
        except ClubtermError:
            raise
        except (OSError, ValueError) as exc:
            raise LinkError(f"member snapshot from {self.url()} failed: {exc}") from None
