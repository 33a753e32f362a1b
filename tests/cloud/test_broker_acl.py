"""Topic access control: a unit's login reaches only its own topics, on both brokers.

The scenarios run against the embedded amqtt broker with the fleet's rule
(``FleetAccess``, as ``vdtu up`` starts it) and against the private mosquitto with the
dynamic-security plugin (``dynsec_config``: a client per login, bound to its client id;
skipped locally without mosquitto, a failure in CI). Units A and B are two XGC devices
of one project, C a QuecPython one; the console is the admin login.
Something that must not arrive is checked with a marker: a message that must arrive,
sent after it on the same route, and a short window after that.

Both refuse a subscription outside the unit's own topics with SUBACK 0x80 and deliver a
unit nothing of another unit's. (A mosquitto with the ``acl_file`` of ``mosquitto_acl``,
for a user's own broker, grants every SUBSCRIBE and filters each message instead: see
docs/brokers.md.)

The rule itself (pure) is tested for every login kind at the end, and the MQTT 5
refusal of the embedded broker with a raw socket.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import pytest

from tests.cloud.test_brokers import Peer, stays_false
from tests.conftest import require_tool
from vdtu.cloud.broker import EmbeddedBroker
from vdtu.cloud.broker_acl import (
    FULL_ACCESS,
    FleetAccess,
    Grant,
    QuecTopics,
    Refusal,
    mosquitto_acl,
)
from vdtu.cloud.broker_url import BrokerUrl
from vdtu.cloud.iot_sign import Vendor, aliyun_login, quecthing_login, txyun_login
from vdtu.cloud.mosquitto import DeviceLogin, Mosquitto, dynsec_config
from vdtu.cloud.platform import CONSOLE_USER, BrokerAddress, XgcPlatform
from vdtu.cloud.xgc_api import Channel, device_password, device_topic
from vdtu.firmware.quec.config import PUBLISH_TOPIC, SUBSCRIBE_TOPIC

pytestmark = pytest.mark.realtime

PROJECT = "1000a18db9b17958165c"
SECRET = "0123456789ABCDEF0123456789ABCDEF01234567"
A = "867435059800763"
B = "867435051234561"
C = "867435050000019"
"""A QuecPython unit: its client id is its IMEI."""
QUEC = QuecTopics(uplink=PUBLISH_TOPIC, downlink=SUBSCRIBE_TOPIC)
WINDOW_S = 0.3
"""How long a message that must not arrive is watched for, after the marker arrived."""


def topic(imei: str, channel: Channel) -> str:
    return device_topic(PROJECT, imei, channel)


def login(imei: str) -> tuple[str, str]:
    return imei, device_password(SECRET, imei)


@dataclass(frozen=True, slots=True)
class Fleet:
    """A broker with the rule, and the console's login."""

    url: BrokerUrl
    console: tuple[str, str]

    def unit(self, imei: str, *, client_id: str | None = None, **kwargs: object) -> Peer:
        return Peer(self.url, client_id or f"xgc-{imei}", login=login(imei), **kwargs)  # type: ignore[arg-type]

    def admin(self, name: str) -> Peer:
        return Peer(self.url, name, login=self.console)


@asynccontextmanager
async def embedded() -> AsyncIterator[Fleet]:
    platform = XgcPlatform(projects={PROJECT: SECRET}, broker=BrokerAddress(host="h", port=1))
    access = FleetAccess(projects=platform.projects, admins=(CONSOLE_USER,), quec=QUEC)
    async with EmbeddedBroker(authenticator=platform.authenticate, access=access) as broker:
        yield Fleet(broker.url, (CONSOLE_USER, platform.console_token))


@asynccontextmanager
async def private_mosquitto() -> AsyncIterator[Fleet]:
    require_tool("mosquitto")
    console = (CONSOLE_USER, "console-token")
    devices = {
        imei: DeviceLogin(password=login(imei)[1], client_id=client_id)
        for imei, client_id in ((A, f"xgc-{A}"), (B, f"xgc-{B}"), (C, C))
    }
    document = dynsec_config(project=PROJECT, devices=devices, admins=dict([console]), quec=QUEC)
    with Mosquitto(dynsec=document) as broker:
        yield Fleet(broker.url, console)


