"""The embedded MQTT broker: amqtt on the running asyncio loop, with its gaps filled.

``EmbeddedBroker`` is vdtu's zero-setup broker (``vdtu up`` without ``--broker``,
and ``vdtu broker``). It wraps ``amqtt.broker.Broker`` 0.12 and works around the
limits measured on it (the figures are with each item):

* **Bound port.** amqtt has no public way to ask which port a listener got, and
  port 0 (any free port) is the only race-free choice for tests and for many
  brokers on one machine. ``_bound_port`` reads it from the private
  ``Broker._servers``; that is the one place that touches it.
* **Slow logins.** amqtt's password plugin spends ~105 ms of blocking argon2 per
  CONNECT. The login check here is the caller's ``Authenticator``, run by the
  plugin in ``broker_auth``; with none, every client is let in (still through
  that plugin, not amqtt's anonymous one, which would mark sessions anonymous and
  so stop queueing QoS 1 messages for persistent sessions that are offline).
* **No keepalive timeout.** amqtt never drops a client that goes silent with its
  socket still open (its read-timeout handler is ``pass``), so that client's will
  is never published: a DTU that loses coverage without a TCP FIN would look
  online forever. One watchdog task per broker closes every session silent for
  longer than its keepalive times ``keepalive_grace`` (MQTT 3.1.1 section 3.1.2.10
  says 1.5, as mosquitto does), the way amqtt closes a lost connection, so its
  will goes out. "Silent" is measured from the last control packet received,
  stamped by ``ActivityPlugin`` on amqtt's per-packet plugin event (amqtt runs a
  task per event: a 20 000-message QoS 0 burst went 0-8 % slower, 5.4-5.7k against
  5.7-5.9k msg/s); a client with keepalive 0 is never timed out, as the
  specification says.
* **Refused sessions leak.** amqtt keeps a session whose CONNECT it refused in its
  table, in the "connected" state, forever. The watchdog drops such sessions and
  ``clients`` does not count them.
* **Defaults.** The plugins are listed explicitly, which turns off amqtt's default
  ones ($SYS topics every 20 s, the packet and event loggers).
* **Logs.** amqtt and its state-machine library (``transitions``) log several INFO
  lines per connection, and amqtt logs ordinary events at ERROR with tracebacks (a
  client that connects and closes without a word, as a DTU losing coverage does; a
  port in use, which ``start()`` reports itself). ``start()`` therefore silences
  both loggers (level CRITICAL, which amqtt never uses) unless the application has
  set their levels already: ``logging.getLogger("amqtt").setLevel(logging.INFO)``
  before ``start()`` brings them back.

* **Logins decided before amqtt.** amqtt removes an existing session with the same
  client id (its subscriptions too) *before* it asks the auth plugins, so any client,
  even one with a wrong password, that connected with another unit's client id left
  that unit connected but deaf to its downlinks. ``_GuardedBroker.stream_connected``
  reads each CONNECT first (with amqtt's own decoder), decides it (``broker_auth.decide``:
  the authenticator, then the access rule) and answers a refusal itself with CONNACK
  0x05 "not authorised"; amqtt sees only accepted CONNECTs, and the auth plugin takes
  that verdict over, so the authenticator still runs once per CONNECT.
* **Topic access** (``access=``, see ``broker_acl``): each session carries the
  ``Grant`` of its login, which ``_GuardedBroker._topic_filtering`` applies to every
  publish, subscribe and delivery with ``broker_auth.topic_allowed``: a set lookup in
  place of amqtt's topic plugins, which run every check as a task of its own (as a
  plugin the rule cost the broker a fifth of its publish throughput).
* **MQTT 5 and 3.1.** amqtt answers a CONNECT of another protocol level with CONNACK
  0x01 only after decoding it as 3.1.1: an MQTT 5 CONNECT's properties are read as
  the client id's length, amqtt waits for bytes that never come, and when the client
  gives up the close raises an ``OSError`` that asyncio logs as an unhandled traceback.
  The wrapper reads the protocol level first and answers 0x01 "unacceptable protocol
  version" at once, with one WARNING line; ``mosquitto_sub -V mqttv5`` then says so.

The broker speaks MQTT 3.1.1 only (a v5 CONNECT is refused), over plain TCP.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Self

from amqtt.adapters import (  # type: ignore[import-untyped]  # no py.typed
    BufferReader,
    StreamReaderAdapter,
    StreamWriterAdapter,
)
from amqtt.broker import Broker  # type: ignore[import-untyped]  # no py.typed
from amqtt.errors import BrokerError  # type: ignore[import-untyped]  # no py.typed
from amqtt.mqtt.connack import (  # type: ignore[import-untyped]  # no py.typed
    NOT_AUTHORIZED,
    UNACCEPTABLE_PROTOCOL_VERSION,
)
from amqtt.mqtt.connect import ConnectPacket  # type: ignore[import-untyped]  # no py.typed
from amqtt.plugins.base import BaseAuthPlugin  # type: ignore[import-untyped]  # no py.typed
from amqtt.session import Session  # type: ignore[import-untyped]  # no py.typed

from vdtu.cloud.broker_acl import Refusal
from vdtu.cloud.broker_auth import (
    AUTHORIZED,
    LOG,
    Access,
    Authenticator,
    Verdicts,
    allow_all,
    decide,
    topic_allowed,
)
from vdtu.cloud.broker_url import BrokerUrl
from vdtu.errors import ConfigError, LocalProtocolError

LAST_SEEN = "vdtu.last_seen"
"""Key in ``Session.attributes``: ``time.monotonic()`` of the last packet received."""

WATCHDOG_PERIOD_S = 0.5
"""How often the watchdog looks at the sessions: a silent client is closed at most
this much later than its deadline."""

_QUIET_LOGGERS = ("amqtt", "transitions")

MQTT_311_LEVEL = 4
"""The protocol level of MQTT 3.1.1 in a CONNECT, the only one amqtt speaks."""
CONNECT_TIMEOUT_S = 10.0
"""A client that has not sent its whole CONNECT this long after connecting is dropped."""
MAX_CONNECT_BYTES = 256 * 1024
"""A CONNECT longer than this (a will of 256 KiB) is dropped without an answer."""
_CONNECT = 1
_PROTOCOL_NAMES = (b"MQTT", b"MQIsdp")
"""MQTT 3.1.1 and later; MQTT 3.1."""


class ActivityPlugin(BaseAuthPlugin):  # type: ignore[misc]  # amqtt is untyped: its base is Any
    """amqtt plugin that stamps each session with the time of its last received packet.

    It stamps on the per-packet event, and also on each CONNECT: amqtt asks every auth
    plugin about a CONNECT before the session counts as connected, while the packet
    event of a CONNECT carries no session. That is why this is an auth plugin; its
    ``authenticate`` abstains (returns ``None``), which amqtt ignores when it adds up
    the verdicts, so the login decision stays with ``CallbackAuthPlugin``.
    """

    async def authenticate(self, *, session: Session) -> None:
        """Stamp the session at its CONNECT (a reused persistent session's stamp is old)."""
        session.attributes[LAST_SEEN] = time.monotonic()

    async def on_mqtt_packet_received(
        self, *, packet: object, session: Session | None = None
    ) -> None:
        """Stamp the session a packet came from."""
        if session is not None:
            session.attributes[LAST_SEEN] = time.monotonic()


class _GuardedBroker(Broker):  # type: ignore[misc]  # amqtt is untyped: its base is Any
    """amqtt's broker with CONNECTs decided first and retained replay scoped to the client.

    ``stream_connected`` reads each CONNECT before amqtt does (see the module comment:
    other protocol levels, and logins decided before amqtt touches the session table).
    The verdicts of accepted CONNECTs wait in ``verdicts``, keyed by the client's
    address and port, for the auth plugin.

    Retained messages: amqtt's broker sends a client only the retained messages of its
    *own* subscriptions here.

    amqtt 0.12.1, after every CONNECT, replays retained messages for every topic filter
    of *every* session to the connecting client, matching each filter against every
    retained message without yielding. With N units (3 filters and 1 retained state
    each) one CONNECT costs ~3N x N matches and blocks the loop (0.3 s at 600 units,
    measured in bench/cloud_latency.py), sends each unit the other units' retained
    states, and, when it does yield, lets another SUBSCRIBE change the dict it iterates
    ("dictionary changed size during iteration"). The replay is only meant for the
    connecting session's own (persistent) subscriptions, so a filter it does not hold
    is skipped before any matching.
    """

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Session
    ) -> None:
        holders = self._subscriptions.get(subscription[0], ())
        if any(held.client_id == session.client_id for held, _qos in holders):
            await super()._publish_retained_messages_for_subscription(subscription, session)

    def __init__(
        self,
        config: dict[str, Any],
        *,
        authenticator: Authenticator,
        access: Access | None,
        verdicts: Verdicts,
    ) -> None:
        super().__init__(config)
        self._vdtu_authenticator = authenticator
        self._vdtu_access = access
        self.verdicts = verdicts

    async def stream_connected(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener_name: str
    ) -> None:
        """Read and decide the CONNECT, then hand the connection to amqtt (or refuse it)."""
        peer = writer.get_extra_info("peername")
        key = (str(peer[0]), int(peer[1])) if peer else None
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                head = await _read_first_packet(reader)
            if head is None:
                return
            refusal = await self._refusal(head, key)
            if refusal is not None:
                if refusal[1]:
                    LOG.warning("refused %s:%s: %s", *(key or ("?", "?")), refusal[1])
                writer.write(bytes((0x20, 0x02, 0x00, refusal[0])))
                await writer.drain()
                return
            await self._client_connected(
                listener_name, _ReplayReader(reader, head), _QuietWriter(writer)
            )
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            return  # the client went away: nothing to answer, nothing to log
        finally:
            if key is not None:
                self.verdicts.pop(key, None)
            writer.close()

    async def _topic_filtering(self, session: Session, topic: str, action: Any) -> bool:
        """The access rule on a publish, a subscribe or a delivery (every topic allowed
        without a rule)."""
        return self._vdtu_access is None or topic_allowed(session, topic, action)

    async def _refusal(self, head: bytes, key: tuple[str, int] | None) -> tuple[int, str] | None:
        """(CONNACK return code, reason) for a CONNECT refused here, or None to go on.

        An accepted login's verdict is left in ``verdicts`` for the auth plugin. A
        packet this cannot decode goes on to amqtt, which answers it as it does; so does
        a CONNECT without a client id (amqtt makes one up, and it cannot take over a
        session).
        """
        level = _protocol_level(head)
        if level is not None and level != MQTT_311_LEVEL:
            version = {5: "MQTT 5", 3: "MQTT 3.1"}.get(level, f"protocol level {level}")
            return UNACCEPTABLE_PROTOCOL_VERSION, (
                f"{version} CONNECT: this broker speaks MQTT 3.1.1 only "
                "(CONNACK 0x01 unacceptable protocol version)"
            )
        if key is None or level is None:
            return None
        try:
            connect = await ConnectPacket.from_stream(BufferReader(head))
        except Exception:  # whatever amqtt's decoder raises, amqtt answers it itself
            return None
        if connect.payload is None or connect.payload.client_id_is_random:
            return None
        client_id: str = connect.payload.client_id
        verdict = decide(
            self._vdtu_authenticator,
            self._vdtu_access,
            username=connect.username,
            password=connect.password,
            client_id=client_id,
            will_topic=connect.will_topic if connect.will_flag else None,
        )
        if verdict is None:
            LOG.info("refused client %r: wrong user name or password", client_id)
            return NOT_AUTHORIZED, ""
        if isinstance(verdict, Refusal):
            return NOT_AUTHORIZED, f"client {client_id!r}: {verdict.reason}"
        self.verdicts[key] = verdict
        return None


