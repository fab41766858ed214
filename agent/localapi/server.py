"""The local API's server: JSON-RPC 2.0, one JSON object per line, on a Unix socket.

This module knows nothing of sales or members. It accepts connections within the
limits, validates the JSON-RPC envelope, hands each call to a :class:`Dispatcher`
and writes the answer back; it also fans event notifications out to subscribed
clients. Reading, decoding and queueing lines is :mod:`agent.localapi.framing`.

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
import stat
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from agent.errors import ApiError, ClubtermError
from agent.localapi import BUSY, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR
from agent.localapi.framing import (
    UNPARSED,
    Connection,
    LineTooLong,
    ServerLimits,
    error_object,
    error_reply,
    log_limited,
    parse_line,
    peer_uid,
    read_line,
)
from agent.localapi.limits import LogLimiter, check_request_values

__all__ = ["ApiServer", "Connection", "Dispatcher", "MethodTable", "ServerLimits",
           "error_object", "log_limited", "peer_uid"]

log = logging.getLogger(__name__)

INTERNAL_ERROR = -32603


class Dispatcher(Protocol):
    """What the server calls for each request (``agent.localapi.services.Services``)."""

    async def dispatch(self, method: str, params: dict[str, object], conn: Connection
                       ) -> object:
        """Run ``method``; return a JSON-able result or raise :class:`ApiError`."""
        ...


# What a problem found by check_request_values is answered with.
_PROBLEM_CODES = {"depth": INVALID_REQUEST, "text": PARSE_ERROR, "number": INVALID_PARAMS,
                  "length": INVALID_PARAMS}


def _valid_id(value: object) -> bool:
    if isinstance(value, str):  # echoed in the reply: it must be sendable text
        return len(value) <= 256 and check_request_values(
            value, max_depth=1, max_text_chars=256) is None
    return value is None or (isinstance(value, int) and not isinstance(value, bool))


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
        self._in_flight: set[asyncio.Task[dict[str, Any] | None]] = set()
        self._handlers: set[asyncio.Task[None]] = set()
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
            raise ClubtermError(f"cannot listen on {self.path}: {exc.strerror}") from exc
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
        reply = error_reply(None, BUSY, message, data)
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
                line, large = await read_line(reader, self.limits, self._large_lines, timeout)
            except TimeoutError:
                log_limited(self.log_limiter, "silent", logging.INFO,
                            "local API client %d sent nothing (or too slowly) for %.0f s; "
                            "dropping it", conn.id, timeout or self.limits.large_line_timeout_s)
                return
            except asyncio.IncompleteReadError:
                return  # the client closed its end
            except LineTooLong:
                conn.send(error_reply(None, INVALID_REQUEST,
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
                message = parse_line(conn, line, self.limits)
                del line  # only the parsed request stays alive while it runs
                if message is not UNPARSED:
                    await self._run_message(conn, message)
                # Not kept while waiting for the next line (an idle client's last
                # request would otherwise stay in memory, up to 1 MiB of it).
                del message
            finally:
                if large:
                    self._large_lines.release()

    async def _run_message(self, conn: Connection, message: object) -> None:
        if isinstance(message, list):
            if not message:
                conn.send(error_reply(None, INVALID_REQUEST, "An empty batch is not a request."))
                return
            if len(message) > self.limits.max_batch:
                conn.send(error_reply(None, INVALID_REQUEST,
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

    async def _run_tracked(self, conn: Connection, message: object) -> dict[str, Any] | None:
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

    async def _run_one(self, conn: Connection, message: object) -> dict[str, Any] | None:
        if not isinstance(message, dict):
            return error_reply(None, INVALID_REQUEST, "A request must be a JSON object.")
        has_id = "id" in message
        req_id = message.get("id")
        if not _valid_id(req_id):
            return error_reply(None, INVALID_REQUEST,
                                "The request id must be a string or a number.")
        if message.get("jsonrpc") != "2.0":
            return error_reply(req_id, INVALID_REQUEST, 'The request must say "jsonrpc": "2.0".')
        method = message.get("method")
        if not isinstance(method, str) or not method:
            return error_reply(req_id, INVALID_REQUEST, "The request has no method name.")
        if len(method) > 128:
            return error_reply(req_id, METHOD_NOT_FOUND,
                                "The agent does not know that method (the name is too long).")
        params = message.get("params", {})
        if params is None:
            params = {}
        if not isinstance(params, dict):
            return error_reply(req_id, INVALID_PARAMS,
                                "The parameters must be given by name (a JSON object).")
        problem = check_request_values(params, max_depth=self.limits.max_depth,
                                       max_text_chars=self.limits.max_text_chars)
        if problem is not None:
            code = _PROBLEM_CODES[problem.kind]
            data = {**problem.data, **({"param": problem.param} if problem.param else {})}
            return error_reply(req_id, code, problem.message, data) if has_id else None
        try:
            result = await self.dispatcher.dispatch(method, params, conn)
        except ApiError as exc:
            reply = error_reply(req_id, exc.code, str(exc), exc.data)
        except Exception:
            log_limited(self.log_limiter, "method_failed", logging.ERROR,
                        "local API method %s failed", method[:64], exc_info=True)
            reply = error_reply(req_id, INTERNAL_ERROR,
                                 "Something went wrong in the agent; please try again.")
        else:
            reply = {"jsonrpc": "2.0", "id": req_id, "result": result}
        return reply if has_id else None


MethodHandler = Callable[[dict[str, object], Connection], Awaitable[object]]


@dataclass
class MethodTable:
    """A simple :class:`Dispatcher`: a name → handler table (used by tests and tools)."""

    handlers: dict[str, MethodHandler] = field(default_factory=dict)

    async def dispatch(self, method: str, params: dict[str, object], conn: Connection
                       ) -> object:
        """Look ``method`` up and run it."""
        handler = self.handlers.get(method)
        if handler is None:
            raise ApiError(METHOD_NOT_FOUND, f"The agent does not know the method {method!r}.")
        return await handler(params, conn)
