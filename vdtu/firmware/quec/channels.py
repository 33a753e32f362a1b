"""The QuecPython DTU's cloud channels, each a SimPy process over a ``QuecNet`` link.

One driver per ``conf`` entry. Every driver keeps itself connected: it waits for
the cellular network, prepares its login (``logins.py``: plain MQTT, the Aliyun
and Tencent signatures, a dynamic registration first for one-type-one-secret),
connects, and when the attempt fails or the link drops it tries again after a
``Backoff`` delay (5 s doubling to 300 s, +/-20 % jitter). The v2 firmware has no
reconnect loop at all (it reconnects only when the next uplink arrives,
docs/spec/quec.md#8.10); a simulator that must replay stored data "when the channel comes back"
needs one, so this is vdtu's choice, documented in docs/quec-protocol.md.

The unit's link conditions (``ChannelHost.impairment``) go with every link a driver
opens and every request it makes; ``impair`` changes them on the link of the moment and
``reset_link`` has the network reset it (a loss like any other). A dynamic
registration is the unit's credential request (``http_event(..., credential=True)``).

What a driver reports goes to its ``ChannelHost`` (the firmware): ``channel_up``
(replay the offline store), ``channel_received`` (a downlink with its subscribe
topic id), and ``send_failed`` for every uplink it had accepted but could not get
acknowledged (a QoS 1 publish in flight when the link dropped), so nothing
accepted disappears without the firmware storing or counting it.

Types:

* ``MqttDriver``: mqtt, aliyun, txyun and quecthing (the Quectel cloud's wire
  protocol is not public; vdtu's stand-in is MQTT, ``logins.quecthing_dial``).
  ``state()`` is the seed's MQTT state (-1..2, docs/spec/quec.md#4.12), or the
  quecthing work state 0..12.
* ``SocketDriver``: tcp and udp. After each connect it sends the registration
  message (config ``reg``, docs/spec/quec.md#6.4: 1 the seed's JSON, a string that
  string, 0 nothing)
  and then the ``ping`` text every ``heartbeat`` seconds. ``state()`` is the socket
  state table's value (4 established, 2 connecting, 0 closed).
* ``HttpDriver``: one request per uplink with the config's method and url; a
  response body (status 200) is a downlink. At boot it sends ``reg_data`` when
  set. ``state()`` is the last status code (0 before any).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import simpy

from vdtu.clock.rng import RandomSource
from vdtu.firmware.backoff import Backoff
from vdtu.firmware.quec.channel_schema import (
    AliyunChannel,
    Channel,
    HttpChannel,
    MqttChannel,
    QuecthingChannel,
    TcpChannel,
    TxyunChannel,
    UdpChannel,
)
from vdtu.firmware.quec.executor import MqttState, QuecthingState, SocketState
from vdtu.firmware.quec.logins import LoginFailed, LoginNeeds, channel_topics, prepare_dial
from vdtu.firmware.quec.net import (
    HttpFailure,
    HttpRequest,
    HttpResult,
    Link,
    MqttDial,
    QuecNet,
    SocketDial,
    SocketKind,
)
from vdtu.log import LogLevel
from vdtu.net.conditions import Impairment

RECONNECT = Backoff(base_s=5.0, max_s=300.0)
"""The channels' reconnect policy (vdtu's; see the module comment)."""


class ChannelHost(Protocol):
    """What a driver needs from the firmware; every call is in sim time."""

    env: simpy.Environment
    rng: RandomSource

    @property
    def impairment(self) -> Impairment | None:
        """The unit's link conditions (None: a healthy link)."""

    def write_log(self, level: LogLevel, source: str, text: str) -> None: ...

    def event(self, kind: str, data: dict[str, Any]) -> None:
        """Hand an event of the unit to its observer (``UnitLog.event``)."""

    def network_ready(self) -> bool:
        """Whether the modem is registered with an active data call (data can flow)."""

    def dns_error(self, host: str) -> str | None:
        """Why ``host`` cannot be looked up now (the module's DNS fails), or None."""

    def wait_network(self) -> simpy.Event:
        """An event that fires when the modem is registered (at once if it is)."""

    def login_needs(self) -> LoginNeeds:
        """The unit's identity, clock and saved secrets, for logins."""

    def registration_message(self) -> str:
        """The tcp/udp registration message of the config's ``reg`` ("" for none)."""

    def http_event(self, request: HttpRequest, *, credential: bool = False) -> simpy.Event:
        """Make an HTTP request; the event's value is the ``HttpResult``. ``credential``:
        it asks an IoT cloud for the unit's credentials (the platform's conditions apply)."""

    def channel_up(self, cid: str) -> None:
        """The channel connected (replay its stored uplinks)."""

    def channel_received(self, cid: str, topic_id: str | None, payload: bytes) -> None:
        """A downlink; ``topic_id`` is the subscribe topic's id (MQTT types), else None."""

    def send_failed(self, cid: str, topic_id: str | None, payload: str, reason: str) -> None:
        """An uplink the driver accepted could not be delivered (store it or count it)."""


