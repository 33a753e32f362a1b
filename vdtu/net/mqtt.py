"""MQTT links on the process's one asyncio loop: paho-mqtt 2.x with no thread and no blocking call.

How it works. Each ``MqttLink`` wraps one paho ``Client`` (callback API v2, MQTT 3.1.1)
driven through paho's external-socket hooks: ``on_socket_open``/``on_socket_close`` add
and remove a loop reader that calls ``loop_read``; ``on_socket_register_write``/
``unregister_write`` add and remove a writer that calls ``loop_write``. The ``MqttHub``
of the loop owns the only timer: every ``tick_s`` it calls ``loop_misc`` (keepalive
PINGREQs, the PINGRESP deadline) on the links whose keepalive work is due, and on no
other (a timer wheel of due times read from paho's keepalive clocks). A connected link
costs its paho object, one fd, one reader registration and one place on the wheel: no
task, no timer, no thread. Measured with 1000 links on mosquitto: 5.6 KiB RSS and 1 fd
per link, as much as a bare paho client driven the same way (5.5 KiB); paho's callbacks
are shared functions that get the link as ``userdata``, so a link holds no bound method
per callback.

Connecting never blocks the loop. paho's own ``connect()`` dials with
``socket.create_connection`` and, for TLS, handshakes synchronously; with a broker on the
same loop (amqtt) that deadlocks. Instead an attempt is a deadline and a few loop
callbacks. ``connect()`` sets the deadline (one loop timer, ``connect_timeout_s``: it
bounds the whole attempt) and queues the link at the hub, which lets a few attempts dial
per turn of the loop and the rest wait their turn (``MqttHub``, ``DIALS_PER_TURN``). To an
IP address without TLS (what a fleet does) the link then starts a non-blocking
``connect_ex``. Over loopback the TCP handshake ends inside that call, and the connected
socket goes to paho at once, whose ``reconnect()`` queues CONNECT on it; otherwise the
loop's writer on the fd waits for the handshake to end, ``SO_ERROR`` says how, and the
socket goes over then. The CONNACK callback cancels the deadline. That costs no task, no
future, no resolver and at most one selector registration (the writer) beyond the reader
every connection has. A host name (resolved in asyncio's executor) or TLS (``do_handshake`` on
socket readiness) takes a short-lived task per attempt instead, until the hand-over.
Handing the socket over relies on paho's private ``Client._create_socket`` (see
``_HandoverClient``); a test fails loudly if paho changes it.

States (``LinkState``)::

    IDLE/DISCONNECTED --connect()--> CONNECTING --CONNACK accepted--> CONNECTED
    CONNECTING --refused, timed out, TCP/TLS error, lost--> DISCONNECTED  on_connect_failed(reason)
    CONNECTED  --connection lost, keepalive timeout-------> DISCONNECTED  on_disconnected(reason)
    CONNECTING/CONNECTED --disconnect(), abort()----------> DISCONNECTED  (no callback)
    CONNECTING --reset()--> DISCONNECTED  on_connect_failed(RESET_REASON), on the next turn
    CONNECTED  --reset()--> DISCONNECTED  on_disconnected(RESET_REASON), on the next turn
    any --close()--> CLOSED

The unit's link conditions (``impair``, ``vdtu.net.conditions``) act on the link's bytes
through a ``ShapedSocket`` (``vdtu.net.shaping``) that stands between paho and the socket
only for a connection made or running while conditions are set: it is handed to paho in
place of the socket, or put in paho's place for a connection already running (paho's
private ``_sock``, pinned by ``tests/net/test_mqtt.py`` like ``_create_socket``). A
connect under a blackhole or a connect timeout never dials: it ends at
``connect_timeout_s``. ``reset()`` closes the socket with SO_LINGER 0, so the broker
sees an RST, and reports the loss from the loop's next turn.

Rules that hold:

* There is no automatic reconnect: the owner (the DTU firmware, which backs off in sim
  time) calls ``connect()`` again when it wants to.
* Subscriptions are kept by the link and re-issued, in one SUBSCRIBE, after every accepted
  CONNACK; the owner subscribes once.
* The owner's callbacks run on the loop (never in sim time: a simulated owner hands them
  to ``Clock.inject``), synchronously inside paho's processing, so they arrive in wire
  order. A callback may call any method of the link, including ``connect()`` and
  ``close()``; as paho holds a non-reentrant lock while it calls back, closing the socket
  from there is deferred with ``call_soon`` (``_in_paho``).
* paho reports ``on_disconnect`` also for sockets the link already gave up (its own
  DISCONNECT, a refused CONNACK, a dropped attempt). ``_paho_socket`` says whether paho's
  current socket is still ours to report; only then does a loss reach the owner.
* Packets go to the kernel in the loop callback that queued them, not a loop turn later
  from the writer: while a read (the SUBSCRIBE after a CONNACK, the PUBACKs, what the
  owner published from its callbacks), the hand-over of a new socket (CONNECT) or
  ``publish()`` runs, the link holds its writes (``_holding``: paho's request for the
  writer is not passed on), and ``_write_held`` then calls ``loop_write`` and adds the
  writer only for what the kernel did not take. In a loop whose turns are long (a fleet
  connecting 1000 units a second) a packet that waited for the writer waited a whole
  turn, and adding and removing the writer cost two ``epoll_ctl`` calls a packet.
  ``publish()`` writes at once only a QoS 1/2 message onto an empty queue, so that no
  ``on_published`` comes from inside it; a loss its write finds reaches the owner from
  the loop's next turn (``_publishing``), as one from ``reset()`` does.

Why one file of over 700 lines: nearly all of it is ``MqttLink``, one state machine
around one paho client, and its parts (the paho callbacks, the connect steps that hand
the socket over, the deferred close) share the link's private state and paho's
private hooks; split across modules they would have to expose both. ``MqttHub`` (about
100 lines) only visits the links that are due and is their one constructor; the argument
checks and ``Will`` are a few lines each.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import math
import os
import socket
import ssl
import struct
import sys
import termios
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from vdtu.errors import ConfigError, LinkClosedError, LocalProtocolError
from vdtu.net.shaping import ShapedSocket

if TYPE_CHECKING:
    from paho.mqtt.client import (
        CallbackOnSubscribe_v2,
        ConnectFlags,
        DisconnectFlags,
        MQTTMessage,
        SocketLike,
    )

    from vdtu.net.conditions import Impairment

RESET_REASON = "connection reset by peer"
"""What ``reset()`` reports to the owner."""

_LOSS_REASONS = {
    "Unspecified error": "connection lost",
    "Keep alive timeout": "keepalive timeout",
}
"""paho's disconnect reason names, as the owner reads them."""


