"""The QuecPython firmware's network for real: MQTT, TCP, UDP and HTTP on the one asyncio loop.

``RealQuecNet`` implements the firmware's ``QuecNet``. Every destination first goes
through ``resolve(host, port)``, vdtu's DNS: it maps the firmware's host names (an
Aliyun endpoint, a config's ``url``) to where vdtu's counterparts listen. Then:

* MQTT: one ``MqttLink`` of the loop's ``MqttHub`` per ``open_mqtt`` (one connection
  attempt; the firmware opens a new link to reconnect). ``link_up`` waits for the
  SUBACK of every subscription in the dial, as the module's ``subscribe`` does;
  messages that arrive before it (a persistent session's backlog) are handed over
  right after it. A CONNACK of "not authorized" or "bad user name or password" is a
  ``refused`` failure.
* TCP: ``loop.create_connection`` with the channel as its ``asyncio.Protocol``; UDP:
  a connected datagram socket (``create_datagram_endpoint(remote_addr=...)``). The
  only task is the connect attempt (at most ``CONNECT_TIMEOUT_S``); afterwards a
  socket costs its fd and its protocol object. Each read or datagram is one
  ``link_received(None, data)``.
* HTTP: one loop task per request (``http_client.request``), the URL rewritten to the
  resolved address and the ``Host`` header kept as the firmware's URL names it;
  answers up to ``MAX_HTTP_BODY`` (a FOTA image) are read.

Every report enters sim time through ``Clock.inject``, from a loop callback. The
``open_*`` and ``request`` methods are called *in* sim time, so they never report
synchronously: a failure found at once (a host ``resolve`` does not know, arguments
``MqttLink`` refuses) is reported from the loop's next turn.

After ``close()`` a link reports nothing more; a link that failed or was lost is done
too (its ``send`` returns None), and the firmware opens a new one.

A unit's link conditions (``vdtu.net.conditions``): an MQTT link hands them to its
``MqttLink`` (``impair``, ``reset``). A TCP or UDP link applies them between the
firmware and its transport: each write and each read crosses a ``Pacer`` per direction
(delivered by a loop timer, in order), a blackhole drops both (and hides the peer's FIN
or RST until it clears, when the link is lost as reset); a connect under a blackhole or
a connect timeout hangs until ``CONNECT_TIMEOUT_S``; ``reset`` aborts a TCP connection
with SO_LINGER 0 (an RST). An HTTP request crosses the link as one exchange (a
blackhole: no answer within its timeout). A credential request the platform refuses is
answered 503 by the platform's front end without reaching the service; a slow one is
sent ``delay_ms`` late.

Two choices: a dial with ``tls`` uses TLS only when ``tls_ca`` is given (vdtu's own
counterparts listen in plain text, so without a CA the dial goes to them unencrypted);
a UDP socket error (an ICMP "port unreachable") does not end the link, as a datagram
socket stays usable and the module reports UDP as always connected; it is counted in
``udp_errors``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import ssl
import struct
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

from vdtu.clock import Clock, FaultDomain
from vdtu.cloud.http_client import HttpError
from vdtu.cloud.http_client import request as http_request
from vdtu.firmware.quec.net import (
    RESET_REASON,
    HttpFailure,
    HttpRequest,
    HttpResponse,
    HttpResult,
    Link,
    LinkHandler,
    MqttDial,
    SocketDial,
    SocketKind,
)
from vdtu.links.mqtt_xgc import REFUSAL_REASONS
from vdtu.net.conditions import REFUSE_STATUS, Impairment, Pacer, PlatformConditions
from vdtu.net.mqtt import LinkState, MqttHub, MqttLink

CONNECT_TIMEOUT_S = 10.0
"""The limit for a TCP connect or a UDP socket setup (an MQTT attempt has its link's)."""

MAX_WRITE_BUFFER = 1024 * 1024
"""TCP bytes waiting for the peer beyond which ``send`` fails (a peer that stopped reading)."""

MAX_DATAGRAM = 65507
"""The largest UDP payload over IPv4."""

MAX_HTTP_BODY = 16 * 1024 * 1024
"""The largest HTTP answer a unit reads (a FOTA image is the largest thing it downloads)."""

Resolver = Callable[[str, int], tuple[str, int]]
"""``(host, port) -> (address, port)``; raises ``ValueError`` for a host it does not know."""


def same_address(host: str, port: int) -> tuple[str, int]:
    """The resolver that changes nothing (the firmware's hosts are real addresses)."""
    return host, port


def _describe(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return (exc.strerror or str(exc) or type(exc).__name__).lower()


def _abort(transport: asyncio.BaseTransport) -> None:
    """Close at once, dropping unsent data.

    Stream and datagram transports both have ``abort()``, but Python 3.11's selector
    datagram transport derives from ``Transport``, not ``DatagramTransport``, so the
    type is given by a cast rather than checked.
    """
    cast("asyncio.Transport", transport).abort()


class RealQuecNet:
    """The network as a fleet's QuecPython units reach it, for real.

    Args:
        clock: the door into sim time.
        hub: the loop's MQTT hub.
        resolve: maps each destination (MQTT, socket, HTTP) to an address; should give
            IP addresses (a name is looked up in asyncio's resolver thread pool).
        tls_ca: the CA file (PEM) that TLS dials verify the broker against.
    """

    def __init__(
        self,
        clock: Clock,
        hub: MqttHub,
        *,
        resolve: Resolver = same_address,
        tls_ca: Path | None = None,
    ) -> None:
        self.clock = clock
        self.hub = hub
        self.resolve = resolve
        self.tls_ca = tls_ca
        self.udp_errors = 0
        """Socket errors on UDP links (they do not end the link)."""
        self._links: set[_Channel] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop every socket of this network runs on."""
        return self.hub.loop

    @property
    def open_links(self) -> int:
        """Links connecting or connected (not failed, lost or closed)."""
        return len(self._links)

    def open_mqtt(
        self, dial: MqttDial, handler: LinkHandler, *, impairment: Impairment | None = None
    ) -> Link:
        """Start connecting to a broker; the outcome arrives through ``handler``."""
        channel = _MqttChannel(self, handler)
        channel.impairment = impairment
        channel.start(dial)
        return channel

    def open_socket(
        self, dial: SocketDial, handler: LinkHandler, *, impairment: Impairment | None = None
    ) -> Link:
        """Start a TCP connection or a connected UDP socket; the outcome through ``handler``."""
        channel: _SocketChannel
        if dial.kind is SocketKind.TCP:
            channel = _TcpChannel(self, handler)
        else:
            channel = _UdpChannel(self, handler)
        channel.impairment = impairment
        channel.start(dial.host, dial.port)
        return channel

    def request(
        self,
        request: HttpRequest,
        done: Callable[[HttpResult], None],
        *,
        impairment: Impairment | None = None,
        platform: PlatformConditions | None = None,
    ) -> None:
        """Make one HTTP request; ``done`` is called once, in sim time."""
        self._spawn(self._http(request, done, self.clock.env.domain, impairment, platform))

    async def wait_idle(self) -> None:
        """Wait for the HTTP requests in flight (for a clean shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def close(self) -> None:
        """Close every link still connecting or connected; they report nothing more."""
        for channel in tuple(self._links):
            channel.close()

    # -- used by the channels --

    def _report(self, callback: Callable[..., Any], *args: Any, domain: FaultDomain | None) -> None:
        """Hand a result to sim time now (from a loop callback, never from sim time), in the
        failure domain of the unit that asked."""
        self.clock.inject(callback, *args, domain=domain)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = self.loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _http(
        self,
        request: HttpRequest,
        done: Callable[[HttpResult], None],
        domain: FaultDomain | None,
        impairment: Impairment | None,
        platform: PlatformConditions | None,
    ) -> None:
        if impairment is None and platform is None:
            result = await self._fetch(request)
        else:
            result = await self._impaired_fetch(request, impairment, platform)
        self._report(done, result, domain=domain)

    async def _impaired_fetch(
        self,
        request: HttpRequest,
        impairment: Impairment | None,
        platform: PlatformConditions | None,
    ) -> HttpResult:
        loop = self.loop
        if impairment is not None and impairment.conditions.blocks_connect:
            await asyncio.sleep(request.timeout_s)
            return HttpFailure(
                reason=f"no answer from {request.url} within {request.timeout_s:g} s"
            )
        if impairment is not None:
            now = loop.time()
            conditions, rng = impairment.conditions, impairment.rng
            await asyncio.sleep(Pacer().arrival_at(now, len(request.body), conditions, rng) - now)
        result: HttpResult
        if platform is not None and platform.refuse:
            result = HttpResponse(status=REFUSE_STATUS, body=b"Service Unavailable")
        else:
            result = await self._fetch(request)
        if platform is not None:
            await asyncio.sleep(platform.delay_s)
        if impairment is not None:
            size = len(result.body) if isinstance(result, HttpResponse) else 0
            now = loop.time()
            conditions, rng = impairment.conditions, impairment.rng
            await asyncio.sleep(Pacer().arrival_at(now, size, conditions, rng) - now)
        return result

    async def _fetch(self, request: HttpRequest) -> HttpResult:
        try:
            url, host = self._resolve_url(request.url)
            headers = dict(request.headers)
            if not any(name.lower() == "host" for name in headers):
                headers["Host"] = host
            status, body = await http_request(
                request.method,
                url,
                request.body,
                headers,
                timeout_s=request.timeout_s,
                max_body=MAX_HTTP_BODY,
            )
        except (HttpError, ValueError) as exc:
            return HttpFailure(reason=str(exc))
        return HttpResponse(status=status, body=body)

    def _resolve(self, host: str, port: int) -> tuple[str, int]:
        """Where ``host:port`` is, by ``resolve``.

        Raises:
            ValueError: ``resolve`` does not know the host, or the port is not 1..65535.
        """
        if not (isinstance(port, int) and 1 <= port <= 65535):
            raise ValueError(f"port must be 1..65535, not {port!r}")
        try:
            address, where = self.resolve(host, port)
        except ValueError as exc:
            raise ValueError(f"cannot resolve host {host!r}: {exc}") from exc
        if not (isinstance(where, int) and 1 <= where <= 65535):
            raise ValueError(f"{host!r} resolved to port {where!r}, not one of 1..65535")
        return address, where

    def _resolve_url(self, url: str) -> tuple[str, str]:
        """The URL pointed at the resolved address, and the Host header of the original.

        Raises:
            ValueError: not an ``http://host[:port]`` URL, or a host ``resolve`` rejects.
        """
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"only http://host[:port]/path URLs are supported, not {url!r}")
        address, port = self._resolve(parts.hostname, parts.port or 80)
        netloc = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(("http", netloc, parts.path, parts.query, "")), host


class _Channel(ABC):
    """What every link shares: its handler, and the rule that it reports until it is done."""

    def __init__(self, net: RealQuecNet, handler: LinkHandler) -> None:
        self.net = net
        self.handler = handler
        self.domain = net.clock.env.domain
        """The unit that opened the link (links are opened in sim time, by its firmware)."""
        self.up = False
        """Connected, and ``link_up`` reported."""
        self.done = False
        """Failed, lost or closed: nothing more is reported and nothing is sent."""
        self.closed = False
        """``close()`` was called: not even a failure found earlier is reported now."""
        self.impairment: Impairment | None = None
        """The unit's link conditions (None: a healthy link)."""
        net._links.add(self)

    @abstractmethod
    def impair(self, impairment: Impairment | None) -> None:
        """Put the link under the unit's conditions from now on."""

    @abstractmethod
    def reset(self) -> None:
        """The network resets the link."""

    def _report(self, callback: Callable[..., Any], *args: Any) -> None:
        self.net._report(callback, *args, domain=self.domain)

    @abstractmethod
    def close(self) -> None:
        """End the link at once; nothing more is reported."""

    def _finish(self) -> None:
        self.done = True
        self.up = False
        self.net._links.discard(self)

    def _fail(self, reason: str, *, refused: bool = False, later: bool = False) -> None:
        if self.done:
            return
        self._finish()
        report = functools.partial(self.handler.link_failed, reason, refused=refused)
        if later:
            self.net.loop.call_soon(self._report_unless_closed, report)
        else:
            self._report(report)

    def _report_unless_closed(self, report: Callable[[], None]) -> None:
        if not self.closed:
            self._report(report)

    def _lose(self, reason: str) -> None:
        if self.done:
            return
        self._finish()
        self._report(self.handler.link_lost, reason)

    def _resolve(self, host: str, port: int) -> tuple[str, int] | None:
        """The resolved address, or None after reporting (later) that there is none."""
        try:
            return self.net._resolve(host, port)
        except ValueError as exc:
            self._fail(str(exc), later=True)
            return None


class _MqttChannel(_Channel):
    """One ``open_mqtt``: an ``MqttLink`` and its reports."""

    def __init__(self, net: RealQuecNet, handler: LinkHandler) -> None:
        super().__init__(net, handler)
        self._link: MqttLink | None = None
        self._unacked_subscriptions: set[str] = set()
        self._early: list[tuple[str, bytes]] = []
        self._acks: set[int] = set()

    def start(self, dial: MqttDial) -> None:
        address = self._resolve(dial.host, dial.port)
        if address is None:
            return
        host, port = address
        try:
            link = MqttLink(
                self.net.hub,
                client_id=dial.client_id,
                host=host,
                port=port,
                username=dial.username,
                password=dial.password,
                keepalive=dial.keepalive_s,
                tls_ca=self.net.tls_ca if dial.tls else None,
                clean_session=dial.clean_session,
            )
            for topic, qos in dial.subscriptions:
                link.subscribe(topic, qos)
        except ValueError as exc:  # ConfigError too: an unreadable tls_ca
            self._fail(f"cannot connect as configured: {exc}", later=True)
            return
        self._unacked_subscriptions = {topic for topic, _qos in dial.subscriptions}
        link.on_connected = self._connected
        link.on_subscribed = self._subscribed
        link.on_connect_failed = self._connect_failed
        link.on_disconnected = self._disconnected
        link.on_message = self._message
        link.on_published = self._published
        self._link = link
        if self.impairment is not None:
            link.impair(self.impairment)
        link.connect()

    def send(self, payload: bytes, *, topic: str | None = None, qos: int = 0) -> int | None:
        """Publish ``payload`` on ``topic``.

        Returns:
            The message id for QoS 1/2 (``link_acked`` follows), 0 for QoS 0, None when
            the link is not up.

        Raises:
            ValueError: no topic, a topic with wildcards, or a QoS other than 0, 1, 2.
        """
        if topic is None:
            raise ValueError("an MQTT link publishes on a topic, not topic=None")
        if not self.up or self._link is None:
            return None
        mid = self._link.publish(topic, payload, qos)
        if mid is None:
            return None
        if qos == 0:
            return 0
        self._acks.add(mid)
        return mid

    def close(self) -> None:
        """Drop the connection without DISCONNECT (the broker publishes any will)."""
        self.closed = True
        if self.done:
            return
        self._finish()
        self._end_link()

    def impair(self, impairment: Impairment | None) -> None:
        self.impairment = impairment
        if self._link is not None and self._link.state is not LinkState.CLOSED:
            self._link.impair(impairment)

    def reset(self) -> None:
        """An RST: the ``MqttLink`` reports the loss (or the failed attempt) next turn."""
        if self._link is not None and not self.done:
            self._link.reset()

    def _end_link(self) -> None:
        link, self._link = self._link, None
        if link is not None and link.state is not LinkState.CLOSED:
            link.abort()
            link.close()

    def _become_up(self) -> None:
        self.up = True
        self._report(self.handler.link_up)
        early, self._early = self._early, []
        for topic, payload in early:
            if not self.up:
                return  # the firmware closed the link in link_up or on an earlier message
            self._report(self.handler.link_received, topic, payload)

    # MqttLink's callbacks (on the loop).

    def _connected(self) -> None:
        if not self._unacked_subscriptions:
            self._become_up()

    def _subscribed(self, topic: str, _granted: int | None) -> None:
        self._unacked_subscriptions.discard(topic)
        if not self._unacked_subscriptions and not self.up and not self.done:
            self._become_up()

    def _connect_failed(self, reason: str) -> None:
        refused = any(text in reason.lower() for text in REFUSAL_REASONS)
        self._end_link()
        self._fail(reason, refused=refused)

    def _disconnected(self, reason: str) -> None:
        was_up = self.up
        self._end_link()
        if was_up:
            self._lose(reason)
        else:
            self._fail(f"{reason} before the subscriptions were acknowledged")

    def _message(self, topic: str, payload: bytes) -> None:
        if self.up:
            self._report(self.handler.link_received, topic, payload)
        elif not self.done:
            self._early.append((topic, payload))

    def _published(self, mid: int) -> None:
        if mid in self._acks:
            self._acks.discard(mid)
            self._report(self.handler.link_acked, mid)


class _SocketChannel(_Channel, asyncio.BaseProtocol):
    """What TCP and UDP links share: the connect task, the reports, ``close``."""

    def __init__(self, net: RealQuecNet, handler: LinkHandler) -> None:
        super().__init__(net, handler)
        self._transport: asyncio.BaseTransport | None = None
        self._attempt: asyncio.Task[None] | None = None
        self._shaper: _Shaper | None = None
        """Made when the link is first impaired; it lasts as long as the link."""
        self._peer_gone: str | None = None
        """How the peer ended the link while a blackhole hid it."""

    def impair(self, impairment: Impairment | None) -> None:
        was_blackholed = self._blackholed
        self.impairment = impairment
        if impairment is not None and self._shaper is None:
            self._shaper = _Shaper(self.net.loop)
        if was_blackholed and not self._blackholed and self._peer_gone is not None:
            self._lose(RESET_REASON)

    @property
    def _blackholed(self) -> bool:
        return self.impairment is not None and self.impairment.conditions.blackhole

    def reset(self) -> None:
        """TCP: abort with SO_LINGER 0 (an RST) and report the loss; UDP: nothing."""

    def _write_shaped(self, payload: bytes, write: Callable[[bytes], None]) -> bool:
        """Write ``payload`` now or when the conditions let it arrive; False: it vanished."""
        impairment = self.impairment
        if impairment is None and (self._shaper is None or self._shaper.idle):
            write(payload)
            return True
        if impairment is not None and impairment.conditions.blackhole:
            return False
        assert self._shaper is not None
        self._shaper.up(payload, impairment, write)
        return True

    def _received(self, data: bytes) -> None:
        if self.done:
            return
        impairment = self.impairment
        if impairment is None and (self._shaper is None or self._shaper.idle):
            self._report(self.handler.link_received, None, data)
            return
        if impairment is not None and impairment.conditions.blackhole:
            return
        assert self._shaper is not None
        self._shaper.down(data, impairment, self._deliver)

    def _deliver(self, data: bytes) -> None:
        if not self.done:
            self._report(self.handler.link_received, None, data)

    def start(self, host: str, port: int) -> None:
        address = self._resolve(host, port)
        if address is not None:
            self._attempt = self.net._spawn(self._connect(*address))

    async def _connect(self, host: str, port: int) -> None:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                if self.impairment is not None and self.impairment.conditions.blocks_connect:
                    await self.net.loop.create_future()  # the SYN vanishes: only the timeout
                await self._open(host, port)
        except TimeoutError:
            if not self.up:
                self._fail(f"timed out after {CONNECT_TIMEOUT_S:g} s connecting to {host}:{port}")
        except OSError as exc:
            if not self.up:
                self._fail(_describe(exc))
        finally:
            self._attempt = None

    @abstractmethod
    async def _open(self, host: str, port: int) -> None:
        """Create the socket with ``self`` as its protocol."""

    def close(self) -> None:
        """End the link at once (TCP: abort, no FIN); nothing more is reported."""
        self.closed = True
        if self.done:
            return
        self._finish()
        if self._attempt is not None:
            self._attempt.cancel()
        if self._transport is not None:
            _abort(self._transport)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.done:
            _abort(transport)
            return
        self._transport = transport
        self.up = True
        self._report(self.handler.link_up)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self.done:
            return
        if exc is None:
            reason = "closed by the peer"
        elif isinstance(exc, OSError):
            reason = f"connection lost: {_describe(exc)}"
        else:
            reason = f"connection lost: {exc}"
        if self._blackholed:
            self._peer_gone = reason  # the FIN or RST vanished on the way
            return
        self._lose(reason)


class _TcpChannel(_SocketChannel, asyncio.Protocol):
    """One TCP connection of the firmware."""

    async def _open(self, host: str, port: int) -> None:
        await self.net.loop.create_connection(lambda: self, host, port)

    def send(self, payload: bytes, *, topic: str | None = None, qos: int = 0) -> int | None:
        """Write ``payload``; 0, or None when not connected or the peer stopped reading."""
        transport = self._transport
        if self._peer_gone is not None and self._blackholed:
            return 0  # the write vanishes, as every packet does
        if not self.up or not isinstance(transport, asyncio.Transport) or transport.is_closing():
            return None
        if transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            return None
        self._write_shaped(payload, transport.write)
        return 0

    def reset(self) -> None:
        """Abort with SO_LINGER 0 (an RST to the peer); ``link_lost(RESET_REASON)``."""
        if self.done:
            return
        transport = self._transport
        if transport is not None:
            raw = transport.get_extra_info("socket")
            if raw is not None:
                with contextlib.suppress(OSError):
                    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._lose(RESET_REASON) if self.up else self._fail(RESET_REASON)
        if self._attempt is not None:
            self._attempt.cancel()
        if transport is not None:
            _abort(transport)

    def data_received(self, data: bytes) -> None:
        self._received(data)

    def eof_received(self) -> None:
        """The peer closed its side: close ours too (``connection_lost`` reports it)."""


class _UdpChannel(_SocketChannel, asyncio.DatagramProtocol):
    """One connected UDP socket of the firmware."""

    async def _open(self, host: str, port: int) -> None:
        await self.net.loop.create_datagram_endpoint(lambda: self, remote_addr=(host, port))

    def send(self, payload: bytes, *, topic: str | None = None, qos: int = 0) -> int | None:
        """Send one datagram; 0, or None when not up or the payload is over 65507 bytes."""
        if not self.up or self._transport is None:
            return None
        transport = cast("asyncio.DatagramTransport", self._transport)  # see _abort
        if len(payload) > MAX_DATAGRAM or transport.is_closing():
            return None
        self._write_shaped(payload, transport.sendto)
        return 0

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self._received(data)

    def error_received(self, exc: Exception) -> None:
        self.net.udp_errors += 1


class _Shaper:
    """A socket link's two directions under the unit's conditions: each burst is handed
    on (written, or reported) when its ``Pacer`` says it arrives, in order; loop timers
    only, one pending handle per direction."""

    __slots__ = ("_down", "_down_queue", "_loop", "_up", "_up_queue")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._up = Pacer()
        self._down = Pacer()
        self._up_queue: deque[tuple[float, bytes, Callable[[bytes], None]]] = deque()
        self._down_queue: deque[tuple[float, bytes, Callable[[bytes], None]]] = deque()

    @property
    def idle(self) -> bool:
        """Nothing is waiting: a burst may be handed on at once without overtaking one."""
        return not self._up_queue and not self._down_queue

    def up(
        self, data: bytes, impairment: Impairment | None, hand_on: Callable[[bytes], None]
    ) -> None:
        self._queue(self._up, self._up_queue, data, impairment, hand_on)

    def down(
        self, data: bytes, impairment: Impairment | None, hand_on: Callable[[bytes], None]
    ) -> None:
        self._queue(self._down, self._down_queue, data, impairment, hand_on)

    def _queue(
        self,
        pacer: Pacer,
        queue: deque[tuple[float, bytes, Callable[[bytes], None]]],
        data: bytes,
        impairment: Impairment | None,
        hand_on: Callable[[bytes], None],
    ) -> None:
        now = self._loop.time()
        if impairment is None:
            due = max(now, queue[-1][0]) if queue else now
        else:
            due = pacer.arrival_at(now, len(data), impairment.conditions, impairment.rng)
        queue.append((due, data, hand_on))
        if len(queue) == 1:
            self._loop.call_at(due, self._release, queue)

    def _release(self, queue: deque[tuple[float, bytes, Callable[[bytes], None]]]) -> None:
        now = self._loop.time()
        while queue and queue[0][0] <= now:
            _due, data, hand_on = queue.popleft()
            hand_on(data)
        if queue:
            self._loop.call_at(queue[0][0], self._release, queue)
