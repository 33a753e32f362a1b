"""RealQuecNet against the data servers and the embedded broker, on 127.0.0.1.

Every scenario runs a ``RealtimeClock`` on its own loop, so the handler's reports arrive
in sim time through ``Clock.inject`` as they would for a unit; the firmware's host names
(``*.example``) reach the local servers only through ``resolve``. The teardown checks
that no report crashed the simulation and that every report went through ``inject``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import pytest

from tests.cloud.test_brokers import until
from vdtu.clock import RealtimeClock
from vdtu.cloud.broker import EmbeddedBroker
from vdtu.cloud.broker_auth import credentials_authenticator
from vdtu.cloud.data_servers import HttpDataServer, TcpDataServer, UdpDataServer
from vdtu.cloud.http_server import HttpServer, Reply, Request
from vdtu.firmware.quec.net import (
    HttpFailure,
    HttpRequest,
    HttpResponse,
    HttpResult,
    MqttDial,
    SocketDial,
    SocketKind,
)
from vdtu.links.quec_net import RealQuecNet
from vdtu.net.mqtt import MqttHub

pytestmark = pytest.mark.realtime

IMEI = "867435053362828"
REGISTRATION = f"{{'csq': 23, 'imei': '{IMEI}', 'iccid': '898600', 'ver': '2.0.0'}}".encode()

Event = tuple[object, ...]


class Recorder:
    """A LinkHandler that writes down every report with the sim time it came at."""

    def __init__(self, clock: RealtimeClock) -> None:
        self.clock = clock
        self.events: list[Event] = []
        self.times: list[float] = []

    def _note(self, *event: object) -> None:
        self.events.append(event)
        self.times.append(self.clock.now)

    def done(self, result: HttpResult) -> None:
        """The ``done`` callback of an HTTP request."""
        self._note("done", result)

    def link_up(self) -> None:
        self._note("up")

    def link_failed(self, reason: str, *, refused: bool) -> None:
        self._note("failed", reason, refused)

    def link_lost(self, reason: str) -> None:
        self._note("lost", reason)

    def link_received(self, topic: str | None, payload: bytes) -> None:
        self._note("received", topic, payload)

    def link_acked(self, token: int) -> None:
        self._note("acked", token)

    def kinds(self) -> list[object]:
        return [event[0] for event in self.events]

    async def wait_for(self, kind: str, count: int = 1) -> list[Event]:
        """Wait until ``count`` reports of ``kind`` arrived; returns them."""
        await until(lambda: self.kinds().count(kind) >= count, f"{count} x link_{kind}")
        return [event for event in self.events if event[0] == kind]


class Bench:
    """One loop's clock, hub and network, with the resolver table the test fills in."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.clock = RealtimeClock(loop)
        self.hub = MqttHub(loop, tick_s=0.5)
        self.hosts: dict[str, int] = {}
        self.net = RealQuecNet(self.clock, self.hub, resolve=self.resolve)
        self.recorders: list[Recorder] = []
        self.resolved: list[tuple[str, int]] = []
        self.own_injections = 0
        """Injections the test made itself (as the firmware's own activity)."""

    def resolve(self, host: str, port: int) -> tuple[str, int]:
        self.resolved.append((host, port))
        if host not in self.hosts:
            raise ValueError(f"no such host {host!r}")
        return "127.0.0.1", self.hosts[host]

    def recorder(self) -> Recorder:
        recorder = Recorder(self.clock)
        self.recorders.append(recorder)
        return recorder


@contextlib.asynccontextmanager
async def bench() -> AsyncIterator[Bench]:
    b = Bench(asyncio.get_running_loop())
    b.clock.start()
    try:
        yield b
    finally:
        b.net.close()
        await b.net.wait_idle()
        b.hub.close()
        b.clock.stop()
    assert b.clock.crashed is None
    assert b.clock.injected == b.own_injections + sum(len(r.events) for r in b.recorders)


def unused_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def tcp(host: str = "dtu.example", port: int = 9000) -> SocketDial:
    return SocketDial(kind=SocketKind.TCP, host=host, port=port)


