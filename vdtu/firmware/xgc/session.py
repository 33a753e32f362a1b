"""The XGC unit's cloud session: credentials, connection, reconnects, the uplink queue, properties.

How it works. ``CloudSession.run`` is one SimPy process per boot (or per
SET_PRJINFO). It waits for the network, asks the platform for MQTT credentials
(``get-mqtt-info-ok`` / ``-fail``), connects (``mqtt-connected``), and on a loss
notifies ``mqtt-disconnected`` and tries again 5 s later (docs/spec/xgc.md#8.1). If the
outage lasts, each further attempt waits twice as long (10, 20, 40 ... s, at most
``reconnect_max_s``) with +/-20 % jitter so a fleet does not reconnect in step. A
refused project (wrong id or secret) ends the session: only a new SET_PRJINFO or
a reboot tries again; an unreachable platform is retried with the same backoff.

Nothing lost: every message the host hands over (DATA_PACK, status reports) goes
into the ``Outbox`` and is published with QoS 1; it leaves the outbox only when
the broker acknowledges it. On a reconnect everything still in the outbox is
published again, in order (at-least-once). A full outbox refuses new data, and
the host is told (``error:queue-full``), so data the unit accepted is never
dropped. Properties are status snapshots: sent with QoS 0 every
SET_UPDATE_PROPS interval while connected, not queued.

The modem matters: without registration there is no connection; losing it
drops the connection at once (no DISCONNECT, so the broker publishes the will).

Cloud messages are untrusted: one that is over a limit or cannot reach the host
intact (``xgc_api.downlink_value``, ``notify.downlink_frame``, a frame longer than
the host's line) is dropped with one WARN line and counted in
``stats.downlinks_refused``; no message raises.

The unit's link conditions (``impairment``, None on a healthy link) go with every
credential request and connection, and ``impair`` changes them on the connection of
the moment; ``reset_link`` has the network reset it (the loss is handled as any other).

The session knows the firmware only as a ``SessionHost``: the IMEI and the
modem's registration, state inputs (``advance``), the log, processes that end at
power-off, the property report and its interval, and the host's pipe for cloud
messages (``notify_frame``, ``refuse_downlink``). It never imports the firmware.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import simpy

from vdtu.cloud.xgc_api import (
    DOWNLINK_CHANNELS,
    Channel,
    DownlinkRefusedError,
    MqttInfo,
    device_topic,
    downlink_value,
    encode_json,
    parse_topic,
)
from vdtu.firmware.backoff import Backoff
from vdtu.firmware.xgc.cloud import (
    CloudConnection,
    InfoRefused,
    InfoResult,
    Will,
    XgcCloud,
)
from vdtu.firmware.xgc.codec import Frame
from vdtu.firmware.xgc.content import redact
from vdtu.firmware.xgc.notify import downlink_frame
from vdtu.firmware.xgc.options import XgcOptions
from vdtu.firmware.xgc.states import DtuInput
from vdtu.log import LogLevel, preview

if TYPE_CHECKING:
    from vdtu.clock.rng import RandomSource
    from vdtu.net.conditions import Impairment

OFFLINE = encode_json({"state": "offline"})
"""The will's payload (one for every unit's session: a connection keeps its will)."""
ONLINE = encode_json({"state": "online"})
"""The retained state published once connected."""


class SessionHost(Protocol):
    """What a cloud session needs from the firmware that runs it (``XgcFirmware``)."""

    @property
    def imei(self) -> str:
        """The unit's IMEI (in every topic, and the SN of the frames to the host)."""
        ...

    @property
    def registered(self) -> bool:
        """Whether the modem is registered on a network."""
        ...

    def advance(self, event: DtuInput) -> None:
        """Move the DTU state on (the host hears of a change)."""

    def write_log(self, level: LogLevel, source: str, text: str) -> None:
        """Write to the unit's log."""

    @property
    def observed(self) -> bool:
        """Whether anyone takes the unit's events (build an event's text only then)."""

    def event(self, kind: str, data: dict[str, Any]) -> None:
        """Hand an event of the unit to its observer (``UnitLog.event``)."""

    def spawn(self, generator: Generator[simpy.Event, Any, None]) -> simpy.Process:
        """Run ``generator`` as a process of the firmware (it ends at power-off)."""
        ...

    def properties(self) -> dict[str, Any]:
        """The periodic property report (signal, battery, charging, ICCID, location)."""
        ...

    def update_interval_s(self) -> float:
        """How often properties go up (SET_UPDATE_PROPS), in seconds."""
        ...

    def notify_frame(self, frame: Frame) -> None:
        """Pass a cloud message, as its frame, to the host on the pipe."""

    def refuse_downlink(self, channel: str, reason: str) -> None:
        """Drop a cloud message for the host: logged once and counted."""


