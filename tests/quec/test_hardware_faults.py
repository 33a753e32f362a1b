"""What a QuecPython unit shows of the hardware faults (issue 12), in virtual time.

Power (battery, VBUS, brown-out, power cut), the RS-485 bus seen through Modbus polls,
the host serial line and GPIO. The faults are applied to the unit's models directly, as
the fault catalogue will; the battery's cut-off is wired to the unit here as ``Unit`` will.
The QuecPython firmware reports the battery only as its voltage (command code 9), reads
GPIO only when asked (code 8: it notifies no input change) and sends the host nothing of
its own at boot.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from tests.quec_harness import BROKER, QuecBench
from vdtu.firmware.quec.channel_schema import MqttChannel
from vdtu.firmware.quec.config import DtuConfig, default_config
from vdtu.firmware.quec.frames import CommandFrame, WorkMode
from vdtu.firmware.quec.modbus_schema import ModbusConfig, ModbusGroup, PollEntry
from vdtu.io.power import brown_out
from vdtu.modbus.rtu import FunctionCode

PASSWORD = "362828"


def wire_supply(bench: QuecBench) -> None:
    """What ``Unit`` will do: the supply's lockout switches the unit off and on."""
    bench.unit.battery.on_cutoff += (bench.unit.power_off,)
    bench.unit.battery.on_recover += (bench.unit.power_on,)


def connected(bench: QuecBench) -> bool:
    driver = bench.firmware.drivers.get("1")
    return driver is not None and driver.connected


def vbatt(bench: QuecBench) -> int:
    reply = bench.command(9, password=PASSWORD)
    assert reply["status"] == 1, reply
    return int(reply["data"])


def gpio(bench: QuecBench, pin: int) -> int:
    reply = bench.command(8, data={"pins": pin}, password=PASSWORD, wait_s=0.1)
    assert reply["status"] == 1, reply
    level: int = reply["data"]
    return level


# -- power ------------------------------------------------------------------------------------


def test_code_9_battery_voltage_falls_once_vbus_is_removed() -> None:
    bench = QuecBench()
    bench.boot()
    before = vbatt(bench)
    bench.unit.set_vbus(False)
    bench.clock.run_for(3600)
    assert vbatt(bench) < before - 30


def test_battery_drain_to_cutoff_takes_the_unit_off_the_cloud_and_vbus_brings_it_back() -> None:
    """No VBUS, 5 %/min: code 9 falls; at the cut-off the unit is off (a command reaches
    nobody); VBUS back: it boots, reconnects and code 9 says the cell is nearly empty."""
    bench = QuecBench()
    wire_supply(bench)
    bench.boot()
    bench.unit.set_vbus(False)
    bench.unit.battery.drain(pct_per_min=5)
    readings = []
    for _ in range(3):
        bench.clock.run_for(240)
        readings.append(vbatt(bench))
    assert readings == sorted(readings, reverse=True)
    bench.clock.run_for(600)
    assert not bench.unit.powered
    assert bench.cloud({"msg_id": 1, "cmd_code": 0}) == 0
    bench.unit.battery.stop_drain()
    bench.unit.set_vbus(True)
    bench.run_until(lambda: connected(bench))
    assert vbatt(bench) < 3460


def test_brown_out_keeps_dtu_config_json_and_the_unit_comes_back_on_the_cloud() -> None:
    bench = QuecBench()
    bench.boot()
    saved = bench.config_file.read()
    with bench.env.entered(bench.unit.domain):
        brown_out(bench.env, ms=50, power_off=bench.unit.power_off, power_on=bench.unit.power_on)
    assert not connected(bench)
    bench.run_until(lambda: connected(bench))
    assert bench.config_file.read() == saved
    assert bench.command(0)["data"] == bench.imei


def test_power_cut_leaves_the_cloud_unanswered_and_restore_reconnects() -> None:
    bench = QuecBench()
    bench.boot()
    bench.unit.power_off()
    assert bench.cloud({"msg_id": 1, "cmd_code": 0}) == 0
    bench.clock.run_for(60)
    assert bench.published() == []
    bench.unit.power_on()
    bench.run_until(lambda: connected(bench))
    assert bench.command(0)["data"] == bench.imei


