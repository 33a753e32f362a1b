"""The local counterparts of a DTU's tcp, udp and http channels: servers that record traffic.

A QuecPython DTU with a ``tcp``/``udp`` channel opens a socket to its ``url:port`` and
sends, in this order: its **registration message** (v1 with ``reg == 1``, v2 on every
connect), a Python ``str(dict)`` such as ``{'csq': 23, 'imei': '867...', 'iccid': '898...',
'ver': '2.0.0'}`` (single quotes: not JSON); then **heartbeats** (the configured ``ping``
text every ``heartbeat`` seconds) mixed with **data** (uplink frames' payloads). An
``http`` channel makes one request per uplink. These servers stand in for the user's
servers, on 127.0.0.1:

* ``TcpDataServer``: one ``DataClient`` per connection. No task per connection (an
  ``asyncio.Protocol`` each), so thousands of units cost one fd and one object each.
* ``UdpDataServer``: one ``DataClient`` per source address, on one datagram socket.
* ``HttpDataServer``: any method of GET, POST, PUT, DELETE, HEAD on any path; records
  each exchange and answers 200 with the request's body, or the next canned answer
  queued for that path (``enqueue``), so a test can script what a unit gets back.

How a tcp/udp payload is classified (``MessageKind``): the **first** payload of a client
is its REGISTRATION when it parses (leniently: a Python literal or JSON, at most 512
bytes) as a dict with an ``imei``; the client is then addressable by that IMEI (the
newest client with an IMEI wins, so a unit that reconnects is found on its new
connection). A payload equal, byte for byte, to one of the server's ``ping_texts`` is
a HEARTBEAT: the server cannot know each unit's ping string, so the caller that wrote
the units' configs names them (no ping texts: nothing counts as a heartbeat). The rest
is DATA. With ``echo=True`` every DATA payload is sent straight back (tests, benchmarks).

TCP has no message boundaries and neither does the DTU's tcp channel: one read is one
payload. On loopback a DTU's send arrives as one read unless it is large or sent in a
burst. Every client keeps its last ``history`` payloads with the wall time of arrival.

Memory is bounded whatever the clients send (issue 9): a payload over ``max_message``
bytes (default 64 KiB) is dropped and counted in ``oversized`` (never recorded, classified
or echoed); a client keeps at most ``history_bytes`` of payloads (default 1 MiB; the
oldest go first); the UDP server keeps at most ``max_clients`` source addresses (a new
one beyond that is dropped and counted in ``refused_clients``; the TCP server's clients
are its open connections), and the IMEI index at most ``max_clients`` entries (the
oldest registration is forgotten first). Registrations are tried only up to
``REGISTRATION_MAX`` bytes, so ``ast.literal_eval`` never sees a large text.
"""

from __future__ import annotations

import ast
import asyncio
import json
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from vdtu.cloud.http_server import HttpServer, Reply, Request
from vdtu.errors import LinkBrokenError

Peer = tuple[str, int]
"""A client's (IP address, port)."""

REGISTRATION_MAX = 512
"""The longest payload tried as a registration message, in bytes."""

MAX_MESSAGE = 64 * 1024
"""The default largest tcp/udp payload recorded, in bytes."""
HISTORY_BYTES = 1024 * 1024
"""The default payload bytes a client keeps."""
MAX_CLIENTS = 100_000
"""The default number of clients (UDP source addresses, IMEIs) a server keeps."""

HTTP_METHODS = ("GET", "POST", "PUT", "DELETE", "HEAD")
"""The methods ``HttpDataServer`` answers on every path."""


class MessageKind(StrEnum):
    """What a tcp/udp payload was taken for."""

    REGISTRATION = "registration"
    HEARTBEAT = "heartbeat"
    DATA = "data"


@dataclass(frozen=True, slots=True, kw_only=True)
class Received:
    """One payload a data server received."""

    at: float
    """Wall time of arrival (the server's ``now()``, Unix seconds by default)."""
    kind: MessageKind
    data: bytes


