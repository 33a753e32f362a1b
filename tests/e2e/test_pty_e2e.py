"""End to end: ``vdtu up`` in a subprocess, a host on its PTYs with pyserial, as a user would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from tests.conftest import require_tool
from tests.e2e.running import (
    Host,
    RunningFleet,
    link,
    vdtu_up,
    wait_for_state,
    wait_until_listening,
)
from vdtu.identity import luhn_valid

pytestmark = pytest.mark.pty

URL = "http%3A%2F%2Ffiles.example.com%2Fdtu.bin"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningFleet]:
    base = tmp_path_factory.mktemp("up")
    args = ("--pty-dir", str(base / "pty"), "--state-dir", str(base / "state"), "--seed", "7")
    with vdtu_up(*args, "--unprovisioned") as running:
        yield running


@pytest.fixture
def host(fleet: RunningFleet) -> Iterator[Host]:
    h = Host(str(link(fleet, "uart")))
    wait_until_listening(h)
    yield h
    h.close()


def test_json_line_describes_the_unit(fleet: RunningFleet) -> None:
    """--json prints unit, a Luhn-valid IMEI, the ICCID and a PTY link per port."""
    (unit,) = fleet.units
    assert unit["unit"] == 0
    assert luhn_valid(unit["imei"])
    assert luhn_valid(unit["iccid"])
    for port in ("uart", "rs232", "rs485"):
        path = Path(unit["ports"][port])
        assert path.is_symlink()
        assert os.readlink(path).startswith("/dev/pts/")


# action, content, expected reply content (None: only checked to be a valid reply)
EXCHANGES: list[tuple[str, str | None, str | None]] = [
    ("GET_BASE_INFO", None, None),
    ("GET_ICCID", None, None),
    ("GET_NET_INFO", None, None),
    ("GET_NOW", "timestamp", None),
    ("GET_NOW", "date", None),
    ("SET_GPIO", "out1:1;out2:0", "out1:1;out2:0"),
    ("GET_GPIO_ALL", None, None),
    ("GET_LBS", None, None),
    ("SAVE_KEYS", "a:123;b:abc", "ok"),
    ("GET_KEYS", "a,b,missing", "a:123;b:abc"),
    ("SET_UPDATE_PROPS", "interval:30000;updateLoc:false", "ok"),
    ("SET_LOG_LEVEL", "INFO", "ok"),
    ("GET_DTU_PIPE", None, "uart"),
    ("SEND_RAW_485", "010300000001", "ok"),
    ("SEND_SMS", "PHONE:13800138000;CONTENT:hello", "ok"),
    ("AT", "AT+CGSN", None),
    (
        "DTU_OTA",
        f"filename:XGC-RG88C_V1.1.bin;fwVersion:1.1.0;url:{URL}",
        "stage:finish;fwVersion:1.1.0",
    ),
    ("DTU_OTA", f"filename:OTHER.bin;fwVersion:1.1.0;url:{URL}", "stage:failed"),
]


def test_every_action_answers_with_a_valid_check_code(fleet: RunningFleet, host: Host) -> None:
    """Every host command is answered through the PTY, with the IMEI as SN and a valid code."""
    imei = fleet.units[0]["imei"]
    wait_for_state(host, "no-project-info")
    for action, content, expected in EXCHANGES:
        reply = host.ask(action, content, timeout_s=20)
        assert reply.code_ok, reply
        assert reply.frame.sn == imei
        assert not (reply.frame.content or "").startswith("error:"), reply
        if expected is not None:
            assert reply.frame.content == expected, (action, reply)
    assert host.ask("GET_IMEI").frame.content == imei
    assert host.ask("AT", "AT+CGSN").frame.content == imei


def test_pipe_switch_and_project_info_through_the_ptys(fleet: RunningFleet, host: Host) -> None:
    """SET_DTU_PIPE moves the protocol to the rs232 PTY and the shortcut brings it back;
    SET_PRJINFO answers ok and the state moves on from no-project-info."""
    assert host.ask("SET_DTU_PIPE", "232").frame.content == "232-ok"
    rs232 = Host(str(link(fleet, "rs232")))
    try:
        assert rs232.ask("GET_DTU_PIPE").frame.content == "232"
        rs232.write(b"SET_DTU_PIPE#UART\r\n")
        rs232.wait_for_shortcut("uart-ok")
    finally:
        rs232.close()
    assert host.ask("GET_DTU_PIPE").frame.content == "uart"
    wait_for_state(host, "no-project-info")
    host.events.clear()
    host.send("SET_PRJINFO", "PID:1000904556b23945fe90;PSECRET:76EDCE04DE96555E16CB34175F2B1565")
    assert host.wait_for("SET_PRJINFO").frame.content == "ok"
    assert host.wait_for("GET_DTU_STATE").frame.content == "get-mqtt-info-fail"


def test_modbus_request_through_the_pty(host: Host) -> None:
    """SEND_MBR_485 reaches the demo slave and its answer comes back as 485_RECEIVE."""
    host.events.clear()
    host.send("SEND_MBR_485", "addr:01;instructions:03;reg:0000;value:0001")
    reply = host.wait_for("485_RECEIVE")
    assert reply.frame.content == "0103020115781B"


def test_garbage_bad_codes_and_a_100kb_line_leave_the_unit_answering(host: Host) -> None:
    """Noise, a wrong check code and 100 KB without a newline: the next command is answered.

    Within 5 s, a bound for a unit that hangs or stops reading: how fast floods are taken
    is measured by ``bench/flood.py``, not here (a bound of 1 s failed twice while the
    suite's two workers loaded the machine)."""
    host.write(b"\x00\xff garbage \r\n$XGC#GET_IMEI#0#0&#00#\r\n")
    assert host.wait_for("GET_IMEI").frame.content.startswith("error:bad-check-code")  # type: ignore[union-attr]
    host.write(b"Z" * 100_000)
    host.events.clear()
    host.send("GET_IMEI")
    reply = host.wait_for("GET_IMEI", timeout_s=5.0)
    assert reply.code_ok


def test_reboot_keeps_the_pty_path_and_the_saved_keys(fleet: RunningFleet, host: Host) -> None:
    """DTU_REBOOT replies, the boot notifications come again on the same PTY path, and the keys
    saved before are still there."""
    host.events.clear()
    host.send("DTU_REBOOT")
    host.wait_for("DTU_REBOOT")
    gpio = host.wait_for("GET_GPIO_ALL", timeout_s=5)
    assert gpio.frame.content is not None
    assert gpio.frame.content.startswith("out1:0;")
    host.wait_for("GET_DTU_STATE", timeout_s=20)
    assert host.ask("GET_KEYS", "a").frame.content == "a:123"


def test_baud_mismatch_is_logged(fleet: RunningFleet) -> None:
    """A host that opens the uart at 9600 baud (the port runs at 115200) still works here,
    and vdtu reports the mismatch (checked in the shutdown test's stderr)."""
    slow = Host(str(link(fleet, "uart")), baud=9600)
    try:
        time.sleep(1.2)  # the host settings are polled once a second
        assert slow.ask("GET_IMEI").code_ok
    finally:
        slow.close()


def test_pymodbus_master_reads_the_demo_slave_on_the_rs485_pty(fleet: RunningFleet) -> None:
    """An independent Modbus master (pymodbus) on the rs485 PTY reads holding register 0 = 0x0115
    and writes then reads back register 5."""
    from pymodbus.client import ModbusSerialClient  # noqa: PLC0415 (test-only dependency)
    from pymodbus.exceptions import ModbusIOException  # noqa: PLC0415

    client = ModbusSerialClient(port=str(link(fleet, "rs485")), baudrate=9600, timeout=1, retries=1)
    assert client.connect()
    try:
        result = client.read_holding_registers(0, count=1, device_id=1)
        assert not result.isError(), result
        assert result.registers == [0x0115]
        assert not client.write_register(5, 4242, device_id=1).isError()
        assert client.read_holding_registers(5, count=1, device_id=1).registers == [4242]
        with pytest.raises(ModbusIOException):  # no slave 9: silence, the client times out
            client.read_holding_registers(0, count=1, device_id=9)
    finally:
        client.close()  # type: ignore[no-untyped-call]


def test_shutdown_removes_links_and_reports_the_baud_mismatch(fleet: RunningFleet) -> None:
    """SIGINT stops vdtu up with exit 0 and removes its PTY links (runs last in this module)."""
    paths = [link(fleet, port) for port in ("uart", "rs232", "rs485")]
    code, err = fleet.stop(signal.SIGINT)
    assert code == 0, err
    assert not any(path.exists() or path.is_symlink() for path in paths)
    assert "host set 9600 baud" in err


def test_sigterm_stops_cleanly(tmp_path: Path) -> None:
    """SIGTERM is a clean shutdown too."""
    with vdtu_up("--pty-dir", str(tmp_path), "--no-state") as running:
        path = link(running, "uart")
        assert path.is_symlink()
        code, err = running.stop(signal.SIGTERM)
    assert code == 0, err
    assert not path.is_symlink()


def test_saved_keys_survive_a_restart_of_vdtu(tmp_path: Path) -> None:
    """Keys saved through the PTY are there after vdtu up is stopped and started again."""
    args = ("--pty-dir", str(tmp_path / "pty"), "--state-dir", str(tmp_path / "state"))
    with vdtu_up(*args) as running:
        host = Host(str(link(running, "uart")))
        wait_until_listening(host)
        assert host.ask("SAVE_KEYS", "boot:1").frame.content == "ok"
        host.close()
        running.stop()
    with vdtu_up(*args) as running:
        host = Host(str(link(running, "uart")))
        wait_until_listening(host)
        assert host.ask("GET_KEYS", "boot").frame.content == "boot:1"
        host.close()
        running.stop()


def test_port_offered_on_tcp_through_socat(tmp_path: Path) -> None:
    """--serial-tcp uart=PORT: pyserial's socket:// URL reaches the unit."""
    require_tool("socat")
    import socket  # noqa: PLC0415

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        tcp_port = probe.getsockname()[1]
    with vdtu_up(
        "--pty-dir", str(tmp_path), "--no-state", "--serial-tcp", f"uart={tcp_port}"
    ) as running:
        assert running.units[0]["tcp"]["uart"] == f"tcp://127.0.0.1:{tcp_port}"
        host = Host(f"socket://127.0.0.1:{tcp_port}")
        try:
            wait_until_listening(host)
            assert host.ask("GET_IMEI").frame.content == running.units[0]["imei"]
        finally:
            host.close()
        code, err = running.stop()
    assert code == 0, err


def test_missing_socat_is_explained(tmp_path: Path) -> None:
    """Without socat on PATH, --serial-tcp fails with a message saying how to install it."""
    env = {**os.environ, "PATH": str(tmp_path)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "vdtu.cli",
            "up",
            "--no-state",
            "--pty-dir",
            str(tmp_path),
            "--serial-tcp",
            "uart=7000",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=20,
        check=False,
    )
    assert result.returncode == 2
    assert "apt-get install socat" in result.stderr
    assert not (tmp_path / "dtu0" / "uart").exists()


def test_vdtu_term_frames_commands_and_decodes_replies(tmp_path: Path) -> None:
    """vdtu term turns 'GET_IMEI' and 'SAVE_KEYS a:1' into frames and prints decoded replies."""
    with vdtu_up("--pty-dir", str(tmp_path), "--no-state") as running:
        path = str(link(running, "uart"))
        host = Host(path)
        wait_until_listening(host)
        host.close()
        result = subprocess.run(
            [sys.executable, "-m", "vdtu.cli", "term", path, "--linger", "0.5"],
            input="GET_IMEI\nSAVE_KEYS a:1\n",
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        running.stop()
    assert result.returncode == 0, result.stderr
    imei = running.units[0]["imei"]
    assert f"< GET_IMEI       {imei}   [$XGC_ACK sn={imei} code ok]" in result.stdout
    assert "< SAVE_KEYS      ok" in result.stdout


@pytest.mark.slow
def test_a_thousand_units_in_one_process(tmp_path: Path) -> None:
    """vdtu up --units 1000 (uart PTYs) starts, the first and last units answer, and it stops."""
    with vdtu_up(
        "--pty-dir", str(tmp_path), "--no-state", "--ports", "uart", units=1000
    ) as running:
        assert len({u["imei"] for u in running.units}) == 1000
        for unit in (0, 999):
            host = Host(str(link(running, "uart", unit)))
            wait_until_listening(host)
            host.close()
        code, err = running.stop()
    assert code == 0, err
    assert not any(tmp_path.iterdir())


def test_a_unit_with_a_real_serial_device(tmp_path: Path) -> None:
    """--serial-device binds unit 0's uart to a serial device (here one end of a socat pair)."""
    socat = require_tool("socat")
    a, b = tmp_path / "devA", tmp_path / "devB"
    pair = subprocess.Popen([socat, f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"])
    try:
        deadline = time.monotonic() + 5
        while not (a.exists() and b.exists()) and time.monotonic() < deadline:
            time.sleep(0.02)
        with vdtu_up(
            "--pty-dir", str(tmp_path / "pty"), "--no-state", "--serial-device", f"uart={a}"
        ) as running:
            assert running.units[0]["ports"]["uart"] == str(a)
            host = Host(str(b))
            try:
                wait_until_listening(host)
                assert host.ask("GET_IMEI").frame.content == running.units[0]["imei"]
            finally:
                host.close()
            running.stop()
    finally:
        pair.terminate()
        pair.wait(timeout=5)


def test_serial_is_importable_for_hosts() -> None:
    """pyserial is a runtime dependency (vdtu term and real devices use it)."""
    assert serial.VERSION
