"""The local API's framing: one JSON object per line on a Unix socket, within limits.

:class:`ServerLimits` says how much one client may send and buffer;
:class:`Connection` is one client's bounded send queue and writer task (a client
that stops reading fills only its own queue, then is dropped); :func:`read_line`
reads one line in parts, a few large lines at a time; :func:`parse_line` decodes
it strictly (UTF-8, JSON without NaN or huge numbers, bounded nesting) and answers
the JSON-RPC error itself when it cannot. Limits are documented in
docs/local-api.md, "Limits".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.localapi import (
    ERROR_NAMES,
    INVALID_PARAMS,
    INVALID_REQUEST,
    MAX_CONNECTIONS,
    MAX_CONNECTIONS_PER_USER,
    MAX_DEPTH,
    MAX_LINE_BYTES,
    MAX_TEXT_CHARS,
    MAX_VALUES,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
)
from agent.localapi.limits import LogLimiter, parse_int, reject_constant

log = logging.getLogger("agent.localapi.server")


def log_limited(limiter: LogLimiter, kind: str, level: int, msg: str, *args: object,
                exc_info: bool = False) -> None:
    """Log through ``limiter``: a flood of one kind of line becomes a few and a count."""
    suppressed = limiter.allow(kind)
    if suppressed is None:
        return
    if suppressed:
        msg += " (suppressed %d similar)"
        args = (*args, suppressed)
    log.log(level, msg, *args, exc_info=exc_info)


def peer_uid(writer: asyncio.StreamWriter) -> int | None:
    """The connecting process's user id (SO_PEERCRED), or None where there is none."""
    sock = writer.get_extra_info("socket")
    if sock is None or not hasattr(socket, "SO_PEERCRED"):
        return None
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


@dataclass
class ServerLimits:
    """How much the server tolerates from one client before dropping it."""

    max_line_bytes: int = MAX_LINE_BYTES
    # A client that connects and sends nothing at all is dropped after this.
    first_request_timeout_s: float = 10.0
    # A client that is not subscribed and sends nothing for this long is dropped.
    idle_timeout_s: float = 600.0
    # Messages waiting for one client; when full, the client is dropped.
    send_queue_max: int = 1000
    # One write that the peer does not drain within this is a dead reader.
    write_timeout_s: float = 10.0
    # Requests in one batch.
    max_batch: int = 100
    # Connections at once, in all and from one peer user; far below LimitNOFILE.
    max_connections: int = MAX_CONNECTIONS
    max_connections_per_user: int = MAX_CONNECTIONS_PER_USER
    # Containers nested in params; characters in one text; commas in one line.
    max_depth: int = MAX_DEPTH
    max_text_chars: int = MAX_TEXT_CHARS
    max_values: int = MAX_VALUES
    # Bytes buffered per connection before a line counts as large. Only
    # large_lines_at_once clients may send (and have run) a large line at a time,
    # each within large_line_timeout_s; the others wait, unread, in the kernel.
    large_line_bytes: int = 64 * 1024
    large_lines_at_once: int = 4
    large_line_timeout_s: float = 10.0
    # Bytes taken from the socket at a time.
    read_chunk_bytes: int = 16 * 1024
    # Log lines of one kind a minute (a refused connection, a dropped client, …).
    log_lines_per_minute: int = 10


class Connection:
    """One connected client: its send queue, its writer task, whether it subscribed."""

    def __init__(self, conn_id: int, writer: asyncio.StreamWriter, limits: ServerLimits,
                 log_limiter: LogLimiter | None = None):
        self.id = conn_id
        self.writer = writer
        self.limits = limits
        self.subscribed = False
        self.closed = False
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=limits.send_queue_max)
        self.writer_task: asyncio.Task[None] | None = None
        self.peer_uid: int | None = None
        self.log_limiter = log_limiter or LogLimiter(limits.log_lines_per_minute, 60.0)

    def send(self, message: Mapping[str, Any] | list[Any]) -> bool:
        """Queue one message; drop the client if its queue is full. False if dropped."""
        if self.closed:
            return False
        # default=str: a value the encoder does not know (a datetime that slipped
        # through) must not cost the client its connection.
        text = json.dumps(message, ensure_ascii=False, separators=(",", ":"), default=str)
        try:
            data = text.encode() + b"\n"
        except UnicodeEncodeError:  # a lone surrogate from somewhere: send it escaped
            data = json.dumps(message, separators=(",", ":"), default=str).encode() + b"\n"
        try:
            self.queue.put_nowait(data)
        except asyncio.QueueFull:
            log_limited(self.log_limiter, "slow_reader", logging.WARNING,
                         "local API client %d does not read its messages; dropping it", self.id)
            self.abort()
            return False
        return True

    async def write_loop(self) -> None:
        """Write queued messages; a peer that does not drain in time is dropped."""
        try:
            while True:
                data = await self.queue.get()
                if data is None:
                    break
                self.writer.write(data)
                await asyncio.wait_for(self.writer.drain(), self.limits.write_timeout_s)
        except (TimeoutError, ConnectionError, OSError):
            log_limited(self.log_limiter, "stopped_reading", logging.INFO,
                         "local API client %d stopped reading; dropping it", self.id)
            self.abort()
        finally:
            with contextlib.suppress(Exception):
                self.writer.close()

    async def finish(self) -> None:
        """Send what is queued, then close."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)
        if self.writer_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self.writer_task),
                                       self.limits.write_timeout_s)
        self.abort()

    def abort(self) -> None:
        """Close now, discarding anything queued."""
        self.closed = True
        transport = self.writer.transport
        if transport is not None and not transport.is_closing():
            transport.abort()
        if self.writer_task is not None and not self.writer_task.done():
            current = asyncio.current_task()
            if current is not self.writer_task:
                self.writer_task.cancel()


#: ``data.reason`` of an error whose raiser gave none (protocol 1.1: every error
#: carries a machine-readable reason; docs/protocol/local-api.md, "Reason codes").
DEFAULT_REASONS = {
    PARSE_ERROR: "parse_error", INVALID_REQUEST: "invalid_request",
    METHOD_NOT_FOUND: "unknown_method", INVALID_PARAMS: "invalid_params",
    -32603: "internal_error", **ERROR_NAMES,
}


def error_reason(code: int, data: Mapping[str, Any]) -> str:
    """The reason code for an error raised without one: a bad parameter is
    ``bad_param`` (``param`` names it), a limit ``limit`` (``limit`` names it),
    otherwise the error's name."""
    if code == INVALID_PARAMS and "param" in data:
        return "bad_param"
    return DEFAULT_REASONS.get(code, "error")