# -- RS-485: the poll table reports what the bus did -------------------------------------------


def polling(imei: str) -> DtuConfig:
    base = default_config(imei, broker_host=BROKER[0], broker_port=BROKER[1])
    channel = base.conf["1"]
    assert isinstance(channel, MqttChannel)
    entry = PollEntry(
        slave=1, function=FunctionCode.READ_HOLDING_REGISTERS, start=0, count=2, interval_s=10.0
    )
    return replace(
        base,
        work_mode=WorkMode.MODBUS,
        conf={"1": replace(channel, serial_id="1")},
        modbus=ModbusConfig(groups=(ModbusGroup(slave_addresses=(1,)),), poll=(entry,)),
    )


def uploads(bench: QuecBench, since: int) -> list[Any]:
    return [json.loads(payload) for payload in bench.published()[since:]]


def polls(bench: QuecBench, count: int) -> list[dict[str, Any]]:
    """The next ``count`` poll readings the unit uploads (other uploads skipped)."""
    before = len(bench.published())

    def readings() -> list[dict[str, Any]]:
        return [
            item["poll"]
            for item in uploads(bench, before)
            if isinstance(item, dict) and "poll" in item
        ]

    bench.run_until(lambda: len(readings()) >= count, limit_s=15 * count)
    return readings()[:count]


def fault_slave(bench: QuecBench, fault: str) -> None:
    slave = bench.unit.slaves[0]
    match fault:
        case "offline":
            slave.set_online(False)
        case "slow":
            slave.answer_late(1500)
        case "crc":
            slave.corrupt_crc()
        case "exception":
            slave.answer_exception(2)
        case "noise":
            bench.unit.lines["rs485"].add_noise(1.0)


def clear_slave(bench: QuecBench) -> None:
    bench.unit.slaves[0].set_online(True)
    bench.unit.slaves[0].clear_faults()
    bench.unit.lines["rs485"].clear_faults()


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("offline", "timeout"),
        ("slow", "timeout"),
        ("crc", "bad-crc"),
        ("exception", "exception"),
        ("noise", "timeout"),
    ],
)
def test_poll_reports_each_slave_fault_to_the_cloud_and_values_once_cleared(
    fault: str, error: str
) -> None:
    """offline, 1.5 s late (the poll waits 1 s), a bad CRC, exception 2, noise that
    corrupts the request: the poll's upload carries the error; cleared, values again."""
    bench = QuecBench(config=polling)
    bench.boot()
    assert all("values" in reading for reading in polls(bench, 2))
    fault_slave(bench, fault)
    start = len(bench.published())
    readings = polls(bench, 2)
    assert {reading["error"] for reading in readings} == {error}
    if fault == "exception":
        assert {reading["exception_code"] for reading in readings} == {2}
    if fault == "crc":
        assert readings[0]["raw"].startswith("01 03 04")
    if fault == "slow":  # the late answer is no poll's: it goes up as bus data
        assert ["0x01", "0x03", "0x04", "0x01", "0x15", "0x00", "0x01", "0x2b", "0xcb"] in (
            uploads(bench, start)
        )
    clear_slave(bench)
    bench.clock.run_for(5)  # a late answer still on its way lands before the next poll
    assert [reading["values"] for reading in polls(bench, 2)] == [[277, 1], [277, 1]]


# -- the host serial line -------------------------------------------------------------------


def uplink(bench: QuecBench, data: str) -> None:
    bench.host_on().write(CommandFrame(cid="1", topic_id="0", data=data).encode())
    bench.clock.run_for(0.5)


