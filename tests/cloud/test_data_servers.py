"""The tcp, udp and http data servers (the DTU channels' local counterparts), on 127.0.0.1.

Clients are plain asyncio sockets. Each TCP payload is sent only after the server
recorded the one before, since TCP would otherwise be free to merge them into one read.
"""

from __future__ import annotations

import asyncio
from typing import cast

import pytest

from tests.cloud.test_brokers import until
from vdtu.cloud.data_servers import (
    DataClient,
    HttpDataServer,
    MessageKind,
    TcpDataServer,
    UdpDataServer,
    _UdpEndpoint,
    parse_registration,
)
from vdtu.cloud.http_client import request
from vdtu.errors import LinkBrokenError

IMEI = "867435053362828"
REGISTRATION = (
    f"{{'csq': 23, 'imei': '{IMEI}', 'iccid': '89860000000000000000', 'ver': '2.0.0'}}".encode()
)


class Stream:
    """A TCP client of the test, as a DTU's tcp channel would be."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> Stream:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def say(self, server: TcpDataServer, data: bytes) -> None:
        """Send ``data`` and wait until the server recorded it."""
        before = sum(client.messages for client in server.clients.values())
        self.writer.write(data)
        await self.writer.drain()
        await until(
            lambda: sum(client.messages for client in server.clients.values()) > before,
            f"the server to record {data!r}",
        )

    async def hear(self, size: int) -> bytes:
        async with asyncio.timeout(5):
            return await self.reader.readexactly(size)

    def close(self) -> None:
        self.writer.close()


class Datagrams(asyncio.DatagramProtocol):
    """A connected UDP client of the test."""

    def __init__(self) -> None:
        self.heard: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: asyncio.BaseTransport | None = None

    @classmethod
    async def connect(cls, port: int) -> Datagrams:
        loop = asyncio.get_running_loop()
        _transport, client = await loop.create_datagram_endpoint(
            cls, remote_addr=("127.0.0.1", port)
        )
        return client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # 3.11's selector datagram transport is no DatagramTransport

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self.heard.put_nowait(data)

    def say(self, data: bytes) -> None:
        assert self.transport is not None
        cast("asyncio.DatagramTransport", self.transport).sendto(data)

    @property
    def address(self) -> tuple[str, int]:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return host, port

    async def hear(self) -> bytes:
        async with asyncio.timeout(5):
            return await self.heard.get()


@pytest.mark.parametrize(
    ("payload", "imei"),
    [
        (REGISTRATION, IMEI),
        (b'{"csq": 20, "imei": "861", "iccid": "898", "ver": "2.0.0"}', "861"),
        (b"{'imei': 861234567890123}", 861234567890123),
        (b"  {'imei': '1'}\r\n", "1"),
    ],
)
def test_registration_is_read_from_python_repr_or_json(payload: bytes, imei: object) -> None:
    """The firmware's str(dict) (single quotes), JSON, and a numeric IMEI are all accepted."""
    parsed = parse_registration(payload)
    assert parsed is not None
    assert parsed["imei"] == imei


@pytest.mark.parametrize(
    "payload",
    [
        b"ping",
        b"{'csq': 23}",
        b"{'imei': }",
        b"[{'imei': '1'}]",
        b"{'imei': '" + b"1" * 600 + b"'}",
        b"{" * 300 + b"}" * 300,
        b"\xff{'imei': '1'}",
        b"{'imei': __import__('os').getcwd()}",
    ],
)
def test_what_is_not_a_registration_gives_none(payload: bytes) -> None:
    """No dict, no IMEI, broken syntax, oversized, deeply nested, not UTF-8, or code: None."""
    assert parse_registration(payload) is None


@pytest.mark.realtime
def test_tcp_server_sorts_registration_heartbeats_and_data_and_addresses_by_imei() -> None:
    """The first payload registers the IMEI; ping texts count as heartbeats; the rest is
    data; on_message sees every payload; send() by IMEI reaches the unit."""
    seen: list[tuple[str | None, bytes]] = []

    def on_message(client: DataClient, data: bytes) -> None:
        seen.append((client.imei, data))

    async def scenario() -> tuple[DataClient, bytes]:
        server = TcpDataServer(ping_texts=[b"ping"], on_message=on_message)
        await server.start()
        try:
            unit = await Stream.connect(server.port)
            for payload in (REGISTRATION, b"ping", b'{"data": "hello"}', b"ping"):
                await unit.say(server, payload)
            client = server.client(IMEI)
            server.send(IMEI, b"down")
            heard = await unit.hear(4)
            unit.close()
            return client, heard
        finally:
            await server.stop()

    client, heard = asyncio.run(scenario())
    assert heard == b"down"
    assert client.imei == IMEI
    assert client.registration is not None
    assert client.registration["csq"] == 23
    assert (client.heartbeats, client.messages) == (2, 4)
    assert [item.kind for item in client.received] == [
        MessageKind.REGISTRATION,
        MessageKind.HEARTBEAT,
        MessageKind.DATA,
        MessageKind.HEARTBEAT,
    ]
    assert client.payloads() == [b'{"data": "hello"}']
    assert seen[0] == (IMEI, REGISTRATION)
    assert len(seen) == 4