@pytest.fixture(params=["amqtt", "mosquitto"])
def serve(request: pytest.FixtureRequest) -> Callable[[], AbstractAsyncContextManager[Fleet]]:
    """Starts one of the two brokers with the rule."""
    return embedded if request.param == "amqtt" else private_mosquitto


Serve = Callable[[], AbstractAsyncContextManager[Fleet]]


async def close_all(*peers: Peer) -> None:
    for peer in peers:
        await peer.close()


def test_a_unit_may_not_subscribe_to_everything_or_another_units_topics(serve: Serve) -> None:
    """``#``, B's downlink and a wildcard over the project: refused (amqtt: SUBACK 0x80), and
    nothing of B's reaches A; A's own downlinks are granted and arrive."""

    async def scenario() -> None:
        async with serve() as fleet:
            a, console = fleet.unit(A), fleet.admin("console")
            refused = ["#", topic(B, Channel.DOWN), f"xgc/{PROJECT}/+/up", topic(A, Channel.UP)]
            for topic_filter in refused:
                assert (await a.subscribe(topic_filter)).is_failure, topic_filter
            for channel in (Channel.DOWN, Channel.CONFIG, Channel.OTA):
                assert not (await a.subscribe(topic(A, channel))).is_failure
            await console.publish(topic(B, Channel.DOWN), b"for B")
            await console.publish(topic(B, Channel.UP), b"from B")
            await console.publish(topic(A, Channel.UP), b"from A")
            await console.publish(topic(A, Channel.DOWN), b"marker")
            await a.receive(topic(A, Channel.DOWN))
            assert await stays_false(lambda: len(a.messages) > 1, window_s=WINDOW_S)
            assert [(m.topic, m.payload) for m in a.messages] == [
                (topic(A, Channel.DOWN), b"marker")
            ]
            await close_all(a, console)

    asyncio.run(scenario())


def test_a_unit_cannot_send_to_another_units_downlink(serve: Serve) -> None:
    """A's publish to B's ``down`` is dropped; the console's, sent after it, arrives alone."""

    async def scenario() -> None:
        async with serve() as fleet:
            a, b, console = fleet.unit(A), fleet.unit(B), fleet.admin("console")
            await b.subscribe(topic(B, Channel.DOWN))
            await console.connected()
            await a.publish(topic(B, Channel.DOWN), b"forged")
            await console.publish(topic(B, Channel.DOWN), b"marker")
            await b.receive(topic(B, Channel.DOWN))
            assert await stays_false(
                lambda: b"forged" in b.payloads(topic(B, Channel.DOWN)), window_s=WINDOW_S
            )
            assert b.payloads(topic(B, Channel.DOWN)) == [b"marker"]
            await close_all(a, b, console)

    asyncio.run(scenario())


def test_a_unit_cannot_fake_another_units_uplink_or_retained_state(serve: Serve) -> None:
    """A's ``up`` and retained ``state`` as B reach nobody, and leave no retained state."""

    async def scenario() -> None:
        async with serve() as fleet:
            a, b, console = fleet.unit(A), fleet.unit(B), fleet.admin("console")
            await console.subscribe(f"xgc/{PROJECT}/{B}/#")
            await a.publish(topic(B, Channel.UP), b"fake-up")
            await a.publish(topic(B, Channel.STATE), b'{"state":"offline"}', retain=True)
            await b.publish(topic(B, Channel.UP), b"real-up")
            await console.receive(topic(B, Channel.UP))
            assert await stays_false(lambda: len(console.messages) > 1, window_s=WINDOW_S)
            assert [m.payload for m in console.messages] == [b"real-up"]
            late = fleet.admin("late-console")
            await late.subscribe(topic(B, Channel.STATE))
            assert await stays_false(lambda: bool(late.messages), window_s=WINDOW_S)
            await close_all(a, b, console, late)

    asyncio.run(scenario())


