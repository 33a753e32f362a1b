"""A unit's link conditions on real MQTT links, against the embedded broker on 127.0.0.1.

Each test drives a device ``MqttLink`` under conditions (``impair``) and watches what a
second, healthy link subscribed to the device's will sees, as the cloud would.
"""

from __future__ import annotations

import asyncio
import inspect
import random

import paho.mqtt.client as paho
import pytest

from tests.net.test_mqtt import Recorder, connected_link, hub_on_running_loop, run
from vdtu.cloud.broker import EmbeddedBroker
from vdtu.net.conditions import Impairment, LinkConditions
from vdtu.net.mqtt import RESET_REASON, LinkState, MqttHub, MqttLink, Will

pytestmark = pytest.mark.realtime

WILL = Will(topic="dtu/1/state", payload=b"offline", qos=1)


def impairment(**conditions: object) -> Impairment:
    return Impairment(conditions=LinkConditions(**conditions), rng=random.Random(7))  # type: ignore[arg-type]


async def watcher(hub: MqttHub, port: int) -> Recorder:
    """A healthy link subscribed to the device's will topic."""
    link = MqttLink(hub, client_id="cloud", host="127.0.0.1", port=port)
    recorder = Recorder(link)
    link.subscribe(WILL.topic, 1)
    link.connect()
    await recorder.wait_for("subscribed")
    return recorder


def test_paho_keeps_its_connected_socket_in_sock() -> None:
    """MqttLink.impair puts a ShapedSocket in paho's ``_sock``: paho must read it from there."""
    assert "self._sock.recv(" in _source(paho.Client._sock_recv)
    assert "self._sock.send(" in _source(paho.Client._sock_send)


def _source(function: object) -> str:
    return inspect.getsource(function)  # type: ignore[arg-type]


def test_blackhole_ends_in_a_keepalive_timeout_and_the_broker_publishes_the_will() -> None:
    """Packets vanish, no FIN: the device misses its PINGRESP and drops the link; the
    broker, hearing nothing for 1.5 keepalives, publishes the will."""

    async def scenario() -> None:
        async with EmbeddedBroker() as broker:
            with hub_on_running_loop(tick_s=0.5) as hub:
                cloud = await watcher(hub, broker.port)
                link, device = await connected_link(
                    hub, broker.port, "dtu-1", keepalive=2, will=WILL
                )
                loop = asyncio.get_running_loop()
                started = loop.time()
                link.impair(impairment(blackhole=True))
                assert link.publish("dtu/1/up", b"lost", qos=1) is not None
                (will,) = await cloud.wait_for("message", deadline_s=8)
                assert will == (WILL.topic, b"offline")
                assert loop.time() - started >= 2.0  # not before 1.5 keepalives of silence
                assert await device.wait_for("disconnected", deadline_s=8) == ["keepalive timeout"]
                assert device.values("published") == []  # the publish was never acknowledged
                link.impair(None)
                link.connect()
                await device.wait_for("connected", 2, deadline_s=5)
                link.close()

    run(scenario)


def test_a_blackhole_cleared_before_keepalive_notices_ends_in_a_reset() -> None:
    """A NAT that forgot the connection: after the clear the device's next packet meets a
    reset, so the link is lost at once (not left open with a publish that vanished); on
    the next connection the publish goes again and arrives."""

    async def scenario() -> None:
        async with EmbeddedBroker() as broker:
            with hub_on_running_loop(tick_s=0.5) as hub:
                cloud_link = MqttLink(hub, client_id="cloud", host="127.0.0.1", port=broker.port)
                cloud = Recorder(cloud_link)
                cloud_link.subscribe("dtu/1/up", 1)
                cloud_link.connect()
                await cloud.wait_for("subscribed")
                link, device = await connected_link(
                    hub, broker.port, "dtu-1", keepalive=60, will=WILL
                )
                link.impair(impairment(blackhole=True))
                token = link.publish("dtu/1/up", b"into the blackhole", qos=1)
                assert token is not None
                await asyncio.sleep(1.0)
                assert device.values("disconnected") == []  # a keepalive of 60 s: unnoticed
                link.impair(None)
                # paho reads the ECONNRESET as an unspecified error: "connection lost"
                assert await device.wait_for("disconnected", deadline_s=3) == ["connection lost"]
                link.connect()
                await device.wait_for("connected", 2, deadline_s=5)
                arrived = await cloud.wait_for("message", deadline_s=5)
                assert ("dtu/1/up", b"into the blackhole") in arrived
                link.close()
                cloud_link.close()

    run(scenario)


