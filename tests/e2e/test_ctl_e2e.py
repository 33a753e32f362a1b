"""End to end: ``vdtu ctl`` in another process steers a running ``vdtu up`` through its control
API, and the host on the unit's PTY sees what the real device would print."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cloud_tools import Watcher
from tests.e2e.running import (
    Host,
    RunningFleet,
    link,
    vdtu_up,
    wait_for_state,
    wait_until_listening,
)

pytestmark = pytest.mark.pty


def ctl(pty_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``vdtu ctl ARGS --pty-dir DIR`` to completion (options after the subcommand)."""
    return subprocess.run(
        [sys.executable, "-m", "vdtu.cli", "ctl", *args, "--pty-dir", str(pty_dir)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def net_info(host: Host) -> dict[str, str]:
    content = host.ask("GET_NET_INFO").frame.content or ""
    return dict(part.split(":", 1) for part in content.split(";"))


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningFleet, Host, Path]]:
    pty_dir = tmp_path_factory.mktemp("ctl") / "pty"
    with vdtu_up("--pty-dir", str(pty_dir), "--no-state", units=2) as fleet:
        host = Host(str(link(fleet, "uart")))
        try:
            wait_until_listening(host)
            yield fleet, host, pty_dir
        finally:
            host.close()


@pytest.fixture
def running(
    started: tuple[RunningFleet, Host, Path],
) -> Iterator[tuple[RunningFleet, Host, Path]]:
    """The module's fleet, unit 0 connected, and every fault cleared after the test."""
    _fleet, host, pty_dir = started
    wait_for_state(host, "mqtt-connected", timeout_s=60)
    host.events.clear()
    yield started
    assert ctl(pty_dir, "clear", "all").returncode == 0


def test_units_are_listed_from_another_process(running: tuple[RunningFleet, Host, Path]) -> None:
    fleet, _host, pty_dir = running
    listed = ctl(pty_dir, "units", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [row["imei"] for row in rows] == [unit["imei"] for unit in fleet.units]
    shown = ctl(pty_dir, "show", fleet.units[1]["imei"])
    assert json.loads(shown.stdout)["unit"] == 1


def test_a_faded_signal_shows_in_get_net_info_and_comes_back(
    running: tuple[RunningFleet, Host, Path],
) -> None:
    _fleet, host, pty_dir = running
    applied = ctl(pty_dir, "fault", "0", "signal", "csq=3", "over=2", "--for", "6")
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.strip() == "signal for 6 s applied to 1 (0)"
    time.sleep(2.5)
    assert abs(int(net_info(host)["rssi"]) - 3) <= 4
    time.sleep(4.5)
    assert int(net_info(host)["rssi"]) >= 26 - 4
    assert "faults=-" in ctl(pty_dir, "units", "0").stdout


def test_a_pulled_sim_disconnects_and_nothing_the_host_handed_over_is_lost(
    running: tuple[RunningFleet, Host, Path],
) -> None:
    fleet, host, pty_dir = running
    unit = fleet.units[0]
    host.events.clear()
    assert ctl(pty_dir, "fault", "0", "sim-pull").returncode == 0
    assert host.wait_for("GET_DTU_STATE", timeout_s=5).frame.content == "mqtt-disconnected"
    assert net_info(host)["simStatus"] == "false"
    for n in range(3):
        assert host.ask("DATA_PACK", f"n:{n}").frame.content == "ok"
    watcher = Watcher("--pty-dir", str(pty_dir), timeout_s=60)
    try:
        watcher.wait_for("state")
        cleared = ctl(pty_dir, "clear", "0", "sim-pull")
        assert cleared.stdout.strip() == "0: cleared sim-pull"
        assert host.wait_for("GET_DTU_STATE", timeout_s=45).frame.content == "mqtt-connected"
        ups = [
            r for r in watcher.wait_for("up", count=3, timeout_s=20) if r["imei"] == unit["imei"]
        ]
    finally:
        watcher.stop()
    assert [r["payload"]["n"] for r in ups] == [0, 1, 2]


def test_host_write_and_events_from_another_process(
    running: tuple[RunningFleet, Host, Path],
) -> None:
    _fleet, host, pty_dir = running
    poked = ctl(pty_dir, "poke", "0", "host-write", "text=hello\\r\\n")
    assert poked.returncode == 0, poked.stderr
    deadline = time.monotonic() + 5
    seen = b""
    while b"hello\r\n" not in seen and time.monotonic() < deadline:
        seen += host.port.read(4096)
    assert b"hello\r\n" in seen
    ctl(pty_dir, "fault", "1", "roaming")
    events = ctl(pty_dir, "events", "1", "--json")
    kinds = [json.loads(line)["kind"] for line in events.stdout.splitlines()]
    assert "fault" in kinds


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("fault", "0", "bogus"), "vdtu: unknown fault kind 'bogus'"),
        (("fault", "0", "signal", "csq=99"), "vdtu: signal: csq must be an integer in 0..31"),
        (("fault", "5", "roaming"), "vdtu: selector '5' matches no unit (the units: 0-1)"),
        (("units", "--url", "http://127.0.0.1:9", "--token", "x"), "vdtu: cannot reach"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    running: tuple[RunningFleet, Host, Path], args: tuple[str, ...], message: str
) -> None:
    _fleet, _host, pty_dir = running
    result = ctl(pty_dir, *args)
    assert result.returncode == 2
    assert result.stderr.startswith(message), result.stderr
    assert result.stderr.count("\n") == 1