def parse_registration(data: bytes) -> dict[str, Any] | None:
    """The DTU's registration message as a dict, or None when ``data`` is not one.

    Accepts the firmware's ``str(dict)`` (single quotes) and JSON; the dict must have
    an ``imei``. Payloads over ``REGISTRATION_MAX`` bytes are not tried.
    """
    if len(data) > REGISTRATION_MAX:
        return None
    try:
        text = data.decode().strip()
    except UnicodeDecodeError:
        return None
    if not (text.startswith("{") and text.endswith("}")):
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return None
    if not isinstance(value, dict) or "imei" not in value:
        return None
    return {str(key): item for key, item in value.items()}


class DataClient:
    """One DTU as a tcp/udp data server sees it: a connection, or a UDP source address.

    Attributes are read by tests and the console; the server updates them.
    """

    __slots__ = (
        "connected",
        "heartbeats",
        "history_bytes",
        "imei",
        "messages",
        "peer",
        "received",
        "registration",
        "stored_bytes",
    )

    def __init__(self, peer: Peer, *, history: int, history_bytes: int = HISTORY_BYTES) -> None:
        self.peer = peer
        """Where the client's packets come from."""
        self.imei: str | None = None
        """From the registration message (None without one)."""
        self.registration: dict[str, Any] | None = None
        """The registration message, parsed."""
        self.heartbeats = 0
        """Payloads equal to one of the server's ping texts."""
        self.messages = 0
        """Every payload received, whatever its kind."""
        self.received: deque[Received] = deque(maxlen=history)
        """The last payloads, oldest first (at most ``history`` and ``history_bytes``)."""
        self.history_bytes = history_bytes
        self.stored_bytes = 0
        """The bytes of the payloads in ``received``."""
        self.connected = True
        """False once a TCP connection has ended (a UDP client stays True)."""

    def __repr__(self) -> str:
        return f"DataClient({self.peer[0]}:{self.peer[1]}, imei={self.imei!r})"

    def keep(self, item: Received) -> None:
        """Record ``item``, dropping the oldest payloads past ``history`` or ``history_bytes``."""
        if len(self.received) == self.received.maxlen:
            self.stored_bytes -= len(self.received[0].data)
        self.received.append(item)
        self.stored_bytes += len(item.data)
        while self.stored_bytes > self.history_bytes and len(self.received) > 1:
            self.stored_bytes -= len(self.received.popleft().data)

    def payloads(self, kind: MessageKind = MessageKind.DATA) -> list[bytes]:
        """The recorded payloads of one kind, oldest first."""
        return [item.data for item in self.received if item.kind is kind]


MessageCallback = Callable[[DataClient, bytes], None]
"""Called with the client and the payload, for every payload, after it is recorded."""


