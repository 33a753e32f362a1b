"""The embedded broker's own behaviour: ports, logins, its client count, its lifecycle, its logs.

What any MQTT broker must do is checked against both brokers in ``test_brokers.py``;
the paho helpers come from there. Each test runs its scenario with ``asyncio.run``,
the broker on that loop and the paho clients on their own threads.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator

import pytest

from tests.cloud.test_brokers import Peer, until
from vdtu.cloud.broker import EmbeddedBroker
from vdtu.cloud.broker_auth import credentials_authenticator
from vdtu.cloud.broker_url import Scheme
from vdtu.errors import ConfigError, LocalProtocolError

pytestmark = pytest.mark.realtime


def connection_refused(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


@pytest.fixture
def amqtt_log_levels() -> Iterator[None]:
    """Give back the amqtt and transitions loggers' levels after the test."""
    loggers = [logging.getLogger(name) for name in ("amqtt", "transitions")]
    levels = [logger.level for logger in loggers]
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


def test_port_zero_listens_on_a_real_port() -> None:
    """With port 0 the broker gets a free port, reports it in ``port`` and ``url``, and serves."""

    async def scenario() -> None:
        async with EmbeddedBroker() as broker:
            assert 0 < broker.port < 65536
            assert broker.url.scheme is Scheme.MQTT
            assert (broker.url.host, broker.url.port) == ("127.0.0.1", broker.port)
            assert str(broker.url) == f"mqtt://127.0.0.1:{broker.port}"
            peer = Peer(broker.url, "dtu-1")
            assert not (await peer.connected()).is_failure
            await peer.close()

    asyncio.run(scenario())


def test_wildcard_address_is_reached_through_loopback() -> None:
    """A broker on 0.0.0.0 gives clients a 127.0.0.1 URL."""

    async def scenario() -> None:
        async with EmbeddedBroker(host="0.0.0.0") as broker:
            assert broker.host == "0.0.0.0"
            assert broker.url.host == "127.0.0.1"

    asyncio.run(scenario())


def test_stop_frees_the_port() -> None:
    """After stop() the port refuses connections and a new broker can listen on it."""

    async def scenario() -> None:
        first = EmbeddedBroker()
        await first.start()
        port = first.port
        peer = Peer(first.url, "dtu-1")
        await peer.connected()
        await first.stop()
        assert not first.running
        assert connection_refused(port)
        await peer.close()
        async with EmbeddedBroker(port=port) as second:
            assert second.port == port
            again = Peer(second.url, "dtu-1")
            assert not (await again.connected()).is_failure
            await again.close()

    asyncio.run(scenario())


def test_busy_port_is_a_config_error_without_amqtt_traceback(
    capsys: pytest.CaptureFixture[str], amqtt_log_levels: None
) -> None:
    """Starting on a port in use raises ConfigError naming it; amqtt prints nothing."""
    logging.getLogger("amqtt").setLevel(logging.NOTSET)

    async def scenario() -> None:
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            port = holder.getsockname()[1]
            broker = EmbeddedBroker(port=port)
            with pytest.raises(ConfigError, match=f"127.0.0.1:{port}.*in use"):
                await broker.start()
            assert not broker.running

    asyncio.run(scenario())
    assert capsys.readouterr().err == ""


def test_authenticator_gets_username_password_and_client_id() -> None:
    """The authenticator sees each CONNECT's user name, password and client id, once."""
    calls: list[tuple[str | None, str | None, str]] = []

    def authenticator(username: str | None, password: str | None, client_id: str) -> bool:
        calls.append((username, password, client_id))
        return password == "token-1"

    async def scenario() -> None:
        async with EmbeddedBroker(authenticator=authenticator) as broker:
            good = Peer(broker.url, "dtu-1", login=("861234567890123", "token-1"))
            assert not (await good.connected()).is_failure
            anonymous = Peer(broker.url, "anon")
            assert (await anonymous.connected()).is_failure
            await good.close()
            await anonymous.close()
        assert calls[:2] == [("861234567890123", "token-1", "dtu-1"), (None, None, "anon")]

    asyncio.run(scenario())


def test_clients_counts_logged_in_connections_and_drops_refused_sessions() -> None:
    """``clients`` counts only accepted, connected clients; refused sessions leave amqtt's table."""

    async def scenario() -> None:
        check = credentials_authenticator("dtu", "s3cret")
        async with EmbeddedBroker(authenticator=check) as broker:
            assert broker.clients == 0
            first = Peer(broker.url, "dtu-1", login=("dtu", "s3cret"))
            second = Peer(broker.url, "dtu-2", login=("dtu", "s3cret"))
            intruder = Peer(broker.url, "intruder", login=("dtu", "guess"))
            await first.connected()
            await second.connected()
            assert (await intruder.connected()).is_failure
            assert broker.clients == 2
            await intruder.close()
            # amqtt itself would keep the refused session forever (read through the
            # wrapper's private handle: amqtt's session table has no other door).
            await until(
                lambda: "intruder" not in broker._broker.sessions, "the refused session to go"
            )
            await first.close()
            await until(lambda: broker.clients == 1, "the count to drop after a DISCONNECT")
            await second.close()

    asyncio.run(scenario())