def test_a_wrong_token_is_refused(running: tuple[RunningFleet, Host, Path]) -> None:
    _fleet, _host, pty_dir = running
    url = json.loads((pty_dir / "up.json").read_text())["control"]["url"]
    result = ctl(pty_dir, "units", "--url", url, "--token", "not-it")
    assert result.returncode == 2
    assert "wrong token" in result.stderr


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_blackholed_link_and_a_stopped_broker_as_the_real_device_shows_them(
    tmp_path: Path,
) -> None:
    """With a 10 s keep-alive: the blackhole is silent until keep-alive gives up, then the host
    sees mqtt-disconnected; after the clear mqtt-connected, and every DATA_PACK the host
    handed over meanwhile reaches the broker, in order. A stopped broker drops the unit at
    once; it comes back when the broker restarts."""
    pty_dir = tmp_path / "pty"
    with vdtu_up("--pty-dir", str(pty_dir), "--no-state", "--keepalive", "10") as fleet:
        unit = fleet.units[0]
        host = Host(str(link(fleet, "uart")))
        try:
            wait_until_listening(host)
            wait_for_state(host, "mqtt-connected")
            host.events.clear()
            assert ctl(pty_dir, "fault", "0", "link-blackhole").returncode == 0
            started = time.monotonic()
            for n in range(3):
                assert host.ask("DATA_PACK", f"n:{n}").frame.content == "ok"
            frame = host.wait_for("GET_DTU_STATE", timeout_s=40)
            assert frame.frame.content == "mqtt-disconnected"
            assert 10 <= time.monotonic() - started <= 25  # found by keep-alive, not at once
            watcher = Watcher("--pty-dir", str(pty_dir), timeout_s=90)
            try:
                watcher.wait_for("state")
                assert ctl(pty_dir, "clear", "0", "link-blackhole").returncode == 0
                frame = host.wait_for("GET_DTU_STATE", timeout_s=60)
                assert frame.frame.content == "mqtt-connected"
                ups = watcher.wait_for("up", count=3, timeout_s=20)
                assert [r["payload"]["n"] for r in ups if r["imei"] == unit["imei"]] == [0, 1, 2]
            finally:
                watcher.stop()
            stopped = ctl(pty_dir, "fault", "all", "broker-stop", "--for", "3")
            assert stopped.stdout.strip() == "broker-stop for 3 s applied to 1 (fleet)"
            assert host.wait_for("GET_DTU_STATE", timeout_s=5).frame.content == "mqtt-disconnected"
            assert host.ask("DATA_PACK", "n:3").frame.content == "ok"
            frame = host.wait_for("GET_DTU_STATE", timeout_s=30)
            assert frame.frame.content == "mqtt-connected"
            summary = ctl(pty_dir, "units", "0", "--json")
            assert json.loads(summary.stdout)["faults"] == []
        finally:
            host.close()