class _Recorder:
    """What the tcp and udp servers share: the client table and the classification."""

    def __init__(
        self,
        *,
        ping_texts: Iterable[bytes],
        echo: bool,
        on_message: MessageCallback | None,
        history: int,
        now: Callable[[], float],
        max_message: int = MAX_MESSAGE,
        history_bytes: int = HISTORY_BYTES,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        for name, value in (
            ("history", history),
            ("max_message", max_message),
            ("history_bytes", history_bytes),
            ("max_clients", max_clients),
        ):
            if isinstance(value, bool) or not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be a count >= 1, not {value!r}")
        self.max_message = max_message
        """Payloads over this many bytes are dropped (``oversized``)."""
        self.history_bytes = history_bytes
        self.max_clients = max_clients
        self.oversized = 0
        """Payloads dropped for being over ``max_message``."""
        self.refused_clients = 0
        """Payloads from a new UDP source dropped because ``max_clients`` were known."""
        texts = frozenset(ping_texts)
        if not all(isinstance(text, bytes) for text in texts):
            raise TypeError(f"ping_texts must be bytes, not {sorted(map(repr, texts))}")
        self.ping_texts = texts
        """Payloads counted as heartbeats."""
        self.echo = echo
        """Send every DATA payload back to its client."""
        self.on_message = on_message
        self.history = history
        self.now = now
        self.clients: dict[Peer, DataClient] = {}
        """The current clients by address (TCP: the open connections)."""
        self._by_imei: dict[str, DataClient] = {}

    def client(self, target: str | Peer) -> DataClient:
        """The newest client with this IMEI, or the current client at this address.

        Raises:
            ValueError: no client is known by ``target``.
        """
        found = self._by_imei.get(target) if isinstance(target, str) else self.clients.get(target)
        if found is None:
            known = sorted(self._by_imei) or [f"{host}:{port}" for host, port in self.clients]
            raise ValueError(f"no client {target!r}; known: {', '.join(known) or 'none'}")
        return found

    def _record(self, client: DataClient, data: bytes) -> MessageKind | None:
        """Classify and keep a payload; None when it is over ``max_message`` (dropped)."""
        if len(data) > self.max_message:
            self.oversized += 1
            return None
        kind = MessageKind.DATA
        if client.messages == 0 and (registration := parse_registration(data)) is not None:
            kind = MessageKind.REGISTRATION
            client.registration = registration
            client.imei = str(registration["imei"])
            self._by_imei.pop(client.imei, None)  # re-inserted last: the newest
            self._by_imei[client.imei] = client
            while len(self._by_imei) > self.max_clients:
                del self._by_imei[next(iter(self._by_imei))]
        elif data in self.ping_texts:
            kind = MessageKind.HEARTBEAT
            client.heartbeats += 1
        client.messages += 1
        client.keep(Received(at=self.now(), kind=kind, data=data))
        if self.on_message is not None:
            self.on_message(client, data)
        return kind


class _TcpSession(asyncio.Protocol):
    """One accepted connection of a ``TcpDataServer``; its client is made in ``connection_made``."""

    transport: asyncio.Transport
    client: DataClient

    def __init__(self, server: TcpDataServer) -> None:
        self.server = server

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        host, port = transport.get_extra_info("peername")[:2]
        self.client = DataClient(
            (host, port), history=self.server.history, history_bytes=self.server.history_bytes
        )
        self.server._opened(self)

    def data_received(self, data: bytes) -> None:
        kind = self.server._record(self.client, data)
        if kind is MessageKind.DATA and self.server.echo:
            self.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._closed(self)


class TcpDataServer(_Recorder):
    """The counterpart of a DTU's tcp channel: accepts connections and records them.

    Args:
        host: the address to listen on.
        port: the TCP port; 0 picks a free one (read ``port`` after ``start``).
        ping_texts: payloads counted as heartbeats (the units' configured ``ping``).
        echo: send every DATA payload back.
        on_message: called for every payload (see ``MessageCallback``).
        history: how many payloads each client keeps.
        now: the clock of the arrival times (Unix time by default).
        max_message: the largest payload recorded (larger: dropped, ``oversized``).
        history_bytes: the payload bytes each client keeps.
        max_clients: the most clients kept by IMEI (and, for UDP, by address).

    Raises:
        ValueError: ``history`` or a limit below 1.
        TypeError: a ping text that is not bytes.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ping_texts: Iterable[bytes] = (),
        echo: bool = False,
        on_message: MessageCallback | None = None,
        history: int = 1000,
        now: Callable[[], float] = time.time,
        max_message: int = MAX_MESSAGE,
        history_bytes: int = HISTORY_BYTES,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        super().__init__(
            ping_texts=ping_texts,
            echo=echo,
            on_message=on_message,
            history=history,
            now=now,
            max_message=max_message,
            history_bytes=history_bytes,
            max_clients=max_clients,
        )
        self.host = host
        self._requested_port = port
        self._server: asyncio.Server | None = None
        self._sessions: dict[Peer, _TcpSession] = {}

    async def start(self) -> None:
        """Listen.

        Raises:
            OSError: the address cannot be bound.
        """
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _TcpSession(self), self.host, self._requested_port
        )

    @property
    def port(self) -> int:
        """The TCP port (after ``start``).

        Raises:
            RuntimeError: the server is not started.
        """
        if self._server is None:
            raise RuntimeError("the TCP data server is not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def describe(self) -> dict[str, Any]:
        """Where units reach this server, for discovery files."""
        return {"kind": "tcp", "host": self.host, "port": self.port}

    async def stop(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is None:
            return
        self._server.close()
        for session in tuple(self._sessions.values()):
            session.transport.abort()
        await self._server.wait_closed()
        self._server = None

    def send(self, target: str | Peer, data: bytes) -> None:
        """Send ``data`` to a client (by IMEI or address) on its connection.

        Raises:
            ValueError: no client is known by ``target``.
            LinkBrokenError: the client's connection has ended.
        """
        self._session(target).write(data)

    def disconnect(self, target: str | Peer) -> None:
        """Close a client's connection from the server side (FIN, as a server that quits).

        Raises:
            ValueError: no client is known by ``target``.
            LinkBrokenError: the client's connection has already ended.
        """
        self._session(target).close()

    def _session(self, target: str | Peer) -> asyncio.Transport:
        client = self.client(target)
        session = self._sessions.get(client.peer)
        if session is None or session.client is not client:
            raise LinkBrokenError(f"the connection of {client!r} has ended")
        return session.transport

    def _opened(self, session: _TcpSession) -> None:
        self.clients[session.client.peer] = session.client
        self._sessions[session.client.peer] = session

    def _closed(self, session: _TcpSession) -> None:
        client = session.client
        client.connected = False
        if self._sessions.get(client.peer) is session:
            del self._sessions[client.peer]
            del self.clients[client.peer]


class _UdpEndpoint(asyncio.DatagramProtocol):
    """The one socket of a ``UdpDataServer``."""

    def __init__(self, server: UdpDataServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.server._datagram(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        self.server.errors += 1


class UdpDataServer(_Recorder):
    """The counterpart of a DTU's udp channel: one socket, clients by source address.

    Args: as ``TcpDataServer``'s.

    Raises:
        ValueError: ``history`` or a limit below 1.
        TypeError: a ping text that is not bytes.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ping_texts: Iterable[bytes] = (),
        echo: bool = False,
        on_message: MessageCallback | None = None,
        history: int = 1000,
        now: Callable[[], float] = time.time,
        max_message: int = MAX_MESSAGE,
        history_bytes: int = HISTORY_BYTES,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        super().__init__(
            ping_texts=ping_texts,
            echo=echo,
            on_message=on_message,
            history=history,
            now=now,
            max_message=max_message,
            history_bytes=history_bytes,
            max_clients=max_clients,
        )
        self.host = host
        self._requested_port = port
        self._transport: asyncio.DatagramTransport | None = None
        self.errors = 0
        """Socket errors reported (an ICMP "port unreachable" from a client that is gone)."""

    async def start(self) -> None:
        """Bind the socket.

        Raises:
            OSError: the address cannot be bound.
        """
        loop = asyncio.get_running_loop()
        self._transport, _endpoint = await loop.create_datagram_endpoint(
            lambda: _UdpEndpoint(self), local_addr=(self.host, self._requested_port)
        )

    @property
    def port(self) -> int:
        """The UDP port (after ``start``).

        Raises:
            RuntimeError: the server is not started.
        """
        if self._transport is None:
            raise RuntimeError("the UDP data server is not started")
        port: int = self._transport.get_extra_info("sockname")[1]
        return port

    def describe(self) -> dict[str, Any]:
        """Where units reach this server, for discovery files."""
        return {"kind": "udp", "host": self.host, "port": self.port}

    async def stop(self) -> None:
        """Close the socket."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def send(self, target: str | Peer, data: bytes) -> None:
        """Send one datagram to a client (by IMEI or address).

        Raises:
            ValueError: no client is known by ``target``.
            LinkBrokenError: the server is stopped.
        """
        client = self.client(target)
        if self._transport is None:
            raise LinkBrokenError("the UDP data server is stopped")
        self._transport.sendto(data, client.peer)

    def _datagram(self, data: bytes, peer: Peer) -> None:
        client = self.clients.get(peer)
        if client is None:
            if len(self.clients) >= self.max_clients:
                self.refused_clients += 1
                return
            client = DataClient(peer, history=self.history, history_bytes=self.history_bytes)
            self.clients[peer] = client
        kind = self._record(client, data)
        if kind is MessageKind.DATA and self.echo and self._transport is not None:
            self._transport.sendto(data, peer)


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpExchange:
    """One request an ``HttpDataServer`` answered."""

    at: float
    """Wall time of arrival (the server's ``now()``)."""
    method: str
    path: str
    query: str
    body: bytes
    status: int
    """The status it was answered with."""


class HttpDataServer:
    """The counterpart of a DTU's http channel: answers every path, records every exchange.

    Args:
        host: the address to listen on.
        port: the TCP port; 0 picks a free one.
        body: the answer's body when nothing is queued for the path; None echoes the
            request's body (and its ``Content-Type``).
        on_request: called with every exchange, after it is recorded.
        history: how many exchanges are kept.
        max_body: the largest request body accepted (larger: 413).
        now: the clock of the arrival times (Unix time by default).

    Raises:
        ValueError: ``history`` below 1, or a bad ``max_body``.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        body: bytes | None = None,
        on_request: Callable[[HttpExchange], None] | None = None,
        history: int = 1000,
        max_body: int = 64 * 1024,
        now: Callable[[], float] = time.time,
    ) -> None:
        if not (isinstance(history, int) and history >= 1):
            raise ValueError(f"history must be a count >= 1, not {history!r}")
        self.host = host
        self.body = body
        self.on_request = on_request
        self.now = now
        self.exchanges: deque[HttpExchange] = deque(maxlen=history)
        """The last exchanges, oldest first."""
        self._requested_port = port
        self._queues: dict[str, deque[Reply]] = {}
        self._server = HttpServer(
            {(method, "/*"): self._answer for method in HTTP_METHODS}, max_body=max_body
        )

    async def start(self) -> None:
        """Listen.

        Raises:
            OSError: the address cannot be bound.
        """
        await self._server.start(self.host, self._requested_port)

    @property
    def port(self) -> int:
        """The TCP port (after ``start``)."""
        return self._server.port

    @property
    def url(self) -> str:
        """The base URL (after ``start``)."""
        return f"http://{self.host}:{self.port}"

    def describe(self) -> dict[str, Any]:
        """Where units reach this server, for discovery files."""
        return {"kind": "http", "host": self.host, "port": self.port, "url": self.url}

    async def stop(self) -> None:
        """Stop listening."""
        await self._server.stop()

    def enqueue(self, path: str, status: int, body: bytes = b"") -> None:
        """Answer the next request on ``path`` (exact, without query) with this.

        Answers queued for one path are used in order, one per request, whatever the
        method; when none is left the default answer applies again.

        Raises:
            ValueError: ``path`` does not start with ``/``, or ``status`` is not 200..599.
        """
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', not {path!r}")
        self._queues.setdefault(path, deque()).append(Reply(status=status, body=body))

    def _answer(self, request: Request) -> Reply:
        queue = self._queues.get(request.path)
        if queue:
            reply = queue.popleft()
        elif self.body is not None:
            reply = Reply(status=200, body=self.body)
        else:
            kind = request.headers.get("content-type")
            reply = Reply(
                status=200,
                body=request.body,
                headers=(("content-type", kind),) if kind is not None else (),
            )
        exchange = HttpExchange(
            at=self.now(),
            method=request.method,
            path=request.path,
            query=request.query,
            body=request.body,
            status=reply.status,
        )
        self.exchanges.append(exchange)
        if self.on_request is not None:
            self.on_request(exchange)
        return reply
