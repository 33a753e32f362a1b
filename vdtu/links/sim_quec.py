"""A simulated network for QuecPython units in sim time: a broker, socket servers, HTTP servers.

``SimQuecNet`` implements ``QuecNet`` with a fixed one-way latency, for virtual-time
tests and scenarios. The broker accepts a connection after one round trip when
``authenticate`` (default: everyone) says yes, delivers a device's publishes to
``published`` and a cloud message (``send``) to every device subscribed to that
exact topic, and acknowledges QoS 1 after one round trip. TCP and UDP servers are
registered by (host, port) and see each connection's data in ``received``; HTTP
servers are functions of the request. ``outage()`` makes every link fail and
every request go unanswered until ``restore()``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from vdtu.clock import DomainEnvironment, FaultDomain
from vdtu.firmware.quec.net import (
    HttpFailure,
    HttpRequest,
    HttpResponse,
    HttpResult,
    LinkHandler,
    MqttDial,
    SocketDial,
)

HttpServer = Callable[[HttpRequest], HttpResponse]


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

    def send(self, payload: bytes, *, topic: str | None = None, qos: int = 0) -> int | None:
        if not self.open or self.closed:
            return None
        net = self.net
        net.later(lambda: net.arrived(self, topic, payload))
        if qos == 0 or self.mqtt is None:
            return 0
        token = self.next_token
        self.next_token += 1
        net.later(lambda: self.handler.link_acked(token) if self.open else None, hops=2)
        return token

    def close(self) -> None:
        self.closed = True
        self.open = False

    def deliver(self, payload: bytes, topic: str | None = None) -> None:
        """The server side sends to the device (after the latency)."""
        with self.net.env.entered(self.domain):
            self.net.later(
                lambda: self.handler.link_received(topic, payload) if self.open else None
            )

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
        self.requests: list[HttpRequest] = []
        self.down = False

    def later(self, action: Callable[[], None], *, hops: int = 1) -> None:
        """Run ``action`` after ``hops`` one-way latencies."""
        event = self.env.timeout(self.latency_s * hops)
        event.callbacks.append(lambda _event: action())

    # -- the QuecNet interface -------------------------------------------------------------

    def open_mqtt(self, dial: MqttDial, handler: LinkHandler) -> SimLink:
        link = SimLink(self, handler, (dial.host, dial.port), mqtt=dial, domain=self.env.domain)
        self._open(link, server=(dial.host, dial.port) in self.brokers)
        return link

    def open_socket(self, dial: SocketDial, handler: LinkHandler) -> SimLink:
        link = SimLink(self, handler, (dial.host, dial.port), domain=self.env.domain)
        self._open(link, server=(dial.host, dial.port) in self.socket_servers)
        return link

    def request(self, request: HttpRequest, done: Callable[[HttpResult], None]) -> None:
        self.requests.append(request)
        server = self.http_servers.get(_http_address(request.url))
        result: HttpResult
        if self.down or server is None:
            result = HttpFailure(reason=f"no HTTP server answers {request.url}")
        else:
            result = server(request)
        self.later(lambda: done(result), hops=2)

    def _open(self, link: SimLink, *, server: bool) -> None:
        self.links.append(link)

        def answer() -> None:
            if link.closed:
                return
            if self.down or not server:
                link.handler.link_failed(f"no server at {link.address}", refused=False)
            elif link.mqtt is not None and not self.authenticate(link.mqtt):
                link.handler.link_failed("not authorized", refused=True)
            else:
                link.open = True
                link.handler.link_up()

        self.later(answer, hops=2)

    # -- the servers' side -----------------------------------------------------------------

    def arrived(self, link: SimLink, topic: str | None, payload: bytes) -> None:
        self.sent.append(Sent(at=float(self.env.now), topic=topic, payload=payload, link=link))
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