class EmbeddedBroker:
    """An MQTT 3.1.1 broker (amqtt) serving on the running asyncio loop.

    Use ``async with EmbeddedBroker() as broker:`` or ``await start()`` and
    ``await stop()``; a stopped broker may be started again (with ``port=0`` it then
    gets a new port), or ``restart()``-ed on the port it had (the ``broker-stop`` fault:
    every client sees its connection close, and new connects are refused, meanwhile).

    Args:
        host: IP address to listen on (``127.0.0.1`` by default; ``0.0.0.0`` for every
            interface).
        port: TCP port; 0 picks a free one (read it from ``port`` after ``start()``).
        authenticator: decides each CONNECT from ``(username, password, client_id)``;
            it runs on the loop, so it must be quick (a constant-time compare, not a
            password hash). ``None`` lets every client in.
        keepalive_grace: a client silent for longer than its keepalive times this is
            closed and its will published; at least 1.0.
        access: the access rule (``broker_acl.FleetAccess``): what each accepted login
            may publish and subscribe to, and with which client id. ``None``: every
            login may do everything.

    Raises:
        ConfigError: if ``host`` is not an IP address or ``port`` is outside 0..65535.
        ValueError: if ``keepalive_grace`` is below 1.0.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        authenticator: Authenticator | None = None,
        keepalive_grace: float = 1.5,
        access: Access | None = None,
    ) -> None:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            raise ConfigError(
                f"broker host must be an IP address such as 127.0.0.1 or 0.0.0.0, not {host!r}"
            ) from None
        if not 0 <= port <= 65535:
            raise ConfigError(f"broker port must be 0..65535 (0: any free port), not {port!r}")
        if not keepalive_grace >= 1.0:
            raise ValueError(f"keepalive_grace must be at least 1.0, not {keepalive_grace!r}")
        self.host = str(address)
        """The address the broker listens on."""
        self.keepalive_grace = keepalive_grace
        """Silence allowed to a client, in multiples of its keepalive."""
        self._requested_port = port
        self._authenticator = authenticator or allow_all
        self._access = access
        self._broker: Any = None
        self._port = 0
        self._watchdog: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether the broker is started and not stopped."""
        return self._broker is not None

    @property
    def port(self) -> int:
        """The TCP port the broker listens on.

        Raises:
            LocalProtocolError: if the broker is not running.
        """
        if self._broker is None:
            raise LocalProtocolError("the embedded broker is not running; await start() first")
        return self._port

    @property
    def url(self) -> BrokerUrl:
        """Where clients reach the broker (a wildcard address becomes the loopback one).

        Raises:
            LocalProtocolError: if the broker is not running.
        """
        return BrokerUrl.for_listener(self.host, self.port)

    @property
    def clients(self) -> int:
        """How many clients are connected and logged in."""
        if self._broker is None:
            return 0
        return sum(
            1
            for session, _handler in self._broker.sessions.values()
            if session.transitions.state == "connected" and session.attributes.get(AUTHORIZED)
        )

    async def start(self) -> None:
        """Listen, and start the watchdog.

        Raises:
            ConfigError: if the address cannot be listened on (port in use, address
                not on this machine); the broker is then not running.
            LocalProtocolError: if the broker is already running.
        """
        if self._broker is not None:
            raise LocalProtocolError(f"the broker is already running on port {self._port}")
        _quiet_amqtt_logs()
        verdicts: Verdicts = {}
        plugins: dict[str, dict[str, object]] = {
            "vdtu.cloud.broker_auth.CallbackAuthPlugin": {
                "authenticator": self._authenticator,
                "access": self._access,
                "verdicts": verdicts,
            },
            "vdtu.cloud.broker.ActivityPlugin": {},
        }
        broker = _GuardedBroker(
            {
                "listeners": {
                    "default": {"type": "tcp", "bind": f"{self.host}:{self._requested_port}"}
                },
                "plugins": plugins,
            },
            authenticator=self._authenticator,
            access=self._access,
            verdicts=verdicts,
        )
        try:
            await broker.start()
        except BrokerError as exc:
            reason = exc.__cause__ or exc
            raise ConfigError(
                f"the embedded broker cannot listen on {self.host}:{self._requested_port}: "
                f"{reason}; choose another port, or 0 for any free one"
            ) from exc
        self._broker = broker
        self._port = _bound_port(broker)
        self._watchdog = asyncio.create_task(self._watch_sessions(broker), name="broker-watchdog")

    async def stop(self) -> None:
        """Close every connection and stop listening; does nothing if not running.

        Clients are dropped without their wills (as mosquitto does on shutdown).

        Raises:
            Exception: whatever stopped the watchdog, if it failed while running.
        """
        broker, self._broker = self._broker, None
        watchdog, self._watchdog = self._watchdog, None
        if broker is None:
            return
        if watchdog is not None:
            watchdog.cancel()
            await asyncio.wait([watchdog])
        await broker.shutdown()
        if watchdog is not None and not watchdog.cancelled():
            failure = watchdog.exception()
            if failure is not None:
                raise failure

    async def restart(self) -> None:
        """Listen again on the port the broker had (the ``broker-stop`` fault's end).

        Clients reconnect by themselves; sessions and retained messages of the stopped
        broker are gone, as with a broker restarted without persistence.

        Raises:
            ConfigError: the port is taken meanwhile; the broker is then not running.
            LocalProtocolError: if the broker is running, or was never started.
        """
        if self._broker is not None:
            raise LocalProtocolError(f"the broker is already running on port {self._port}")
        if not self._port:
            raise LocalProtocolError("the embedded broker was never started; await start()")
        requested, self._requested_port = self._requested_port, self._port
        try:
            await self.start()
        finally:
            self._requested_port = requested

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _watch_sessions(self, broker: Any) -> None:
        """Close silent sessions (so their wills go out) and drop refused ones, forever."""
        while True:
            await asyncio.sleep(WATCHDOG_PERIOD_S)
            now = time.monotonic()
            for client_id, session, handler in _connected_sessions(broker):
                if not session.attributes.get(AUTHORIZED):
                    if broker.sessions.get(client_id, (None, None))[0] is session:
                        del broker.sessions[client_id]
                    continue
                keepalive_s: int = session.keep_alive
                last_seen: float = session.attributes.setdefault(LAST_SEEN, now)
                if keepalive_s > 0 and now - last_seen > keepalive_s * self.keepalive_grace:
                    # What amqtt does when the socket closes: the session's message loop
                    # sees an abnormal end, publishes the will and closes the connection.
                    await handler.handle_connection_closed()