@pytest.mark.realtime
def test_tcp_echo_returns_data_but_not_registration_or_heartbeat() -> None:
    """With echo=True only DATA payloads come back."""

    async def scenario() -> bytes:
        server = TcpDataServer(ping_texts=[b"ping"], echo=True)
        await server.start()
        try:
            unit = await Stream.connect(server.port)
            await unit.say(server, REGISTRATION)
            await unit.say(server, b"ping")
            await unit.say(server, b"data-1")
            heard = await unit.hear(6)
            with pytest.raises(TimeoutError):  # nothing else comes back
                async with asyncio.timeout(0.05):
                    await unit.reader.read(1)
            unit.close()
            return heard
        finally:
            await server.stop()

    assert asyncio.run(scenario()) == b"data-1"


@pytest.mark.realtime
def test_without_registration_the_first_payload_is_data_and_the_peer_addresses_it() -> None:
    """A unit that sends no registration is data from the start and is reached by address."""

    async def scenario() -> tuple[list[bytes], bytes]:
        server = TcpDataServer()
        await server.start()
        try:
            unit = await Stream.connect(server.port)
            await unit.say(server, b"ping")
            (peer,) = server.clients
            server.send(peer, b"hi")
            heard = await unit.hear(2)
            payloads = server.clients[peer].payloads()
            unit.close()
            return payloads, heard
        finally:
            await server.stop()

    assert asyncio.run(scenario()) == ([b"ping"], b"hi")


@pytest.mark.realtime
def test_a_reconnected_unit_is_found_by_imei_on_its_new_connection() -> None:
    """After a reconnect the IMEI names the new connection; the old client is marked
    disconnected; a server-side disconnect reaches the unit as EOF, and sending to an
    ended or unknown client raises."""

    async def scenario() -> None:
        server = TcpDataServer()
        await server.start()
        try:
            first = await Stream.connect(server.port)
            await first.say(server, REGISTRATION)
            old = server.client(IMEI)
            first.close()
            await until(lambda: not old.connected, "the first connection to end")
            with pytest.raises(LinkBrokenError, match="has ended"):
                server.send(IMEI, b"x")
            second = await Stream.connect(server.port)
            await second.say(server, REGISTRATION)
            new = server.client(IMEI)
            assert new is not old
            assert new.connected
            server.disconnect(IMEI)
            async with asyncio.timeout(5):
                assert await second.reader.read() == b""
            await until(lambda: not new.connected, "the server-side close")
            assert server.clients == {}
            with pytest.raises(ValueError, match="no client '999'; known: 867435053362828"):
                server.send("999", b"x")
            second.close()
        finally:
            await server.stop()

    asyncio.run(scenario())


@pytest.mark.realtime
def test_udp_server_keys_clients_by_address_and_answers_by_imei_and_echo() -> None:
    """Datagrams from one address are one client; it registers, heartbeats, gets data
    echoed, and is reached by IMEI; another address is another client."""

    async def scenario() -> None:
        server = UdpDataServer(ping_texts=[b"ping"], echo=True)
        await server.start()
        try:
            unit = await Datagrams.connect(server.port)
            other = await Datagrams.connect(server.port)
            unit.say(REGISTRATION)
            await until(lambda: len(server.clients) == 1, "the registration")
            unit.say(b"ping")
            unit.say(b"data")
            assert await unit.hear() == b"data"
            server.send(IMEI, b"down")
            assert await unit.hear() == b"down"
            other.say(b"hello")
            assert await other.hear() == b"hello"
            client = server.client(IMEI)
            assert client.peer == unit.address
            assert (client.heartbeats, client.messages) == (1, 3)
            assert server.client(other.address).payloads() == [b"hello"]
            assert server.describe() == {"kind": "udp", "host": "127.0.0.1", "port": server.port}
        finally:
            await server.stop()

    asyncio.run(scenario())