def test_the_console_sees_everything_and_a_unit_its_own_traffic(serve: Serve) -> None:
    """The console may subscribe to ``#`` and sees A's uplinks and states; A its downlinks."""

    async def scenario() -> None:
        async with serve() as fleet:
            console = fleet.admin("console")
            assert not (await console.subscribe("#")).is_failure
            a = fleet.unit(A, will=(topic(A, Channel.STATE), b'{"state":"offline"}'))
            assert not (await a.connected()).is_failure
            await a.subscribe(topic(A, Channel.DOWN))
            for channel in (
                Channel.UP,
                Channel.PROPS,
                Channel.CONFIG_STATUS,
                Channel.OTA_STATUS,
                Channel.STATE,
            ):
                await a.publish(topic(A, channel), channel.value.encode())
                assert await console.receive(topic(A, channel)) == [channel.value.encode()]
            await console.publish(topic(A, Channel.DOWN), b"hello")
            assert await a.receive(topic(A, Channel.DOWN)) == [b"hello"]
            await close_all(a, console)

    asyncio.run(scenario())


def test_a_quec_unit_uses_its_own_quec_topics(serve: Serve) -> None:
    """With client id = IMEI (the QuecPython default) C uses ``quec/C/...``, not B's."""

    async def scenario() -> None:
        async with serve() as fleet:
            console = fleet.admin("console")
            await console.subscribe("quec/+/up")
            c = fleet.unit(C, client_id=C)
            assert not (await c.subscribe(SUBSCRIBE_TOPIC.format(imei=C))).is_failure
            assert (await c.subscribe(SUBSCRIBE_TOPIC.format(imei=B))).is_failure
            await console.publish(SUBSCRIBE_TOPIC.format(imei=B), b"for B")
            await c.publish(PUBLISH_TOPIC.format(imei=B), b"forged")
            await c.publish(PUBLISH_TOPIC.format(imei=C), b"mine")
            await console.receive(PUBLISH_TOPIC.format(imei=C))
            assert await stays_false(lambda: len(console.messages) > 1, window_s=WINDOW_S)
            await console.publish(SUBSCRIBE_TOPIC.format(imei=C), b"command")
            assert await c.receive(SUBSCRIBE_TOPIC.format(imei=C)) == [b"command"]
            assert len(c.messages) == 1
            await close_all(c, console)

    asyncio.run(scenario())


