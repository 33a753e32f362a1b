"""A simulated XGC platform and broker in sim time, for virtual-time tests and scenarios.

It implements ``XgcCloud`` the way the real platform and an MQTT broker behave,
with a fixed one-way latency: credentials come back after one round trip, a
connection is accepted (or refused) after one, a QoS 1 publish is acknowledged
after one. ``outage()`` takes the broker down (every connection is lost, new ones
fail) until ``restore()``; a connection that ends without a DISCONNECT has its
will published, retained, as a broker would. Everything devices publish is kept
in ``published`` with its sim time; ``send`` delivers a cloud message to the
device subscribed to the topic.

A unit's link conditions (an ``Impairment``, see ``vdtu.net.conditions``) act on its
requests and connections as the network between it and the cloud would:

* latency, jitter and a bandwidth cap delay every packet of the connection (a publish,
  its PUBACK, a cloud message, the CONNACK, the credential answer) through one ``Pacer``
  per direction, so nothing is reordered;
* a blackhole swallows every packet both ways. Keep-alive is what notices (as paho and
  the broker do; see ``_blackholed``): the client sends PINGREQ when nothing arrived for
  ``keepalive_s`` and gives up one keepalive later without a PINGRESP
  (``cloud_lost("keepalive timeout")``); the broker drops a client it has heard nothing
  from for 1.5 keepalives and publishes its will. Publishes meanwhile are never
  acknowledged. A new connection or credential request never gets through: it fails
  at the client's timeout (``CONNECT_TIMEOUT_S``, ``HTTP_TIMEOUT_S``);
* a connect timeout makes new connections (and credential requests) fail the same way;
* ``reset()`` drops the connection at the broker (the will) and reports
  ``cloud_lost("connection reset by peer")``.

The platform's conditions (``set_platform_conditions``) are per IMEI: a refused request
is answered HTTP 503 (the device hears ``InfoUnreachable``, as from the real platform),
a slow one ``delay_ms`` late.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import simpy

from vdtu.clock import DomainEnvironment, FaultDomain
from vdtu.cloud.xgc_api import MqttInfo, device_password
from vdtu.firmware.xgc.cloud import (
    RESET_REASON,
    CloudHandler,
    InfoRefused,
    InfoResult,
    InfoUnreachable,
    Will,
)
from vdtu.net.conditions import REFUSE_STATUS, Impairment, Pacer, PlatformConditions

CONNECT_TIMEOUT_S = 10.0
"""How long a device's connection attempt waits for the TCP connection (``MqttLink``'s
default ``connect_timeout_s``)."""
HTTP_TIMEOUT_S = 10.0
"""How long a credential request waits for its answer (``http_client.post_json``'s)."""
KEEPALIVE_GRACE = 1.5
"""The broker drops a client silent for this many keepalives (MQTT 3.1.1 section 3.1.2.10)."""
PACKET_OVERHEAD = 4
"""Bytes of an MQTT fixed header and packet id, added to a payload's size for the cap."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Published:
    """A message a device published."""

    at: float
    topic: str
    payload: bytes
    qos: int
    retain: bool


@dataclass(slots=True, eq=False)
class SimConnection:
    """One device's connection to the simulated broker."""

    platform: SimXgcPlatform
    handler: CloudHandler
    will: Will
    subscriptions: tuple[str, ...]
    client_id: str = ""
    open: bool = False
    abandoned: bool = False
    """The device gave up on it (closed before or after it opened)."""
    next_token: int = 1
    pending_acks: set[int] = field(default_factory=set)
    domain: FaultDomain | None = None
    """The unit that connected: what the cloud sends reaches it in its domain."""
    keepalive_s: int = 0
    impairment: Impairment | None = None
    """The unit's link conditions (None: a healthy link)."""
    up: Pacer | None = None
    """The device-to-broker direction's pacer, while the link is shaped."""
    down: Pacer | None = None
    last_in_at: float = 0.0
    """When the device last heard from the broker (CONNACK, a PUBACK, a message)."""
    last_out_at: float = 0.0
    """When the broker last heard from the device (CONNECT, a publish)."""
    watch: int = 0
    """Bumped whenever the device's keep-alive timer (under a blackhole) must be forgotten."""
    broker_watch: int = 0
    """Bumped whenever the broker's keep-alive timer must be forgotten (it hears the
    device again)."""
    broker_dropped: bool = False
    """The broker dropped the connection while the device could not hear it."""

    def publish(self, topic: str, payload: bytes, *, qos: int, retain: bool = False) -> int | None:
        if not self.open:
            return None
        platform = self.platform
        impairment = self.impairment
        if impairment is None:
            arrives_s: float | None = platform.latency_s
        elif impairment.conditions.blackhole or self.broker_dropped:
            arrives_s = None  # vanishes; keep-alive will notice
        else:
            arrives_s = self._shaped(self._up(), len(topic) + len(payload)) + platform.latency_s
        arrival = (
            None
            if arrives_s is None
            else platform.deliver_later(topic, payload, qos=qos, retain=retain, delay_s=arrives_s)
        )
        if qos == 0:
            return None
        token = self.next_token
        self.next_token += 1
        self.pending_acks.add(token)
        if arrival is not None:  # the broker's PUBACK leaves as the publish arrives
            arrival.callbacks.append(lambda _event: self._acked_at_broker(token))
        return token

    def _acked_at_broker(self, token: int) -> None:
        """The broker has the publish and sends PUBACK back."""
        platform = self.platform
        self.last_out_at = platform.now
        back_s = platform.latency_s
        if self.impairment is not None:
            if self.impairment.conditions.blackhole:
                return  # the PUBACK vanishes
            back_s += self._shaped(self._down(), PACKET_OVERHEAD)
        platform.env.call_later(back_s, lambda _event: self._ack(token))

    def _ack(self, token: int) -> None:
        if self.open and token in self.pending_acks:
            self.pending_acks.discard(token)
            self.last_in_at = self.platform.now
            self.handler.cloud_published(token)

    def close(self) -> None:
        self.abandoned = True
        self.watch += 1
        if self.open and not self.blackholed:
            self.platform.drop(self, publish_will=True)
        # Blackholed: the FIN vanishes too; the broker drops it at its keep-alive deadline.
        self.open = False

    @property
    def blackholed(self) -> bool:
        """Whether the unit's packets vanish now."""
        return self.impairment is not None and self.impairment.conditions.blackhole

    # -- the network's conditions ----------------------------------------------------------

    def _up(self) -> Pacer:
        if self.up is None:
            self.up = Pacer()
        return self.up

    def _down(self) -> Pacer:
        if self.down is None:
            self.down = Pacer()
        return self.down

    def _shaped(self, pacer: Pacer, size: int) -> float:
        """The extra delay of a packet of ``size`` bytes sent now in ``pacer``'s direction."""
        impairment = self.impairment
        assert impairment is not None
        now = self.platform.now
        return pacer.arrival_at(now, size, impairment.conditions, impairment.rng) - now

    def down_delay_s(self, size: int) -> float | None:
        """How long a packet from the broker takes to reach the device; None: it vanishes."""
        impairment = self.impairment
        if impairment is None:
            return self.platform.latency_s
        if impairment.conditions.blackhole or self.broker_dropped:
            return None
        return self.platform.latency_s + self._shaped(self._down(), size)

    def impair(self, impairment: Impairment | None) -> None:
        was_blackholed = self.impairment is not None and self.impairment.conditions.blackhole
        self.impairment = impairment
        if impairment is None:
            self.up = self.down = None
        blackholed = impairment is not None and impairment.conditions.blackhole
        if self.abandoned or not self.open or blackholed == was_blackholed:
            return
        self.watch += 1
        if blackholed:
            self.broker_watch += 1
            self.platform.blackholed(self)
        else:
            # The NAT forgot the connection while its packets vanished: the device's next
            # packet (what it sent meanwhile, sent again) meets an RST, one latency after the
            # clear. The broker keeps its end until its keep-alive deadline or until the
            # device's next connection takes the session over (``connect``).
            self.platform.later(self.platform.latency_s, partial(self._lost, RESET_REASON))

    def reset(self) -> None:
        if self.abandoned:
            return
        self.watch += 1
        if self.open:
            if self in self.platform.connections:
                self.platform.drop(self, publish_will=True)
            self.platform.later(0, partial(self._lost, RESET_REASON, force=True))
        else:
            self.abandoned = True
            handler = self.handler
            self.platform.later(
                0, lambda: handler.cloud_connect_failed(RESET_REASON, refused=False)
            )

    def _lost(self, reason: str, *, force: bool = False) -> None:
        """The device notices that the connection is gone."""
        if self.abandoned or not (self.open or self.broker_dropped or force):
            return
        self.open = False
        self.pending_acks.clear()
        self.handler.cloud_lost(reason)


class SimXgcPlatform:
    """The platform (projects, credentials) and the broker, in sim time.

    Args:
        env: the SimPy environment.
        projects: ProjectId -> ProjectSecret.
        latency_s: one-way network latency.
    """

    def __init__(
        self, env: DomainEnvironment, *, projects: dict[str, str], latency_s: float = 0.05
    ) -> None:
        self.env = env
        self.projects = dict(projects)
        self.latency_s = latency_s
        self.broker_up = True
        self.platform_up = True
        self.published: list[Published] = []
        self.keep_published = True
        """Whether ``published`` keeps every message (a long scenario only counts them)."""
        self.on_published: list[Callable[[Published], None]] = []
        """Called with each device message the broker receives."""
        self.retained: dict[str, bytes] = {}
        self.connections: list[SimConnection] = []
        self.connect_attempts: list[tuple[float, str]] = []
        """(sim time, client id) of every connection attempt."""
        self.platform_conditions: dict[str, PlatformConditions] = {}
        """The platform's conditions by IMEI (only units that have some)."""
        self.connect_timeout_s = CONNECT_TIMEOUT_S
        self.http_timeout_s = HTTP_TIMEOUT_S

    @property
    def now(self) -> float:
        """Sim time."""
        return float(self.env.now)

    def later(self, delay_s: float, action: Callable[[], None]) -> simpy.Event:
        """Run ``action`` after ``delay_s`` of sim time; returns the event it runs on."""
        return self.env.call_later(delay_s, lambda _event: action())

    def deliver_later(
        self, topic: str, payload: bytes, *, qos: int, retain: bool, delay_s: float
    ) -> simpy.Event:
        """A device's publish reaches the broker ``delay_s`` later (if it is up); returns the
        event of its arrival."""

        def arrive(_event: simpy.Event) -> None:
            if self.broker_up:
                arrived = Published(
                    at=self.now, topic=topic, payload=payload, qos=qos, retain=retain
                )
                if self.keep_published:
                    self.published.append(arrived)
                for listener in self.on_published:
                    listener(arrived)
                if retain:
                    self.retained[topic] = payload

        return self.env.call_later(delay_s, arrive)

    # -- XgcCloud -----------------------------------------------------------------------------

    def fetch_mqtt_info(
        self,
        *,
        imei: str,
        project_id: str,
        project_secret: str,
        done: Callable[[InfoResult], None],
        impairment: Impairment | None = None,
    ) -> None:
        conditions = self.platform_conditions.get(imei)
        if impairment is not None and impairment.conditions.blocks_connect:
            reason = f"no answer from the platform within {self.http_timeout_s:g} s"
            self.later(self.http_timeout_s, lambda: done(InfoUnreachable(reason=reason)))
            return

        def answer() -> None:
            if conditions is not None and conditions.refuse:
                done(InfoUnreachable(reason=f"HTTP {REFUSE_STATUS} from the platform"))
            elif not self.platform_up:
                done(InfoUnreachable(reason="the platform does not answer"))
            elif self.projects.get(project_id) != project_secret:
                done(InfoRefused(reason=f"project {project_id} or its secret is wrong"))
            else:
                done(
                    MqttInfo(
                        host="sim",
                        port=1883,
                        tls=False,
                        client_id=f"xgc-{imei}",
                        username=imei,
                        password=device_password(project_secret, imei),
                        project_id=project_id,
                    )
                )

        delay_s = 2 * self.latency_s
        if conditions is not None:
            delay_s += conditions.delay_s
        if impairment is not None:
            delay_s += _round_trip_s(impairment)
        if delay_s > self.http_timeout_s:
            reason = f"no answer from the platform within {self.http_timeout_s:g} s"
            self.later(self.http_timeout_s, lambda: done(InfoUnreachable(reason=reason)))
            return
        self.later(delay_s, answer)

    def set_platform_conditions(self, imei: str, conditions: PlatformConditions | None) -> None:
        if conditions is None or conditions.idle:
            self.platform_conditions.pop(imei, None)
        else:
            self.platform_conditions[imei] = conditions

    def connect(
        self,
        info: MqttInfo,
        *,
        will: Will,
        subscriptions: Sequence[str],
        keepalive_s: int,
        handler: CloudHandler,
        impairment: Impairment | None = None,
    ) -> SimConnection:
        connection = SimConnection(
            platform=self,
            handler=handler,
            will=will,
            subscriptions=tuple(subscriptions),
            client_id=info.client_id,
            domain=self.env.domain,
            keepalive_s=keepalive_s,
            impairment=impairment,
        )
        self.connect_attempts.append((self.now, info.client_id))
        timeout_s = self.connect_timeout_s
        started = self.now

        def give_up() -> None:
            if not connection.abandoned and not connection.open:
                connection.abandoned = True
                waited_for = "CONNACK" if impairment is None else "the TCP/TLS connection"
                handler.cloud_connect_failed(
                    f"timed out after {timeout_s:g} s waiting for {waited_for}", refused=False
                )

        if impairment is not None and impairment.conditions.blocks_connect:
            self.later(timeout_s, give_up)  # the SYN vanishes, or nothing answers it
            return connection

        def answer() -> None:
            if connection.abandoned:
                return  # the device closed the socket before the broker answered
            if not self.broker_up:
                handler.cloud_connect_failed("connection refused", refused=False)
                return
            secret = self.projects.get(info.project_id)
            if secret is None or info.password != device_password(secret, info.username):
                handler.cloud_connect_failed("not authorized", refused=True)
                return
            if connection.blackholed:
                # Blackholed after the CONNECT left: the CONNACK never comes.
                self.later(started + timeout_s - self.now, give_up)
                return
            for old in [c for c in self.connections if c.client_id == info.client_id]:
                # The session's takeover (MQTT 3.1.1, 3.1.4): the broker ends the old
                # connection (its will) before it accepts the new one.
                self.drop(old, publish_will=True)
            connection.open = True
            connection.last_in_at = connection.last_out_at = self.now
            self.connections.append(connection)
            handler.cloud_connected()

        delay_s = 2 * self.latency_s
        if impairment is not None:
            delay_s += _round_trip_s(impairment)
        if delay_s >= timeout_s:
            self.later(timeout_s, give_up)
        else:
            self.later(delay_s, answer)
        return connection

    # -- the cloud's side ---------------------------------------------------------------------

    def send(self, topic: str, payload: bytes) -> int:
        """Publish from the cloud; returns how many connections will receive it."""
        receivers = [c for c in self.connections if topic in c.subscriptions]
        for connection in receivers:
            delay_s = connection.down_delay_s(len(topic) + len(payload) + PACKET_OVERHEAD)
            if delay_s is None:
                continue  # blackholed: it vanishes on the way
            with self.env.entered(connection.domain):
                self.later(delay_s, partial(self._deliver, connection, topic, payload))
        return len(receivers)

    def blackholed(self, connection: SimConnection) -> None:
        """Keep-alive, for a connection whose packets vanish from now on.

        The device: a healthy client exchanges PINGREQ/PINGRESP whenever nothing came in
        for a keepalive, so the last thing it heard is at most one keepalive old; it
        sends PINGREQ one keepalive after that and gives up one keepalive later
        (paho's ``_check_keepalive``). The broker: it last heard the device at the last
        exchange, and drops it 1.5 keepalives later, publishing the will.
        """
        keepalive = connection.keepalive_s
        if keepalive <= 0:
            return  # no keep-alive: neither side ever notices
        now = self.now
        last_in = connection.last_in_at
        if now - last_in > keepalive:
            last_in += math.floor((now - last_in) / keepalive) * keepalive
        heard = max(last_in, connection.last_out_at)
        watch, broker_watch = connection.watch, connection.broker_watch
        ping_at = max(now, last_in + keepalive)

        def device_gives_up() -> None:
            if connection.watch == watch:
                connection._lost("keepalive timeout")

        def broker_drops() -> None:
            heard_again = connection.broker_watch != broker_watch and not connection.abandoned
            if heard_again or connection not in self.connections:
                return
            still_open = connection.open
            self.drop(connection, publish_will=True)
            connection.open = still_open  # the device does not know yet
            connection.broker_dropped = True

        with self.env.entered(connection.domain):
            self.later(max(0.0, heard + KEEPALIVE_GRACE * keepalive - now), broker_drops)
            self.later(ping_at + keepalive - now, device_gives_up)

    @staticmethod
    def _deliver(connection: SimConnection, topic: str, payload: bytes) -> None:
        if connection.open:
            connection.last_in_at = connection.platform.now
            connection.handler.cloud_message(topic, payload)

    def drop(self, connection: SimConnection, *, publish_will: bool) -> None:
        """End a connection on the broker's side."""
        connection.open = False
        connection.pending_acks.clear()
        if connection in self.connections:
            self.connections.remove(connection)
        if publish_will:
            will = connection.will
            self.published.append(
                Published(
                    at=self.now, topic=will.topic, payload=will.payload, qos=1, retain=will.retain
                )
            )
            if will.retain:
                self.retained[will.topic] = will.payload

    def outage(self) -> None:
        """The broker goes down: every device loses its connection, new ones fail."""
        self.broker_up = False
        for connection in list(self.connections):
            self.drop(connection, publish_will=False)
            with self.env.entered(connection.domain):
                self.later(
                    self.latency_s, partial(connection.handler.cloud_lost, "broker went away")
                )

    def restore(self) -> None:
        """The broker is back."""
        self.broker_up = True

    def payloads(self, topic: str) -> list[bytes]:
        """Every payload published on ``topic``, in order."""
        return [p.payload for p in self.published if p.topic == topic]


def _round_trip_s(impairment: Impairment) -> float:
    """The extra time of one small exchange (a request and its answer) under ``impairment``."""
    conditions = impairment.conditions
    return conditions.delay_s(impairment.rng) + conditions.delay_s(impairment.rng)