@dataclass(slots=True)
class _InFlight:
    topic_id: str | None
    payload: str


class _Events:
    """The handler of one link attempt; events of an abandoned attempt are ignored."""

    def __init__(self, driver: LinkDriver) -> None:
        self.driver = driver
        self.live = True

    def link_up(self) -> None:
        if self.live:
            self.driver.on_up()

    def link_failed(self, reason: str, *, refused: bool) -> None:
        if self.live:
            self.driver.on_ended(reason, refused=refused, established=False)

    def link_lost(self, reason: str) -> None:
        if self.live:
            self.driver.on_ended(reason, refused=False, established=True)

    def link_received(self, topic: str | None, payload: bytes) -> None:
        if self.live:
            self.driver.on_received(topic, payload)

    def link_acked(self, token: int) -> None:
        if self.live:
            self.driver.on_acked(token)


class Driver(ABC):
    """One channel: its state for code 11, its uplinks, its life as a SimPy process.

    Args:
        host: the firmware.
        net: the network.
        cid: the channel's ``conf`` key.
        channel: its configuration.
    """

    def __init__(self, host: ChannelHost, net: QuecNet, cid: str, channel: Channel) -> None:
        self.host = host
        self.env = host.env
        self.net = net
        self.cid = cid
        self.channel = channel
        self.connected = False
        self.sent = 0
        self.received = 0
        self.failures = 0
        """Connection attempts (or logins, or requests) that failed, in total."""
        self.connections = 0
        """Connections that came up."""
        self.links_lost = 0
        """Connections that went down without the unit closing them."""
        self.reconnects = 0
        """Connections that came up after an earlier one had been lost."""
        self.last_error = ""
        self._closed = False

    @property
    def source(self) -> str:
        """The log source: ``ch<cid>``."""
        return f"ch{self.cid}"

    @abstractmethod
    def state(self) -> int:
        """The live state for code 11 (the table of the channel's type)."""

    @abstractmethod
    def run(self) -> Generator[simpy.Event, Any, None]:
        """The channel's life, as a process; ends at ``close``."""

    @abstractmethod
    def send(self, payload: str, topic_id: str | None) -> str | None:
        """Send one uplink now.

        Returns:
            None when it was handed to the network (a failure after that is reported
            through ``ChannelHost.send_failed``); otherwise why it could not be sent.
        """

    @abstractmethod
    def close(self) -> None:
        """Power-off: drop the link."""

    @abstractmethod
    def network_lost(self, reason: str) -> None:
        """The data call went away: a link dies with it (it reconnects when data is back)."""

    @abstractmethod
    def impair(self, impairment: Impairment | None) -> None:
        """The unit's link conditions changed: the link of the moment takes them."""

    @abstractmethod
    def reset_link(self) -> None:
        """The network resets the link of the moment (if any)."""

    def on_received(self, topic: str | None, payload: bytes) -> None:
        self.received += 1
        self.host.channel_received(self.cid, self.topic_id_of(topic), payload)

    def topic_id_of(self, topic: str | None) -> str | None:
        """The id a downlink carries to the serial port (subscribe topic id, request id)."""
        return None


