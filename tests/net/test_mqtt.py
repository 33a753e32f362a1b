"""MqttLink and MqttHub against real brokers on 127.0.0.1: a private mosquitto, an in-process amqtt.

Every test runs its own asyncio loop (``asyncio.run``) and waits for what it expects with
an explicit deadline; the only timed sleeps are the readiness poll of a starting mosquitto
and the lag probe's own 10 ms timer. An exception in any loop callback fails the test.
The in-process amqtt cases matter most: a client that blocked the loop while connecting
(or in its TLS handshake) would deadlock against a broker on the same loop. The keepalive
tests use a strict fake broker, because mosquitto 2.0.11 enforces 1.5 x keepalive only
coarsely (a silent client with keepalive 1 s was dropped after about 5 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import inspect
import math
import signal
import socket
import struct
import subprocess
import threading
import time
import types
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator, Iterator
from pathlib import Path
from typing import Any, TypeVar

import paho.mqtt.client as paho
import pytest
from paho.mqtt import _packet as paho_packet
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import require_tool
from vdtu.errors import LinkClosedError, LocalProtocolError
from vdtu.net import mqtt
from vdtu.net.mqtt import (
    DIALS_PER_TURN,
    READ_BURST,
    LinkState,
    MqttHub,
    MqttLink,
    Will,
    _HandoverClient,
)

T = TypeVar("T")

pytestmark = pytest.mark.realtime

DEADLINE_S = 10.0
"""The longest any test waits for one expected report."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Mosquitto:
    """A private mosquitto child process on 127.0.0.1, with its own config file."""

    def __init__(self, directory: Path, *, port: int, extra: tuple[str, ...] = ()) -> None:
        self.path = require_tool("mosquitto")
        self.port = port
        self.config = directory / f"mosquitto-{port}.conf"
        lines = (
            f"listener {port} 127.0.0.1",
            "allow_anonymous true",
            "persistence false",
            "max_queued_messages 100000",
            "log_type error",
            "log_dest stderr",
            *extra,
        )
        self.config.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen[bytes] | None = None

    def launch(self) -> subprocess.Popen[bytes]:
        """Start the process (a child of the test, not watched by any thread)."""
        self.process = subprocess.Popen(
            [self.path, "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        return self.process

    async def start(self) -> None:
        """Start it and wait until it accepts TCP connections."""
        process = self.launch()
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(DEADLINE_S):
            while True:
                if process.poll() is not None:
                    _out, err = process.communicate()
                    pytest.fail(f"mosquitto exited: {err.decode(errors='replace')}")
                with socket.socket() as probe:
                    probe.setblocking(False)
                    try:
                        await loop.sock_connect(probe, ("127.0.0.1", self.port))
                    except ConnectionRefusedError:
                        await asyncio.sleep(0.02)
                    else:
                        return

    def kill(self) -> None:
        """Kill it at once (SIGKILL): its clients see their connections drop."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        """SIGTERM, then wait for the exit."""
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


@contextlib.asynccontextmanager
async def running_mosquitto(
    directory: Path, *, port: int | None = None, extra: tuple[str, ...] = ()
) -> AsyncIterator[Mosquitto]:
    """A started mosquitto, stopped on exit."""
    broker = Mosquitto(directory, port=port or free_port(), extra=extra)
    try:
        await broker.start()
        yield broker
    finally:
        broker.stop()


@contextlib.asynccontextmanager
async def running_amqtt(listener: dict[str, Any] | None = None) -> AsyncIterator[int]:
    """An amqtt broker on this loop; yields its port."""
    # Imported by name: amqtt ships no type information.
    broker_module = importlib.import_module("amqtt.broker")
    port = free_port()
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}", **(listener or {})}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    broker = broker_module.Broker(config)
    await broker.start()
    try:
        yield port
    finally:
        await broker.shutdown()


@contextlib.asynccontextmanager
async def running_broker(kind: str, directory: Path) -> AsyncIterator[int]:
    """A mosquitto or an in-process amqtt; yields its port."""
    if kind == "mosquitto":
        async with running_mosquitto(directory) as broker:
            yield broker.port
    else:
        async with running_amqtt() as port:
            yield port


@contextlib.asynccontextmanager
async def full_listener() -> AsyncIterator[tuple[socket.socket, int]]:
    """A listening socket on 127.0.0.1 whose accept queue is already full (a SYN to it is
    dropped until one connection is accepted); yields it and its port."""
    loop = asyncio.get_running_loop()
    with socket.socket() as listener, socket.socket() as filler:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        filler.setblocking(False)
        await loop.sock_connect(filler, ("127.0.0.1", port))  # the accept queue is full
        yield listener, port


class Recorder:
    """Everything one link reports, in order, and a way to wait for a report."""

    def __init__(self, link: MqttLink) -> None:
        self.events: list[tuple[str, object]] = []
        self._changed = asyncio.Event()
        link.on_connected = lambda: self._add("connected", None)
        link.on_connect_failed = lambda reason: self._add("connect_failed", reason)
        link.on_disconnected = lambda reason: self._add("disconnected", reason)
        link.on_message = lambda topic, payload: self._add("message", (topic, payload))
        link.on_published = lambda mid: self._add("published", mid)
        link.on_subscribed = lambda topic, qos: self._add("subscribed", (topic, qos))

    def _add(self, kind: str, value: object) -> None:
        self.events.append((kind, value))
        self._changed.set()

    def values(self, kind: str) -> list[object]:
        """The values of every report of this kind so far."""
        return [value for seen, value in self.events if seen == kind]

    async def wait_for(
        self, kind: str, count: int = 1, *, deadline_s: float = DEADLINE_S
    ) -> list[object]:
        """Wait until ``count`` reports of ``kind`` have arrived; return their values.

        Raises:
            TimeoutError: they did not arrive within ``deadline_s``.
        """
        async with asyncio.timeout(deadline_s):
            while len(self.values(kind)) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.values(kind)


async def connected_link(
    hub: MqttHub, port: int, client_id: str, **options: Any
) -> tuple[MqttLink, Recorder]:
    """A link that the broker has accepted, and its recorder."""
    link = MqttLink(hub, client_id=client_id, host="127.0.0.1", port=port, **options)
    recorder = Recorder(link)
    link.connect()
    await recorder.wait_for("connected")
    return link, recorder


async def subscribed_link(
    hub: MqttHub, port: int, client_id: str, topic: str, qos: int = 0
) -> tuple[MqttLink, Recorder]:
    """A connected link whose subscription the broker has acknowledged."""
    link = MqttLink(hub, client_id=client_id, host="127.0.0.1", port=port)
    recorder = Recorder(link)
    link.subscribe(topic, qos)
    link.connect()
    assert await recorder.wait_for("subscribed") == [(topic, qos)]
    return link, recorder


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    """Run one scenario on a fresh loop; an exception in any loop callback fails the test."""
    errors: list[str] = []

    def record(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        errors.append(f"{context.get('message')}: {context.get('exception')!r}")

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(record)
        await scenario()

    asyncio.run(main())
    assert errors == []


@contextlib.contextmanager
def hub_on_running_loop(tick_s: float = 1.0) -> Iterator[MqttHub]:
    """A hub on the running loop, closed on exit."""
    hub = MqttHub(asyncio.get_running_loop(), tick_s=tick_s)
    try:
        yield hub
    finally:
        hub.close()


class LagProbe:
    """Measures how late the loop runs a 10 ms timer, until stopped."""

    def __init__(self) -> None:
        self.worst_s = 0.0
        self._task = asyncio.get_running_loop().create_task(self._measure())

    async def _measure(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + 0.01
            await asyncio.sleep(0.01)
            self.worst_s = max(self.worst_s, loop.time() - due)

    async def stop(self) -> float:
        """Stop measuring; the worst lateness seen, in seconds."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        return self.worst_s


# -- the private paho API we rely on --


def test_paho_reconnect_still_takes_its_socket_from_create_socket() -> None:
    """paho's reconnect() gets its socket from _create_socket(), the hook MqttLink overrides."""
    source = inspect.getsource(paho.Client.reconnect)
    assert "self._sock = self._create_socket()" in source
    assert "self._call_socket_open(self._sock)" in source
    assert source.index("self._create_socket()") < source.index("self._send_connect(")
    assert callable(paho.Client._create_socket)


def test_paho_keepalive_still_runs_on_the_clocks_the_hub_reads() -> None:
    """The hub visits a link when paho's keepalive clocks (private) say loop_misc has work."""
    check = inspect.getsource(paho.Client._check_keepalive)
    assert "last_msg_out = self._last_msg_out" in check
    assert "last_bytes_received = self._last_bytes_received" in check
    assert "now - last_msg_out >= self._keepalive" in check
    assert "now - last_bytes_received >= self._keepalive" in check
    misc = inspect.getsource(paho.Client.loop_misc)
    assert "self._check_keepalive()" in misc
    assert "now - self._ping_t >= self._keepalive" in misc
    assert paho.time_func is time.monotonic


PAHO_ACK_HANDLING: dict[Callable[..., object], str] = {
    paho.Client._handle_pubackcomp: "04d39ba283b1f3be",
    paho.Client._handle_suback: "e0af796b6ca01ee8",
    paho.Client._do_on_publish: "5bbcad6f9447107a",
    paho.Client._packet_handle: "ac4c129ed409db42",
    paho_packet.decode_puback: "d4c48976c255baa1",
    paho_packet.decode_pubcomp: "3cbab8988a83999a",
    paho_packet._decode_mid_reason_prop: "c001ca9750a186ed",
    paho_packet.decode_suback: "3aadc815f5a6411a",
}
"""paho 2.2's ack handling that ``_HandoverClient`` replaces for MQTT 3.1.1, by a digest of
its source."""


def test_paho_still_handles_acks_as_the_handover_client_replaces_them() -> None:
    """Any change to paho's PUBACK/PUBCOMP/SUBACK handling fails here: re-check
    ``_HandoverClient._handle_pubackcomp`` and ``_handle_suback`` against it, then update
    the digests."""
    changed = [
        function.__qualname__
        for function, digest in PAHO_ACK_HANDLING.items()
        if hashlib.sha256(inspect.getsource(function).encode()).hexdigest()[:16] != digest
    ]
    assert changed == []


def _ack_callbacks(client_class: type[paho.Client]) -> list[tuple[object, ...]]:
    """What on_publish and on_subscribe of a ``client_class`` get for a PUBACK, a PUBCOMP
    and a SUBACK, fed to its handlers as paho's read loop does (reasons and properties as
    comparable values)."""
    seen: list[tuple[object, ...]] = []
    client = client_class(CallbackAPIVersion.VERSION2, client_id="pin", protocol=paho.MQTTv311)

    def published(_c: paho.Client, _u: object, mid: int, reason: Any, properties: Any) -> None:
        seen.append(("published", mid, reason.value, reason.getName(), properties.json()))

    def subscribed(_c: paho.Client, _u: object, mid: int, reasons: Any, properties: Any) -> None:
        codes = [(reason.value, reason.getName(), reason.is_failure) for reason in reasons]
        seen.append(("subscribed", mid, codes, properties.json()))

    client.on_publish = published
    client.on_subscribe = subscribed
    puback = client.publish("t", b"x", qos=1)
    pubcomp = client.publish("t", b"y", qos=2)
    client._in_packet["packet"] = bytearray(puback.mid.to_bytes(2, "big"))
    assert client._handle_pubackcomp("PUBACK") == paho.MQTT_ERR_SUCCESS
    client._in_packet["packet"] = bytearray(puback.mid.to_bytes(2, "big"))  # again: told once
    assert client._handle_pubackcomp("PUBACK") == paho.MQTT_ERR_SUCCESS
    client._in_packet["packet"] = bytearray(pubcomp.mid.to_bytes(2, "big"))
    assert client._handle_pubackcomp("PUBCOMP") == paho.MQTT_ERR_SUCCESS
    client._in_packet["packet"] = bytearray(b"\x00\x07\x00\x01\x02\x80")
    client._handle_suback()
    assert client._out_messages == {}  # both messages are done
    return seen


def test_the_handover_client_reports_acks_as_paho_does() -> None:
    """PUBACK, PUBCOMP and SUBACK reach the callbacks with what paho itself passes."""
    assert _ack_callbacks(_HandoverClient) == _ack_callbacks(paho.Client)
    assert len(_ack_callbacks(paho.Client)) == 3


# -- connect, subscribe, publish, receive --


@pytest.mark.parametrize("kind", ["mosquitto", "amqtt"])
@pytest.mark.parametrize("qos", [0, 1])
def test_publish_reaches_a_subscriber(kind: str, qos: int, tmp_path: Path) -> None:
    """A published message reaches a subscriber; on_published reports the mid publish() returned."""

    async def scenario() -> None:
        async with running_broker(kind, tmp_path) as port:
            with hub_on_running_loop() as hub:
                console, heard = await subscribed_link(hub, port, "console", "dtu/+/up", qos)
                sender, device = await connected_link(hub, port, "dtu-1")
                assert sender.connected
                assert sender.state is LinkState.CONNECTED
                mid = sender.publish("dtu/1/up", b"\x00hello\xff", qos=qos)
                assert mid is not None
                assert await heard.wait_for("message") == [("dtu/1/up", b"\x00hello\xff")]
                assert await device.wait_for("published") == [mid]
                assert console.connected
                assert heard.values("connect_failed") == []
                assert device.values("disconnected") == []

    run(scenario)


def test_publish_returns_none_unless_connected(tmp_path: Path) -> None:
    """publish() queues nothing and returns None before connect and after disconnect."""

    async def scenario() -> None:
        async with running_mosquitto(tmp_path) as broker:
            with hub_on_running_loop() as hub:
                link = MqttLink(hub, client_id="dtu-1", host="127.0.0.1", port=broker.port)
                recorder = Recorder(link)
                states = [link.state]
                assert link.publish("dtu/1/up", b"x") is None
                link.connect()
                states.append(link.state)
                assert states == [LinkState.IDLE, LinkState.CONNECTING]
                assert link.publish("dtu/1/up", b"x") is None
                await recorder.wait_for("connected")
                assert link.publish("dtu/1/up", b"x") is not None
                link.disconnect()
                assert link.state is LinkState.DISCONNECTED
                assert link.publish("dtu/1/up", b"x", qos=1) is None

    run(scenario)


def test_a_host_name_is_resolved_and_each_address_tried(tmp_path: Path) -> None:
    """'localhost' resolves (maybe to ::1 first, where nothing listens) and reaches 127.0.0.1."""

    async def scenario() -> None:
        async with running_mosquitto(tmp_path) as broker:
            with hub_on_running_loop() as hub:
                link = MqttLink(hub, client_id="dtu-1", host="localhost", port=broker.port)
                recorder = Recorder(link)
                link.connect()
                await recorder.wait_for("connected")
                assert link.connected

    run(scenario)


# -- failed attempts --


def test_connect_to_a_closed_port_fails_as_refused() -> None:
    """Nothing listening: on_connect_failed('connection refused') and state DISCONNECTED."""

    async def scenario() -> None:
        with hub_on_running_loop() as hub:
            link = MqttLink(hub, client_id="dtu-1", host="127.0.0.1", port=free_port())
            recorder = Recorder(link)
            link.connect()
            assert await recorder.wait_for("connect_failed") == ["connection refused"]
            assert link.state is LinkState.DISCONNECTED
            assert [kind for kind, _ in recorder.events] == ["connect_failed"]

    run(scenario)


def test_bad_credentials_fail_as_not_authorized_and_can_be_retried_from_the_callback(
    tmp_path: Path,
) -> None:
    """A refused CONNACK reports 'not authorized' once per attempt, also when retried at once."""

    async def scenario() -> None:
        async with running_mosquitto(tmp_path, extra=("allow_anonymous false",)) as broker:
            with hub_on_running_loop() as hub:
                link = MqttLink(
                    hub,
                    client_id="dtu-1",
                    host="127.0.0.1",
                    port=broker.port,
                    username="dtu-1",
                    password="wrong",
                )
                recorder = Recorder(link)
                report = link.on_connect_failed

                def retry(reason: str) -> None:
                    report(reason)
                    if len(recorder.values("connect_failed")) < 3:
                        link.connect()

                link.on_connect_failed = retry
                link.connect()
                assert await recorder.wait_for("connect_failed", 3) == ["not authorized"] * 3
                assert link.state is LinkState.DISCONNECTED
                assert {kind for kind, _ in recorder.events} == {"connect_failed"}

    run(scenario)


@pytest.mark.parametrize(
    ("listener_backlog", "accepted", "waited_for"),
    [
        pytest.param(0, 1, "the TCP/TLS connection", id="accept-queue-full"),
        pytest.param(8, 0, "CONNACK", id="silent-listener"),
    ],
)
def test_a_hanging_connect_times_out_without_blocking_the_loop(
    listener_backlog: int, accepted: int, waited_for: str
) -> None:
    """A hanging TCP connect or an unanswered CONNECT times out while the loop keeps running."""

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        with socket.socket() as listener, contextlib.ExitStack() as fillers:
            listener.bind(("127.0.0.1", 0))
            listener.listen(listener_backlog)
            port = listener.getsockname()[1]
            for _ in range(accepted):  # fill the accept queue: further SYNs are dropped
                filler = fillers.enter_context(socket.socket())
                filler.setblocking(False)
                await loop.sock_connect(filler, ("127.0.0.1", port))
            with hub_on_running_loop() as hub:
                link = MqttLink(
                    hub, client_id="dtu-1", host="127.0.0.1", port=port, connect_timeout_s=0.5
                )
                recorder = Recorder(link)
                probe = LagProbe()
                link.connect()
                reasons = await recorder.wait_for("connect_failed")
                assert link.state is LinkState.DISCONNECTED
                assert await probe.stop() < 0.2
        assert reasons == [f"timed out after 0.5 s waiting for {waited_for}"]

    run(scenario)


def test_disconnect_abandons_an_attempt_silently() -> None:
    """disconnect() while connecting (in TCP connect, then waiting for CONNACK) reports nothing."""

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        async with full_listener() as (listener, port):
            with hub_on_running_loop() as hub:
                link = MqttLink(
                    hub, client_id="dtu-1", host="127.0.0.1", port=port, connect_timeout_s=0.3
                )
                recorder = Recorder(link)
                link.connect()
                await asyncio.sleep(0)  # the attempt is now in its TCP connect
                link.disconnect()
                assert link.state is LinkState.DISCONNECTED

                (await loop.sock_accept(listener))[0].close()  # frees the queue
                link.connect()
                server_side, _ = await loop.sock_accept(listener)
                with server_side:
                    assert (await loop.sock_recv(server_side, 1))[0] == 0x10  # CONNECT
                    link.disconnect()
                    assert link.state is LinkState.DISCONNECTED
                    async with asyncio.timeout(DEADLINE_S):  # the rest of CONNECT, then EOF
                        while await loop.sock_recv(server_side, 1024):
                            pass
                    with pytest.raises(TimeoutError):  # past the 0.3 s attempt timeout
                        await recorder.wait_for("connect_failed", deadline_s=0.6)
                assert recorder.events == []

    run(scenario)


def test_a_tcp_connect_that_ends_later_is_handed_over_when_the_socket_is_writable() -> None:
    """Over loopback a connect ends inside the call; one whose SYN is dropped (a full accept
    queue) ends a SYN retransmission later, and then its CONNECT goes out and it connects."""

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        async with full_listener() as (listener, port):
            with hub_on_running_loop() as hub:
                link = MqttLink(hub, client_id="dtu-1", host="127.0.0.1", port=port)
                recorder = Recorder(link)
                link.connect()
                await asyncio.sleep(0.1)  # dialled; the SYN was dropped
                assert link.state is LinkState.CONNECTING
                (await loop.sock_accept(listener))[0].close()  # frees the queue
                server_side, _ = await loop.sock_accept(listener)  # the SYN came again
                with server_side:
                    assert (await loop.sock_recv(server_side, 1))[0] == 0x10  # CONNECT
                    await loop.sock_sendall(server_side, b"\x20\x02\x00\x00")  # CONNACK
                    await recorder.wait_for("connected")
                    assert link.connected

    run(scenario)


# -- losing and regaining the broker --


def test_broker_death_reports_disconnected_and_connect_again_restores_subscriptions(
    tmp_path: Path,
) -> None:
    """Broker killed: on_disconnected once; connect() after its restart reconnects, resubscribed."""

    async def scenario() -> None:
        port = free_port()
        with hub_on_running_loop() as hub:
            broker = Mosquitto(tmp_path, port=port)
            await broker.start()
            try:
                link = MqttLink(hub, client_id="dtu-1", host="127.0.0.1", port=port)
                recorder = Recorder(link)
                link.subscribe("dtu/1/down", 1)
                link.connect()
                await recorder.wait_for("subscribed")

                broker.kill()
                assert await recorder.wait_for("disconnected") == ["connection lost"]
                assert link.state is LinkState.DISCONNECTED

                link.connect()
                assert await recorder.wait_for("connect_failed") == ["connection refused"]

                await broker.start()
                link.connect()
                await recorder.wait_for("connected", 2)
                assert await recorder.wait_for("subscribed", 2) == [("dtu/1/down", 1)] * 2
                sender, cloud = await connected_link(hub, port, "cloud")
                sender.publish("dtu/1/down", b"cmd", qos=1)
                assert await recorder.wait_for("message") == [("dtu/1/down", b"cmd")]
                assert recorder.values("disconnected") == ["connection lost"]
                assert cloud.values("disconnected") == []
            finally:
                broker.stop()

    run(scenario)


@pytest.mark.parametrize("kind", ["mosquitto", "amqtt"])
def test_own_disconnect_reports_nothing_and_the_broker_drops_the_will(
    kind: str, tmp_path: Path
) -> None:
    """disconnect() sends DISCONNECT: no on_disconnected, and the will is not published."""

    async def scenario() -> None:
        async with running_broker(kind, tmp_path) as port:
            with hub_on_running_loop() as hub:
                watcher, seen = await subscribed_link(hub, port, "watcher", "dtu/1/status")
                will = Will(topic="dtu/1/status", payload=b"offline")
                link, device = await connected_link(hub, port, "dtu-1", will=will)
                link.disconnect()
                assert link.state is LinkState.DISCONNECTED
                watcher.publish("dtu/1/status", b"marker")
                assert await seen.wait_for("message") == [("dtu/1/status", b"marker")]
                assert [kind for kind, _ in device.events] == ["connected"]

    run(scenario)


@pytest.mark.parametrize("kind", ["mosquitto", "amqtt"])
def test_abort_drops_the_connection_and_the_broker_publishes_the_will(
    kind: str, tmp_path: Path
) -> None:
    """abort() closes without DISCONNECT: the will is published, no callback follows."""

    async def scenario() -> None:
        async with running_broker(kind, tmp_path) as port:
            with hub_on_running_loop() as hub:
                _watcher, seen = await subscribed_link(hub, port, "watcher", "dtu/1/status", 1)
                will = Will(topic="dtu/1/status", payload=b"offline", qos=1)
                link, device = await connected_link(hub, port, "dtu-1", will=will)
                link.abort()
                assert link.state is LinkState.DISCONNECTED
                assert await seen.wait_for("message") == [("dtu/1/status", b"offline")]
                assert [kind for kind, _ in device.events] == ["connected"]

    run(scenario)


def test_disconnect_connect_and_close_from_inside_callbacks(tmp_path: Path) -> None:
    """A callback may disconnect and reconnect its own link, or close it, without a deadlock."""

    async def scenario() -> None:
        async with running_mosquitto(tmp_path) as broker:
            with hub_on_running_loop() as hub:
                link = MqttLink(hub, client_id="dtu-1", host="127.0.0.1", port=broker.port)
                recorder = Recorder(link)
                link.subscribe("dtu/1/down")
                report_message, report_connected = link.on_message, link.on_connected

                def reconnect_on_command(topic: str, payload: bytes) -> None:
                    report_message(topic, payload)
                    link.disconnect()
                    link.connect()

                def close_on_second_connect() -> None:
                    report_connected()
                    if len(recorder.values("connected")) == 2:
                        link.close()

                link.on_message = reconnect_on_command
                link.on_connected = close_on_second_connect
                link.connect()
                await recorder.wait_for("subscribed")
                cloud, _ = await connected_link(hub, broker.port, "cloud")
                cloud.publish("dtu/1/down", b"reconnect")
                await recorder.wait_for("connected", 2)
                assert link.state is LinkState.CLOSED
                assert [kind for kind, _ in recorder.events] == [
                    "connected",
                    "subscribed",
                    "message",
                    "connected",
                ]

    run(scenario)


def test_close_and_hub_close_end_links_for_good(tmp_path: Path) -> None:
    """close() leaves the hub and refuses further use; hub.close() closes every link."""

    async def scenario() -> None:
        async with running_mosquitto(tmp_path) as broker:
            hub = MqttHub(asyncio.get_running_loop())
            first, _ = await connected_link(hub, broker.port, "a")
            second, _ = await connected_link(hub, broker.port, "b")
            first.close()
            assert first.state is LinkState.CLOSED
            assert hub.link_count == 1
            with pytest.raises(LinkClosedError):
                first.connect()
            with pytest.raises(LinkClosedError):
                first.publish("a/b", b"")
            hub.close()
            assert second.state is LinkState.CLOSED
            assert hub.closed
            with pytest.raises(LinkClosedError):
                MqttLink(hub, client_id="c", host="127.0.0.1", port=broker.port)

    run(scenario)


# -- many clients, one thread --


@pytest.mark.parametrize(("kind", "count"), [("mosquitto", 500), ("amqtt", 300)])
def test_hundreds_of_links_connect_at_once_on_one_thread(
    kind: str, count: int, tmp_path: Path
) -> None:
    """Hundreds of links connect at once with no extra thread and, dialling an IP address
    without TLS, no task at all."""

    async def scenario() -> None:
        threads = threading.active_count()
        loop = asyncio.get_running_loop()
        link_tasks: list[str] = []

        def counting_factory(
            loop: asyncio.AbstractEventLoop, coro: Generator[Any, None, T] | Coroutine[Any, Any, T]
        ) -> asyncio.Task[T]:
            if isinstance(coro, types.CoroutineType) and coro.cr_code.co_filename == mqtt.__file__:
                link_tasks.append(coro.__qualname__)
            return asyncio.Task(coro, loop=loop)

        async with running_broker(kind, tmp_path) as port:
            loop.set_task_factory(counting_factory)
            with hub_on_running_loop() as hub:
                connected = 0
                done = asyncio.Event()

                def one_more() -> None:
                    nonlocal connected
                    connected += 1
                    if connected == count:
                        done.set()

                links = [
                    MqttLink(hub, client_id=f"dtu-{n}", host="127.0.0.1", port=port)
                    for n in range(count)
                ]
                for link in links:
                    link.on_connected = one_more
                    link.connect()
                async with asyncio.timeout(30):
                    await done.wait()
                assert all(link.connected for link in links)
                assert threading.active_count() == threads
                assert link_tasks == []
            loop.set_task_factory(None)

    run(scenario)


# -- keepalive, against a strict fake broker --


class FakeBroker:
    """A minimal MQTT server on this loop, strict where the tests need it.

    It answers CONNECT with CONNACK (or closes at once when ``accept`` is False), answers
    PINGREQ with PINGRESP when ``answer_pings`` (noting when each PINGREQ came), answers a
    QoS 1 PUBLISH with PUBACK, ignores every other packet, and, when
    ``enforce_keepalive``, drops a client that sends nothing for 1.5 x its keepalive, as
    MQTT 3.1.1 section 3.1.2.10 lets a broker do (mosquitto 2.0.11 checks that coarsely:
    a silent client with keepalive 1 s is dropped only after about 5 s).
    """

    def __init__(
        self, *, accept: bool = True, answer_pings: bool = True, enforce_keepalive: bool = True
    ) -> None:
        self.accept = accept
        self.answer_pings = answer_pings
        self.enforce_keepalive = enforce_keepalive
        self.pings = 0
        self.ping_times: list[float] = []
        """The loop's time at each PINGREQ."""
        self.dropped = 0
        """Clients dropped for silence."""
        self.changed = asyncio.Event()
        self._writers: list[asyncio.StreamWriter] = []
        self._sessions: set[asyncio.Task[Any]] = set()

    @staticmethod
    async def _packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
        header = (await reader.readexactly(1))[0]
        length, shift = 0, 0
        while True:
            byte = (await reader.readexactly(1))[0]
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return header, await reader.readexactly(length)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        session = asyncio.current_task()
        assert session is not None
        self._sessions.add(session)
        if not self.accept:
            writer.close()
            return
        _header, connect = await self._packet(reader)
        keepalive_s = int.from_bytes(connect[8:10], "big")  # after "\0\4MQTT", level, flags
        writer.write(b"\x20\x02\x00\x00")  # CONNACK, accepted
        silence_limit_s = 1.5 * keepalive_s if self.enforce_keepalive else None
        try:
            while True:
                async with asyncio.timeout(silence_limit_s):
                    header, body = await self._packet(reader)
                if header == 0xC0:  # PINGREQ
                    self.pings += 1
                    self.ping_times.append(asyncio.get_running_loop().time())
                    self.changed.set()
                    if self.answer_pings:
                        writer.write(b"\xd0\x00")
                elif header & 0xF6 == 0x32:  # PUBLISH, QoS 1: PUBACK with its packet id
                    topic_end = 2 + int.from_bytes(body[:2], "big")
                    writer.write(b"\x40\x02" + body[topic_end : topic_end + 2])
        except TimeoutError:
            self.dropped += 1
            self.changed.set()
            writer.close()
        except asyncio.IncompleteReadError:
            writer.close()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[int]:
        """Serve on 127.0.0.1; yields the port."""
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        try:
            yield server.sockets[0].getsockname()[1]
        finally:
            for writer in self._writers:
                writer.close()
            if self._sessions:  # each ends at the EOF; a cancelled one would be logged
                await asyncio.wait(self._sessions, timeout=DEADLINE_S)
            server.close()
            await server.wait_closed()

    def send_to_all(self, data: bytes) -> None:
        """Write ``data`` to every client, in one write each."""
        for writer in self._writers:
            writer.write(data)

    async def wait_for_pings(self, count: int) -> None:
        """Wait until ``count`` PINGREQs have arrived."""
        async with asyncio.timeout(DEADLINE_S):
            while self.pings < count:
                self.changed.clear()
                await self.changed.wait()


def test_keepalive_pings_keep_a_silent_link_connected() -> None:
    """With no traffic, the hub's PINGREQs keep a link up past the 1.5 x keepalive limit."""

    async def scenario() -> None:
        broker = FakeBroker()
        async with broker.running() as port:
            with hub_on_running_loop(tick_s=0.25) as hub:
                link, recorder = await connected_link(hub, port, "dtu-1", keepalive=1)
                await broker.wait_for_pings(2)  # 2 x keepalive: the broker's limit is 1.5 x
                assert link.connected
                assert broker.dropped == 0
                assert recorder.values("disconnected") == []

    run(scenario)


def test_without_the_hubs_ticks_a_strict_broker_drops_a_silent_link(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Control for the test above: with loop_misc never called, the broker drops the link."""
    monkeypatch.setattr(MqttLink, "_keep_alive", lambda _link: None)

    async def scenario() -> None:
        broker = FakeBroker()
        async with broker.running() as port:
            with hub_on_running_loop(tick_s=0.25) as hub:
                _link, recorder = await connected_link(hub, port, "dtu-1", keepalive=1)
                assert await recorder.wait_for("disconnected") == ["connection lost"]
                assert broker.dropped == 1
                assert broker.pings == 0

    run(scenario)


def test_a_broker_that_stops_answering_is_detected_by_the_missing_pingresp() -> None:
    """A half-open connection (PINGREQ unanswered) ends in on_disconnected('keepalive timeout')."""

    async def scenario() -> None:
        broker = FakeBroker(answer_pings=False, enforce_keepalive=False)
        async with broker.running() as port:
            with hub_on_running_loop(tick_s=0.25) as hub:
                _link, recorder = await connected_link(hub, port, "dtu-1", keepalive=1)
                assert await recorder.wait_for("disconnected") == ["keepalive timeout"]
                assert broker.pings == 1

    run(scenario)


def test_an_idle_link_sends_each_pingreq_within_a_tick_of_its_keepalive() -> None:
    """Visited only when due, a silent link still pings at keepalive + at most one tick."""
    keepalive, tick_s = 2, 0.5

    async def scenario() -> None:
        broker = FakeBroker()
        async with broker.running() as port:
            with hub_on_running_loop(tick_s=tick_s) as hub:
                connected_at = hub.loop.time()
                await connected_link(hub, port, "dtu-1", keepalive=keepalive)
                await broker.wait_for_pings(2)
        starts = [connected_at, broker.ping_times[0]]
        for start, ping in zip(starts, broker.ping_times, strict=True):
            assert keepalive - 0.05 <= ping - start <= keepalive + tick_s + 0.3

    run(scenario)


def test_a_dead_broker_is_detected_within_two_keepalives_and_two_ticks() -> None:
    """PINGREQ at 1 keepalive, no PINGRESP by the next: 'keepalive timeout', on time."""
    keepalive, tick_s = 1, 0.25

    async def scenario() -> None:
        broker = FakeBroker(answer_pings=False, enforce_keepalive=False)
        async with broker.running() as port:
            with hub_on_running_loop(tick_s=tick_s) as hub:
                _link, recorder = await connected_link(hub, port, "dtu-1", keepalive=keepalive)
                connected_at = hub.loop.time()
                assert await recorder.wait_for("disconnected") == ["keepalive timeout"]
                lost_after = hub.loop.time() - connected_at
                assert 2 * keepalive - 0.05 <= lost_after <= 2 * (keepalive + tick_s) + 0.3

    run(scenario)


def record_loop_misc(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """From now on, the client id of every link the hub calls loop_misc on, in order."""
    visits: list[str] = []
    keep_alive = MqttLink._keep_alive

    def counted(link: MqttLink) -> None:
        visits.append(link.client_id)
        keep_alive(link)

    monkeypatch.setattr(MqttLink, "_keep_alive", counted)
    return visits


def test_links_with_and_without_traffic_get_loop_misc_only_for_a_pingreq(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The hub calls loop_misc on a link only when paho has a PINGREQ due, and every call
    sends one. With paho 2.2 that is once per keepalive for a link with traffic too: paho
    moves its last-sent clock only for CONNECT, PINGREQ and DISCONNECT."""
    visits = record_loop_misc(monkeypatch)

    async def scenario() -> None:
        broker = FakeBroker()
        async with broker.running() as port:
            with hub_on_running_loop(tick_s=0.25) as hub:
                busy, busy_events = await connected_link(hub, port, "busy", keepalive=1)
                await connected_link(hub, port, "idle", keepalive=1)
                for pings in range(1, 5):  # PINGREQs pace the busy link's QoS 1 publishes
                    busy.publish("dtu/up", b"x", qos=1)
                    await busy_events.wait_for("published", pings)
                    await broker.wait_for_pings(pings)
                await broker.wait_for_pings(len(visits))  # the last visit's PINGREQ
                assert busy.connected
                assert len(visits) == broker.pings
                assert 1 <= visits.count("busy") <= visits.count("idle") + 1

    run(scenario)


def test_idle_links_are_visited_about_once_per_keepalive_not_every_tick(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """50 silent links, keepalive 2 s, tick 0.25 s: every tick would be 8 visits a link
    per PINGREQ; the wheel makes at most 2 (an early look in the due time's slot)."""
    visits = record_loop_misc(monkeypatch)
    looks = 0
    visit = MqttHub._visit

    def looked(hub: MqttHub, link: MqttLink, now: float) -> None:
        nonlocal looks
        looks += 1
        visit(hub, link, now)

    monkeypatch.setattr(MqttHub, "_visit", looked)

    async def scenario() -> None:
        broker = FakeBroker()
        async with broker.running() as port:
            with hub_on_running_loop(tick_s=0.25) as hub:
                links = [
                    (await connected_link(hub, port, f"dtu-{n}", keepalive=2))[0] for n in range(50)
                ]
                await broker.wait_for_pings(100)
                assert all(link.connected for link in links)
                assert len(visits) == broker.pings  # loop_misc only when a PINGREQ is due
                assert looks <= 2 * len(visits) + len(links)

    run(scenario)


@pytest.mark.parametrize("count", [50, 150])
def test_messages_that_arrive_together_are_read_in_bursts_of_up_to_read_burst(
    count: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """paho's loop_read takes one packet a call; the link reads on while bytes wait (at
    most READ_BURST packets a readiness event), so a busy subscriber does not get one
    packet per loop pass; what a burst leaves is read on the next passes."""
    wakes = 0
    readable = MqttLink._readable

    def counted(link: MqttLink) -> None:
        nonlocal wakes
        wakes += 1
        readable(link)

    monkeypatch.setattr(MqttLink, "_readable", counted)
    publish = b"\x30\x08\x00\x05dtu/1x"  # PUBLISH, QoS 0, topic "dtu/1", payload "x"

    async def scenario() -> None:
        broker = FakeBroker()
        async with broker.running() as port:
            with hub_on_running_loop() as hub:
                _link, recorder = await connected_link(hub, port, "dtu-1")
                before = wakes
                broker.send_to_all(publish * count)
                assert await recorder.wait_for("message", count) == [("dtu/1", b"x")] * count
                assert math.ceil(count / READ_BURST) <= wakes - before <= count // 10

    run(scenario)


class RawBroker:
    """One accepted connection on 127.0.0.1 that the test drives by hand: it answers the
    CONNECT with CONNACK, then reads what the link wrote without running the loop."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.setblocking(False)
        self.port: int = self.listener.getsockname()[1]
        self.conn: socket.socket | None = None

    async def accept(self) -> None:
        """Take the link's connection and answer its CONNECT."""
        loop = asyncio.get_running_loop()
        self.conn, _ = await loop.sock_accept(self.listener)
        assert (await loop.sock_recv(self.conn, 1))[0] == 0x10  # CONNECT
        await loop.sock_sendall(self.conn, b"\x20\x02\x00\x00")  # CONNACK, accepted

    async def link(self, hub: MqttHub) -> tuple[MqttLink, Recorder]:
        """A link connected to this broker, its recorder, and the CONNECT read."""
        link = MqttLink(hub, client_id="dtu-1", host="127.0.0.1", port=self.port)
        recorder = Recorder(link)
        link.connect()
        await self.accept()
        await recorder.wait_for("connected")
        self.waiting()  # the rest of the CONNECT
        return link, recorder

    def waiting(self) -> bytes:
        """What has reached this side's kernel (after the CONNECT's first byte), unread."""
        assert self.conn is not None
        try:
            return self.conn.recv(65536, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return b""

    def reset(self) -> None:
        """Close with an RST, which reaches the link's kernel at once on loopback."""
        assert self.conn is not None
        self.conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.conn.close()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.listener.close()


def test_a_qos1_publish_is_written_before_publish_returns_a_qos0_from_the_loop() -> None:
    """A QoS 1 message onto an empty queue reaches the kernel inside publish() (it does
    not wait a loop turn for the writer); a QoS 0 one goes from the writer, so that its
    on_published never comes from inside publish()."""

    async def scenario() -> None:
        broker = RawBroker()
        try:
            with hub_on_running_loop() as hub:
                link, recorder = await broker.link(hub)
                mid = link.publish("dtu/1", b"x", qos=1)
                assert mid is not None
                assert broker.waiting() == b"\x32\x0a\x00\x05dtu/1" + mid.to_bytes(2) + b"x"
                assert link.publish("dtu/1", b"y", qos=0) is not None
                assert broker.waiting() == b""
                assert recorder.values("published") == []
                await recorder.wait_for("published")
                assert broker.waiting() == b"\x30\x08\x00\x05dtu/1y"
        finally:
            broker.close()

    run(scenario)


def test_what_the_kernel_does_not_take_at_once_goes_out_from_the_writer() -> None:
    """A message larger than the socket's send buffer, published onto an empty queue: what
    publish()'s own write leaves is sent by the writer, whole, and the next one after it."""
    payload = bytes(range(256)) * 16384  # 4 MiB

    async def scenario() -> None:
        broker = RawBroker()
        loop = asyncio.get_running_loop()
        try:
            with hub_on_running_loop() as hub:
                link, _recorder = await broker.link(hub)
                assert link.publish("dtu/1", payload, qos=1) is not None
                assert link.publish("dtu/1", b"end", qos=1) is not None
                assert broker.conn is not None
                received = bytearray()
                async with asyncio.timeout(DEADLINE_S):
                    while not received.endswith(b"end"):
                        received += await loop.sock_recv(broker.conn, 1 << 20)
                # fixed header, topic, packet id: 5 + 7 + 2 bytes, then 2 + 7 + 2
                assert len(received) == (14 + len(payload)) + (11 + 3)
                assert received[14 : 14 + len(payload)] == payload
        finally:
            broker.close()

    run(scenario)


def test_a_loss_found_by_publish_is_reported_from_the_next_turn() -> None:
    """When publish()'s own write finds the connection reset, the owner hears of it after
    publish() has returned (from the loop), not from inside its call."""

    async def scenario() -> None:
        broker = RawBroker()
        try:
            with hub_on_running_loop() as hub:
                link, recorder = await broker.link(hub)
                broker.reset()
                assert link.publish("dtu/1", b"x", qos=1) is not None
                assert recorder.values("disconnected") == []
                assert link.state is LinkState.DISCONNECTED
                assert await recorder.wait_for("disconnected") == ["connection lost"]
                await asyncio.sleep(0.05)
                assert [kind for kind, _ in recorder.events] == ["connected", "disconnected"]
        finally:
            broker.close()

    run(scenario)


def test_at_most_dials_per_turn_attempts_dial_per_loop_turn_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Attempts made together dial DIALS_PER_TURN a turn, in the order of connect(); one
    abandoned while it waits takes no place; every other one connects."""
    seen: list[object] = []
    admit, dial = MqttHub._admit, MqttLink._dial

    def admitting(hub: MqttHub) -> None:
        seen.append("turn")
        admit(hub)

    def dialling(link: MqttLink) -> None:
        seen.append(link.client_id)
        dial(link)

    monkeypatch.setattr(MqttHub, "_admit", admitting)
    monkeypatch.setattr(MqttLink, "_dial", dialling)
    count = 3 * DIALS_PER_TURN + 2

    async def scenario() -> None:
        broker = FakeBroker()
        async with broker.running() as port:
            with hub_on_running_loop() as hub:
                links = [
                    MqttLink(hub, client_id=f"dtu-{index:03}", host="127.0.0.1", port=port)
                    for index in range(count)
                ]
                recorders = [Recorder(link) for link in links]
                for link in links:
                    link.connect()
                await asyncio.sleep(0)  # the first turn's attempts are dialling, the rest wait
                links[-1].disconnect()
                for recorder in recorders[:-1]:
                    await recorder.wait_for("connected")
                dials = [item for item in seen if item != "turn"]
                assert dials == [link.client_id for link in links[:-1]]
                per_turn: list[int] = []
                for item in seen:
                    if item == "turn":
                        per_turn.append(0)
                    else:
                        per_turn[-1] += 1
                assert per_turn[:3] == [DIALS_PER_TURN] * 3
                assert sum(per_turn) == count - 1
                assert recorders[-1].events == []

    run(scenario)


def test_a_connection_closed_before_connack_fails_the_attempt() -> None:
    """A server that closes before CONNACK: on_connect_failed names the loss, nothing else."""

    async def scenario() -> None:
        broker = FakeBroker(accept=False)
        async with broker.running() as port:
            with hub_on_running_loop() as hub:
                link = MqttLink(hub, client_id="dtu-1", host="127.0.0.1", port=port)
                recorder = Recorder(link)
                link.connect()
                assert await recorder.wait_for("connect_failed") == [
                    "connection lost before CONNACK"
                ]
                assert [kind for kind, _ in recorder.events] == ["connect_failed"]
                assert link.state is LinkState.DISCONNECTED

    run(scenario)


# -- TLS --


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA (certificate, key) made with the openssl CLI."""
    openssl = require_tool("openssl")
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def make_server_cert(directory: Path, ca: tuple[Path, Path]) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by ``ca``: (certificate, key)."""
    openssl = require_tool("openssl")
    cert, key, csr = directory / "server.pem", directory / "server.key", directory / "server.csr"
    extensions = directory / "server.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    subprocess.run(
        [openssl, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        [openssl, "x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
         "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(extensions)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.mark.parametrize("kind", ["mosquitto", "amqtt"])
def test_mqtts_verifies_the_broker_with_the_given_ca(kind: str, tmp_path: Path) -> None:
    """mqtts: the right CA connects and carries messages; another CA fails on the certificate."""
    ca = make_ca(tmp_path, "test-ca")
    other_ca, _ = make_ca(tmp_path, "other-ca")
    cert, key = make_server_cert(tmp_path, ca)

    @contextlib.asynccontextmanager
    async def tls_broker() -> AsyncIterator[int]:
        if kind == "mosquitto":
            # Started as root, mosquitto reads the key after dropping to its own user, which
            # cannot enter pytest's private tmp_path; "user root" keeps root (it is ignored
            # when not started as root).
            extra = (f"certfile {cert}", f"keyfile {key}", "user root")
            async with running_mosquitto(tmp_path, extra=extra) as broker:
                yield broker.port
        else:
            listener = {"ssl": True, "certfile": str(cert), "keyfile": str(key)}
            async with running_amqtt(listener) as port:
                yield port

    async def scenario() -> None:
        async with tls_broker() as port:
            with hub_on_running_loop() as hub:
                probe = LagProbe()
                link, device = await connected_link(hub, port, "dtu-1", tls_ca=ca[0])
                link.subscribe("dtu/1/echo", 1)
                await device.wait_for("subscribed")
                link.publish("dtu/1/echo", b"over tls", qos=1)
                assert await device.wait_for("message") == [("dtu/1/echo", b"over tls")]
                assert await probe.stop() < 0.2

                stranger = MqttLink(
                    hub, client_id="dtu-2", host="127.0.0.1", port=port, tls_ca=other_ca
                )
                refused = Recorder(stranger)
                stranger.connect()
                [reason] = await refused.wait_for("connect_failed")
                assert isinstance(reason, str)
                assert reason.startswith("TLS certificate rejected: ")

    run(scenario)


# -- arguments and misuse --


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"host": ""}, "host must be"),
        ({"port": 0}, "port must be 1..65535, not 0"),
        ({"port": 70000}, "port must be 1..65535, not 70000"),
        ({"keepalive": 2}, "keepalive must be 0 (off) or 3..65535 s"),
        ({"keepalive": 70000}, "not 70000"),
        ({"connect_timeout_s": 0}, "connect_timeout_s must be > 0, not 0"),
        ({"client_id": "", "clean_session": False}, "client_id must be non-empty"),
        ({"password": "secret"}, "password needs a username"),
        ({"tls_ca": Path("/nonexistent/ca.pem")}, "tls_ca must be a readable PEM CA file"),
    ],
)
def test_bad_link_arguments_are_refused(options: dict[str, Any], message: str) -> None:
    """Each bad constructor argument raises ValueError naming the value and the allowed range."""

    async def scenario() -> None:
        with hub_on_running_loop() as hub:
            arguments: dict[str, Any] = {"client_id": "dtu-1", "host": "127.0.0.1", **options}
            with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
                MqttLink(hub, **arguments)

    run(scenario)


def test_bad_topics_qos_and_wills_are_refused() -> None:
    """Wildcard publish topics, bad filters, QoS outside 0..2 and bad wills raise ValueError."""

    async def scenario() -> None:
        with hub_on_running_loop() as hub:
            link = MqttLink(hub, client_id="dtu-1", host="127.0.0.1")
            with pytest.raises(ValueError, match=r"topic must be .* not 'a/\+'"):
                link.publish("a/+", b"")
            with pytest.raises(ValueError, match="qos must be 0, 1 or 2, not 3"):
                link.publish("a", b"", qos=3)
            for bad_filter in ["", "a/#/b", "a/b#", "a+/b"]:
                with pytest.raises(ValueError, match="topic filter must be"):
                    link.subscribe(bad_filter)
            link.subscribe("a/+/c/#")
            with pytest.raises(ValueError, match="topic must be"):
                Will(topic="a/#", payload=b"")
            with pytest.raises(ValueError, match="qos must be 0, 1 or 2, not -1"):
                Will(topic="a", payload=b"", qos=-1)
            with pytest.raises(ValueError, match="tick_s must be"):
                MqttHub(asyncio.get_running_loop(), tick_s=0)

    run(scenario)


def test_connect_while_connecting_or_connected_is_refused(tmp_path: Path) -> None:
    """connect() while connecting or connected raises LocalProtocolError and changes nothing."""

    async def scenario() -> None:
        async with running_mosquitto(tmp_path) as broker:
            with hub_on_running_loop() as hub:
                link = MqttLink(hub, client_id="dtu-1", host="127.0.0.1", port=broker.port)
                recorder = Recorder(link)
                link.connect()
                with pytest.raises(LocalProtocolError, match="not connecting"):
                    link.connect()
                await recorder.wait_for("connected")
                with pytest.raises(LocalProtocolError, match="not connected"):
                    link.connect()
                assert link.connected
                assert [kind for kind, _ in recorder.events] == ["connected"]

    run(scenario)
