"""The real :class:`agent.localapi.LocalApi`: JSON-RPC 2.0 over the agent's Unix socket.

:class:`SocketClient` is for asyncio code (the terminal UI, tests, benchmarks);
:class:`SyncClient` wraps it for the command line (``clubterm status``, ``sale``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from agent.errors import ApiError, ClubtermError
from agent.localapi import MAX_LINE_BYTES


class ApiUnavailable(ClubtermError):
    """The agent's socket cannot be reached (agent not running, no permission)."""


class SocketClient:
    """An asyncio client of the local API (implements :class:`LocalApi`)."""

    def __init__(self, path: Path | str, *, timeout_s: float = 30.0):
        self.path = Path(path)
        self.timeout_s = timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._read_task: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._subscribed = False
        self._lock = asyncio.Lock()
        self._closed_error: ClubtermError | None = None
        self._refusal: str | None = None

    async def connect(self) -> None:
        """Open the connection (``call`` does this on first use)."""
        async with self._lock:
            if self._writer is not None:
                return
            try:
                self._reader, self._writer = await asyncio.open_unix_connection(
                    str(self.path), limit=MAX_LINE_BYTES + 1)
            except FileNotFoundError:
                raise ApiUnavailable(f"the agent is not running (no socket at {self.path})") \
                    from None
            except PermissionError:
                raise ApiUnavailable(f"no permission to use {self.path}; are you in the "
                                     "clubterm group?") from None
            except OSError as exc:
                raise ApiUnavailable(f"cannot reach the agent at {self.path}: "
                                     f"{exc.strerror or exc}") from None
            self._closed_error = None
            self._read_task = asyncio.create_task(self._read_loop())

    async def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Call ``method``; return its result or raise :class:`ApiError`."""
        await self.connect()
        assert self._writer is not None
        req_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = future
        message = {"jsonrpc": "2.0", "id": req_id, "method": method, "params": dict(params or {})}
        try:
            self._writer.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
            await self._writer.drain()
            result = await asyncio.wait_for(future, self.timeout_s)
            if method == "events.subscribe":
                self._subscribed = True
            return result
        except TimeoutError:
            raise ApiUnavailable(f"the agent did not answer {method} within "
                                 f"{self.timeout_s:.0f} s") from None
        except (ConnectionError, OSError) as exc:
            raise ApiUnavailable(f"lost the connection to the agent: {exc}") from None
        finally:
            self._pending.pop(req_id, None)

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Subscribe and yield each ``event`` notification's params until the link closes.

        The stream ends when the connection does (the agent stopped or restarted);
        calling ``events()`` again reconnects and subscribes anew.
        """
        if not self._subscribed:
            # A fresh queue: the end marker of an earlier connection must not end
            # this stream.
            self._events = asyncio.Queue()
            await self.call("events.subscribe")
            self._subscribed = True
        while True:
            item = await self._events.get()
            if item is None:
                return
            yield item

    async def close(self) -> None:
        """Disconnect."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        if self._read_task is not None:
            self._read_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._read_task
            self._read_task = None
        self._fail_pending(ApiUnavailable("the connection was closed"))

    async def __aenter__(self) -> SocketClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _fail_pending(self, error: ClubtermError) -> None:
        self._closed_error = error
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()
        self._events.put_nowait(None)

    async def _read_loop(self) -> None:
        assert self._reader is not None
        error: ClubtermError = ApiUnavailable("the agent closed the connection")
        try:
            while True:
                try:
                    line = await self._reader.readuntil(b"\n")
                except asyncio.IncompleteReadError:
                    break
                except asyncio.LimitOverrunError:
                    error = ApiUnavailable("the agent sent a message over 1 MiB")
                    break
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                for item in message if isinstance(message, list) else [message]:
                    self._route(item)
        except (ConnectionError, OSError) as exc:
            error = ApiUnavailable(f"lost the connection to the agent: {exc}")
        finally:
            if self._refusal is not None:  # e.g. too many connections: say why
                error = ApiUnavailable(f"the agent closed the connection: {self._refusal}")
                self._refusal = None
            self._writer = None
            # A new connection is a new subscriber: the agent forgot this one.
            self._subscribed = False
            self._fail_pending(error)

    def _route(self, item: Any) -> None:
        if not isinstance(item, dict):
            return
        if item.get("method") == "event" and "id" not in item:
            params = item.get("params")
            if isinstance(params, dict):
                self._events.put_nowait(params)
            return
        if item.get("id") is None and isinstance(item.get("error"), dict):
            # An error for no request: the agent refuses the connection and closes it.
            self._refusal = str(item["error"].get("message", "error"))
            return
        future = self._pending.get(item.get("id"))  # type: ignore[arg-type]
        if future is None or future.done():
            return
        if "error" in item and isinstance(item["error"], dict):
            err = item["error"]
            future.set_exception(ApiError(int(err.get("code", -32603)),
                                          str(err.get("message", "error")), err.get("data")))
        else:
            future.set_result(item.get("result"))


class SyncClient:
    """A blocking wrapper for one-shot command-line use (one private event loop)."""

    def __init__(self, path: Path | str, *, timeout_s: float = 30.0):
        self._loop = asyncio.new_event_loop()
        self._client = SocketClient(path, timeout_s=timeout_s)

    def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Call ``method`` and wait for its result (raises ApiError / ApiUnavailable)."""
        return self._loop.run_until_complete(self._client.call(method, params))

    def close(self) -> None:
        """Disconnect and free the loop."""
        self._loop.run_until_complete(self._client.close())
        self._loop.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
