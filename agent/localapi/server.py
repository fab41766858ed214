"""The local API's transport: JSON-RPC 2.0, one JSON object per line, on a Unix socket.

This module knows nothing of sales or members. It frames requests, validates the
JSON-RPC envelope, hands each call to a :class:`Dispatcher` and writes the answer
back; it also fans event notifications out to subscribed clients.

Every client gets its own bounded send queue and writer task, so a client that
stops reading fills only its own queue and is then dropped; it never slows the
loop or another client. A line over 1 MiB, or a client that connects and never
sends anything, is answered (where that makes sense) and dropped the same way.
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
from agent.localapi import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    MAX_LINE_BYTES,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
)

log = logging.getLogger(__name__)

INTERNAL_ERROR = -32603


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


class Connection:
    """One connected client: its send queue, its writer task, whether it subscribed."""

    def __init__(self, conn_id: int, writer: asyncio.StreamWriter, limits: ServerLimits):
        self.id = conn_id
        self.writer = writer
        self.limits = limits
        self.subscribed = False
        self.closed = False
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=limits.send_queue_max)
        self.writer_task: asyncio.Task[None] | None = None
        self.peer_uid: int | None = None

    def send(self, message: Mapping[str, Any] | list[Any]) -> bool:
        """Queue one message; drop the client if its queue is full. False if dropped."""
        if self.closed:
            return False
        # default=str: a value the encoder does not know (a datetime that slipped
        # through) must not cost the client its connection.
        data = json.dumps(message, ensure_ascii=False, separators=(",", ":"),
                          default=str).encode() + b"\n"
        try:
            self.queue.put_nowait(data)
        except asyncio.QueueFull:
            log.warning("local API client %d does not read its messages; dropping it", self.id)
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
            log.info("local API client %d stopped reading; dropping it", self.id)
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


def _valid_id(value: Any) -> bool:
    return value is None or (isinstance(value, (str, int)) and not isinstance(value, bool))


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
        self._server: asyncio.AbstractServer | None = None
        self._next_id = 1
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
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
            # The reader limit is one byte above the line limit so that exactly
            # 1 MiB of JSON plus the newline still fits.
            self._server = await asyncio.start_unix_server(
                self._handle, path=str(self.path), limit=self.limits.max_line_bytes + 1
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
        log.info("local API listening on %s", self.path)

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
        for conn in list(self.connections.values()):
            await conn.finish()
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.wait(set(self._handlers), timeout=1.0)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        conn = Connection(self._next_id, writer, self.limits)
        self._next_id += 1
        self.connections[conn.id] = conn
        conn.writer_task = asyncio.create_task(conn.write_loop())
        try:
            await self._serve(conn, reader)
        except asyncio.CancelledError:
            pass
        except Exception:  # a bug in one request must not take the server down
            log.exception("local API client %d: unexpected error", conn.id)
        finally:
            self.connections.pop(conn.id, None)
            await conn.finish()
            if task is not None:
                self._handlers.discard(task)

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
                line = await asyncio.wait_for(reader.readuntil(b"\n"), timeout)
            except TimeoutError:
                log.info("local API client %d sent nothing for %.0f s; dropping it", conn.id,
                         timeout or 0)
                return
            except asyncio.IncompleteReadError:
                return  # the client closed its end
            except asyncio.LimitOverrunError:
                conn.send(_error_reply(None, INVALID_REQUEST,
                                       "The request is too large (more than 1 MiB on one line).",
                                       {"max_line_bytes": self.limits.max_line_bytes}))
                log.warning("local API client %d sent a line over the limit; dropping it",
                            conn.id)
                return
            except (ConnectionError, OSError):
                return
            first = False
            if len(line) > self.limits.max_line_bytes + 1:
                conn.send(_error_reply(None, INVALID_REQUEST,
                                       "The request is too large (more than 1 MiB on one line)."))
                return
            text = line.strip()
            if not text:
                continue
            await self._process_line(conn, text)

    async def _process_line(self, conn: Connection, text: bytes) -> None:
        try:
            message = json.loads(text)
        except (UnicodeDecodeError, ValueError):
            conn.send(_error_reply(None, PARSE_ERROR, "The request is not valid JSON."))
            return
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
        params = message.get("params", {})
        if params is None:
            params = {}
        if not isinstance(params, dict):
            return _error_reply(req_id, INVALID_PARAMS,
                                "The parameters must be given by name (a JSON object).")
        try:
            result = await self.dispatcher.dispatch(method, params, conn)
        except ApiError as exc:
            reply = _error_reply(req_id, exc.code, str(exc), exc.data)
        except Exception:
            log.exception("local API method %s failed", method)
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