DIALS_PER_TURN = 16
"""The most connect attempts a hub lets dial per turn of the loop (see ``MqttHub``)."""

READ_BURST = 64
"""The most packets a link reads when the loop finds its socket readable and messages
come; what is left makes the fd readable again on the next pass (a ``ShapedSocket``
reads one per wake)."""


def _bytes_waiting(sock: socket.socket) -> bool:
    """Whether the kernel holds received bytes for ``sock`` (one ioctl, no read)."""
    try:
        waiting = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    except OSError:  # closed meanwhile
        return False
    return int.from_bytes(waiting, sys.byteorder) > 0


def _ignore(*_args: object) -> None:
    """The default of every owner callback: one shared function, so a link stores no closure."""


def _check_qos(qos: int) -> None:
    if qos not in (0, 1, 2) or isinstance(qos, bool):
        raise ValueError(f"qos must be 0, 1 or 2, not {qos!r}")


def _check_topic(topic: str) -> None:
    if not topic or "+" in topic or "#" in topic or len(topic.encode()) > 65535:
        raise ValueError(f"topic must be 1..65535 bytes without wildcards, not {topic!r}")


def _check_filter(topic: str) -> None:
    levels = topic.split("/")
    bad_level = any(("+" in level or "#" in level) and len(level) > 1 for level in levels)
    if not topic or len(topic.encode()) > 65535 or bad_level or "#" in levels[:-1]:
        raise ValueError(
            f"topic filter must be 1..65535 bytes with '+' as a whole level and '#' only as "
            f"the last level, not {topic!r}"
        )


def _describe(exc: OSError) -> str:
    """A short reason for a failed TCP or TLS connect, as ``on_connect_failed`` reports it."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate rejected: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {exc.reason or exc}"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host: {exc.strerror}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return (exc.strerror or str(exc)).lower()


def _numeric_family(host: str) -> int | None:
    """The address family of an IPv4 or IPv6 address; None for a host name."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        return family
    return None


_CONNECT_UNDER_WAY = (errno.EINPROGRESS, errno.EINTR)
"""What a non-blocking ``connect_ex`` returns while the TCP handshake goes on."""


def _start_tcp(family: int, address: tuple[Any, ...]) -> tuple[socket.socket, bool]:
    """A non-blocking TCP socket whose connect to ``address`` has started, and whether it
    is connected already (see ``_connect``); the socket is closed if that raises."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        # MQTT packets are small and latency matters more than segment count.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connected = _connect(sock, address)
    except OSError:
        sock.close()
        raise
    return sock, connected


def _connect(sock: socket.socket, address: tuple[Any, ...]) -> bool:
    """Start the non-blocking ``sock``'s connect: True if it is connected already (over
    loopback the handshake ends inside ``connect_ex``), False while it goes on (over a
    network: the socket becomes writable when it ends, then see ``_check_connected``).
    Raises the error that ended it at once."""
    error = sock.connect_ex(address)
    if error in _CONNECT_UNDER_WAY:
        try:
            sock.getpeername()
        except OSError:  # not connected: under way, or refused already
            _check_connected(sock, address)
            return False
        return True
    if error:
        raise OSError(error, os.strerror(error))
    return True


def _check_connected(sock: socket.socket, address: tuple[Any, ...]) -> None:
    """Raise the error that ended a non-blocking connect, once ``sock`` is writable. The
    message is asyncio's ``sock_connect`` wording, which the links' owners have reported."""
    error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if error:
        raise OSError(error, f"Connect call failed {address}")


async def _until_ready(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, *, write: bool
) -> None:
    """Wait until ``sock`` is writable (``write``) or readable, without a thread."""
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    if write:
        loop.add_writer(sock, wake)
    else:
        loop.add_reader(sock, wake)
    try:
        await ready
    finally:
        if write:
            loop.remove_writer(sock)
        else:
            loop.remove_reader(sock)


@dataclass(frozen=True, slots=True, kw_only=True)
class Will:
    """The message the broker publishes for a link that is lost without DISCONNECT."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False

    def __post_init__(self) -> None:
        _check_topic(self.topic)
        _check_qos(self.qos)


class LinkState(StrEnum):
    """Where a link is; the value goes into JSON snapshots."""

    IDLE = "idle"
    """Created, never asked to connect."""
    CONNECTING = "connecting"
    """An attempt is under way (resolve, TCP, TLS, CONNECT, waiting for CONNACK)."""
    CONNECTED = "connected"
    """CONNACK accepted; publish and subscribe go out at once."""
    DISCONNECTED = "disconnected"
    """The last attempt failed, the connection was lost, or the owner disconnected."""
    CLOSED = "closed"
    """``close()`` was called; the link cannot be used again."""


_no_properties: Callable[[int], Properties] = Properties  # paho leaves its __init__ untyped

_ACKED = {
    "PUBACK": (ReasonCode(PacketTypes.PUBACK), _no_properties(PacketTypes.PUBACK)),
    "PUBCOMP": (ReasonCode(PacketTypes.PUBCOMP), _no_properties(PacketTypes.PUBCOMP)),
}
"""What paho 2.2 passes ``on_publish`` with every MQTT 3.1.1 PUBACK and PUBCOMP (which carry
the message id alone): success and no properties, made once (see ``_HandoverClient``)."""

_GRANTED = {code: ReasonCode(PacketTypes.SUBACK, identifier=code) for code in (0, 1, 2, 0x80)}
"""The reason codes of an MQTT 3.1.1 SUBACK (granted QoS 0, 1, 2 or refused), made once."""