def test_tcp_link_carries_data_both_ways_to_the_resolved_server() -> None:
    """The firmware's host name goes through resolve(); link_up, then the registration and a
    payload reach the server, and the server's send arrives as link_received(None, data)."""

    async def scenario() -> None:
        server = TcpDataServer()
        await server.start()
        async with bench() as b:
            b.hosts["dtu.example"] = server.port
            unit = b.recorder()
            link = b.net.open_socket(tcp(), unit)
            assert unit.events == []  # nothing is reported from inside open_socket
            await unit.wait_for("up")
            assert link.send(REGISTRATION) == 0
            await until(lambda: IMEI in [c.imei for c in server.clients.values()], "the IMEI")
            assert link.send(b"t=21") == 0
            await until(lambda: server.client(IMEI).payloads() == [b"t=21"], "the payload")
            server.send(IMEI, b"switch on")
            await unit.wait_for("received")
            assert unit.events == [("up",), ("received", None, b"switch on")]
            assert b.resolved == [("dtu.example", 9000)]
            assert unit.times == sorted(unit.times)
        await server.stop()

    asyncio.run(scenario())


def test_tcp_refused_connection_is_link_failed_not_refused_credentials() -> None:
    """Nothing listening: link_failed('connection refused', refused=False)."""

    async def scenario() -> None:
        async with bench() as b:
            b.hosts["dtu.example"] = unused_port()
            unit = b.recorder()
            b.net.open_socket(tcp(), unit)
            await unit.wait_for("failed")
            assert unit.events == [("failed", "connection refused", False)]
            assert b.net.open_links == 0

    asyncio.run(scenario())


def test_server_closing_the_tcp_connection_is_link_lost_and_sends_then_fail() -> None:
    """A server-side close reaches the firmware as link_lost; send() returns None after."""

    async def scenario() -> None:
        server = TcpDataServer()
        await server.start()
        async with bench() as b:
            b.hosts["dtu.example"] = server.port
            unit = b.recorder()
            link = b.net.open_socket(tcp(), unit)
            await unit.wait_for("up")
            link.send(REGISTRATION)
            await until(lambda: IMEI in [c.imei for c in server.clients.values()], "the IMEI")
            server.disconnect(IMEI)
            (lost,) = await unit.wait_for("lost")
            assert lost == ("lost", "closed by the peer")
            assert link.send(b"late") is None
        await server.stop()

    asyncio.run(scenario())


def test_closing_a_link_ends_the_connection_and_reports_nothing_more() -> None:
    """close() aborts the socket (the server sees it end); the firmware hears nothing
    after, and net.close() ends the links still open."""

    async def scenario() -> None:
        server = TcpDataServer()
        await server.start()
        async with bench() as b:
            b.hosts["dtu.example"] = server.port
            first, second = b.recorder(), b.recorder()
            link = b.net.open_socket(tcp(), first)
            b.net.open_socket(tcp(), second)
            await first.wait_for("up")
            await second.wait_for("up")
            await until(lambda: len(server.clients) == 2, "both connections")
            link.close()
            assert link.send(b"x") is None
            await until(lambda: len(server.clients) == 1, "the closed connection to end")
            b.net.close()
            await until(lambda: not server.clients, "every connection to end")
            await asyncio.sleep(0.05)
            assert first.events == [("up",)]
            assert second.events == [("up",)]
            assert b.net.open_links == 0
        await server.stop()

    asyncio.run(scenario())


def test_udp_link_sends_datagrams_and_receives_the_echo_and_server_sends() -> None:
    """A connected UDP socket is up at once; datagrams go out, echoes and sends come back."""

    async def scenario() -> None:
        server = UdpDataServer(echo=True)
        await server.start()
        async with bench() as b:
            b.hosts["udp.example"] = server.port
            unit = b.recorder()
            link = b.net.open_socket(
                SocketDial(kind=SocketKind.UDP, host="udp.example", port=7), unit
            )
            await unit.wait_for("up")
            assert link.send(REGISTRATION) == 0
            await until(lambda: len(server.clients) == 1, "the registration")
            assert link.send(b"data") == 0
            await unit.wait_for("received")
            server.send(IMEI, b"down")
            await unit.wait_for("received", 2)
            assert unit.events == [
                ("up",),
                ("received", None, b"data"),
                ("received", None, b"down"),
            ]
            assert link.send(b"x" * 70_000) is None
        await server.stop()

    asyncio.run(scenario())