class LinkDriver(Driver):
    """A channel with a connection: the connect loop and the in-flight bookkeeping."""

    def __init__(self, host: ChannelHost, net: QuecNet, cid: str, channel: Channel) -> None:
        super().__init__(host, net, cid, channel)
        self.link: Link | None = None
        self.attempts = 0
        self._events: _Events | None = None
        self._ended: simpy.Event | None = None
        self._in_flight: dict[int, _InFlight] = {}

    # -- the connect loop ----------------------------------------------------------------

    def run(self) -> Generator[simpy.Event, Any, None]:
        """The channel's life: connect, stay connected, reconnect; ends at ``close``."""
        try:
            while not self._closed:
                if not self.host.network_ready():
                    yield self.host.wait_network()
                dial = yield from self.prepare()
                dns_error = None if dial is None else self.host.dns_error(dial.host)
                if dns_error is not None:
                    self.last_error = dns_error
                    self.host.write_log(LogLevel.WARN, self.source, dns_error)
                if dial is None or dns_error is not None:
                    yield from self._pause()
                    continue
                self._ended = self.env.event()
                self._events = _Events(self)
                self.link = self.open(dial, self._events)
                outcome: str = yield self._ended
                if outcome == "lost":
                    self.links_lost += 1
                    yield self.env.timeout(RECONNECT.delay_s(0, self.host.rng))
                else:
                    yield from self._pause()
        finally:
            self._drop("the channel was closed")

    def _pause(self) -> Generator[simpy.Event, Any, None]:
        self.attempts += 1
        self.failures += 1
        yield self.env.timeout(RECONNECT.delay_s(self.attempts - 1, self.host.rng))

    @abstractmethod
    def prepare(self) -> Generator[simpy.Event, Any, Any]:
        """Work out what to dial (may make requests first); None after a logged failure."""

    @abstractmethod
    def open(self, dial: Any, events: _Events) -> Link:
        """Start the link attempt."""

    def close(self) -> None:
        """Power-off: drop the link; the process ends by itself when interrupted."""
        self._closed = True
        self._drop("power-off")

    def impair(self, impairment: Impairment | None) -> None:
        if self.link is not None:
            self.link.impair(impairment)

    def reset_link(self) -> None:
        if self.link is not None:
            self.link.reset()

    def network_lost(self, reason: str) -> None:
        ended = self._ended
        if ended is not None and not ended.triggered and self.link is not None:
            self.on_ended(reason, refused=False, established=self.connected)

    def _drop(self, reason: str) -> None:
        if self._events is not None:
            self._events.live = False
            self._events = None
        if self.link is not None:
            self.link.close()
            self.link = None
        was_connected = self.connected
        self.connected = False
        self._fail_in_flight(reason)
        if was_connected:
            self.host.event("cloud", {"up": False, "channel": self.cid, "reason": reason})
            self.on_down(reason)

    # -- link events (sim time) ----------------------------------------------------------

    def on_up(self) -> None:
        self.connected = True
        self.host.event("cloud", {"up": True, "channel": self.cid})
        self.connections += 1
        if self.links_lost:
            self.reconnects += 1
        self.attempts = 0
        self.last_error = ""
        self.host.write_log(LogLevel.INFO, self.source, f"{self.channel.protocol} connected")
        self.after_up()
        self.host.channel_up(self.cid)

    def after_up(self) -> None:
        """Type-specific work right after connecting (registration message, heartbeat)."""

    def on_down(self, reason: str) -> None:
        """Type-specific work after the link went down."""

    def on_ended(self, reason: str, *, refused: bool, established: bool) -> None:
        self.last_error = reason
        level = LogLevel.WARN
        what = "lost" if established else ("refused" if refused else "connect failed")
        self.host.write_log(level, self.source, f"{self.channel.protocol} {what}: {reason}")
        self.note_failure(refused=refused, established=established)
        ended = self._ended
        self._drop(reason)
        if ended is not None and not ended.triggered:
            ended.succeed("lost" if established else "failed")

    def note_failure(self, *, refused: bool, established: bool) -> None:
        """Type-specific state after a failure."""

    def on_acked(self, token: int) -> None:
        self._in_flight.pop(token, None)

    def _fail_in_flight(self, reason: str) -> None:
        in_flight, self._in_flight = self._in_flight, {}
        for item in in_flight.values():
            self.host.send_failed(
                self.cid, item.topic_id, item.payload, f"not acknowledged: {reason}"
            )

    # -- uplinks -------------------------------------------------------------------------

    def send(self, payload: str, topic_id: str | None) -> str | None:
        if self.link is None or not self.connected:
            return f"channel {self.cid} ({self.channel.protocol}) is not connected"
        return self.transmit(self.link, payload, topic_id)

    def transmit(self, link: Link, payload: str, topic_id: str | None) -> str | None:
        token = link.send(payload.encode())
        if token is None:
            return f"channel {self.cid}: the write failed"
        self.sent += 1
        return None

    def track(self, token: int, topic_id: str | None, payload: str) -> None:
        """Remember a publish until its acknowledgement."""
        self._in_flight[token] = _InFlight(topic_id, payload)


