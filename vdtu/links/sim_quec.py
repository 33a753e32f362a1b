"""A simulated network for QuecPython units in sim time: a broker, socket servers, HTTP servers.

``SimQuecNet`` implements ``QuecNet`` with a fixed one-way latency, for virtual-time
tests and scenarios. The broker accepts a connection after one round trip when
``authenticate`` (default: everyone) says yes, delivers a device's publishes to
``published`` and a cloud message (``send``) to every device subscribed to that
exact topic, and acknowledges QoS 1 after one round trip. TCP and UDP servers are
registered by (host, port) and see each connection's data in ``received``; HTTP
servers are functions of the request. ``outage()`` makes every link fail and
every request go unanswered until ``restore()``.

A unit's link conditions (an ``Impairment``, ``vdtu.net.conditions``) act on its links
and requests as the network would: latency, jitter and a cap delay each packet through a
``Pacer`` per direction (never reordered); a blackhole swallows every packet both ways,
and only an MQTT link's keep-alive notices (``link_lost("keepalive timeout")`` one
keepalive after the PINGREQ that a keepalive without news sends, as paho does); a TCP
link stays "connected" with its data vanishing, and a UDP link has nothing to notice. A
new link under a blackhole or a connect timeout fails at ``CONNECT_TIMEOUT_S``; a request
gets no answer within its timeout. ``reset()`` loses an MQTT or TCP link with
``RESET_REASON``. A credential request with the platform's conditions is answered 503
(refused) or late (slow).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import simpy

from vdtu.clock import DomainEnvironment, FaultDomain
from vdtu.firmware.quec.net import (
    RESET_REASON,
    HttpFailure,
    HttpRequest,
    HttpResponse,
    HttpResult,
    LinkHandler,
    MqttDial,
    SocketDial,
    SocketKind,
)
from vdtu.net.conditions import REFUSE_STATUS, Impairment, Pacer, PlatformConditions

HttpServer = Callable[[HttpRequest], HttpResponse]

CONNECT_TIMEOUT_S = 10.0
"""How long a connection attempt waits (``MqttLink``'s and ``quec_net``'s limit)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Sent:
    """Something a device sent: an MQTT publish (``topic``) or socket data (``topic`` None)."""

    at: float
    topic: str | None
    payload: bytes
    link: SimLink