def test_unknown_host_is_a_failure_reported_later_not_from_inside_sim_time() -> None:
    """A host resolve() does not know fails the link, reported on the loop's next turn:
    opening from inside sim time (an injected callback) does not re-enter the clock."""

    async def scenario() -> None:
        async with bench() as b:
            unit = b.recorder()
            opened: list[int] = []

            def firmware() -> None:
                b.net.open_socket(tcp("nowhere.example"), unit)
                opened.append(len(unit.events))

            b.clock.inject(firmware)
            b.own_injections += 1
            assert opened == [0]
            (failed,) = await unit.wait_for("failed")
            assert failed == (
                "failed",
                "cannot resolve host 'nowhere.example': no such host 'nowhere.example'",
                False,
            )

    asyncio.run(scenario())


def test_a_link_closed_at_once_reports_nothing_not_even_an_earlier_failure() -> None:
    """close() right after open: neither the failure found inside open (unknown host) nor
    the connect attempt (refused) is reported."""

    async def scenario() -> None:
        async with bench() as b:
            b.hosts["dtu.example"] = unused_port()
            unit = b.recorder()
            b.net.open_socket(tcp("nowhere.example"), unit).close()
            b.net.open_socket(tcp(), unit).close()
            b.net.open_mqtt(MqttDial(host="dtu.example", port=1, client_id="x"), unit).close()
            await asyncio.sleep(0.1)
            assert unit.events == []
            assert b.net.open_links == 0

    asyncio.run(scenario())


def test_mqtt_links_subscribe_publish_and_get_acks_through_the_broker() -> None:
    """Two units on the embedded broker: each is up after its SUBACK; a QoS 1 publish
    returns a message id that is acked; QoS 0 returns 0; each gets the other's message on
    its subscribed topic."""

    async def scenario() -> None:
        async with EmbeddedBroker() as broker, bench() as b:
            b.hosts["iot.example"] = broker.port
            device, cloud = b.recorder(), b.recorder()

            def dial(client_id: str, topic: str) -> MqttDial:
                return MqttDial(
                    host="iot.example",
                    port=1883,
                    client_id=client_id,
                    subscriptions=((topic, 1),),
                )

            unit = b.net.open_mqtt(dial("dtu-1", "down/dtu-1"), device)
            app = b.net.open_mqtt(dial("app", "up/#"), cloud)
            assert unit.send(b"early", topic="up/dtu-1") is None
            await device.wait_for("up")
            await cloud.wait_for("up")
            token = unit.send(b'{"data": "t=21"}', topic="up/dtu-1", qos=1)
            assert token is not None
            assert token > 0
            assert unit.send(b"qos0", topic="up/dtu-1") == 0
            (acked,) = await device.wait_for("acked")
            assert acked == ("acked", token)
            await cloud.wait_for("received", 2)
            assert app.send(b'{"data": "on"}', topic="down/dtu-1") == 0
            await device.wait_for("received")
            assert [e for e in cloud.events if e[0] == "received"] == [
                ("received", "up/dtu-1", b'{"data": "t=21"}'),
                ("received", "up/dtu-1", b"qos0"),
            ]
            assert device.events == [
                ("up",),
                ("acked", token),
                ("received", "down/dtu-1", b'{"data": "on"}'),
            ]
            with pytest.raises(ValueError, match="topic=None"):
                unit.send(b"x")
            unit.close()
            app.close()

    asyncio.run(scenario())


def test_mqtt_wrong_password_is_a_refused_failure_and_a_broker_stop_a_loss() -> None:
    """A CONNACK refusing the login: link_failed(refused=True); the right login connects,
    and the broker going away is link_lost."""

    async def scenario() -> None:
        broker = EmbeddedBroker(authenticator=credentials_authenticator("dtu", "s3cret"))
        await broker.start()
        async with bench() as b:
            b.hosts["iot.example"] = broker.port
            wrong, right = b.recorder(), b.recorder()

            def dial(password: str) -> MqttDial:
                return MqttDial(
                    host="iot.example",
                    port=1883,
                    client_id=f"dtu-{password}",
                    username="dtu",
                    password=password,
                )

            b.net.open_mqtt(dial("guess"), wrong)
            b.net.open_mqtt(dial("s3cret"), right)
            (failed,) = await wrong.wait_for("failed")
            assert failed[2] is True
            assert failed[1] in ("not authorized", "bad user name or password")
            await right.wait_for("up")
            await broker.stop()
            (lost,) = await right.wait_for("lost")
            assert isinstance(lost[1], str)
            assert b.net.open_links == 0

    asyncio.run(scenario())