def error_object(code: int, message: str, data: object | None = None) -> dict[str, Any]:
    """A JSON-RPC error object; its ``data`` always holds a ``reason`` code."""
    err: dict[str, Any] = {"code": code, "message": message}
    if data is None:
        data = {}
    if isinstance(data, Mapping) and not isinstance(data.get("reason"), str):
        data = {**data, "reason": error_reason(code, data)}
    err["data"] = data
    return err


def error_reply(req_id: object, code: int, message: str,
                 data: object | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": req_id, "error": error_object(code, message, data)}


class LineTooLong(Exception):
    """A line over ``max_line_bytes``."""


# What parse_line answers once it has sent the error for a line.
UNPARSED = object()


async def read_line(reader: asyncio.StreamReader, limits: ServerLimits,
                    large_lines: asyncio.Semaphore, timeout: float | None
                    ) -> tuple[bytes, bool]:
    """One line, newline included, read in parts of at most ``large_line_bytes``.

    Answers whether the line is large; then it holds a slot of ``large_lines``
    that the caller releases once the line is processed. Raises TimeoutError,
    LineTooLong, IncompleteReadError (the peer closed) or OSError.
    """
    limit = limits.max_line_bytes
    parts: list[bytes] = []
    size = 0
    large = False
    try:
        async with asyncio.timeout(timeout) as deadline:
            while True:
                try:
                    part = await reader.readuntil(b"\n")
                except asyncio.LimitOverrunError as exc:
                    if not large:
                        # Wait for a slot before taking the data out of the
                        # reader: a waiting client holds at most its buffer.
                        late = asyncio.get_running_loop().time() + \
                            limits.large_line_timeout_s
                        when = deadline.when()
                        if when is None or when > late:
                            deadline.reschedule(late)
                        await large_lines.acquire()
                        large = True
                    part = await reader.readexactly(exc.consumed)
                    final = False
                else:
                    final = True
                parts.append(part)
                size += len(part)
                if size > limit + (1 if final else 0):
                    raise LineTooLong
                if final:
                    break
    except BaseException:
        if large:
            large_lines.release()
        raise
    return (parts[0] if len(parts) == 1 else b"".join(parts)), large


def parse_line(conn: Connection, line: bytes, limits: ServerLimits) -> object:
    """The decoded JSON of one line, or ``UNPARSED`` once the error is sent."""
    # A line with more commas than values allowed is refused before the parse:
    # json.loads and the walk of params are linear, but not free.
    if line.count(b",") > limits.max_values:
        conn.send(error_reply(None, INVALID_REQUEST,
                               f"The request holds too many values (at most "
                               f"{limits.max_values:,}).",
                               {"max_values": limits.max_values}))
        return UNPARSED
    try:
        # Strict: json.loads(bytes) would let UTF-8-encoded surrogates through.
        # The newline stays: JSON allows the white space, and no copy is made.
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        conn.send(error_reply(None, PARSE_ERROR, "The request is not valid UTF-8 text."))
        return UNPARSED
    try:
        return json.loads(text, parse_int=parse_int, parse_constant=reject_constant)
    except RecursionError:
        conn.send(error_reply(None, INVALID_REQUEST,
                               f"The request is nested too deeply (more than "
                               f"{limits.max_depth} levels).",
                               {"max_depth": limits.max_depth}))
    except ValueError:
        conn.send(error_reply(None, PARSE_ERROR, "The request is not valid JSON."))
    return UNPARSED