@dataclass(slots=True, eq=False)
class SimLink:
    """One device link (MQTT connection or socket) on the simulated network."""

    net: SimQuecNet
    handler: LinkHandler
    address: tuple[str, int]
    mqtt: MqttDial | None = None
    open: bool = False
    closed: bool = False
    next_token: int = 1
    received: list[bytes] = field(default_factory=list)
    """Socket links: what the device sent, in order."""
    domain: FaultDomain | None = None
    """The unit that opened the link: what the server side sends reaches it in its domain."""
    impairment: Impairment | None = None
    """The unit's link conditions (None: a healthy link)."""
    udp: bool = False
    """A UDP socket: no connection to reset."""
    up: Pacer = field(default_factory=Pacer)
    down: Pacer = field(default_factory=Pacer)
    last_in_at: float = 0.0
    """When the device last heard from the server."""
    watch: int = 0
    """Bumped when a keep-alive timer of a blackhole must be forgotten."""

    def _extra_s(self, pacer: Pacer, size: int) -> float | None:
        """A packet's delay beyond the latency; None: it vanishes."""
        impairment = self.impairment
        if impairment is None:
            return 0.0
        if impairment.conditions.blackhole:
            return None
        now = float(self.net.env.now)
        return pacer.arrival_at(now, size, impairment.conditions, impairment.rng) - now

    def send(self, payload: bytes, *, topic: str | None = None, qos: int = 0) -> int | None:
        if not self.open or self.closed:
            return None
        net = self.net
        extra = self._extra_s(self.up, len(payload) + len(topic or ""))
        arrival = (
            None
            if extra is None
            else net.later(lambda: net.arrived(self, topic, payload), extra_s=extra)
        )
        if qos == 0 or self.mqtt is None:
            return 0
        token = self.next_token
        self.next_token += 1
        if arrival is not None:  # the server's acknowledgement leaves as the publish arrives
            arrival.callbacks.append(lambda _event: self._ack_from_server(token))
        return token

    def _ack_from_server(self, token: int) -> None:
        extra = self._extra_s(self.down, 4)
        if extra is not None:
            self.net.later(lambda: self._acked(token), extra_s=extra)

    def _acked(self, token: int) -> None:
        if self.open:
            self.last_in_at = float(self.net.env.now)
            self.handler.link_acked(token)

    def close(self) -> None:
        self.closed = True
        self.open = False
        self.watch += 1

    def deliver(self, payload: bytes, topic: str | None = None) -> None:
        """The server side sends to the device (after the latency)."""
        with self.net.env.entered(self.domain):
            extra = self._extra_s(self.down, len(payload) + len(topic or ""))
            if extra is not None:
                self.net.later(lambda: self._received(topic, payload), extra_s=extra)

    def _received(self, topic: str | None, payload: bytes) -> None:
        if self.open:
            self.last_in_at = float(self.net.env.now)
            self.handler.link_received(topic, payload)

    def impair(self, impairment: Impairment | None) -> None:
        was = self.impairment is not None and self.impairment.conditions.blackhole
        self.impairment = impairment
        now = impairment is not None and impairment.conditions.blackhole
        if now == was or not self.open or self.closed:
            return
        self.watch += 1
        if now and self.mqtt is not None and self.mqtt.keepalive_s > 0:
            self._watch_keepalive(self.mqtt.keepalive_s)
        elif not now and not self.udp:
            # The NAT forgot the connection while its packets vanished: the device's next
            # packet (what it sent meanwhile, sent again) meets an RST, one latency after the
            # clear. (A UDP socket has no connection: what vanished is gone, as on a network.)
            with self.net.env.entered(self.domain):
                self.net.later(lambda: self.drop(RESET_REASON))

    def _watch_keepalive(self, keepalive: int) -> None:
        """paho's keep-alive under a blackhole: PINGREQ one keepalive after the last news
        (a healthy link's last PINGRESP is at most one keepalive old), then one keepalive
        for the PINGRESP that never comes."""
        now = float(self.net.env.now)
        last_in = self.last_in_at
        if now - last_in > keepalive:
            last_in += math.floor((now - last_in) / keepalive) * keepalive
        give_up_at = max(now, last_in + keepalive) + keepalive
        watch = self.watch

        def give_up() -> None:
            if self.watch == watch:
                self.drop("keepalive timeout")

        with self.net.env.entered(self.domain):
            self.net.later(give_up, extra_s=give_up_at - now, hops=0)

    def reset(self) -> None:
        if self.closed or self.udp:
            return
        self.watch += 1
        with self.net.env.entered(self.domain):
            if self.open:
                self.net.later(lambda: self.drop(RESET_REASON), hops=0)
            else:
                self.closed = True
                handler = self.handler
                self.net.later(lambda: handler.link_failed(RESET_REASON, refused=False), hops=0)

    def drop(self, reason: str) -> None:
        """The server side ends the link."""
        if self.open and not self.closed:
            self.open = False
            with self.net.env.entered(self.domain):
                self.handler.link_lost(reason)