def test_mqtt_dial_the_link_refuses_fails_the_link_later() -> None:
    """A keepalive MqttLink cannot take is a link_failed naming it, not an exception."""

    async def scenario() -> None:
        async with bench() as b:
            b.hosts["iot.example"] = unused_port()
            unit = b.recorder()
            dial = MqttDial(host="iot.example", port=1883, client_id="dtu-1", keepalive_s=1)
            b.net.open_mqtt(dial, unit)
            assert unit.events == []
            (failed,) = await unit.wait_for("failed")
            assert "keepalive must be 0 (off) or 2..65535 s" in str(failed[1])

    asyncio.run(scenario())


def run_requests(requests: list[HttpRequest]) -> tuple[list[HttpResult], list[tuple[str, int]]]:
    """Make each request through RealQuecNet, against an HttpDataServer at http.example.

    Returns:
        The results in the order of the requests, and the (host, port) pairs resolved.
    """

    async def scenario() -> tuple[list[Event], list[tuple[str, int]]]:
        server = HttpDataServer()
        server.enqueue("/cmd", 200, b'{"data": "switch on"}')
        await server.start()
        async with bench() as b:
            b.hosts["http.example"] = server.port
            b.hosts["closed.example"] = unused_port()
            recorders = [b.recorder() for _ in requests]
            for item, recorder in zip(requests, recorders, strict=True):
                b.net.request(item, recorder.done)
            await b.net.wait_idle()
            events = [event for recorder in recorders for event in recorder.events]
        await server.stop()
        return events, b.resolved

    events, resolved = asyncio.run(scenario())
    assert [event[0] for event in events] == ["done"] * len(requests)
    return [event[1] for event in events], resolved  # type: ignore[misc]


def test_http_requests_give_status_and_body_or_a_failure() -> None:
    """GET and POST through resolve() give HttpResponse(status, body); a refused
    connection, an unknown host and an https URL give HttpFailure with the reason."""
    results, resolved = run_requests(
        [
            HttpRequest(method="POST", url="http://http.example/up", body=b'{"data": "t=21"}'),
            HttpRequest(method="GET", url="http://http.example:8080/cmd?x=1"),
            HttpRequest(method="GET", url="http://closed.example/", timeout_s=2),
            HttpRequest(method="GET", url="http://nowhere.example/"),
            HttpRequest(method="GET", url="https://http.example/"),
        ]
    )
    assert results[:2] == [
        HttpResponse(status=200, body=b'{"data": "t=21"}'),
        HttpResponse(status=200, body=b'{"data": "switch on"}'),
    ]
    assert all(isinstance(result, HttpFailure) for result in results[2:])
    reasons = sorted(result.reason for result in results[2:] if isinstance(result, HttpFailure))
    assert any("nowhere.example" in reason for reason in reasons)
    assert any("only http://" in reason for reason in reasons)
    assert any("127.0.0.1" in reason for reason in reasons)
    assert sorted(resolved) == [
        ("closed.example", 80),
        ("http.example", 80),
        ("http.example", 8080),
        ("nowhere.example", 80),
    ]


def test_http_request_keeps_the_firmwares_host_header() -> None:
    """The URL is rewritten to the resolved address but the Host header names the
    firmware's host; a Host the firmware set itself is kept."""
    hosts: list[str] = []

    def handler(request: Request) -> Reply:
        hosts.append(request.headers["host"])
        return Reply(status=204)

    async def scenario() -> list[Event]:
        server = HttpServer({("GET", "/*"): handler})
        await server.start()
        async with bench() as b:
            b.hosts["api.example"] = server.port
            recorder = b.recorder()
            for headers in ({}, {"host": "custom"}):
                request = HttpRequest(
                    method="GET", url="http://api.example:8080/x", headers=headers
                )
                b.net.request(request, recorder.done)
            await b.net.wait_idle()
        await server.stop()
        return recorder.events

    assert asyncio.run(scenario()) == [("done", HttpResponse(status=204, body=b""))] * 2
    assert sorted(hosts) == ["api.example:8080", "custom"]