def test_bytes_lost_from_the_host_drop_its_frames_silently_until_cleared() -> None:
    """Every byte from the host lost: nothing goes up; 1 in 20 lost: a frame that lost a
    byte fails its length or CRC and is dropped and counted, never sent up mangled."""
    bench = QuecBench()
    bench.boot()
    line = bench.unit.lines["uart"]
    line.drop_bytes(1.0, direction="from-host")
    uplink(bench, "lost")
    assert bench.published() == []
    line.drop_bytes(0.05, direction="from-host")
    for n in range(20):
        uplink(bench, f"message number {n}")
    sent = [json.loads(p)["data"] for p in bench.published()]
    assert set(sent) <= {f"message number {n}" for n in range(20)}
    assert len(sent) < 20
    stats = bench.firmware.stats
    assert stats.bad_crc + stats.bad_length + stats.malformed >= 20 - len(sent) - 1
    line.stop_dropping()
    uplink(bench, "whole again")
    assert json.loads(bench.published()[-1]) == {"data": "whole again"}


def test_baud_mismatch_sends_the_misread_bytes_up_as_bus_data_and_matching_again_works() -> None:
    """At 9600 against the host's 115200 the firmware reads a few bytes without a comma:
    command mode takes such a chunk for Modbus and sends it up as a hex list, never as the
    host's data; at the same speed again, the frame goes up as data."""
    bench = QuecBench()
    bench.boot()
    line = bench.unit.lines["uart"]
    line.mismatch_baud(9600)
    uplink(bench, "at the wrong speed")
    (misread,) = uploads(bench, 0)
    assert isinstance(misread, list)
    assert 0 < len(misread) < 10
    assert all(item.startswith("0x") for item in misread)
    line.match_baud()
    bench.clock.run_for(0.5)
    uplink(bench, "at the right speed")
    assert bench.published()[1:] == [b'{"data": "at the right speed"}']


def test_garbage_toward_the_host_comes_between_the_downlink_frames() -> None:
    bench = QuecBench()
    bench.boot()
    bench.written()
    bench.cloud({"msg_id": 9, "data": "first"})
    bench.clock.run_for(0.5)
    bench.unit.lines["uart"].inject_garbage(32)
    bench.cloud({"msg_id": 9, "data": "second"})
    bench.clock.run_for(0.5)
    text = b"".join(bench.written())
    first, second = CommandFrame(cid="1", topic_id="0", data="first").encode(), None
    second = CommandFrame(cid="1", topic_id="0", data="second").encode()
    assert text.startswith(first)
    assert text.endswith(second)
    assert len(text) == len(first) + 32 + len(second)


# -- GPIO -------------------------------------------------------------------------------------


def test_code_8_reads_an_input_pulse_while_it_lasts_and_nothing_is_notified() -> None:
    """GPIO 9 is in1. A 2 s pulse: code 8 says 1 during it, 0 after; the firmware uploads
    nothing by itself for an input change."""
    bench = QuecBench()
    bench.boot()
    with bench.env.entered(bench.unit.domain):
        bench.unit.gpio.pulse_input(1, width_ms=2000)
    bench.clock.run_for(0.5)
    before = len(bench.published())
    assert gpio(bench, 9) == 1
    bench.clock.run_for(2)
    assert gpio(bench, 9) == 0
    assert len(bench.published()) == before + 2  # the two replies only


def test_code_8_reads_the_settled_level_after_a_bounce() -> None:
    bench = QuecBench()
    bench.boot()
    with bench.env.entered(bench.unit.domain):
        bench.unit.gpio.bounce_input(2, 1, bounces=4, ms=10)
    bench.clock.run_for(0.1)
    assert gpio(bench, 10) == 1


def test_code_8_reports_a_stuck_relays_coil_not_its_contact() -> None:
    """GPIO 1 is out1: welded closed while its coil is off, code 8 still says 0 (the
    firmware reads the pin it drives); the snapshot shows the contact at 1."""
    bench = QuecBench()
    bench.boot()
    bench.unit.gpio.stick_relay(1, 1)
    assert gpio(bench, 1) == 0
    snapshot = bench.unit.snapshot()["gpio"]
    assert (snapshot["outputs"]["out1"], snapshot["contacts"]["out1"]) == (0, 1)
