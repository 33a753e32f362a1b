"""End to end with the cloud: a unit from ``vdtu up`` on its broker, a host on its PTY, and the
cloud console, on the embedded broker and on a private mosquitto."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.e2e.cloud_tools import Watcher, cloud
from tests.e2e.running import Host, link, vdtu_up, wait_for_state, wait_until_listening
from vdtu.cloud.mosquitto import Mosquitto
from vdtu.firmware.xgc.codec import FrameKind

pytestmark = pytest.mark.pty


@pytest.fixture
def mosquitto() -> Iterator[Mosquitto]:
    require_tool("mosquitto")
    with Mosquitto() as broker:
        yield broker


def data_flows_both_ways(host: Host, imei: str, console: tuple[str, ...]) -> None:
    """DATA_PACK from the host reaches the console; cloud sends reach the host (xgc.md#6.1)."""
    watcher = Watcher(*console)
    try:
        watcher.wait_for("state")  # the retained online state: the watcher is subscribed
        assert host.ask("DATA_PACK", "a:1;b:true;c:hi").frame.content == "ok"
        (up,) = watcher.wait_for("up")
        assert (up["imei"], up["payload"]) == (imei, {"a": 1, "b": True, "c": "hi"})
    finally:
        watcher.stop()
    for payload, content in (
        ('{"up": true, "temperature": 32}', "up:true;temperature:32"),
        ('"abcdefg"', "abcdefg"),
        ('{"switch1": true}', "switch1:true"),
    ):
        result = cloud(*console, "send", imei, payload)
        assert result.returncode == 0, result.stderr
        frame = host.wait_for("DATA_PACK", timeout_s=10)
        assert frame.code_ok
        assert (frame.frame.kind, frame.frame.sn, frame.frame.content) == (
            FrameKind.COMMAND,
            imei,
            content,
        )


def test_unit_on_the_embedded_broker(tmp_path: Path) -> None:
    """vdtu up reaches mqtt-connected on its own broker; data goes both ways, byte-faithful."""
    with vdtu_up("--pty-dir", str(tmp_path), "--no-state") as running:
        unit = running.units[0]
        assert unit["broker"].startswith("mqtt://127.0.0.1:")
        host = Host(str(link(running, "uart")))
        try:
            wait_until_listening(host)
            wait_for_state(host, "mqtt-connected")
            data_flows_both_ways(host, unit["imei"], ("--pty-dir", str(tmp_path)))
            config = cloud(
                "--pty-dir",
                str(tmp_path),
                "config",
                unit["imei"],
                "k1=v1",
                "n=3",
                "--config-version",
                "1693894843740",
            )
            assert config.returncode == 0, config.stderr
            pushed = host.wait_for("NOTIFY_CONFIG")
            assert pushed.frame.content == "configVersion:1693894843740;k1:v1;n:3"
        finally:
            host.close()
        code, err = running.stop()
    assert code == 0, err
    assert not (tmp_path / "up.json").exists()


def test_unit_on_mosquitto(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """The same against a private mosquitto named with --broker; the console uses --broker too."""
    url = f"mqtt://127.0.0.1:{mosquitto.port}"
    with vdtu_up("--pty-dir", str(tmp_path), "--no-state", "--broker", url) as running:
        unit = running.units[0]
        assert unit["broker"] == url
        host = Host(str(link(running, "uart")))
        try:
            wait_until_listening(host)
            wait_for_state(host, "mqtt-connected")
            data_flows_both_ways(
                host, unit["imei"], ("--broker", url, "--project", unit["project"])
            )
        finally:
            host.close()
        code, err = running.stop()
    assert code == 0, err


def test_broker_outage_delivers_queued_data_in_order(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """mosquitto stopped for 30 s: the host sees mqtt-disconnected then mqtt-connected, and every
    DATA_PACK written meanwhile arrives, in order, after the reconnect."""
    url = f"mqtt://127.0.0.1:{mosquitto.port}"
    console = ("--broker", url)
    with vdtu_up("--pty-dir", str(tmp_path), "--no-state", "--broker", url) as running:
        unit = running.units[0]
        host = Host(str(link(running, "uart")))
        try:
            wait_until_listening(host)
            wait_for_state(host, "mqtt-connected")
            host.events.clear()
            mosquitto.stop()
            stopped_at = time.monotonic()
            assert host.wait_for("GET_DTU_STATE", timeout_s=5).frame.content == "mqtt-disconnected"
            for n in range(10):
                assert host.ask("DATA_PACK", f"n:{n}").frame.content == "ok"
                time.sleep(1)
            time.sleep(max(0.0, 30 - (time.monotonic() - stopped_at)))
            mosquitto.start()
            watcher = Watcher(*console, "--project", unit["project"])
            try:
                assert (
                    host.wait_for("GET_DTU_STATE", timeout_s=45).frame.content == "mqtt-connected"
                )
                ups = watcher.wait_for("up", count=10, timeout_s=20)
            finally:
                watcher.stop()
            assert [r["payload"]["n"] for r in ups] == list(range(10))
        finally:
            host.close()
        code, err = running.stop()
    assert code == 0, err


def test_wrong_then_right_project_info(tmp_path: Path) -> None:
    """--unprovisioned: no-project-info; a wrong secret gets get-mqtt-info-fail; the fleet's
    own project connects."""
    with vdtu_up("--pty-dir", str(tmp_path), "--no-state", "--unprovisioned") as running:
        unit = running.units[0]
        host = Host(str(link(running, "uart")))
        try:
            wait_until_listening(host)
            wait_for_state(host, "no-project-info")
            host.events.clear()
            host.send("SET_PRJINFO", f"PID:{unit['project']};PSECRET:WRONG")
            assert host.wait_for("SET_PRJINFO").frame.content == "ok"
            assert host.wait_for("GET_DTU_STATE").frame.content == "get-mqtt-info-fail"
            host.send("SET_PRJINFO", f"PID:{unit['project']};PSECRET:{unit['project_secret']}")
            assert host.wait_for("GET_DTU_STATE").frame.content == "get-mqtt-info-ok"
            assert host.wait_for("GET_DTU_STATE").frame.content == "mqtt-connected"
        finally:
            host.close()
        running.stop()


@pytest.mark.slow
def test_reconnect_storm(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """100 units lose mosquitto for 6 s; all come back, their reconnects spread by jitter."""
    url = f"mqtt://127.0.0.1:{mosquitto.port}"
    with vdtu_up(
        "--pty-dir", str(tmp_path), "--no-state", "--ports", "uart", "--broker", url, units=100
    ) as running:
        project = running.units[0]["project"]
        watcher = Watcher("--broker", url, "--project", project, timeout_s=120)
        try:
            watcher.wait_for("state", count=100, timeout_s=40)
            mosquitto.stop()
            time.sleep(6)
            mosquitto.start()
            restarted = Watcher("--broker", url, "--project", project, timeout_s=120)
            try:
                started = time.monotonic()
                online = restarted.wait_for("state", count=100, timeout_s=90)
                spread = time.monotonic() - started
            finally:
                restarted.stop()
        finally:
            watcher.stop()
        assert {r["imei"] for r in online} == {u["imei"] for u in running.units}
        assert all(r["payload"] == {"state": "online"} for r in online)
        assert spread > 1.0  # jittered backoff: not all in the same instant
        code, err = running.stop()
    assert code == 0, err