def test_credentials_authenticator_accepts_only_its_pair() -> None:
    """The ready-made authenticator accepts exactly its user name and password."""
    check = credentials_authenticator("dtu", "s3cret")
    assert check("dtu", "s3cret", "any-client")
    assert not check("dtu", "s3cre", "any-client")
    assert not check("dtx", "s3cret", "any-client")
    assert not check(None, None, "any-client")
    assert not check("dtu", None, "any-client")


def test_misuse_of_the_lifecycle_is_reported() -> None:
    """``port`` before start() or a second start() raises LocalProtocolError; stop() may repeat."""

    async def scenario() -> None:
        broker = EmbeddedBroker()
        with pytest.raises(LocalProtocolError, match="not running"):
            _ = broker.port
        assert broker.clients == 0
        await broker.start()
        with pytest.raises(LocalProtocolError, match="already running"):
            await broker.start()
        await broker.stop()
        await broker.stop()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"host": "localhost"}, ConfigError, "IP address.*'localhost'"),
        ({"port": 65536}, ConfigError, "0..65535.*65536"),
        ({"port": -1}, ConfigError, "0..65535.*-1"),
        ({"keepalive_grace": 0.5}, ValueError, "at least 1.0.*0.5"),
    ],
)
def test_bad_arguments_are_refused(
    kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    """Each bad constructor argument raises with its value and the allowed range."""
    with pytest.raises(error, match=match):
        EmbeddedBroker(**kwargs)  # type: ignore[arg-type]


def test_amqtt_logs_are_silenced_unless_configured(amqtt_log_levels: None) -> None:
    """start() silences amqtt's loggers, but keeps a level the application set."""
    amqtt_logger = logging.getLogger("amqtt")
    transitions_logger = logging.getLogger("transitions")
    amqtt_logger.setLevel(logging.NOTSET)
    transitions_logger.setLevel(logging.INFO)

    async def scenario() -> None:
        async with EmbeddedBroker():
            pass

    asyncio.run(scenario())
    assert amqtt_logger.level == logging.CRITICAL
    assert transitions_logger.level == logging.INFO


def test_a_connecting_client_gets_only_its_own_retained_messages() -> None:
    """With a watcher subscribed to every unit's state, a unit that connects (clean session, no
    subscription yet) is not sent the other units' retained states (amqtt 0.12.1 would)."""

    async def scenario() -> tuple[list[str], list[bytes]]:
        async with EmbeddedBroker() as broker:
            watcher = Peer(broker.url, "watcher")
            await watcher.connected()
            await watcher.subscribe("xgc/p/+/state")
            for unit in range(5):
                peer = Peer(broker.url, f"unit-{unit}")
                await peer.connected()
                await peer.publish(f"xgc/p/{unit}/state", b"online", qos=1, retain=True)
                await peer.close()
            await watcher.receive("xgc/p/4/state")
            newcomer = Peer(broker.url, "unit-new")
            await newcomer.connected()
            await newcomer.subscribe("xgc/p/new/down")
            await asyncio.sleep(0.3)
            late = Peer(broker.url, "late-watcher")
            await late.connected()
            await late.subscribe("xgc/p/+/state")
            retained = await late.receive("xgc/p/3/state")
            stray = [m.topic for m in newcomer.messages]
            for peer in (watcher, newcomer, late):
                await peer.close()
            return stray, retained

    stray, retained = asyncio.run(scenario())
    assert stray == []
    assert retained == [b"online"]  # a subscriber to the filter still gets the retained state


def test_a_client_that_never_sends_its_connect_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    """A TCP connection that stays silent is closed after the CONNECT timeout, so silent
    sockets cannot pile up; a real client still connects afterwards."""
    monkeypatch.setattr("vdtu.cloud.broker.CONNECT_TIMEOUT_S", 0.3)

    async def scenario() -> None:
        async with EmbeddedBroker() as broker:
            reader, writer = await asyncio.open_connection("127.0.0.1", broker.port)
            closed = await asyncio.wait_for(reader.read(), timeout=3)
            assert closed == b""  # the broker hung up without an answer
            writer.close()
            peer = Peer(broker.url, "dtu-after")
            assert not (await peer.connected()).is_failure
            await peer.close()

    asyncio.run(scenario())
