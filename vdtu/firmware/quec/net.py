"""What the QuecPython firmware needs from the network, as interfaces.

The firmware runs in sim time and never touches a socket. Its channel drivers ask a
``QuecNet`` for an MQTT connection (mqtt, aliyun, txyun and quecthing channels), a
TCP or UDP socket, or one HTTP request; the implementation does the real work
(asyncio sockets and paho on the loop in real time, ``vdtu.links.quec_net``; or
scripted counterparts in virtual time, ``vdtu.links.sim_quec``) and reports back
through a ``LinkHandler`` or a ``done`` callback, always *in sim time* (a real-time
implementation goes through ``Clock.inject``).

Host names are the firmware's own (``<ProductKey>.iot-as-mqtt.cn-shanghai.aliyuncs.com``
for Aliyun, the config's ``url`` for the others); mapping them to the local
counterparts vdtu serves is the implementation's business, as DNS is the network's.

The unit's link conditions (``vdtu.net.conditions``) go with every link and request as
an ``Impairment`` (None on a healthy link); ``Link.impair`` changes them on a link that
exists and ``Link.reset`` has the network reset it. A credential request (an IoT
cloud's dynamic registration) carries the platform's conditions for the unit: refused,
it is answered HTTP 503 by the platform's front end; slow, that much later.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

from vdtu.net.conditions import Impairment, PlatformConditions

RESET_REASON = "connection reset by peer"
"""What a link reset by the network reports (``link_lost``)."""


class SocketKind(StrEnum):
    TCP = "tcp"
    UDP = "udp"


@dataclass(frozen=True, slots=True, kw_only=True)
class MqttDial:
    """One MQTT connection to make (MQTT 3.1.1)."""

    host: str
    port: int
    client_id: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    keepalive_s: int = 120
    clean_session: bool = True
    subscriptions: tuple[tuple[str, int], ...] = ()
    """(topic, QoS) subscribed once the broker accepted the connection."""
    tls: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SocketDial:
    """One TCP connection, or one connected UDP socket, to make."""

    kind: SocketKind
    host: str
    port: int


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpRequest:
    """One HTTP/1.1 request (one connection each, ``Connection: close``)."""

    method: str
    """``GET``, ``POST``, ``PUT``, ``DELETE`` or ``HEAD``."""
    url: str
    """``http://host[:port]/path[?query]``."""
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpResponse:
    status: int
    body: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpFailure:
    """No response: connection refused or lost, timeout, or a malformed answer."""

    reason: str


HttpResult = HttpResponse | HttpFailure


class LinkHandler(Protocol):
    """Where a link reports; every call happens in sim time."""

    def link_up(self) -> None:
        """Connected (MQTT: the broker accepted and the subscriptions are made; UDP: at once)."""

    def link_failed(self, reason: str, *, refused: bool) -> None:
        """The attempt failed; ``refused``: the server refused the credentials."""

    def link_lost(self, reason: str) -> None:
        """An established link was lost (or the peer closed it)."""

    def link_received(self, topic: str | None, payload: bytes) -> None:
        """Data arrived: an MQTT message on ``topic``; a TCP read or UDP datagram (topic None)."""

    def link_acked(self, token: int) -> None:
        """The broker acknowledged the QoS 1/2 publish that returned ``token``."""


class Link(Protocol):
    """One connection attempt and, if it succeeds, the connection."""

    def send(self, payload: bytes, *, topic: str | None = None, qos: int = 0) -> int | None:
        """Send now.

        Returns:
            None when it could not be sent (not connected, or the write failed); else a
            token: for an MQTT publish with QoS > 0 an acknowledgement follows through
            ``link_acked(token)``; for QoS 0, TCP and UDP the token is 0 and nothing follows.
        """

    def close(self) -> None:
        """End the link at once (MQTT: without DISCONNECT, so a will would be published)."""

    def impair(self, impairment: Impairment | None) -> None:
        """Put the link under the unit's conditions from now on (None: none)."""

    def reset(self) -> None:
        """The network resets the link (TCP, MQTT: an RST both ways; UDP has no connection
        and is untouched): ``link_lost(RESET_REASON)``, or ``link_failed`` while
        connecting, follows in sim time, never synchronously."""


@runtime_checkable
class QuecNet(Protocol):
    """The network as the QuecPython firmware reaches it."""

    def open_mqtt(
        self, dial: MqttDial, handler: LinkHandler, *, impairment: Impairment | None = None
    ) -> Link:
        """Start connecting to a broker; the outcome arrives through ``handler``."""

    def open_socket(
        self, dial: SocketDial, handler: LinkHandler, *, impairment: Impairment | None = None
    ) -> Link:
        """Start a TCP connection or a connected UDP socket; the outcome through ``handler``."""

    def request(
        self,
        request: HttpRequest,
        done: Callable[[HttpResult], None],
        *,
        impairment: Impairment | None = None,
        platform: PlatformConditions | None = None,
    ) -> None:
        """Make one HTTP request; ``done`` is called once, in sim time. ``platform``: it
        is a credential request, and the platform's conditions for the unit."""