@pytest.mark.realtime
def test_http_server_echoes_by_default_and_plays_queued_answers_per_path() -> None:
    """Without a queued answer the body comes back with 200; queued answers for a path go
    out in order, one per request, then the default applies again; every exchange is kept."""

    async def scenario() -> tuple[list[tuple[int, bytes]], HttpDataServer]:
        server = HttpDataServer()
        await server.start()
        try:
            base = server.url
            server.enqueue("/cmd", 200, b'{"data": "switch on"}')
            server.enqueue("/cmd", 500, b"busy")
            answers = [
                await request("POST", f"{base}/up", b'{"data": "t=21"}'),
                await request("GET", f"{base}/cmd?since=1"),
                await request("PUT", f"{base}/cmd", b"x"),
                await request("DELETE", f"{base}/cmd", b"y"),
                await request("HEAD", f"{base}/cmd"),
            ]
            return answers, server
        finally:
            await server.stop()

    answers, server = asyncio.run(scenario())
    assert answers == [
        (200, b'{"data": "t=21"}'),
        (200, b'{"data": "switch on"}'),
        (500, b"busy"),
        (200, b"y"),
        (200, b""),
    ]
    recorded = [(e.method, e.path, e.query, e.body, e.status) for e in server.exchanges]
    assert recorded == [
        ("POST", "/up", "", b'{"data": "t=21"}', 200),
        ("GET", "/cmd", "since=1", b"", 200),
        ("PUT", "/cmd", "", b"x", 500),
        ("DELETE", "/cmd", "", b"y", 200),
        ("HEAD", "/cmd", "", b"", 200),
    ]


@pytest.mark.realtime
def test_http_server_with_a_fixed_body_and_its_description() -> None:
    """``body=`` replaces the echo; describe() names host, port and URL; PATCH is not served."""

    async def scenario() -> tuple[tuple[int, bytes], int, dict[str, object]]:
        server = HttpDataServer(body=b"OK")
        await server.start()
        try:
            fixed = await request("POST", f"{server.url}/any/path", b"ignored")
            patch, _body = await request("PATCH", f"{server.url}/any/path", b"x")
            return fixed, patch, server.describe()
        finally:
            await server.stop()

    fixed, patch, description = asyncio.run(scenario())
    assert fixed == (200, b"OK")
    assert patch == 405
    port = description["port"]
    assert description == {
        "kind": "http",
        "host": "127.0.0.1",
        "port": port,
        "url": f"http://127.0.0.1:{port}",
    }


def test_bad_server_arguments_are_refused_with_the_value_named() -> None:
    """history below 1, ping texts as str, a queued answer without a leading '/'."""
    with pytest.raises(ValueError, match="history must be a count >= 1, not 0"):
        TcpDataServer(history=0)
    with pytest.raises(TypeError, match="ping_texts must be bytes"):
        UdpDataServer(ping_texts=["ping"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="path must start with '/', not 'cmd'"):
        HttpDataServer().enqueue("cmd", 200)
    with pytest.raises(RuntimeError, match="not started"):
        _ = TcpDataServer().port


# --- issue 9: bounded memory whatever the clients send -------------------------------------


def test_an_oversized_payload_is_dropped_and_counted_not_recorded() -> None:
    """A payload over max_message is counted in oversized and neither kept nor echoed."""
    server = UdpDataServer(max_message=100, echo=True)
    endpoint = _UdpEndpoint(server)
    endpoint.datagram_received(b"x" * 101, ("10.0.0.1", 5000))
    endpoint.datagram_received(b"ok", ("10.0.0.1", 5000))
    client = server.client(("10.0.0.1", 5000))
    assert client.payloads() == [b"ok"]
    assert server.oversized == 1


def test_a_client_keeps_at_most_history_bytes_of_payloads() -> None:
    """However many payloads arrive, a client's record stays within history_bytes."""
    server = UdpDataServer(history_bytes=1000)
    endpoint = _UdpEndpoint(server)
    for n in range(100):
        endpoint.datagram_received(b"%03d" % n + b"y" * 97, ("10.0.0.1", 5000))
    client = server.client(("10.0.0.1", 5000))
    assert sum(len(item.data) for item in client.received) <= 1000
    assert client.payloads()[-1].startswith(b"099")
    assert client.messages == 100


def test_udp_sources_beyond_max_clients_are_dropped_and_counted() -> None:
    """A flood of source addresses cannot grow the client table past max_clients."""
    server = UdpDataServer(max_clients=10)
    endpoint = _UdpEndpoint(server)
    for port in range(50):
        endpoint.datagram_received(b"{'imei': '%d'}" % port, ("10.0.0.1", 6000 + port))
    assert len(server.clients) == 10
    assert server.refused_clients == 40
    assert server.client("9").peer == ("10.0.0.1", 6009)