async def _read_first_packet(reader: asyncio.StreamReader) -> bytes | None:
    """The client's first packet, whole when it is a CONNECT (else its first byte).

    Returns:
        The bytes read, or None for a CONNECT longer than ``MAX_CONNECT_BYTES`` or with
        a malformed length (dropped, as amqtt would drop it).

    Raises:
        asyncio.IncompleteReadError: the client closed first.
    """
    raw = bytearray(await reader.readexactly(1))
    if raw[0] >> 4 != _CONNECT:
        return bytes(raw)
    length = 0
    for shift in range(0, 28, 7):
        byte = (await reader.readexactly(1))[0]
        raw.append(byte)
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
    else:
        return None
    if length > MAX_CONNECT_BYTES:
        LOG.warning("dropped a CONNECT of %d bytes (at most %d)", length, MAX_CONNECT_BYTES)
        return None
    raw += await reader.readexactly(length)
    return bytes(raw)


def _protocol_level(packet: bytes) -> int | None:
    """The protocol level of an MQTT 3.1, 3.1.1 or 5 CONNECT; None for anything else."""
    if not packet or packet[0] >> 4 != _CONNECT:
        return None
    start = 1
    while start < len(packet) and packet[start] & 0x80:
        start += 1
    body = packet[start + 1 :]
    if len(body) < 2:
        return None
    name_length = int.from_bytes(body[:2], "big")
    if body[2 : 2 + name_length] not in _PROTOCOL_NAMES or len(body) <= 2 + name_length:
        return None
    return body[2 + name_length]