class MqttDriver(LinkDriver):
    """mqtt, aliyun, txyun and quecthing channels."""

    channel: MqttChannel | AliyunChannel | TxyunChannel | QuecthingChannel

    def __init__(
        self,
        host: ChannelHost,
        net: QuecNet,
        cid: str,
        channel: MqttChannel | AliyunChannel | TxyunChannel | QuecthingChannel,
    ) -> None:
        super().__init__(host, net, cid, channel)
        self.dial: MqttDial | None = None
        self.subscribe_topics, self.publish_topics = channel_topics(channel, host.login_needs())
        """Topic id -> topic, both ways (they depend only on the channel and the IMEI)."""
        self.refused = False
        self.work_state = QuecthingState.INITIALISED

    def state(self) -> int:
        if isinstance(self.channel, QuecthingChannel):
            return int(self.work_state)
        if self.connected:
            return int(MqttState.CONNECTED)
        if self.link is not None:
            return int(MqttState.CONNECTING)
        if self.refused:
            return int(MqttState.ERROR)
        return int(MqttState.SERVER_CLOSED)

    def prepare(self) -> Generator[simpy.Event, Any, MqttDial | None]:
        self.work_state = QuecthingState.AUTHENTICATING
        result = yield from prepare_dial(
            self.channel,
            self.host.login_needs(),
            lambda request: self.host.http_event(request, credential=True),
        )
        if isinstance(result, LoginFailed):
            self.last_error = result.reason
            self.work_state = QuecthingState.AUTHENTICATION_FAILED
            self.host.write_log(LogLevel.ERROR, self.source, result.reason)
            return None
        self.dial = result
        return result

    def open(self, dial: MqttDial, events: _Events) -> Link:
        return self.net.open_mqtt(dial, events, impairment=self.host.impairment)

    def after_up(self) -> None:
        self.refused = False
        self.work_state = QuecthingState.SUBSCRIBED

    def note_failure(self, *, refused: bool, established: bool) -> None:
        self.refused = refused
        if refused:
            self.work_state = QuecthingState.AUTHENTICATION_FAILED
        elif established:
            self.work_state = QuecthingState.INITIALISED
        else:
            self.work_state = QuecthingState.REGISTRATION_FAILED

    def topic_id_of(self, topic: str | None) -> str | None:
        if self.dial is None or topic is None:
            return None
        for topic_id, subscribed in self.subscribe_topics.items():
            if subscribed == topic:
                return topic_id
        return None

    def transmit(self, link: Link, payload: str, topic_id: str | None) -> str | None:
        topics = self.publish_topics
        if topic_id is None or isinstance(self.channel, QuecthingChannel):  # pkgid: ignored
            topic = next(iter(topics.values()))
        elif topic_id in topics:
            topic = topics[topic_id]
        else:
            return (
                f"channel {self.cid}: publish topic id {topic_id!r} is not configured "
                f"(configured: {', '.join(topics)})"
            )
        qos = self.channel.qos
        token = link.send(payload.encode(), topic=topic, qos=qos)
        if token is None:
            return f"channel {self.cid}: the publish failed"
        self.sent += 1
        if qos > 0:
            self.track(token, topic_id, payload)
        return None


