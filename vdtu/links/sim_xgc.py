"""A simulated XGC platform and broker in sim time, for virtual-time tests and scenarios.

It implements ``XgcCloud`` the way the real platform and an MQTT broker behave,
with a fixed one-way latency: credentials come back after one round trip, a
connection is accepted (or refused) after one, a QoS 1 publish is acknowledged
after one. ``outage()`` takes the broker down (every connection is lost, new ones
fail) until ``restore()``; a connection that ends without a DISCONNECT has its
will published, retained, as a broker would. Everything devices publish is kept
in ``published`` with its sim time; ``send`` delivers a cloud message to the
device subscribed to the topic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

from vdtu.clock import DomainEnvironment, FaultDomain
from vdtu.cloud.xgc_api import MqttInfo, device_password
from vdtu.firmware.xgc.cloud import (
    CloudHandler,
    InfoRefused,
    InfoResult,
    InfoUnreachable,
    Will,
)


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
    open: bool = False
    abandoned: bool = False
    """The device gave up on it (closed before or after it opened)."""
    next_token: int = 1
    pending_acks: set[int] = field(default_factory=set)
    domain: FaultDomain | None = None
    """The unit that connected: what the cloud sends reaches it in its domain."""

    def publish(self, topic: str, payload: bytes, *, qos: int, retain: bool = False) -> int | None:
        if not self.open:
            return None
        platform = self.platform
        platform.deliver_later(
            Published(at=platform.now, topic=topic, payload=payload, qos=qos, retain=retain)
        )
        if qos == 0:
            return None
        token = self.next_token
        self.next_token += 1
        self.pending_acks.add(token)
        platform.later(2 * platform.latency_s, lambda: self._ack(token))
        return token

    def _ack(self, token: int) -> None:
        if self.open and token in self.pending_acks:
            self.pending_acks.discard(token)
            self.handler.cloud_published(token)

    def close(self) -> None:
        self.abandoned = True
        if self.open:
            self.platform.drop(self, publish_will=True)


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
        self.retained: dict[str, bytes] = {}
        self.connections: list[SimConnection] = []
        self.connect_attempts: list[tuple[float, str]] = []
        """(sim time, client id) of every connection attempt."""

    @property
    def now(self) -> float:
        """Sim time."""
        return float(self.env.now)

    def later(self, delay_s: float, action: Callable[[], None]) -> None:
        """Run ``action`` after ``delay_s`` of sim time."""
        timeout = self.env.timeout(delay_s)
        timeout.callbacks.append(lambda _event: action())

    def deliver_later(self, message: Published) -> None:
        """A device's publish reaches the broker one latency later (if it is up)."""

        def arrive() -> None:
            if self.broker_up:
                self.published.append(
                    Published(
                        at=self.now,
                        topic=message.topic,
                        payload=message.payload,
                        qos=message.qos,
                        retain=message.retain,
                    )
                )
                if message.retain:
                    self.retained[message.topic] = message.payload

        self.later(self.latency_s, arrive)

    # -- XgcCloud -----------------------------------------------------------------------------

    def fetch_mqtt_info(
        self,
        *,
        imei: str,
        project_id: str,
        project_secret: str,
        done: Callable[[InfoResult], None],
    ) -> None:
        def answer() -> None:
            if not self.platform_up:
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

        self.later(2 * self.latency_s, answer)

    def connect(
        self,
        info: MqttInfo,
        *,
        will: Will,
        subscriptions: Sequence[str],
        keepalive_s: int,
        handler: CloudHandler,
    ) -> SimConnection:
        del keepalive_s
        connection = SimConnection(
            platform=self,
            handler=handler,
            will=will,
            subscriptions=tuple(subscriptions),
            domain=self.env.domain,
        )
        self.connect_attempts.append((self.now, info.client_id))

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
            connection.open = True
            self.connections.append(connection)
            handler.cloud_connected()

        self.later(2 * self.latency_s, answer)
        return connection

    # -- the cloud's side ---------------------------------------------------------------------

    def send(self, topic: str, payload: bytes) -> int:
        """Publish from the cloud; returns how many connections will receive it."""
        receivers = [c for c in self.connections if topic in c.subscriptions]
        for connection in receivers:
            with self.env.entered(connection.domain):
                self.later(self.latency_s, partial(self._deliver, connection, topic, payload))
        return len(receivers)

    @staticmethod
    def _deliver(connection: SimConnection, topic: str, payload: bytes) -> None:
        if connection.open:
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