def test_connect_under_a_blackhole_times_out() -> None:
    """A new connection's SYN vanishes: the attempt ends at the connect timeout."""

    async def scenario() -> None:
        async with EmbeddedBroker() as broker:
            with hub_on_running_loop(tick_s=0.5) as hub:
                link = MqttLink(
                    hub,
                    client_id="dtu-1",
                    host="127.0.0.1",
                    port=broker.port,
                    connect_timeout_s=0.5,
                )
                device = Recorder(link)
                link.impair(impairment(connect_timeout=True))
                link.connect()
                (reason,) = await device.wait_for("connect_failed", deadline_s=3)
                assert reason == "timed out after 0.5 s waiting for the TCP/TLS connection"
                assert broker.clients == 0
                link.close()

    run(scenario)


def test_latency_delays_a_qos1_round_trip_by_both_ways() -> None:
    """ms=150 jitter=20: a QoS 1 publish is acknowledged after at least 2 x 130 ms."""

    async def scenario() -> None:
        async with EmbeddedBroker() as broker:
            with hub_on_running_loop(tick_s=0.5) as hub:
                link, device = await connected_link(hub, broker.port, "dtu-1")
                link.impair(impairment(latency_ms=150, jitter_ms=20))
                loop = asyncio.get_running_loop()
                started = loop.time()
                mid = link.publish("dtu/1/up", b"x" * 10, qos=1)
                assert await device.wait_for("published") == [mid]
                elapsed = loop.time() - started
                assert 0.26 <= elapsed < 1.0
                link.impair(None)
                started = loop.time()
                mid = link.publish("dtu/1/up", b"y", qos=1)
                assert mid is not None
                assert await device.wait_for("published", 2) == [mid - 1, mid]
                assert loop.time() - started < 0.2
                link.close()

    run(scenario)


def test_the_hub_times_each_qos1_publish_to_its_puback_and_no_qos0_one() -> None:
    """on_acked gets publish -> PUBACK in seconds: the link's latency each way, and more."""

    async def scenario() -> None:
        async with EmbeddedBroker() as broker:
            with hub_on_running_loop(tick_s=0.5) as hub:
                acked: list[float] = []
                link, device = await connected_link(hub, broker.port, "dtu-1")
                assert link.publish("dtu/1/up", b"untimed", qos=1) is not None  # hub not timing
                await device.wait_for("published")
                hub.on_acked = acked.append
                link.impair(impairment(latency_ms=100))
                untimed = link.publish("dtu/1/up", b"qos0", qos=0)
                first = link.publish("dtu/1/up", b"a", qos=1)
                second = link.publish("dtu/1/up", b"b", qos=1)
                published = await device.wait_for("published", 4)
                assert sorted(published[1:], key=str) == sorted([untimed, first, second], key=str)
                assert len(acked) == 2
                assert all(0.2 <= seconds < 1.0 for seconds in acked), acked
                link.impair(None)
                hub.on_acked = None
                link.publish("dtu/1/up", b"c", qos=1)
                await device.wait_for("published", 5)
                assert len(acked) == 2
                link.close()

    run(scenario)


def test_bandwidth_cap_paces_a_large_uplink() -> None:
    """kbps=80 (10 kB/s): a 5000-byte publish takes about half a second to be acknowledged."""

    async def scenario() -> None:
        async with EmbeddedBroker() as broker:
            with hub_on_running_loop(tick_s=0.5) as hub:
                link, device = await connected_link(hub, broker.port, "dtu-1")
                link.impair(impairment(bandwidth_kbps=80))
                loop = asyncio.get_running_loop()
                started = loop.time()
                link.publish("dtu/1/up", b"z" * 5000, qos=1)
                await device.wait_for("published", deadline_s=3)
                assert loop.time() - started >= 0.5
                link.close()

    run(scenario)


def test_reset_reports_the_loss_and_the_broker_publishes_the_will() -> None:
    async def scenario() -> None:
        async with EmbeddedBroker() as broker:
            with hub_on_running_loop(tick_s=0.5) as hub:
                cloud = await watcher(hub, broker.port)
                link, device = await connected_link(hub, broker.port, "dtu-1", will=WILL)
                link.reset()
                assert await device.wait_for("disconnected") == [RESET_REASON]
                assert link.state is LinkState.DISCONNECTED
                assert await cloud.wait_for("message") == [(WILL.topic, b"offline")]
                link.close()

    run(scenario)


def test_broker_stop_closes_every_connection_and_restart_takes_them_back() -> None:
    """broker-stop: clients see their connection close, connects are refused; after the
    restart on the same port they connect again."""

    async def scenario() -> None:
        async with EmbeddedBroker() as broker:
            port = broker.port
            with hub_on_running_loop(tick_s=0.5) as hub:
                link, device = await connected_link(hub, port, "dtu-1")
                await broker.stop()
                assert await device.wait_for("disconnected") == ["connection lost"]
                link.connect()
                assert await device.wait_for("connect_failed") == ["connection refused"]
                await broker.restart()
                assert broker.port == port
                link.connect()
                await device.wait_for("connected", 2)
                assert broker.clients == 1
                link.close()

    run(scenario)