class SocketDriver(LinkDriver):
    """tcp and udp channels."""

    channel: TcpChannel | UdpChannel

    def __init__(
        self, host: ChannelHost, net: QuecNet, cid: str, channel: TcpChannel | UdpChannel
    ) -> None:
        super().__init__(host, net, cid, channel)
        self.heartbeats = 0
        self._heartbeat: simpy.Process | None = None

    def state(self) -> int:
        if self.connected:
            return int(SocketState.ESTABLISHED)
        if self.link is not None:
            return int(SocketState.SYN_SENT)
        return int(SocketState.CLOSED)

    def prepare(self) -> Generator[simpy.Event, Any, SocketDial | None]:
        yield from ()
        kind = SocketKind.TCP if isinstance(self.channel, TcpChannel) else SocketKind.UDP
        return SocketDial(kind=kind, host=self.channel.url, port=self.channel.port)

    def open(self, dial: SocketDial, events: _Events) -> Link:
        return self.net.open_socket(dial, events, impairment=self.host.impairment)

    def after_up(self) -> None:
        message = self.host.registration_message()
        if message and self.link is not None:
            self.transmit(self.link, message, None)
        channel = self.channel
        if channel.ping and channel.heartbeat_s > 0:
            self._heartbeat = self.env.process(self._beat(channel.ping, channel.heartbeat_s))

    def _beat(self, ping: str, period_s: int) -> Generator[simpy.Event, Any, None]:
        try:
            while self.connected and self.link is not None:
                yield self.env.timeout(period_s)
                if self.connected and self.link is not None:
                    self.link.send(ping.encode())
                    self.heartbeats += 1
        except simpy.Interrupt:
            return

    def on_down(self, reason: str) -> None:
        beat, self._heartbeat = self._heartbeat, None
        if beat is not None and beat.is_alive and beat is not self.env.active_process:
            beat.interrupt(reason)


class HttpDriver(Driver):
    """http channels: no connection, one request per uplink."""

    channel: HttpChannel

    def __init__(self, host: ChannelHost, net: QuecNet, cid: str, channel: HttpChannel) -> None:
        super().__init__(host, net, cid, channel)
        self.last_status = 0

    def state(self) -> int:
        return self.last_status

    def run(self) -> Generator[simpy.Event, Any, None]:
        """At boot: the ``reg_data`` request when configured (v1), then the channel is ready."""
        if not self.host.network_ready():
            yield self.host.wait_network()
        self.connected = True
        if self.channel.reg_data:
            self.send(self.channel.reg_data, None)
        self.host.channel_up(self.cid)

    def close(self) -> None:
        self._closed = True
        self.connected = False

    def network_lost(self, reason: str) -> None:
        """No connection to lose: each request checks the network itself."""

    def impair(self, impairment: Impairment | None) -> None:
        """No connection to impair: each request is made under the conditions of its time."""

    def reset_link(self) -> None:
        """No connection to reset."""

    def send(self, payload: str, topic_id: str | None) -> str | None:
        if self._closed:
            return f"channel {self.cid} (http) is closed"
        if not self.host.network_ready():
            return f"channel {self.cid} (http): no cellular network"
        dns_error = self.host.dns_error(urlsplit(self.channel.url).hostname or "")
        if dns_error is not None:
            return f"channel {self.cid} (http): {dns_error}"
        channel = self.channel
        method = channel.method.value.upper()
        request = HttpRequest(
            method=method,
            url=channel.url,
            body=b"" if method in ("GET", "HEAD") else payload.encode(),
            headers={"content-type": "application/json"},
            timeout_s=float(channel.timeout_s or 30),
        )
        self.sent += 1
        self.net.request(
            request,
            lambda result: self._answered(result, topic_id, payload),
            impairment=self.host.impairment,
        )
        return None

    def _answered(self, result: HttpResult, topic_id: str | None, payload: str) -> None:
        if self._closed:
            return
        if isinstance(result, HttpFailure):
            self.last_error = result.reason
            self.host.write_log(LogLevel.WARN, self.source, f"http request failed: {result.reason}")
            self.host.send_failed(self.cid, topic_id, payload, result.reason)
            return
        self.last_status = result.status
        if result.status != 200:
            reason = f"http status {result.status}"
            self.last_error = reason
            self.host.write_log(LogLevel.WARN, self.source, reason)
            self.host.send_failed(self.cid, topic_id, payload, reason)
            return
        if result.body:
            self.on_received(None, result.body)
        self.host.channel_up(self.cid)

    def topic_id_of(self, topic: str | None) -> str | None:
        return "0"


def make_driver(host: ChannelHost, net: QuecNet, cid: str, channel: Channel) -> Driver:
    """The driver of a channel's type."""
    match channel:
        case MqttChannel() | AliyunChannel() | TxyunChannel() | QuecthingChannel():
            return MqttDriver(host, net, cid, channel)
        case TcpChannel() | UdpChannel():
            return SocketDriver(host, net, cid, channel)
        case HttpChannel():
            return HttpDriver(host, net, cid, channel)
    raise TypeError(f"no driver for channel {cid!r} of type {type(channel).__name__}")
