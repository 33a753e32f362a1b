"""A small HTTP/1.1 server on asyncio streams, parsed by h11: vdtu's one HTTP server.

How it works. Each connection serves one request and is closed (every answer says
``Connection: close``): read the request with h11 until its end, find its route,
call the handler, write the ``Reply``. Handlers are plain functions; they run on the
loop and must be quick (a look-up, a small JSON encode).

Routes map ``(method, path)`` to a handler. A path is exact (``/xgc/v1/mqtt-info``),
or a prefix ending in ``/*`` (``/api/*`` matches ``/api`` and everything under it;
``/*`` matches every path); the exact route wins, then the longest prefix. A path
with no route gets 404; a routed path asked with a method it has no handler for
gets 405 with ``Allow``. Paths are compared as sent (no percent-decoding); the query
string is handed to the handler apart from the path.

The server answers errors itself, each with a JSON body ``{"error": "..."}``: 400
for a request h11 cannot parse (or h11's own hint, e.g. 431), 408 when the request
is not complete within ``read_timeout_s``, 413 when the body passes ``max_body``
(answered as soon as the limit is passed, without reading the rest). A client that
goes away gets nothing. HEAD, 204 and 304 answers are sent without a body, as HTTP
requires; a HEAD answer keeps the ``Content-Length`` of the body it leaves out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import h11

MAX_BODY = 64 * 1024
"""The default limit for a request body, in bytes."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """One complete request, as a handler gets it."""

    method: str
    """Upper case, as sent (``GET``, ``POST``...)."""
    path: str
    """The target's path, as sent (not percent-decoded); ``/`` at least."""
    query: str
    """The raw query string after ``?`` (empty when there is none)."""
    headers: Mapping[str, str]
    """Header names in lower case; a repeated header's values joined with ``, ``."""
    body: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """What a handler answers."""

    status: int
    """A final status code, 200..599."""
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = field(default=())
    """Extra headers; ``Content-Length`` and ``Connection`` are set by the server."""
    delay_s: float = 0.0
    """How long the server waits before it answers (a slow service); 0: at once."""

    def __post_init__(self) -> None:
        if not (isinstance(self.status, int) and 200 <= self.status <= 599):
            raise ValueError(f"status must be a final status code 200..599, not {self.status!r}")
        if not (isinstance(self.delay_s, int | float) and 0 <= self.delay_s < float("inf")):
            raise ValueError(
                f"delay_s must be a finite number of seconds >= 0, not {self.delay_s!r}"
            )

    @classmethod
    def json(
        cls, status: int, value: object, *, headers: tuple[tuple[str, str], ...] = ()
    ) -> Reply:
        """A reply with ``value`` encoded as a JSON body, plus ``headers``.

        Raises:
            TypeError: ``value`` cannot be encoded as JSON.
        """
        return cls(
            status=status,
            body=json.dumps(value).encode(),
            headers=(("content-type", "application/json"), *headers),
        )


Handler = Callable[[Request], Reply]
"""A route's handler: a complete request in, the reply out."""


