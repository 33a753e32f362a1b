"""The private mosquitto: start, restart on its port, pause and resume, and its failures.

Tests that run the real broker need the mosquitto binary (``require_tool``: skipped
locally without it, a failure in CI). The failure paths run fake binaries, so they
need nothing. MQTT behaviour shared with the embedded broker is in ``test_brokers.py``.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from tests.cloud.test_brokers import Peer, stays_false, until
from tests.conftest import require_tool
from vdtu.cloud import mosquitto as mosquitto_module
from vdtu.cloud.mosquitto import Mosquitto, hash_password
from vdtu.errors import ConfigError, LocalProtocolError, VdtuError

pytestmark = pytest.mark.realtime


@pytest.fixture
def installed() -> None:
    """Skip (or fail in CI) without the mosquitto binary."""
    require_tool("mosquitto")


def fake_binary(tmp_path: Path, script: str) -> str:
    """An executable shell script standing in for mosquitto."""
    path = tmp_path / "fake-mosquitto"
    path.write_text(f"#!/bin/sh\n{script}\n", encoding="utf-8")
    path.chmod(0o755)
    return str(path)


def test_serves_paho_clients_and_logs(installed: None) -> None:
    """A started broker passes messages between paho clients and logs to its file."""

    async def scenario() -> None:
        with Mosquitto() as broker:
            assert broker.running
            assert str(broker.url) == f"mqtt://127.0.0.1:{broker.port}"
            cloud = Peer(broker.url, "cloud")
            dtu = Peer(broker.url, "dtu-1")
            await cloud.subscribe("dtu/+/up")
            await dtu.publish("dtu/1/up", b"hello")
            assert await cloud.receive("dtu/1/up") == [b"hello"]
            await dtu.close()
            await cloud.close()
            assert "running" in broker.log_path.read_text(encoding="utf-8")
            directory = broker.log_path.parent
        assert not broker.running
        assert not directory.exists()

    asyncio.run(scenario())


def test_restart_uses_the_same_port(installed: None) -> None:
    """After stop() the port is closed; start() listens on the same port again."""

    async def scenario() -> None:
        broker = Mosquitto()
        broker.start()
        port = broker.port
        broker.stop()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        broker.start()
        try:
            assert broker.port == port
            peer = Peer(broker.url, "dtu-1")
            assert not (await peer.connected()).is_failure
            await peer.close()
        finally:
            broker.stop()

    asyncio.run(scenario())


def test_paused_broker_leaves_publish_unacknowledged_until_resumed(installed: None) -> None:
    """While paused a QoS 1 publish gets no PUBACK for 1 s; resumed, it is acked and delivered."""

    async def scenario() -> None:
        with Mosquitto() as broker:
            cloud = Peer(broker.url, "cloud")
            dtu = Peer(broker.url, "dtu-1")
            await cloud.subscribe("dtu/+/up")
            await dtu.connected()
            broker.pause()
            assert broker.paused
            sent = dtu.client.publish("dtu/1/up", b"while paused", qos=1)
            assert await stays_false(sent.is_published, window_s=1.0)
            assert cloud.payloads("dtu/1/up") == []
            broker.resume()
            await until(sent.is_published, "the PUBACK after resume")
            assert await cloud.receive("dtu/1/up") == [b"while paused"]
            await dtu.close()
            await cloud.close()

    asyncio.run(scenario())


def test_stop_ends_a_paused_broker(installed: None) -> None:
    """stop() on a paused broker still ends the process."""
    broker = Mosquitto()
    broker.start()
    broker.pause()
    broker.stop()
    assert not broker.running
    assert not broker.paused


def test_port_in_use_is_reported(installed: None) -> None:
    """A port held by another socket makes start() fail and leaves nothing running."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        broker = Mosquitto(port=port)
        with pytest.raises(VdtuError, match=f"127.0.0.1:{port}: in use"):
            broker.start()
        assert not broker.running


def test_missing_binary_is_a_config_error_saying_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With no mosquitto on PATH or in /usr/sbin, or a bad path, ConfigError says what to do."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(mosquitto_module, "DEBIAN_PATH", str(tmp_path / "none"))
    with pytest.raises(ConfigError, match="apt-get install mosquitto"):
        Mosquitto()
    with pytest.raises(ConfigError, match=r"'/nonexistent/mosquitto'.*apt-get install mosquitto"):
        Mosquitto(binary="/nonexistent/mosquitto")


def test_broker_that_exits_is_reported_with_its_log(tmp_path: Path) -> None:
    """A broker that exits before listening raises with its exit status and log tail."""
    broker = Mosquitto(binary=fake_binary(tmp_path, "echo 'Error: bad things'; exit 3"))
    with pytest.raises(VdtuError, match=r"(?s)status 3.*Error: bad things"):
        broker.start()
    assert not broker.running


def test_broker_that_never_listens_times_out(tmp_path: Path) -> None:
    """A broker that runs but never listens is stopped after the start timeout."""
    broker = Mosquitto(binary=fake_binary(tmp_path, "exec sleep 30"), start_timeout_s=0.3)
    with pytest.raises(VdtuError, match=r"did not listen .* within 0.3 s"):
        broker.start()
    assert not broker.running


def test_hash_password_matches_mosquitto_passwd() -> None:
    """The hash equals what mosquitto_passwd 2.0.11 wrote for the same password and salt."""
    salt = bytes.fromhex("469a18ef18d65851db3a383f")
    assert hash_password("secret", salt=salt) == (
        "$7$101$RpoY7xjWWFHbOjg/$TywseZr8E3BCH4fFL8NUXVrXf4uoD5e30JiPDDtTUTGjODL5w1xNr97PF"
        "f4Bh0So8dls1XWYJhWY/qGiEJfltQ=="
    )


def test_lifecycle_misuse_is_reported(tmp_path: Path) -> None:
    """url before a port is chosen, and pause() when not running, raise LocalProtocolError."""
    broker = Mosquitto(binary=fake_binary(tmp_path, "exit 0"))
    with pytest.raises(LocalProtocolError, match="start"):
        _ = broker.url
    with pytest.raises(LocalProtocolError, match="not running"):
        broker.pause()
    assert broker.log_tail() == ""
    broker.stop()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"host": "localhost"}, "IP address.*'localhost'"),
        ({"port": 70000}, "0..65535.*70000"),
        ({"max_queued_messages": -1}, "max_queued_messages.*-1"),
        ({"users": {"a:b": "pw"}}, "'a:b'"),
        ({"users": {"dtu": "pw\nuser x"}}, "line break"),
        ({"start_timeout_s": 0}, "start_timeout_s.*0"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], match: str, tmp_path: Path) -> None:
    """Each bad constructor argument raises ConfigError with its value."""
    with pytest.raises(ConfigError, match=match):
        Mosquitto(binary=fake_binary(tmp_path, "exit 0"), **kwargs)  # type: ignore[arg-type]


def test_picked_port_taken_in_the_meantime_is_replaced(
    installed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the free port it picked is taken before mosquitto binds it, start() picks another."""
    real_free_port = mosquitto_module._free_port
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        picks = iter([taken])
        monkeypatch.setattr(
            mosquitto_module, "_free_port", lambda host: next(picks, None) or real_free_port(host)
        )
        with Mosquitto() as broker:
            assert broker.port not in (0, taken)
            assert broker.running
