"""The local API's transport: JSON-RPC 2.0, one JSON object per line, on a Unix socket.

This module knows nothing of sales or members. It frames requests, validates the
JSON-RPC envelope, hands each call to a :class:`Dispatcher` and writes the answer
back; it also fans event notifications out to subscribed clients.

Every client gets its own bounded send queue and writer task, so a client that
stops reading fills only its own queue and is then dropped; it never slows the
loop or another client. A line over 1 MiB, or a client that connects and never
sends anything, is answered (where that makes sense) and dropped the same way.

Resources are bounded (``ServerLimits``, docs/local-api.md "Limits"): connections
in all and per peer user (``SO_PEERCRED``), over which a new connection gets one
error line and is closed; the bytes buffered per connection (64 KiB, and only a
few clients at a time may be sending a line longer than that); nesting depth,
numbers, text length and the count of values, checked before or just after the
parse; and the log lines a misbehaving client can cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import json
import logging
import os
import socket
import stat
import struct
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from agent.errors import ApiError, ClubtermError
from agent.localapi import (
    BUSY,
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
from agent.localapi.limits import LogLimiter, check_request_values, parse_int, reject_constant

log = logging.getLogger(__name__)

INTERNAL_ERROR = -32603


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


class Dispatcher(Protocol):
    """What the server calls for each request (``agent.localapi.services.Services``)."""

    async def dispatch(self, method: str, params: dict[str, Any], conn: Connection) -> Any:
        """Run ``method``; return a JSON-able result or raise :class:`ApiError`."""
        ...


def error_object(code: int, message: str, data: object | None = None) -> dict[str, Any]:
    """A JSON-RPC error object."""
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return err


def _error_reply(req_id: Any, code: int, message: str,
                 data: object | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": req_id, "error": error_object(code, message, data)}


# What a problem found by check_request_values is answered with.
_PROBLEM_CODES = {"depth": INVALID_REQUEST, "text": PARSE_ERROR, "number": INVALID_PARAMS,
                  "length": INVALID_PARAMS}


def _valid_id(value: Any) -> bool:
    if isinstance(value, str):  # echoed in the reply: it must be sendable text
        return len(value) <= 256 and check_request_values(
            value, max_depth=1, max_text_chars=256) is None
    return value is None or (isinstance(value, int) and not isinstance(value, bool))


class _LineTooLong(Exception):
    """A line over ``max_line_bytes``."""


_UNPARSED = object()


class ApiServer:
    """Serve a :class:`Dispatcher` on a Unix socket (see module docstring)."""

    def __init__(
        self,
        path: Path | str,
        dispatcher: Dispatcher,
        *,
        limits: ServerLimits | None = None,
        group: str | None = None,
        mode: int = 0o660,
    ):
        self.path = Path(path)
        self.dispatcher = dispatcher
        self.limits = limits or ServerLimits()
        self.group = group
        self.mode = mode
        self.connections: dict[int, Connection] = {}
        self.per_user: dict[int | None, int] = {}
        self.refused = 0
        self.log_limiter = LogLimiter(self.limits.log_lines_per_minute, 60.0)
        self._server: asyncio.AbstractServer | None = None
        self._next_id = 1
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._large_lines = asyncio.Semaphore(self.limits.large_lines_at_once)
        self._accepting = False

    async def start(self) -> None:
        """Bind the socket (replacing a stale one) with mode 0660 and the service group."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(self.path.lstat().st_mode):
                self.path.unlink()
        # The socket gets its mode at bind time from the umask; set the umask so
        # there is no moment at which it is world-accessible.
        old_umask = os.umask(0o777 & ~self.mode)
        try:
            # The reader buffers at most large_line_bytes (twice that before it
            # stops reading the socket); _read_line gathers longer lines in parts.
            self._server = await asyncio.start_unix_server(
                self._accept, path=str(self.path), limit=self.limits.large_line_bytes
            )
        except OSError as exc:
            raise ClubtermError(f"cannot listen on {self.path}: {exc.strerror}") from None
        finally:
            os.umask(old_umask)
        os.chmod(self.path, self.mode)
        if self.group:
            try:
                os.chown(self.path, -1, grp.getgrnam(self.group).gr_gid)
            except (KeyError, PermissionError) as exc:
                log.warning("socket %s: cannot set group %s: %s", self.path, self.group, exc)
        self._accepting = True
        log.info("local API listening on %s (at most %d connections, %d per user)", self.path,
                 self.limits.max_connections, self.limits.max_connections_per_user)

    def broadcast(self, params: Mapping[str, Any]) -> None:
        """Send an ``event`` notification to every subscribed client."""
        message = {"jsonrpc": "2.0", "method": "event", "params": params}
        for conn in list(self.connections.values()):
            if conn.subscribed and not conn.closed:
                conn.send(message)

    async def stop_accepting(self) -> None:
        """Stop taking new connections and new requests (in-flight ones go on)."""
        self._accepting = False
        if self._server is not None:
            self._server.close()

    async def close(self, grace_s: float = 10.0) -> None:
        """Finish in-flight requests (up to ``grace_s``), then close every client."""
        await self.stop_accepting()
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=grace_s)
        # All at once: one peer that does not read must not hold up the others.
        await asyncio.gather(*(conn.finish() for conn in list(self.connections.values())),
                             return_exceptions=True)
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.wait(set(self._handlers), timeout=1.0)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        for kind, count in self.log_limiter.pending().items():
            log.info("local API: %d more %s lines were suppressed", count, kind)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A plain callback, not a coroutine: asyncio's own wrapper task for a
        # coroutine callback logs an error-level CancelledError traceback when it
        # is cancelled (CPython 3.11), which close() does. Our task has no such hook.
        uid = peer_uid(writer)
        limits = self.limits
        if not self._accepting:
            writer.transport.abort()
            return
        if len(self.connections) >= limits.max_connections:
            self._refuse(writer, uid, "The agent has too many connections open "
                         f"(at most {limits.max_connections}); please try again later.",
                         {"limit": "connections", "max": limits.max_connections})
            return
        if self.per_user.get(uid, 0) >= limits.max_connections_per_user:
            self._refuse(writer, uid, "This user has too many connections open to the agent "
                         f"(at most {limits.max_connections_per_user}); close some and "
                         "try again.",
                         {"limit": "connections_per_user",
                          "max": limits.max_connections_per_user})
            return
        # CPython's socket transport reads up to 256 KiB a time into the reader,
        # whatever its limit; a smaller read keeps an idle sender's share small.
        if isinstance(getattr(writer.transport, "max_size", None), int):
            setattr(writer.transport, "max_size", limits.read_chunk_bytes)  # noqa: B010
        conn = Connection(self._next_id, writer, limits, self.log_limiter)
        conn.peer_uid = uid
        self._next_id += 1
        self.connections[conn.id] = conn
        self.per_user[uid] = self.per_user.get(uid, 0) + 1
        conn.writer_task = asyncio.create_task(conn.write_loop())
        task = asyncio.create_task(self._handle(conn, reader))
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    def _refuse(self, writer: asyncio.StreamWriter, uid: int | None, message: str,
                data: dict[str, Any]) -> None:
        """One error line, then close: the socket buffer takes it without waiting."""
        self.refused += 1
        reply = _error_reply(None, BUSY, message, data)
        with contextlib.suppress(Exception):
            writer.write(json.dumps(reply, separators=(",", ":")).encode() + b"\n")
        writer.close()  # flushes the line, then closes
        log_limited(self.log_limiter, "refused", logging.WARNING,
                    "local API: refused a connection from uid %s (%s, %d open)", uid,
                    data["limit"], len(self.connections))

    def _forget(self, conn: Connection) -> None:
        if self.connections.pop(conn.id, None) is None:
            return
        left = self.per_user.get(conn.peer_uid, 0) - 1
        if left > 0:
            self.per_user[conn.peer_uid] = left
        else:
            self.per_user.pop(conn.peer_uid, None)

    async def _handle(self, conn: Connection, reader: asyncio.StreamReader) -> None:
        try:
            await self._serve(conn, reader)
        except asyncio.CancelledError:
            pass
        except Exception:  # a bug in one request must not take the server down
            log_limited(self.log_limiter, "unexpected", logging.ERROR,
                        "local API client %d: unexpected error", conn.id, exc_info=True)
        finally:
            self._forget(conn)
            try:
                await conn.finish()
            except asyncio.CancelledError:  # close() cancelled us mid-finish: just close
                conn.abort()

    async def _serve(self, conn: Connection, reader: asyncio.StreamReader) -> None:
        first = True
        while not conn.closed:
            if not self._accepting:
                return
            if first:
                timeout: float | None = self.limits.first_request_timeout_s
            elif conn.subscribed:
                timeout = None
            else:
                timeout = self.limits.idle_timeout_s
            try:
                line, large = await self._read_line(reader, timeout)
            except TimeoutError:
                log_limited(self.log_limiter, "silent", logging.INFO,
                            "local API client %d sent nothing (or too slowly) for %.0f s; "
                            "dropping it", conn.id, timeout or self.limits.large_line_timeout_s)
                return
            except asyncio.IncompleteReadError:
                return  # the client closed its end
            except _LineTooLong:
                conn.send(_error_reply(None, INVALID_REQUEST,
                                       "The request is too large (more than 1 MiB on one line).",
                                       {"max_line_bytes": self.limits.max_line_bytes}))
                log_limited(self.log_limiter, "too_long", logging.WARNING,
                            "local API client %d sent a line over the limit; dropping it",
                            conn.id)
                return
            except (ConnectionError, OSError):
                return
            first = False
            try:
                if line.isspace():
                    continue
                message = self._parse_line(conn, line)
                del line  # only the parsed request stays alive while it runs
                if message is not _UNPARSED:
                    await self._run_message(conn, message)
                # Not kept while waiting for the next line (an idle client's last
                # request would otherwise stay in memory, up to 1 MiB of it).
                del message
            finally:
                if large:
                    self._large_lines.release()

    async def _read_line(self, reader: asyncio.StreamReader, timeout: float | None
                         ) -> tuple[bytes, bool]:
        """One line, newline included, read in parts of at most ``large_line_bytes``.

        Answers whether the line is large; then it holds a slot of
        ``_large_lines`` that the caller releases once the line is processed.
        """
        limit = self.limits.max_line_bytes
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
                                self.limits.large_line_timeout_s
                            when = deadline.when()
                            if when is None or when > late:
                                deadline.reschedule(late)
                            await self._large_lines.acquire()
                            large = True
                        part = await reader.readexactly(exc.consumed)
                        final = False
                    else:
                        final = True
                    parts.append(part)
                    size += len(part)
                    if size > limit + (1 if final else 0):
                        raise _LineTooLong
                    if final:
                        break
        except BaseException:
            if large:
                self._large_lines.release()
            raise
        return (parts[0] if len(parts) == 1 else b"".join(parts)), large

    def _parse_line(self, conn: Connection, line: bytes) -> Any:
        """The decoded JSON of one line, or ``_UNPARSED`` once the error is sent."""
        # A line with more commas than values allowed is refused before the parse:
        # json.loads and the walk of params are linear, but not free.
        if line.count(b",") > self.limits.max_values:
            conn.send(_error_reply(None, INVALID_REQUEST,
                                   f"The request holds too many values (at most "
                                   f"{self.limits.max_values:,}).",
                                   {"max_values": self.limits.max_values}))
            return _UNPARSED
        try:
            # Strict: json.loads(bytes) would let UTF-8-encoded surrogates through.
            # The newline stays: JSON allows the white space, and no copy is made.
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            conn.send(_error_reply(None, PARSE_ERROR, "The request is not valid UTF-8 text."))
            return _UNPARSED
        try:
            return json.loads(text, parse_int=parse_int, parse_constant=reject_constant)
        except RecursionError:
            conn.send(_error_reply(None, INVALID_REQUEST,
                                   f"The request is nested too deeply (more than "
                                   f"{self.limits.max_depth} levels).",
                                   {"max_depth": self.limits.max_depth}))
        except ValueError:
            conn.send(_error_reply(None, PARSE_ERROR, "The request is not valid JSON."))
        return _UNPARSED

    async def _run_message(self, conn: Connection, message: Any) -> None:
        if isinstance(message, list):
            if not message:
                conn.send(_error_reply(None, INVALID_REQUEST, "An empty batch is not a request."))
                return
            if len(message) > self.limits.max_batch:
                conn.send(_error_reply(None, INVALID_REQUEST,
                                       f"A batch may hold at most {self.limits.max_batch} "
                                       "requests."))
                return
            replies = []
            for item in message:
                reply = await self._run_tracked(conn, item)
                if reply is not None:
                    replies.append(reply)
            if replies:
                conn.send(replies)
            return
        reply = await self._run_tracked(conn, message)
        if reply is not None:
            conn.send(reply)

    async def _run_tracked(self, conn: Connection, message: Any) -> dict[str, Any] | None:
        # A request counts as in flight until its reply is queued, so a SIGTERM
        # waits for a sale.commit that is being written.
        task = asyncio.ensure_future(self._run_one(conn, message))
        self._in_flight.add(task)
        try:
            return await asyncio.shield(task)
        finally:
            if task.done():
                self._in_flight.discard(task)
            else:
                task.add_done_callback(self._in_flight.discard)

    async def _run_one(self, conn: Connection, message: Any) -> dict[str, Any] | None:
        if not isinstance(message, dict):
            return _error_reply(None, INVALID_REQUEST, "A request must be a JSON object.")
        has_id = "id" in message
        req_id = message.get("id")
        if not _valid_id(req_id):
            return _error_reply(None, INVALID_REQUEST,
                                "The request id must be a string or a number.")
        if message.get("jsonrpc") != "2.0":
            return _error_reply(req_id, INVALID_REQUEST, 'The request must say "jsonrpc": "2.0".')
        method = message.get("method")
        if not isinstance(method, str) or not method:
            return _error_reply(req_id, INVALID_REQUEST, "The request has no method name.")
        if len(method) > 128:
            return _error_reply(req_id, METHOD_NOT_FOUND,
                                "The agent does not know that method (the name is too long).")
        params = message.get("params", {})
        if params is None:
            params = {}
        if not isinstance(params, dict):
            return _error_reply(req_id, INVALID_PARAMS,
                                "The parameters must be given by name (a JSON object).")
        problem = check_request_values(params, max_depth=self.limits.max_depth,
                                       max_text_chars=self.limits.max_text_chars)
        if problem is not None:
            code = _PROBLEM_CODES[problem.kind]
            data = {**problem.data, **({"param": problem.param} if problem.param else {})}
            return _error_reply(req_id, code, problem.message, data) if has_id else None
        try:
            result = await self.dispatcher.dispatch(method, params, conn)
        except ApiError as exc:
            reply = _error_reply(req_id, exc.code, str(exc), exc.data)
        except Exception:
            log_limited(self.log_limiter, "method_failed", logging.ERROR,
                        "local API method %s failed", method[:64], exc_info=True)
            reply = _error_reply(req_id, INTERNAL_ERROR,
                                 "Something went wrong in the agent; please try again.")
        else:
            reply = {"jsonrpc": "2.0", "id": req_id, "result": result}
        return reply if has_id else None


MethodHandler = Callable[[dict[str, Any], Connection], Awaitable[Any]]


@dataclass
class MethodTable:
    """A simple :class:`Dispatcher`: a name → handler table (used by tests and tools)."""

    handlers: dict[str, MethodHandler] = field(default_factory=dict)

    async def dispatch(self, method: str, params: dict[str, Any], conn: Connection) -> Any:
        """Look ``method`` up and run it."""
        handler = self.handlers.get(method)
        if handler is None:
            raise ApiError(METHOD_NOT_FOUND, f"The agent does not know the method {method!r}.")
        return await handler(params, conn)