_SUBACK_PROPERTIES = _no_properties(PacketTypes.SUBACK)
"""The (empty) properties paho 2.2 passes ``on_subscribe`` with an MQTT 3.1.1 SUBACK."""


class _HandoverClient(paho.Client):
    """paho's Client, given a socket already connected on the loop instead of dialling one,
    and reading the acks of MQTT 3.1.1 without objects of its own per ack.

    PRIVATE paho API, pinned by ``tests/net/test_mqtt.py``: paho 2.2's ``reconnect()``
    takes its socket from ``self._create_socket()`` (which dials with a blocking
    ``socket.create_connection`` and, for TLS, wraps it and handshakes synchronously),
    then sets it non-blocking, calls ``on_socket_open`` and queues CONNECT. Returning our
    socket here keeps all of paho's session handling in ``reconnect()`` (packet state
    reset, in-flight QoS 1/2 retries) and removes both blocking steps. paho's own TLS
    settings (``tls_set``) stay unused, so it never wraps the socket a second time.

    PRIVATE paho API too, pinned the same way: paho 2.2 decodes every PUBACK, PUBCOMP and
    SUBACK into a new ``ReasonCode`` (a copy of a 60-entry name table) and a new
    ``Properties`` (two dicts of every MQTT 5 property) even for MQTT 3.1.1, whose acks
    have neither: 10-15 us of decoding per PUBACK or SUBACK. ``_handle_pubackcomp`` and
    ``_handle_suback`` do what paho's do for MQTT 3.1.1 and callback API 2 (the message
    id, the in-flight bookkeeping, the callback under paho's locks) but pass the shared
    objects above, which the link's callbacks only read; anything else (MQTT 5, callback
    API 1, a malformed packet) goes to paho's own.
    """

    handover: socket.socket | ShapedSocket | None = None
    """The connected socket for the next ``reconnect()``; taken once."""

    def _create_socket(self) -> SocketLike:
        sock = self.handover
        if sock is None:
            raise LocalProtocolError("paho asked for a socket outside an MqttLink connect attempt")
        self.handover = None
        return sock

    def replace_socket(self, sock: ShapedSocket) -> None:
        """Put ``sock`` in place of the connected socket it wraps (same fd). PRIVATE paho
        API: paho reads and writes ``self._sock`` and nothing else holds the socket."""
        self._sock = sock

    def _handle_pubackcomp(self, cmd: Literal["PUBACK", "PUBCOMP"]) -> MQTTErrorCode:
        packet = self._in_packet["packet"]
        if self._protocol != paho.MQTTv311 or len(packet) != 2:
            return super()._handle_pubackcomp(cmd)
        mid = int.from_bytes(packet, "big")
        with self._out_message_mutex:
            if mid in self._out_messages:
                reason, properties = _ACKED[cmd]
                return self._do_on_publish(mid, reason, properties)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _handle_suback(self) -> None:
        packet = self._in_packet["packet"]
        if (
            self._protocol != paho.MQTTv311
            or self._callback_api_version is not CallbackAPIVersion.VERSION2
            or len(packet) < 3
            or not all(code in _GRANTED for code in packet[2:])
        ):
            super()._handle_suback()
            return
        mid = int.from_bytes(packet[:2], "big")
        reasons = [_GRANTED[code] for code in packet[2:]]
        with self._callback_mutex:
            on_subscribe = cast("CallbackOnSubscribe_v2 | None", self.on_subscribe)
        if on_subscribe:
            with self._in_callback_mutex:
                on_subscribe(self, self._userdata, mid, reasons, _SUBACK_PROPERTIES)