class HttpServer:
    """Serve HTTP/1.1 requests on 127.0.0.1 (or another address) from a route table.

    Args:
        routes: ``(method, path) -> handler``; a path is exact or a prefix ending in
            ``/*`` (see the module docstring).
        max_body: the largest request body accepted, in bytes (larger: 413).
        read_timeout_s: the limit for receiving one whole request (slower: 408).

    Raises:
        ValueError: a route whose method is not an upper-case token or whose path does
            not start with ``/``; a ``max_body`` below 0 or a ``read_timeout_s`` not > 0.
    """

    def __init__(
        self,
        routes: Mapping[tuple[str, str], Handler],
        *,
        max_body: int = MAX_BODY,
        read_timeout_s: float = 10.0,
    ) -> None:
        for method, path in routes:
            if not (method.isascii() and method.isalpha() and method.isupper()):
                raise ValueError(f"route method must be an upper-case token, not {method!r}")
            if not path.startswith("/"):
                raise ValueError(f"route path must start with '/', not {path!r}")
        if not (isinstance(max_body, int) and max_body >= 0):
            raise ValueError(f"max_body must be a byte count >= 0, not {max_body!r}")
        if not (isinstance(read_timeout_s, int | float) and read_timeout_s > 0):
            raise ValueError(f"read_timeout_s must be > 0, not {read_timeout_s!r}")
        self.max_body = max_body
        self.read_timeout_s = float(read_timeout_s)
        self._exact: dict[str, dict[str, Handler]] = {}
        self._prefixes: dict[str, dict[str, Handler]] = {}
        for (method, path), handler in routes.items():
            if path.endswith("/*"):
                self._prefixes.setdefault(path[:-2], {})[method] = handler
            else:
                self._exact.setdefault(path, {})[method] = handler
        self.requests = 0
        """Requests read completely and routed (whatever the answer)."""
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}

    @property
    def running(self) -> bool:
        """Whether the server listens."""
        return self._server is not None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on ``host:port`` (port 0: a free one, read it from ``port``).

        Raises:
            OSError: the address cannot be bound.
        """
        self._server = await asyncio.start_server(self._serve, host, port)

    @property
    def port(self) -> int:
        """The TCP port (after ``start``).

        Raises:
            RuntimeError: the server is not started.
        """
        if self._server is None:
            raise RuntimeError("the HTTP server is not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        """The base URL (after ``start``), on 127.0.0.1."""
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        """Stop listening, drop the connections still open and wait for their tasks to end."""
        if self._server is None:
            return
        self._server.close()
        for writer in self._connections.values():
            writer.close()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    def _route(self, method: str, path: str) -> Reply | Handler:
        """The handler for ``method path``, or the 404/405 reply when there is none."""
        handlers = self._exact.get(path)
        if handlers is None:
            handlers = self._longest_prefix(path)
        if handlers is None:
            return Reply.json(404, {"error": f"no resource at {path}"})
        handler = handlers.get(method)
        if handler is None:
            allowed = ", ".join(sorted(handlers))
            return Reply.json(
                405,
                {"error": f"{method} is not allowed on {path}; use {allowed}"},
                headers=(("allow", allowed),),
            )
        return handler

    def _longest_prefix(self, path: str) -> dict[str, Handler] | None:
        best: str | None = None
        for prefix in self._prefixes:
            under = path == prefix or path.startswith(prefix + "/")
            if under and (best is None or len(prefix) > len(best)):
                best = prefix
        return None if best is None else self._prefixes[best]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # asyncio runs each connection's handler as a task
        self._connections[task] = writer
        connection = h11.Connection(h11.SERVER)
        try:
            received = await self._receive(connection, reader)
            if received is None:
                return  # the client closed the connection before sending a request
            if isinstance(received, Request):
                self.requests += 1
                reply = self._answer(received)
                head = received.method == "HEAD"
            else:
                reply, head = received, False
            if reply.delay_s:
                await asyncio.sleep(reply.delay_s)
            await self._write(connection, writer, reply, head=head)
            if connection.their_state is h11.SEND_BODY:
                writer.write_eof()
                await _discard_rest(reader)
        except (OSError, h11.LocalProtocolError):
            pass  # the client went away, or the connection cannot carry an answer any more
        finally:
            del self._connections[task]
            writer.close()

    async def _receive(
        self, connection: h11.Connection, reader: asyncio.StreamReader
    ) -> Request | Reply | None:
        """The request; or the error reply (400, 408, 413); None when the client left."""
        try:
            async with asyncio.timeout(self.read_timeout_s):
                return await self._read(connection, reader)
        except TimeoutError:
            return Reply.json(408, {"error": f"no complete request in {self.read_timeout_s:g} s"})
        except h11.RemoteProtocolError as exc:
            return Reply.json(exc.error_status_hint, {"error": f"bad request: {exc}"})

    def _answer(self, request: Request) -> Reply:
        found = self._route(request.method, request.path)
        return found if isinstance(found, Reply) else found(request)

    async def _read(
        self, connection: h11.Connection, reader: asyncio.StreamReader
    ) -> Request | Reply | None:
        head: h11.Request | None = None
        body = bytearray()
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                connection.receive_data(await reader.read(65536))
            elif isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > self.max_body:
                    return Reply.json(413, {"error": f"body over {self.max_body} bytes"})
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                return None
        assert head is not None  # h11 delivers EndOfMessage only after a Request
        return _request(head, bytes(body))

    @staticmethod
    async def _write(
        connection: h11.Connection, writer: asyncio.StreamWriter, reply: Reply, *, head: bool
    ) -> None:
        headers = [*reply.headers, ("connection", "close")]
        bodiless = head or reply.status in (204, 304)
        if reply.status not in (204, 304):
            headers.append(("content-length", str(len(reply.body))))
        response = h11.Response(status_code=reply.status, headers=headers)
        writer.write(connection.send(response) or b"")
        if reply.body and not bodiless:
            writer.write(connection.send(h11.Data(data=reply.body)) or b"")
        writer.write(connection.send(h11.EndOfMessage()) or b"")
        await writer.drain()


async def _discard_rest(reader: asyncio.StreamReader) -> None:
    """Drop the rest of a body (for up to 1 s) after answering early (413, 408).

    Closing a socket with unread input resets the connection, and the reset can reach
    the client before it has read the answer. Our side is shut down first, so a client
    that reads the answer and closes ends this at once.
    """
    with contextlib.suppress(TimeoutError, ConnectionError):
        async with asyncio.timeout(1.0):
            while await reader.read(65536):
                pass


def _request(head: h11.Request, body: bytes) -> Request:
    target = head.target.decode("latin-1")
    parts = urlsplit(target)
    headers: dict[str, str] = {}
    for name, value in head.headers:
        key = name.decode("latin-1")
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return Request(
        method=head.method.decode("ascii"),
        path=parts.path or "/",
        query=parts.query,
        headers=headers,
        body=body,
    )