@dataclass(slots=True, eq=False)
class Uplink:
    """A message the host handed over, until the broker has acknowledged it."""

    topic: str
    payload: bytes
    token: int | None = None
    """The connection's token for it, once published on the current connection."""


class Outbox:
    """Unacknowledged uplinks, oldest first, bounded."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.pending: list[Uplink] = []  # a list: an empty deque costs 760 bytes per unit
        self.accepted = 0
        self.delivered = 0
        self.refused = 0

    def offer(self, uplink: Uplink) -> bool:
        """Take ``uplink`` unless full (then count the refusal)."""
        if len(self.pending) >= self.capacity:
            self.refused += 1
            return False
        self.pending.append(uplink)
        self.accepted += 1
        return True

    def acknowledge(self, token: int) -> bool:
        """Drop the uplink published with ``token``; False if unknown (a duplicate ack)."""
        for uplink in self.pending:
            if uplink.token == token:
                self.pending.remove(uplink)
                self.delivered += 1
                return True
        return False

    def forget_tokens(self) -> None:
        """The connection is gone: every pending uplink must be published again."""
        for uplink in self.pending:
            uplink.token = None


@dataclass(slots=True, eq=False)
class ConnectionEvents:
    """The ``CloudHandler`` of one connection attempt.

    A session lets connections go (a failed attempt, a lost link, power-off) while
    their implementations may still report: a late CONNACK, a PUBACK whose message id
    a new connection reuses. Each attempt gets its own handler, and only the current
    one reaches the session.
    """

    session: CloudSession

    def _current(self) -> bool:
        return self.session._events is self

    def cloud_connected(self) -> None:
        if self._current():
            self.session.on_connected()

    def cloud_connect_failed(self, reason: str, *, refused: bool) -> None:
        if self._current():
            self.session.on_connect_failed(reason, refused=refused)

    def cloud_lost(self, reason: str) -> None:
        if self._current():
            self.session.on_lost(reason)

    def cloud_message(self, topic: str, payload: bytes) -> None:
        if self._current():
            self.session.on_message(topic, payload)

    def cloud_published(self, token: int) -> None:
        if self._current():
            self.session.on_published(token)


class CloudSession:
    """One run of the cloud life of a unit (see the module comment).

    Args:
        host: the firmware (its state machine, log, processes, modem, the host's pipe).
        cloud: the platform and broker.
        env: the SimPy environment.
        rng: the firmware's random source (reconnect jitter).
        options: the firmware's options (reconnects, keep-alive, the host's line).
        project_id: the saved ProjectId.
        project_secret: the saved ProjectSecret.
        outbox: the uplink queue (kept across sessions of one boot).
    """

    __slots__ = (
        "_closed",
        "_events",
        "_lost",
        "_network",
        "_outcome",
        "attempts",
        "cloud",
        "connected",
        "connection",
        "connections",
        "env",
        "failures",
        "gave_up",
        "host",
        "impairment",
        "info",
        "links_lost",
        "options",
        "outbox",
        "project_id",
        "project_secret",
        "reconnects",
        "rng",
    )

    def __init__(
        self,
        host: SessionHost,
        cloud: XgcCloud,
        *,
        env: simpy.Environment,
        rng: RandomSource,
        options: XgcOptions,
        project_id: str,
        project_secret: str,
        outbox: Outbox,
        impairment: Impairment | None = None,
    ) -> None:
        self.host = host
        self.impairment = impairment
        """The unit's link conditions (None: a healthy link)."""
        self.env = env
        self.rng = rng
        self.options = options
        self.cloud = cloud
        self.project_id = project_id
        self.project_secret = project_secret
        self.outbox = outbox
        self.info: MqttInfo | None = None
        self.connection: CloudConnection | None = None
        self.connected = False
        self.attempts = 0
        """Connection attempts that failed since the last success."""
        self.failures = 0
        """Credential requests and connection attempts that failed, in total."""
        self.connections = 0
        """Connections that came up."""
        self.links_lost = 0
        """Connections that went down without the unit closing them."""
        self.reconnects = 0
        """Connections that came up after an earlier one had been lost."""
        self.gave_up = False
        """The platform refused the project: the session ended for good."""
        self._network: simpy.Event | None = None
        self._outcome: simpy.Event | None = None
        """Settled with "connected", "refused" or "failed" when a connect attempt ends."""
        self._lost: simpy.Event | None = None
        """Settled with the reason when an established connection ends."""
        self._events: ConnectionEvents | None = None
        """The handler of the current connection; a dropped one's late events are ignored."""
        self._closed = False

    # -- topics ---------------------------------------------------------------------------------

    def topic(self, channel: Channel) -> str:
        """This device's topic for ``channel``, made for each use: 0.2 µs, where keeping the
        five a session uses took about 600 bytes per unit."""
        return device_topic(self.project_id, self.host.imei, channel)

    # -- the process ----------------------------------------------------------------------------

    def run(self) -> Generator[simpy.Event, Any, None]:
        """The session's life; ends when the project is refused or the session is closed."""
        host = self.host
        try:
            while not self._closed:
                yield from self._wait_for_network()
                if self.info is None:
                    result = yield from self._fetch_info()
                    if isinstance(result, MqttInfo):
                        self.info = result
                        host.advance(DtuInput.MQTT_INFO_OK)
                    else:
                        host.advance(DtuInput.MQTT_INFO_FAILED)
                        host.write_log(
                            LogLevel.WARN, "cloud", f"get mqtt info failed: {result.reason}"
                        )
                        if isinstance(result, InfoRefused):
                            self.gave_up = True
                            return
                        self.attempts += 1
                        self.failures += 1
                        yield self.env.timeout(self._delay_s())
                        continue
                outcome = yield from self._connect(self.info)
                if outcome == "connected":
                    yield from self._connected()
                    options = self.options
                    yield self.env.timeout(
                        self._delay_s() if options.jitter_first_reconnect else options.reconnect_s
                    )
                else:
                    host.advance(DtuInput.DISCONNECTED)
                    self.attempts += 1
                    self.failures += 1
                    yield self.env.timeout(self._delay_s())
        finally:
            self._drop_connection()

    def _delay_s(self) -> float:
        options = self.options
        return Backoff(options.reconnect_s, options.reconnect_max_s).delay_s(
            self.attempts, self.rng
        )

    @staticmethod
    def _settle(event: simpy.Event | None, value: object) -> None:
        if event is not None and not event.triggered:
            event.succeed(value)

    def _wait_for_network(self) -> Generator[simpy.Event, Any, None]:
        while not self.host.registered:
            self._network = self.env.event()
            yield self._network

    def network_changed(self) -> None:
        """The modem's registration changed (called by the firmware)."""
        if self.host.registered:
            self._settle(self._network, None)
            return
        if self.connected:
            self._drop_connection()
            self._settle(self._lost, "the cellular network was lost")
        elif self.connection is not None:
            self._drop_connection()
            self._settle(self._outcome, "failed")

    def _fetch_info(self) -> Generator[simpy.Event, Any, InfoResult]:
        waiting = self.env.event()

        def done(result: InfoResult) -> None:
            if not self._closed:
                self._settle(waiting, result)

        self.cloud.fetch_mqtt_info(
            imei=self.host.imei,
            project_id=self.project_id,
            project_secret=self.project_secret,
            done=done,
            impairment=self.impairment,
        )
        result: InfoResult = yield waiting
        return result

    def _connect(self, info: MqttInfo) -> Generator[simpy.Event, Any, str]:
        waiting = self._outcome = self.env.event()
        events = self._events = ConnectionEvents(self)
        will = Will(topic=self.topic(Channel.STATE), payload=OFFLINE)
        self.connection = self.cloud.connect(
            info,
            will=will,
            subscriptions=[self.topic(channel) for channel in DOWNLINK_CHANNELS],
            keepalive_s=self.options.keepalive_s,
            handler=events,
            impairment=self.impairment,
        )
        outcome: str = yield waiting
        self._outcome = None
        if outcome != "connected":
            self._drop_connection()
            if outcome == "refused":
                self.info = None  # the credentials may have changed: ask the platform again
        return outcome

    def _connected(self) -> Generator[simpy.Event, Any, None]:
        host = self.host
        self.connected = True
        host.event("cloud", {"up": True})
        self.attempts = 0
        self.connections += 1
        if self.links_lost:
            self.reconnects += 1
        host.advance(DtuInput.CONNECTED)
        self._publish(self.topic(Channel.STATE), ONLINE, qos=1, retain=True)
        self.outbox.forget_tokens()
        self.flush()
        props = host.spawn(self._sending_props())
        self._lost = self.env.event()
        reason = yield self._lost
        self._lost = None
        self.links_lost += 1
        if props.is_alive:
            props.interrupt("disconnected")
        self.connected = False
        host.event("cloud", {"up": False, "reason": reason})
        self.outbox.forget_tokens()
        host.write_log(LogLevel.WARN, "cloud", f"connection lost: {reason}")
        host.advance(DtuInput.DISCONNECTED)

    def _sending_props(self) -> Generator[simpy.Event, Any, None]:
        while True:
            self._publish(self.topic(Channel.PROPS), encode_json(self.host.properties()), qos=0)
            yield self.env.timeout(self.host.update_interval_s())

    # -- uplinks --------------------------------------------------------------------------------

    def submit(self, channel: Channel, payload: bytes) -> bool:
        """Queue a host message for the cloud; False if the outbox is full."""
        uplink = Uplink(topic=self.topic(channel), payload=payload)
        if not self.outbox.offer(uplink):
            return False
        if self.connected:
            self._send(uplink)
        return True

    def flush(self) -> None:
        """Publish every pending uplink not yet sent on this connection, in order."""
        for uplink in list(self.outbox.pending):
            if uplink.token is None and self.connected:
                self._send(uplink)

    def _send(self, uplink: Uplink) -> None:
        uplink.token = self._publish(uplink.topic, uplink.payload, qos=1)
        if uplink.token is not None and self.host.observed:
            self.host.event("uplink", {"topic": uplink.topic, "payload": preview(uplink.payload)})

    def _publish(self, topic: str, payload: bytes, *, qos: int, retain: bool = False) -> int | None:
        if self.connection is None:
            return None
        return self.connection.publish(topic, payload, qos=qos, retain=retain)

    # -- events of the current connection (see ConnectionEvents) ---------------------------------

    def on_connected(self) -> None:
        """The current connection attempt succeeded."""
        self._settle(self._outcome, "connected")

    def on_connect_failed(self, reason: str, *, refused: bool) -> None:
        """The current connection attempt failed."""
        self.host.write_log(LogLevel.WARN, "cloud", f"connect failed: {reason}")
        self._settle(self._outcome, "refused" if refused else "failed")

    def on_lost(self, reason: str) -> None:
        """The current connection was lost."""
        if self.connected:
            self.connection = None
            self._events = None
            self._settle(self._lost, reason)

    def on_published(self, token: int) -> None:
        """The broker acknowledged an uplink of the current connection."""
        self.outbox.acknowledge(token)

    def on_message(self, topic: str, payload: bytes) -> None:
        """A cloud message arrived on the current connection: on to the host, or refused.

        A refused message (see ``xgc_api.downlink_value`` and ``notify.downlink_frame``,
        or a frame longer than the host's line) is dropped with one WARN line and counted
        in ``stats.downlinks_refused``; it never raises.
        """
        host, options = self.host, self.options
        if host.observed:
            host.event("downlink", {"topic": topic, "payload": redact(preview(payload))})
        parsed = parse_topic(topic)
        if parsed is None or parsed[1] != host.imei:
            host.refuse_downlink(topic[:80], "not this device's topic")
            return
        channel = parsed[2]
        try:
            frame = downlink_frame(
                channel,
                downlink_value(payload),
                sn=host.imei,
                trailing_separator=options.data_pack_trailing_separator,
            )
        except DownlinkRefusedError as exc:
            host.refuse_downlink(channel.value, str(exc))
            return
        size = len(frame.encode(options.code_format))
        if size > options.max_line:  # 4096 by default: also the unit's transmit buffer
            host.refuse_downlink(
                channel.value,
                f"its frame for the host would be {size} bytes "
                f"(at most {options.max_line}, line end included)",
            )
            return
        host.notify_frame(frame)

    # -- the network's conditions ----------------------------------------------------------------

    def impair(self, impairment: Impairment | None) -> None:
        """The unit's link conditions changed: the connection of the moment takes them, and
        every later request and connection is made under them."""
        self.impairment = impairment
        if self.connection is not None:
            self.connection.impair(impairment)

    def reset_link(self) -> None:
        """The network resets the connection of the moment (if any); its loss or failure
        arrives like any other."""
        if self.connection is not None:
            self.connection.reset()

    # -- ending ---------------------------------------------------------------------------------

    def _drop_connection(self) -> None:
        self._events = None
        if self.connection is not None:
            connection, self.connection = self.connection, None
            connection.close()

    def close(self) -> None:
        """End the session (power-off, new project info): the connection is dropped."""
        self._closed = True
        if self.connected:
            self.host.event("cloud", {"up": False, "reason": "the session ended"})
        self._drop_connection()