class SimQuecNet:
    """Brokers, socket servers and HTTP servers in sim time.

    Args:
        env: the SimPy environment.
        latency_s: one-way delay of every packet.
    """

    def __init__(self, env: DomainEnvironment, *, latency_s: float = 0.02) -> None:
        self.env = env
        self.latency_s = latency_s
        self.brokers: set[tuple[str, int]] = set()
        self.socket_servers: set[tuple[str, int]] = set()
        self.http_servers: dict[tuple[str, int], HttpServer] = {}
        self.authenticate: Callable[[MqttDial], bool] = lambda _dial: True
        self.links: list[SimLink] = []
        self.sent: list[Sent] = []
        self.keep_sent = True
        """Whether ``sent`` keeps everything (a long scenario only counts it)."""
        self.on_sent: list[Callable[[Sent], None]] = []
        """Called with everything a device sends, as it arrives."""
        self.requests: list[HttpRequest] = []
        self.down = False
        self.connect_timeout_s = CONNECT_TIMEOUT_S

    def later(
        self, action: Callable[[], None], *, hops: int = 1, extra_s: float = 0.0
    ) -> simpy.Event:
        """Run ``action`` after ``hops`` one-way latencies and ``extra_s`` more; returns the
        event it runs on."""
        return self.env.call_later(self.latency_s * hops + extra_s, lambda _event: action())

    # -- the QuecNet interface -------------------------------------------------------------

    def open_mqtt(
        self, dial: MqttDial, handler: LinkHandler, *, impairment: Impairment | None = None
    ) -> SimLink:
        link = SimLink(
            self,
            handler,
            (dial.host, dial.port),
            mqtt=dial,
            domain=self.env.domain,
            impairment=impairment,
        )
        self._open(link, server=(dial.host, dial.port) in self.brokers)
        return link

    def open_socket(
        self, dial: SocketDial, handler: LinkHandler, *, impairment: Impairment | None = None
    ) -> SimLink:
        link = SimLink(
            self,
            handler,
            (dial.host, dial.port),
            domain=self.env.domain,
            impairment=impairment,
            udp=dial.kind is SocketKind.UDP,
        )
        self._open(link, server=(dial.host, dial.port) in self.socket_servers)
        return link

    def request(
        self,
        request: HttpRequest,
        done: Callable[[HttpResult], None],
        *,
        impairment: Impairment | None = None,
        platform: PlatformConditions | None = None,
    ) -> None:
        if impairment is not None and impairment.conditions.blocks_connect:
            reason = f"no answer from {request.url} within {request.timeout_s:g} s"
            self.later(lambda: done(HttpFailure(reason=reason)), hops=0, extra_s=request.timeout_s)
            return
        self.requests.append(request)
        server = self.http_servers.get(_http_address(request.url))
        result: HttpResult
        if platform is not None and platform.refuse:
            result = HttpResponse(status=REFUSE_STATUS, body=b"Service Unavailable")
        elif self.down or server is None:
            result = HttpFailure(reason=f"no HTTP server answers {request.url}")
        else:
            result = server(request)
        extra = 0.0 if platform is None else platform.delay_s
        if impairment is not None:
            conditions, rng = impairment.conditions, impairment.rng
            now = float(self.env.now)
            size = len(result.body) if isinstance(result, HttpResponse) else 0
            extra += Pacer().arrival_at(now, len(request.body), conditions, rng) - now
            extra += Pacer().arrival_at(now, size, conditions, rng) - now
        if 2 * self.latency_s + extra > request.timeout_s:
            reason = f"no answer from {request.url} within {request.timeout_s:g} s"
            self.later(lambda: done(HttpFailure(reason=reason)), hops=0, extra_s=request.timeout_s)
            return
        self.later(lambda: done(result), hops=2, extra_s=extra)

    def _open(self, link: SimLink, *, server: bool) -> None:
        self.links.append(link)
        impairment = link.impairment
        if impairment is not None and impairment.conditions.blocks_connect:
            reason = f"timed out after {self.connect_timeout_s:g} s connecting to {link.address}"

            def give_up() -> None:
                if not link.closed and not link.open:
                    link.closed = True
                    link.handler.link_failed(reason, refused=False)

            self.later(give_up, hops=0, extra_s=self.connect_timeout_s)
            return

        def answer() -> None:
            if link.closed:
                return
            if self.down or not server:
                link.handler.link_failed(f"no server at {link.address}", refused=False)
            elif link.mqtt is not None and not self.authenticate(link.mqtt):
                link.handler.link_failed("not authorized", refused=True)
            else:
                link.open = True
                link.last_in_at = float(self.env.now)
                link.handler.link_up()

        extra = 0.0
        if impairment is not None:
            extra = impairment.conditions.delay_s(impairment.rng) * 2
        self.later(answer, hops=2, extra_s=extra)

    # -- the servers' side -----------------------------------------------------------------

    def arrived(self, link: SimLink, topic: str | None, payload: bytes) -> None:
        sent = Sent(at=float(self.env.now), topic=topic, payload=payload, link=link)
        if self.keep_sent:
            self.sent.append(sent)
        for listener in self.on_sent:
            listener(sent)
        if topic is None:
            link.received.append(payload)

    def publish(self, topic: str, payload: bytes) -> int:
        """The cloud publishes; returns how many device links it reached."""
        reached = 0
        for link in self.links:
            topics = () if link.mqtt is None else link.mqtt.subscriptions
            if link.open and any(topic == subscribed for subscribed, _qos in topics):
                link.deliver(payload, topic)
                reached += 1
        return reached

    def open_links(self, address: tuple[str, int]) -> list[SimLink]:
        """The device links now open to ``address``."""
        return [link for link in self.links if link.open and link.address == address]

    def payloads(self, topic: str | None = None) -> list[bytes]:
        """What devices sent on ``topic`` (None: socket data), in order."""
        return [sent.payload for sent in self.sent if sent.topic == topic]

    def outage(self) -> None:
        """Every link is lost; new ones fail and requests go unanswered until ``restore``."""
        self.down = True
        for link in self.links:
            link.drop("the network is down")

    def restore(self) -> None:
        self.down = False


def _http_address(url: str) -> tuple[str, int]:
    rest = url.split("://", 1)[-1]
    host_port = rest.split("/", 1)[0]
    host, _, port = host_port.partition(":")
    return host, int(port) if port else 80