class MqttHub:
    """The MQTT timekeeper of one asyncio loop: one timer serves every link.

    A link is visited only when its keepalive work is due (see ``_keepalive_due``): the
    hub keeps each link with a socket in one slot of a timer wheel, a dict from tick
    number to the links due in that tick. Every ``tick_s`` the timer takes the slots
    that have come and, for each link in them, reads paho's keepalive clocks again:
    ``loop_misc`` runs only if the keepalive has really elapsed, and the link goes back
    into the slot of its next due time. A PINGREQ goes out at the first tick after it is
    due, as when every link was visited every tick. paho 2.2 moves ``_last_msg_out`` only
    when it sends CONNECT, PINGREQ or DISCONNECT, not for PUBLISH or the acks it writes,
    so a connected link pings once per keepalive whatever its traffic, and the hub calls
    ``loop_misc`` on it once per keepalive rather than once per tick.

    The hub also lets at most ``DIALS_PER_TURN`` connect attempts dial per turn of the
    loop (``_admit``), the rest waiting in order for later turns. An attempt sets off
    work over the next few turns (the TCP connect, CONNECT, the CONNACK and what the owner
    does with it); admitted a few a turn, that work is bounded per turn, so when more
    attempts come than the loop keeps up with (a fleet powering on 1000 units a second)
    the turns stay short and the established links' reads and timers wait one short turn,
    not one that grows with the queue. The loop does the same work either way: only the
    new connections wait, which is where the waiting belongs. The wait counts towards the
    attempt's ``connect_timeout_s``.

    Args:
        loop: the asyncio loop that owns every fd of this process.
        tick_s: the timer's period. A PINGREQ goes out at most ``tick_s`` after the
            keepalive is due, so keepalives must exceed ``2 * tick_s`` (brokers drop a
            client after 1.5 x keepalive of silence).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, *, tick_s: float = 1.0) -> None:
        if not (isinstance(tick_s, int | float) and 0 < tick_s <= 60):
            raise ValueError(f"tick_s must be in (0, 60] seconds, not {tick_s!r}")
        self.loop = loop
        self.tick_s = float(tick_s)
        self._links: set[MqttLink] = set()
        self._wheel: dict[int, list[MqttLink]] = {}
        """Tick number (paho's clock // tick_s) -> the links to look at in that tick."""
        self._next_slot = self._slot(paho.time_func())
        """The first tick number the timer has not taken yet."""
        self._tls_contexts: dict[Path, ssl.SSLContext] = {}
        self._dials: deque[tuple[MqttLink, asyncio.TimerHandle]] = deque()
        """Connect attempts waiting for their turn to dial, oldest first: each link with
        the attempt (``MqttLink._attempt``) that was waiting."""
        self._admitting: asyncio.Handle | None = None
        self._timer: asyncio.TimerHandle | None = loop.call_later(self.tick_s, self._tick)
        self.on_acked: Callable[[float], None] | None = None
        """Called with the seconds from each QoS 1/2 publish of any link of this hub to its
        PUBACK (PUBCOMP for QoS 2); None: nothing is timed (the links keep no send times)."""

    @property
    def closed(self) -> bool:
        """True after ``close()``."""
        return self._timer is None

    @property
    def link_count(self) -> int:
        """How many links of this hub are not closed."""
        return len(self._links)

    def close(self) -> None:
        """Stop the timer and close every link (each sends DISCONNECT if connected)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for link in tuple(self._links):
            link.close()
        self._wheel.clear()
        self._dials.clear()
        if self._admitting is not None:
            self._admitting.cancel()
            self._admitting = None

    def _wait_to_dial(self, link: MqttLink, attempt: asyncio.TimerHandle) -> None:
        """Queue ``link``'s ``attempt`` to dial in a later turn (see the class comment); an
        attempt that has ended by then gives its place up."""
        self._dials.append((link, attempt))
        if self._admitting is None:
            self._admitting = self.loop.call_soon(self._admit)

    def _admit(self) -> None:
        """Let the next ``DIALS_PER_TURN`` waiting attempts dial; the rest next turn."""
        self._admitting = None
        dials, admitted = self._dials, 0
        while dials and admitted < DIALS_PER_TURN:
            link, attempt = dials.popleft()
            if link._attempt is attempt:  # else that attempt has ended meanwhile
                admitted += 1
                link._dial()
        if dials and not self.closed:
            self._admitting = self.loop.call_soon(self._admit)

    def _slot(self, when: float) -> int:
        return int(when // self.tick_s)

    def _tick(self) -> None:
        self._timer = self.loop.call_later(self.tick_s, self._tick)
        now = paho.time_func()
        last = self._slot(now)
        slots = range(self._next_slot, last + 1)
        # Taken before any visit: a link put back during the visits lands in a later slot.
        self._next_slot = last + 1
        for links in [self._wheel.pop(slot) for slot in slots if slot in self._wheel]:
            for link in links:
                self._visit(link, now)

    def _visit(self, link: MqttLink, now: float) -> None:
        due = link._keepalive_due()
        if due is not None and due <= now:
            link._keep_alive()
            due = link._keepalive_due()
        link._on_wheel = due is not None
        if due is not None:
            self._put(link, due)

    def _watch(self, link: MqttLink) -> None:
        """Put a link that has just got a socket on the wheel, unless it is there already.

        A slot it holds from an earlier socket is never later than the new socket's due
        time (paho's keepalive clocks only move forward), so it stays.
        """
        due = link._keepalive_due()
        if due is not None and not link._on_wheel and self._timer is not None:
            link._on_wheel = True
            self._put(link, due)

    def _put(self, link: MqttLink, due: float) -> None:
        # The slot's tick starts at or before ``due``: if the timer comes early in it, the
        # visit finds nothing due and puts the link in the next slot, whose tick is after.
        slot = max(self._slot(due), self._next_slot)
        links = self._wheel.get(slot)
        if links is None:
            self._wheel[slot] = [link]
        else:
            links.append(link)

    def _tls_context(self, ca: Path) -> ssl.SSLContext:
        """One verifying client context per CA file, shared by every link that uses it."""
        key = ca.resolve()
        context = self._tls_contexts.get(key)
        if context is None:
            try:
                context = ssl.create_default_context(cafile=str(key))
            except OSError as exc:
                raise ConfigError(
                    f"tls_ca must be a readable PEM CA file, not {str(ca)!r}: {exc}"
                ) from exc
            self._tls_contexts[key] = context
        return context


class MqttLink:
    """One MQTT 3.1.1 client connection (a device's or a console's), driven by its hub.

    Use it from the loop's thread only. Set the callbacks, then call ``connect()``.

    Args:
        hub: the hub of the loop this link runs on.
        client_id: the MQTT client identifier.
        host: broker host name or IP address.
        port: broker TCP port.
        username: sent in CONNECT when given.
        password: sent in CONNECT when given (needs ``username``).
        keepalive: seconds; 0 turns keepalive off, otherwise more than ``2 * hub.tick_s``.
        will: published by the broker if the connection is lost without DISCONNECT.
        tls_ca: connect with TLS (mqtts) and verify the broker's certificate, including
            its name or IP address, against this CA file (PEM).
        clean_session: the CONNECT flag; False keeps the broker-side session.
        connect_timeout_s: the limit for a whole attempt, from ``connect()`` to CONNACK.

    Raises:
        ValueError: a bad argument (the message names it and the allowed range).
        ConfigError: ``tls_ca`` cannot be loaded.
        LinkClosedError: the hub is closed.
    """

    __slots__ = (
        "_attempt",
        "_client",
        "_dialling",
        "_got_message",
        "_holding",
        "_impairment",
        "_in_paho",
        "_on_wheel",
        "_paho_socket",
        "_publishing",
        "_sent_at",
        "_state",
        "_sub_mids",
        "_subscriptions",
        "_tls",
        "clean_session",
        "client_id",
        "connect_timeout_s",
        "host",
        "hub",
        "keepalive",
        "on_connect_failed",
        "on_connected",
        "on_disconnected",
        "on_message",
        "on_published",
        "on_subscribed",
        "port",
    )

    def __init__(
        self,
        hub: MqttHub,
        *,
        client_id: str,
        host: str,
        port: int = 1883,
        username: str | None = None,
        password: str | None = None,
        keepalive: int = 60,
        will: Will | None = None,
        tls_ca: Path | None = None,
        clean_session: bool = True,
        connect_timeout_s: float = 10.0,
    ) -> None:
        if hub.closed:
            raise LinkClosedError("cannot create an MqttLink on a closed MqttHub")
        if not host:
            raise ValueError(f"host must be a host name or IP address, not {host!r}")
        if not (isinstance(port, int) and 1 <= port <= 65535):
            raise ValueError(f"port must be 1..65535, not {port!r}")
        min_keepalive = math.floor(2 * hub.tick_s) + 1
        if not (
            isinstance(keepalive, int) and (keepalive == 0 or min_keepalive <= keepalive <= 65535)
        ):
            raise ValueError(
                f"keepalive must be 0 (off) or {min_keepalive}..65535 s (more than twice the "
                f"hub's tick of {hub.tick_s:g} s), not {keepalive!r}"
            )
        if not (isinstance(connect_timeout_s, int | float) and connect_timeout_s > 0):
            raise ValueError(f"connect_timeout_s must be > 0, not {connect_timeout_s!r}")
        if not client_id and not clean_session:
            raise ValueError(
                f"client_id must be non-empty when clean_session is False, not {client_id!r}"
            )
        if password is not None and username is None:
            raise ValueError("password needs a username (MQTT 3.1.1), not username=None")
        self.hub = hub
        self.client_id = client_id
        self.host = host
        self.port = port
        self.keepalive = keepalive
        self.clean_session = clean_session
        self.connect_timeout_s = float(connect_timeout_s)
        self._tls = hub._tls_context(tls_ca) if tls_ca is not None else None
        self._state = LinkState.IDLE
        # The deadline of the attempt under way, which also stands for the attempt; the
        # attempt's socket while its TCP connect goes on (the loop's writer waits for it),
        # or its task while it resolves a host name or handshakes TLS.
        self._attempt: asyncio.TimerHandle | None = None
        self._dialling: socket.socket | asyncio.Task[None] | None = None
        self._impairment: Impairment | None = None
        self._paho_socket = False
        self._in_paho = False
        # While paho's packets wait for _write_held rather than the writer; while publish()
        # writes its message (a loss is told from the next turn); whether the last read
        # brought a message (PUBLISH).
        self._holding = self._publishing = self._got_message = False
        self._on_wheel = False
        self._subscriptions: dict[str, int] = {}
        self._sub_mids: dict[int, tuple[str, ...]] = {}
        self._sent_at: dict[int, float] | None = None
        """When each QoS 1/2 message in flight was published (loop time, by message id),
        while the hub times acknowledgements (``MqttHub.on_acked``)."""

        self.on_connected: Callable[[], None] = _ignore
        """Called when the broker accepts CONNECT."""
        self.on_connect_failed: Callable[[str], None] = _ignore
        """Called with a reason (``connection refused``, ``not authorized``, ``timed out ...``)
        when an attempt ends without a connection."""
        self.on_disconnected: Callable[[str], None] = _ignore
        """Called with a reason (``connection lost``, ``keepalive timeout``) when an
        established connection is lost; never after ``disconnect()``, ``abort()`` or ``close()``."""
        self.on_message: Callable[[str, bytes], None] = _ignore
        """Called with the topic and payload of every message received."""
        self.on_published: Callable[[int], None] = _ignore
        """Called with the message id ``publish()`` returned: at PUBACK for QoS 1 (PUBCOMP
        for QoS 2); for QoS 0 when the packet has been handed to the kernel."""
        self.on_subscribed: Callable[[str, int | None], None] = _ignore
        """Called per topic filter at SUBACK with the granted QoS, or None if refused."""

        self._client = self._make_client(username, password, will)
        hub._links.add(self)

    @property
    def state(self) -> LinkState:
        """Where the link is (see the module's state table)."""
        return self._state

    @property
    def connected(self) -> bool:
        """True between an accepted CONNACK and the end of the connection."""
        return self._state is LinkState.CONNECTED

    def connect(self) -> None:
        """Start a connection attempt and return at once.

        The attempt ends, within ``connect_timeout_s``, in ``on_connected()`` or in
        ``on_connect_failed(reason)``; the state is CONNECTING meanwhile.

        Raises:
            LinkClosedError: after ``close()``.
            LocalProtocolError: while connecting or connected (the state does not change).
        """
        self._check_open()
        if self._state in (LinkState.CONNECTING, LinkState.CONNECTED):
            raise LocalProtocolError(
                f"connect() needs state idle or disconnected, not {self._state}"
            )
        self._state = LinkState.CONNECTING
        self._sub_mids.clear()
        self._sent_at = None
        hub = self.hub
        attempt = self._attempt = hub.loop.call_later(self.connect_timeout_s, self._timed_out)
        impairment = self._impairment
        if impairment is None or not impairment.conditions.blocks_connect:
            hub._wait_to_dial(self, attempt)
        # else the SYN vanishes: only the deadline ends the attempt

    def subscribe(self, topic: str, qos: int = 0) -> None:
        """Subscribe to a topic filter now if connected, and again after every reconnect.

        The outcome arrives in ``on_subscribed``. Subscribing again to the same filter
        changes its QoS.

        Raises:
            ValueError: a bad filter or QoS.
            LinkClosedError: after ``close()``.
        """
        self._check_open()
        _check_filter(topic)
        _check_qos(qos)
        self._subscriptions[topic] = qos
        if self._state is LinkState.CONNECTED:
            self._send_subscribe([(topic, qos)])

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> int | None:
        """Queue a message for the broker; never blocks.

        Returns:
            The message id (1..65535) that ``on_published`` reports when the message is
            delivered, or None when the link is not connected (nothing is queued then).

        Raises:
            ValueError: a bad topic or QoS.
            LinkClosedError: after ``close()``.
        """
        self._check_open()
        _check_topic(topic)
        _check_qos(qos)
        if self._state is not LinkState.CONNECTED:
            return None
        client = self._client
        # Written now onto an empty queue (see the module comment); not from inside paho,
        # whose lock is held, and not a QoS 0 message, whose on_published would come from
        # inside this call.
        if qos == 0 or self._in_paho or client.want_write():
            info = client.publish(topic, payload, qos, retain)
        else:
            self._holding = True
            try:
                info = client.publish(topic, payload, qos, retain)
            finally:
                self._publishing = True
                try:
                    self._write_held()
                finally:
                    self._publishing = False
        if info.rc != paho.MQTT_ERR_SUCCESS:
            return None
        if qos and self.hub.on_acked is not None:
            if self._sent_at is None:
                self._sent_at = {}
            self._sent_at[info.mid] = self.hub.loop.time()
        return info.mid

    def disconnect(self) -> None:
        """End the connection cleanly: DISCONNECT, so the broker discards the will.

        A pending attempt is abandoned. No callback follows; the state is DISCONNECTED
        (or stays IDLE). The socket is closed before this returns, or, when called from
        one of this link's callbacks, as soon as paho's processing returns.
        """
        self._check_open()
        self._stop(graceful=True)

    def abort(self) -> None:
        """Drop the connection without DISCONNECT, as a lost radio link would.

        The broker sees the TCP connection close and publishes the will. No callback
        follows; the state is DISCONNECTED (or stays IDLE).
        """
        self._check_open()
        self._stop(graceful=False)

    def close(self) -> None:
        """Disconnect cleanly if connected and leave the hub; the link cannot be used again."""
        if self._state is LinkState.CLOSED:
            return
        self._stop(graceful=True)
        self._state = LinkState.CLOSED
        self.hub._links.discard(self)

    @property
    def impairment(self) -> Impairment | None:
        """The link conditions in force (None: a healthy link)."""
        return self._impairment

    def impair(self, impairment: Impairment | None) -> None:
        """Put the link under the unit's conditions from now on (None: none).

        The connection of the moment takes them at once (its bytes go through a
        ``ShapedSocket`` from now on); later connect attempts are made under them.
        """
        self._check_open()
        self._impairment = impairment
        sock = self._client.socket()
        if isinstance(sock, ShapedSocket):
            sock.impair(impairment)
        elif impairment is not None and isinstance(sock, socket.socket):
            self._client.replace_socket(
                ShapedSocket(sock, self.hub.loop, impairment, self._readable)
            )

    def reset(self) -> None:
        """The network resets the connection: an RST to the broker (which publishes the
        will), and ``on_disconnected(RESET_REASON)`` (``on_connect_failed`` while
        connecting) from the loop's next turn. Nothing happens when idle or disconnected.
        """
        self._check_open()
        was = self._state
        if was not in (LinkState.CONNECTING, LinkState.CONNECTED):
            return
        sock = self._client.socket()
        raw = sock.raw if isinstance(sock, ShapedSocket) else sock
        if isinstance(raw, socket.socket):
            with contextlib.suppress(OSError):
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._stop(graceful=False)
        report = self.on_disconnected if was is LinkState.CONNECTED else self.on_connect_failed
        self._tell_later(report, RESET_REASON)

    def _tell_later(self, report: Callable[[str], None], reason: str) -> None:
        """Report a loss to the owner from the loop's next turn, unless the link has been
        used again by then."""

        def tell() -> None:
            if self._state is LinkState.DISCONNECTED:
                report(reason)

        self.hub.loop.call_soon(tell)

    def _make_client(
        self, username: str | None, password: str | None, will: Will | None
    ) -> _HandoverClient:
        client = _HandoverClient(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=self.clean_session,
            protocol=paho.MQTTv311,
            userdata=self,
            reconnect_on_failure=False,  # else paho re-dials (blocking) on some CONNACK codes
        )
        # Records where to go; dials nothing.
        client.connect_async(self.host, self.port, self.keepalive)
        if username is not None:
            client.username_pw_set(username, password)
        if will is not None:
            client.will_set(will.topic, will.payload, will.qos, will.retain)
        client.on_socket_open = self._socket_opened
        client.on_socket_close = self._socket_closed
        client.on_socket_register_write = self._socket_wants_write
        client.on_socket_unregister_write = self._socket_wrote_all
        client.on_connect = self._paho_connected
        client.on_disconnect = self._paho_disconnected
        client.on_message = self._paho_message
        client.on_publish = self._paho_published
        client.on_subscribe = self._paho_subscribed
        return client

    def _check_open(self) -> None:
        if self._state is LinkState.CLOSED:
            raise LinkClosedError(f"MqttLink {self.client_id!r} is closed")

    # -- the connect attempt: a deadline, a turn to dial, then the TCP connect by readiness --

    def _dial(self) -> None:
        """Start the admitted attempt's connection (see ``MqttHub._admit``): to an IP address
        without TLS, a non-blocking connect, handed over at once if it has ended in a
        connection already, else when the loop's writer finds it ended; to a host name or
        with TLS, a task that resolves, connects and handshakes."""
        family = _numeric_family(self.host)
        if family is None or self._tls is not None:
            self._dialling = self.hub.loop.create_task(
                self._open_slowly(), name=f"mqtt connect {self.client_id}"
            )
            return
        try:
            sock, connected = _start_tcp(family, (self.host, self.port))
        except OSError as exc:
            self._give_up(_describe(exc))
            return
        # A socket paho still holds waits for its deferred close (``_stop``), which this
        # turn runs after the hub's admission: the new one goes over in a later turn.
        if connected and self._client.socket() is None:
            self._hand_over(sock)
        else:
            self._dialling = sock
            self.hub.loop.add_writer(sock.fileno(), self._tcp_connected)

    def _tcp_connected(self) -> None:
        """The writer of a dialling socket: its connect has ended, either way."""
        sock = self._dialling
        assert isinstance(sock, socket.socket)  # the attempt's end removes this writer
        self._dialling = None
        self.hub.loop.remove_writer(sock.fileno())
        try:
            _check_connected(sock, (self.host, self.port))
        except OSError as exc:
            sock.close()
            self._give_up(_describe(exc))
            return
        self._hand_over(sock)

    async def _open_slowly(self) -> None:
        """The task of an attempt that resolves a host name or handshakes TLS."""
        try:
            sock = await self._open_transport()
        except OSError as exc:
            self._dialling = None
            self._give_up(_describe(exc))
            return
        self._dialling = None
        self._hand_over(sock)

    def _hand_over(self, sock: socket.socket) -> None:
        """Give paho the connected socket; its ``reconnect()`` queues CONNECT, written now."""
        impairment = self._impairment
        self._client.handover = (
            sock
            if impairment is None
            else ShapedSocket(sock, self.hub.loop, impairment, self._readable)
        )
        self._paho_socket = True
        self._holding = self._in_paho = True
        try:
            self._client.reconnect()  # takes the socket, queues CONNECT (held: no I/O)
        finally:
            self._write_held()
            self._in_paho = False

    def _timed_out(self) -> None:
        """The attempt's deadline: no CONNACK within ``connect_timeout_s`` of ``connect()``."""
        self._attempt = None
        waited_for = "CONNACK" if self._paho_socket else "the TCP/TLS connection"
        self._give_up(f"timed out after {self.connect_timeout_s:g} s waiting for {waited_for}")

    async def _open_transport(self) -> socket.socket:
        error: OSError | None = None
        for family, address in await self._addresses():
            try:
                sock = await self._dial_tcp(family, address)
            except OSError as exc:
                error = exc
                continue
            if self._tls is None:
                return sock
            return await self._handshake(sock, self._tls)
        if error is None:
            raise OSError(f"no address found for {self.host!r}")
        raise error

    async def _addresses(self) -> list[tuple[int, tuple[Any, ...]]]:
        family = _numeric_family(self.host)
        if family is None:
            # A name: resolved in asyncio's executor (a thread pool), once per attempt.
            infos = await self.hub.loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
            return [(info[0], info[4]) for info in infos]
        return [(family, (self.host, self.port))]

    async def _dial_tcp(self, family: int, address: tuple[Any, ...]) -> socket.socket:
        sock, connected = _start_tcp(family, address)
        if not connected:
            with contextlib.ExitStack() as on_failure:
                on_failure.callback(sock.close)
                await _until_ready(self.hub.loop, sock, write=True)
                _check_connected(sock, address)
                on_failure.pop_all()
        return sock

    async def _handshake(self, sock: socket.socket, context: ssl.SSLContext) -> ssl.SSLSocket:
        with contextlib.ExitStack() as on_failure:
            on_failure.callback(sock.close)
            tls = context.wrap_socket(
                sock, server_hostname=self.host, do_handshake_on_connect=False
            )
            on_failure.callback(tls.close)
            while True:
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    await _until_ready(self.hub.loop, tls, write=False)
                except ssl.SSLWantWriteError:
                    await _until_ready(self.hub.loop, tls, write=True)
            on_failure.pop_all()
        return tls

    def _give_up(self, reason: str) -> None:
        """End the attempt from a step of its own (never inside a paho callback)."""
        self._stop(graceful=False)
        self.on_connect_failed(reason)

    def _end_attempt(self) -> None:
        if self._attempt is not None:
            self._attempt.cancel()
            self._attempt = None
        dialling = self._dialling
        if dialling is not None:
            self._dialling = None
            if isinstance(dialling, socket.socket):
                self.hub.loop.remove_writer(dialling.fileno())
                dialling.close()
            else:
                dialling.cancel()  # its sockets close as the cancellation unwinds it

    def _stop(self, *, graceful: bool) -> None:
        """End any attempt or connection; paho reports nothing of it to the owner."""
        self._end_attempt()
        graceful = graceful and self._state is LinkState.CONNECTED
        if self._state in (LinkState.CONNECTING, LinkState.CONNECTED):
            self._state = LinkState.DISCONNECTED
        self._paho_socket = False
        sock = self._client.socket()
        if sock is None:
            return
        if self._in_paho:
            # paho holds a non-reentrant lock while it calls back, and closing the socket
            # takes it again: close right after paho's processing returns. Nothing is
            # reported meanwhile (the state is no longer CONNECTED), and a new attempt's
            # socket cannot be handed over before this runs (its TCP connect, started
            # from the hub's admission, ends in the writer's callback of a later turn).
            self.hub.loop.call_soon(self._close_socket, sock, graceful)
        else:
            self._close_socket(sock, graceful)

    def _close_socket(self, sock: SocketLike, graceful: bool) -> None:
        client = self._client
        if client.socket() is not sock:
            return  # paho closed it meanwhile
        if graceful:
            client.disconnect()  # queues DISCONNECT
            client.loop_write()  # sends it now; paho then closes the socket
        if client.socket() is not None:
            # A full send buffer kept DISCONNECT, or none was sent: connect_async() closes
            # the socket without calling on_disconnect.
            client.connect_async(self.host, self.port, self.keepalive)

    def _send_subscribe(self, topics: list[tuple[str, int]]) -> None:
        _rc, mid = self._client.subscribe(topics)
        if mid is not None:
            self._sub_mids[mid] = tuple(topic for topic, _qos in topics)

    def _keepalive_due(self) -> float | None:
        """When paho's ``loop_misc`` next has work for this link, on paho's clock; None
        while there is nothing to keep alive (no socket, keepalive off, closed).

        PRIVATE paho API, pinned by ``tests/net/test_mqtt.py``: paho 2.2's
        ``_check_keepalive`` sends PINGREQ (or, while waiting for a PINGRESP or a
        CONNACK, drops the connection) once ``keepalive`` has passed since
        ``_last_msg_out`` or since ``_last_bytes_received``, and ``loop_misc`` drops it
        once ``keepalive`` has passed since an unanswered PINGREQ (``_ping_t``).
        """
        client = self._client
        if not self.keepalive or client._sock is None or self._state is LinkState.CLOSED:
            return None
        since = min(client._last_msg_out, client._last_bytes_received)
        if client._ping_t > 0:
            since = min(since, client._ping_t)
        return since + self.keepalive

    def _keep_alive(self) -> None:
        self._in_paho = True
        try:
            self._client.loop_misc()
        finally:
            self._in_paho = False

    # -- the one fd, read and written by paho on the loop's readiness events --

    def _readable(self) -> None:
        client = self._client
        self._holding = self._in_paho = True
        try:
            # paho's loop_read takes one packet a call (or as many as it has QoS 1 and 2
            # messages in flight, so the acks a link waits for come together): after a
            # message, read on while bytes wait, up to READ_BURST packets, or a link that
            # receives many (the load test's verifier) gets one per loop pass. After any
            # other packet the ioctl that asks would be wasted on a unit's link nearly
            # always (4 % of the loop at a 1000/s ramp's peak).
            for _ in range(READ_BURST):
                self._got_message = False
                client.loop_read()
                # TLS decrypts whole records: bytes already inside the SSL object make no
                # fd readable, so read them now.
                sock = client.socket()
                while isinstance(sock, ssl.SSLSocket) and sock.pending():
                    client.loop_read()
                    sock = client.socket()
                if not (
                    self._got_message and isinstance(sock, socket.socket) and _bytes_waiting(sock)
                ):
                    break
        finally:
            self._write_held()  # what the read queued: the SUBSCRIBE, PUBACKs, the owner's
            self._in_paho = False

    def _writable(self) -> None:
        self._in_paho = True
        try:
            self._client.loop_write()
        finally:
            self._in_paho = False

    def _write_held(self) -> None:
        """End ``_holding``: hand what paho queued meanwhile to the kernel now, and add the
        writer (which paho asked for once, while held) for what it does not take. A socket
        the link has given up keeps its packets for the writer, as before: its close,
        already queued with ``call_soon``, runs first."""
        if not self._holding:
            return
        self._holding = False
        client = self._client
        sock = client.socket()
        if sock is None or not client.want_write():
            return
        if self._paho_socket:
            client.loop_write()
            sock = client.socket()
            if sock is None or not client.want_write():
                return
        self.hub.loop.add_writer(sock, self._writable)

    # -- paho's callbacks. They are shared functions rather than bound methods (paho passes
    # the link as userdata), so thousands of links store no callback objects of their own.

    # The socket hooks: the loop watches the one fd.

    @staticmethod
    def _socket_opened(client: paho.Client, link: MqttLink, sock: SocketLike) -> None:
        # By its fd: the selector looks a new fd up first, and the KeyError it raises for a
        # socket object formats the socket's repr (two syscalls, twice) for nobody.
        link.hub.loop.add_reader(sock.fileno(), link._readable)
        link.hub._watch(link)

    @staticmethod
    def _socket_closed(client: paho.Client, link: MqttLink, sock: SocketLike) -> None:
        link.hub.loop.remove_reader(sock.fileno())  # paho closes the socket after this

    @staticmethod
    def _socket_wants_write(client: paho.Client, link: MqttLink, sock: SocketLike) -> None:
        if not link._holding:  # else _write_held writes, and adds the writer if need be
            link.hub.loop.add_writer(sock, link._writable)

    @staticmethod
    def _socket_wrote_all(client: paho.Client, link: MqttLink, sock: SocketLike) -> None:
        link.hub.loop.remove_writer(sock)

    # The MQTT callbacks.

    @staticmethod
    def _paho_connected(
        client: paho.Client,
        link: MqttLink,
        flags: ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if link._state is not LinkState.CONNECTING:
            return
        link._end_attempt()
        if reason.is_failure:
            link._paho_socket = False  # paho closes it next and reports that: not a loss
            link._state = LinkState.DISCONNECTED
            link.on_connect_failed(reason.getName().lower())
            return
        link._state = LinkState.CONNECTED
        if link._subscriptions:
            link._send_subscribe(list(link._subscriptions.items()))
        link.on_connected()

    @staticmethod
    def _paho_disconnected(
        client: paho.Client,
        link: MqttLink,
        flags: DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if not link._paho_socket:
            return
        link._paho_socket = False
        name = reason.getName()
        why = _LOSS_REASONS.get(name, name.lower())
        if link._state is LinkState.CONNECTING:
            link._end_attempt()
            link._state = LinkState.DISCONNECTED
            link.on_connect_failed(f"{why} before CONNACK")
        else:
            link._state = LinkState.DISCONNECTED
            if link._publishing:  # found by publish()'s write: not inside the owner's call
                link._tell_later(link.on_disconnected, why)
            else:
                link.on_disconnected(why)

    @staticmethod
    def _paho_message(client: paho.Client, link: MqttLink, message: MQTTMessage) -> None:
        link._got_message = True
        if link._state is LinkState.CONNECTED:
            link.on_message(message.topic, bytes(message.payload))

    @staticmethod
    def _paho_published(
        client: paho.Client,
        link: MqttLink,
        mid: int,
        reason: ReasonCode,
        properties: Properties,
    ) -> None:
        if link._state is LinkState.CONNECTED:
            sent_at = link._sent_at.pop(mid, None) if link._sent_at else None
            on_acked = link.hub.on_acked
            if sent_at is not None and on_acked is not None:
                on_acked(link.hub.loop.time() - sent_at)
            link.on_published(mid)

    @staticmethod
    def _paho_subscribed(
        client: paho.Client,
        link: MqttLink,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        topics = link._sub_mids.pop(mid, None)
        if topics is None or link._state is not LinkState.CONNECTED:
            return  # a SUBACK for an earlier connection, or after our disconnect()
        for topic, reason in zip(topics, reasons, strict=True):
            link.on_subscribed(topic, None if reason.is_failure else reason.value)


async def connect_and_wait(link: MqttLink, timeout_s: float) -> str | None:
    """Connect ``link`` and wait for the outcome: None when connected, else the reason.

    It sets ``on_connected`` and ``on_connect_failed`` for the attempt; the caller sets
    its own callbacks afterwards.
    """
    outcome: asyncio.Future[str | None] = link.hub.loop.create_future()

    def settle(reason: str | None) -> None:
        if not outcome.done():
            outcome.set_result(reason)

    link.on_connected = lambda: settle(None)
    link.on_connect_failed = settle
    link.connect()
    try:
        return await asyncio.wait_for(outcome, timeout_s)
    except TimeoutError:
        return f"no answer within {timeout_s} s"