def test_a_unit_cannot_take_another_units_client_id_on_the_embedded_broker(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A as ``xgc-B``: CONNACK "not authorised", logged once; B stays connected and keeps
    receiving its downlinks (amqtt alone would have dropped B's subscriptions)."""
    caplog.set_level(logging.INFO, logger="vdtu.cloud.broker")

    async def scenario() -> None:
        async with embedded() as fleet:
            b, console = fleet.unit(B), fleet.admin("console")
            await b.subscribe(topic(B, Channel.DOWN))
            intruder = Peer(fleet.url, f"xgc-{B}", login=login(A))
            assert (await intruder.connected()).getName() == "Not authorized"
            wrong_password = Peer(fleet.url, f"xgc-{B}", login=(A, "guess"))
            assert (await wrong_password.connected()).is_failure
            await console.publish(topic(B, Channel.DOWN), b"still here")
            assert await b.receive(topic(B, Channel.DOWN)) == [b"still here"]
            assert len(b.connacks) == 1
            await close_all(intruder, wrong_password, b, console)

    asyncio.run(scenario())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"must connect as xgc-{A} or {A}, not 'xgc-{B}'" in warnings[0]


def test_a_will_on_another_units_topic_is_refused_on_the_embedded_broker() -> None:
    """A login whose will would publish B's state is not let in."""

    async def scenario() -> None:
        async with embedded() as fleet:
            a = fleet.unit(A, will=(topic(B, Channel.STATE), b'{"state":"offline"}'))
            assert (await a.connected()).getName() == "Not authorized"
            await close_all(a)

    asyncio.run(scenario())


def test_a_unit_cannot_take_another_units_client_id_on_mosquitto() -> None:
    """The dynamic-security plugin binds each device's login to its client id: A as
    ``xgc-B`` is refused ("not authorised"), so B is not disconnected and keeps receiving."""
    require_tool("mosquitto")

    async def scenario() -> None:
        async with private_mosquitto() as fleet:
            b, console = fleet.unit(B), fleet.admin("console")
            await b.subscribe(topic(B, Channel.DOWN))
            intruder = Peer(fleet.url, f"xgc-{B}", login=login(A), clean_session=False)
            assert (await intruder.connected()).is_failure
            own_id_wrong_password = Peer(fleet.url, f"xgc-{B}", login=(B, "guess"))
            assert (await own_id_wrong_password.connected()).is_failure
            await console.publish(topic(B, Channel.DOWN), b"still here")
            assert await b.receive(topic(B, Channel.DOWN)) == [b"still here"]
            assert len(b.connacks) == 1
            await close_all(intruder, own_id_wrong_password, b, console)

    asyncio.run(scenario())


def test_refusals_are_logged_once_per_client_and_kind(caplog: pytest.LogCaptureFixture) -> None:
    """Two refused subscribes and two refused publishes of A give one line each, naming A."""
    caplog.set_level(logging.WARNING, logger="vdtu.cloud.broker")

    async def scenario() -> None:
        async with embedded() as fleet:
            a = fleet.unit(A)
            await a.subscribe("#")
            await a.subscribe(topic(B, Channel.DOWN))
            await a.publish(topic(B, Channel.DOWN), b"x")
            await a.publish(topic(B, Channel.UP), b"y")
            await a.publish(topic(A, Channel.UP), b"fine")
            await close_all(a)

    asyncio.run(scenario())
    lines = [r.getMessage() for r in caplog.records if r.name == "vdtu.cloud.broker"]
    assert len(lines) == 2, lines
    assert f"device {A} of project {PROJECT} may not subscribe '#'" in lines[0]
    assert f"may not publish 'xgc/{PROJECT}/{B}/down'" in lines[1]


# -- MQTT 5 on the embedded broker --------------------------------------------------------------

MOSQUITTO_SUB_V5_CONNECT = bytes.fromhex("101000044d5154540502003c032100140000")
"""What ``mosquitto_sub -V mqttv5`` sends (client id empty, receive-maximum 20)."""


@pytest.mark.parametrize(
    "packet",
    [
        MOSQUITTO_SUB_V5_CONNECT,
        bytes.fromhex("101400044d5154540502003c000008") + b"v5client",
    ],
    ids=["mosquitto_sub", "named"],
)
def test_an_mqtt5_connect_gets_unacceptable_protocol_version(
    packet: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """CONNACK 0x01 at once, one WARNING naming MQTT 5, nothing at ERROR (no traceback)."""
    caplog.set_level(logging.DEBUG)

    async def scenario() -> bytes:
        async with EmbeddedBroker() as broker:
            reader, writer = await asyncio.open_connection("127.0.0.1", broker.port)
            writer.write(packet)
            answer = await asyncio.wait_for(reader.read(16), 2.0)
            tail = await asyncio.wait_for(reader.read(16), 2.0)
            writer.close()
            await asyncio.sleep(0.1)
            assert tail == b"", "the broker closes the connection after the CONNACK"
            return answer

    assert asyncio.run(scenario()) == bytes((0x20, 0x02, 0x00, 0x01))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "MQTT 5 CONNECT" in warnings[0]


def test_a_client_that_hangs_up_right_after_an_mqtt5_connect_logs_no_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No traceback when the client has gone before the broker answers."""
    caplog.set_level(logging.DEBUG)

    async def scenario() -> None:
        async with EmbeddedBroker() as broker:
            _reader, writer = await asyncio.open_connection("127.0.0.1", broker.port)
            writer.write(MOSQUITTO_SUB_V5_CONNECT)
            writer.close()
            await asyncio.sleep(0.3)
            good = Peer(broker.url, "after")
            assert not (await good.connected()).is_failure
            await good.close()

    asyncio.run(scenario())
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# -- the rule (pure) ----------------------------------------------------------------------------


def fleet_access() -> FleetAccess:
    return FleetAccess(projects={PROJECT: SECRET, "other": "x" * 40}, admins=["ops"], quec=QUEC)


def test_the_rule_gives_admins_everything_and_devices_their_project() -> None:
    access = fleet_access()
    assert access("ops", "anything", "any-id") is FULL_ACCESS
    grant = access(A, device_password(SECRET, A), f"xgc-{A}")
    assert isinstance(grant, Grant)
    assert grant.label == f"device {A} of project {PROJECT}"
    assert grant.may_publish(topic(A, Channel.STATE))
    assert not grant.may_publish(device_topic("other", A, Channel.UP))
    assert grant.may_publish(f"quec/{A}/up/extra")
    assert not grant.may_publish(f"quec/{A}/down")
    assert grant.may_subscribe(f"quec/{A}/down/#")
    assert not grant.may_subscribe(f"quec/{A}/+")
    assert not grant.may_subscribe(f"xgc/{PROJECT}/{A}/#")
    refused = access(A, device_password(SECRET, A), "something-else")
    assert isinstance(refused, Refusal)
    assert isinstance(access(A, "wrong", f"xgc-{A}"), Refusal)


def test_the_rule_keeps_cloud_logins_in_their_own_trees() -> None:
    """Aliyun ``/K/N/...`` and ``/sys/K/N/...``, Tencent ``K/N/...``, quecthing up/down."""
    access = fleet_access()
    ali = aliyun_login(product_key="a1pk", device_name="dev1", device_secret="s", client_id="c1")
    grant = access(ali.username, ali.password, ali.client_id)
    assert isinstance(grant, Grant)
    assert grant.may_publish("/a1pk/dev1/user/update")
    assert grant.may_subscribe("/sys/a1pk/dev1/thing/#")
    assert not grant.may_publish("/a1pk/dev2/user/update")
    assert not grant.may_subscribe("/a1pk/+/user/get")
    tx = txyun_login(
        product_id="ABCDEFGHIJ", device_name="dev1", psk_b64="c2VjcmV0", connid=1, expiry=9
    )
    grant = access(tx.username, tx.password, tx.client_id)
    assert isinstance(grant, Grant)
    assert grant.may_publish("ABCDEFGHIJ/dev1/event")
    assert not grant.may_publish("ABCDEFGHIJ/dev2/event")
    assert grant.may_connect_as("ABCDEFGHIJdev1")
    qt = quecthing_login(
        product_key="p1ab", product_secret="ps", device_name="dev1", device_secret=""
    )
    grant = access(qt.username, qt.password, qt.client_id)
    assert isinstance(grant, Grant)
    assert grant.label == f"{Vendor.QUECTHING} device 'dev1' of product 'p1ab'"
    assert grant.may_publish("quecthing/p1ab/dev1/up")
    assert not grant.may_publish("quecthing/p1ab/dev1/down")
    assert grant.may_subscribe("quecthing/p1ab/dev1/down")
    assert not grant.may_subscribe("quecthing/p1ab/+/down")


def test_the_mosquitto_acl_is_the_same_rule_as_pattern_lines() -> None:
    text = mosquitto_acl(projects=[PROJECT], admins=["ops"], quec=QUEC)
    lines = text.splitlines()
    assert lines[1:3] == ["user ops", "topic readwrite #"]
    assert f"pattern write xgc/{PROJECT}/%u/up" in lines
    assert f"pattern write xgc/{PROJECT}/%u/state" in lines
    assert f"pattern read xgc/{PROJECT}/%u/down" in lines
    assert "pattern write quec/%u/up/#" in lines
    assert "pattern read quec/%u/down/#" in lines
    assert sum(line.startswith("pattern ") for line in lines) == 10