class _ReplayReader(StreamReaderAdapter):  # type: ignore[misc]  # amqtt is untyped: its base is Any
    """amqtt's stream reader that first gives back the bytes the wrapper already read."""

    def __init__(self, reader: asyncio.StreamReader, head: bytes) -> None:
        super().__init__(reader)
        self._head = head

    async def read(self, n: int = -1) -> bytes:
        """Up to the replayed bytes, then the stream (``n`` bytes exactly, as amqtt reads)."""
        if not self._head:
            data: bytes = await super().read(n)
            return data
        if n < 0:
            rest: bytes = await self._reader.read(-1)
            data, self._head = self._head + rest, b""
            return data
        data, self._head = self._head[:n], self._head[n:]
        if len(data) < n:
            data += await self._reader.readexactly(n - len(data))
        return data


class _QuietWriter(StreamWriterAdapter):  # type: ignore[misc]  # amqtt is untyped: its base is Any
    """amqtt's stream writer whose ``close`` ignores a socket the client already dropped.

    amqtt's close shuts the write side down, which raises ``OSError`` (ENOTCONN) when the
    peer has gone; uncaught, asyncio logs it as a traceback at ERROR.
    """

    async def close(self) -> None:
        """Close, ignoring a connection the client already closed."""
        with contextlib.suppress(OSError):
            await super().close()


def _connected_sessions(broker: Any) -> Iterator[tuple[str, Any, Any]]:
    """``(client_id, session, handler)`` of each session amqtt counts as connected."""
    for client_id, (session, handler) in list(broker.sessions.items()):
        if session.transitions.state == "connected":
            yield client_id, session, handler


def _bound_port(broker: Any) -> int:
    """The port amqtt's listener is bound to.

    amqtt 0.12 has no public API for it, so this reads the private ``_servers``
    table (listener name -> ``Server`` whose ``instance`` is the ``asyncio.Server``).
    Kept in this one function so an amqtt upgrade has one place to fix.
    """
    server: asyncio.Server = broker._servers["default"].instance
    return int(server.sockets[0].getsockname()[1])


def _quiet_amqtt_logs() -> None:
    """Silence amqtt's loggers, unless the application has set their level."""
    for name in _QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.CRITICAL)
