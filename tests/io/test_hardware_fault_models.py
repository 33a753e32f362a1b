"""The hardware models' fault methods on their own: parameter checks, timing, healthy slots."""

from __future__ import annotations

import random
import re

import pytest

from vdtu.clock import VirtualClock
from vdtu.io.gpio import Gpio
from vdtu.io.modbus_config import DEMO_SLAVE
from vdtu.io.modbus_slave import ModbusSlave
from vdtu.io.power import CUTOFF_SOC, RESTART_SOC, Battery, brown_out
from vdtu.modbus.rtu import ExceptionCode
from vdtu.uart.line import SerialLine
from vdtu.uart.line_faults import misread


def battery(clock: VirtualClock) -> tuple[Battery, list[str]]:
    cell = Battery(clock.env, random.Random(1))
    seen: list[str] = []
    cell.on_cutoff += (lambda: seen.append(f"off@{clock.now:g}"),)
    cell.on_recover += (lambda: seen.append(f"on@{clock.now:g}"),)
    return cell, seen


def test_cutoff_comes_exactly_when_the_drained_charge_reaches_it_and_vbus_recovers() -> None:
    """80 % at 10 %/min without VBUS: the cut-off charge (2.5 %) at 465 s, not before."""
    clock = VirtualClock()
    cell, seen = battery(clock)
    cell.set_vbus(False)
    cell.drain(pct_per_min=10)
    clock.run_for(464.9)
    assert seen == []
    clock.run_for(0.2)
    assert seen == ["off@465"]
    assert cell.cut_off
    assert cell.soc == pytest.approx(CUTOFF_SOC, abs=2e-4)  # 0.1 s of drain since
    cell.set_vbus(True)
    assert seen == ["off@465", "on@465.1"]
    assert not cell.cut_off


def test_drain_with_vbus_present_keeps_the_supply_and_removing_vbus_then_cuts_at_once() -> None:
    clock = VirtualClock()
    cell, seen = battery(clock)
    cell.drain(to_soc=0.01, over_s=60)
    clock.run_for(120)
    assert cell.soc == pytest.approx(0.01)
    assert seen == []
    cell.set_vbus(False)
    assert seen == ["off@120"]


def test_recharging_above_the_restart_level_recovers_below_it_does_not() -> None:
    clock = VirtualClock()
    cell, seen = battery(clock)
    cell.set_vbus(False)
    cell.set_soc(0.01)
    assert seen == ["off@0"]
    cell.set_soc(RESTART_SOC - 0.01)
    assert seen == ["off@0"]
    cell.set_soc(RESTART_SOC)
    assert seen == ["off@0", "on@0"]


def test_a_healthy_battery_holds_no_drain_and_a_stopped_drain_resumes_the_load() -> None:
    clock = VirtualClock()
    cell, _seen = battery(clock)
    assert cell.snapshot().drain_pct_per_min is None
    cell.drain(pct_per_min=2.5)
    assert cell.snapshot().drain_pct_per_min == 2.5
    cell.stop_drain()
    assert cell._drain is None
    cell.set_vbus(False)
    clock.run_for(3600)
    assert cell.soc == pytest.approx(0.8 - 120 / 2000)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pct_per_min": 0}, "pct_per_min must be a number > 0 and <= 100, not 0"),
        ({"pct_per_min": 101}, "pct_per_min must be a number > 0 and <= 100, not 101"),
        ({"pct_per_min": True}, "pct_per_min must be a number > 0 and <= 100, not True"),
        ({"to_soc": 1.5, "over_s": 10}, "to_soc must be a number in 0..1, not 1.5"),
        ({"to_soc": 0.9, "over_s": 10}, "to_soc must be below the charge now (0.8000), not 0.9"),
        ({"to_soc": 0.1, "over_s": 0}, "over_s must be a number > 0"),
        ({"to_soc": 0.1}, "give either pct_per_min, or to_soc with over_s"),
        ({"pct_per_min": 1, "to_soc": 0.1, "over_s": 5}, "not both"),
    ],
)
def test_bad_drain_parameters_are_refused_by_name_and_value(
    kwargs: dict[str, float], message: str
) -> None:
    cell, _seen = battery(VirtualClock())
    with pytest.raises(ValueError, match=re.escape(message)):
        cell.drain(**kwargs)
    assert cell._drain is None


def test_brown_out_switches_off_for_the_dip_and_refuses_a_bad_length() -> None:
    clock = VirtualClock()
    seen: list[str] = []
    brown_out(
        clock.env,
        ms=50,
        power_off=lambda: seen.append(f"off@{clock.now:g}"),
        power_on=lambda: seen.append(f"on@{clock.now:g}"),
    )
    clock.run_for(1)
    assert seen == ["off@0", "on@0.05"]
    with pytest.raises(ValueError, match=re.escape("ms must be a number in 1..60000, not 0.5")):
        brown_out(clock.env, ms=0.5, power_off=lambda: None, power_on=lambda: None)


def test_gpio_faults_are_checked_and_leave_no_record_once_over() -> None:
    clock = VirtualClock()
    gpio = Gpio(clock.env)
    edges: list[tuple[str, int]] = []
    gpio.on_input_change += (lambda name, level: edges.append((name, level)),)
    with pytest.raises(ValueError, match=re.escape("width_ms must be a number in 1..60000, not 0")):
        gpio.pulse_input(1, width_ms=0)
    with pytest.raises(ValueError, match=re.escape("period_ms must be more than width_ms (100)")):
        gpio.pulse_input(1, width_ms=100, count=2, period_ms=50)
    with pytest.raises(ValueError, match=re.escape("bounces must be an integer in 1..50, not 0")):
        gpio.bounce_input(1, 1, bounces=0)
    with pytest.raises(ValueError, match=re.escape("level must be one of 0, 1, not 2")):
        gpio.stick_relay(1, 2)
    with pytest.raises(ValueError, match=re.escape("output index must be 1..8, not 9")):
        gpio.stick_relay(9, 1)
    gpio.pulse_input(4, width_ms=2000, count=1, period_ms=1000)  # one pulse: no period
    clock.run_for(3)
    assert edges == [("in4", 1), ("in4", 0)]
    edges.clear()
    gpio.pulse_input(3, width_ms=10, count=2, period_ms=20)
    clock.run_for(1)
    assert edges == [("in3", 1), ("in3", 0)] * 2
    assert gpio._faults is None
    gpio.pulse_input(3, width_ms=1000, count=5, period_ms=2000)
    clock.run_for(0.5)
    gpio.stop_input_fault(3)
    clock.run_for(20)
    assert edges[-2:] == [("in3", 1), ("in3", 0)]
    assert gpio._faults is None


def test_slave_fault_parameters_are_checked_and_every_modbus_exception_code_is_allowed() -> None:
    clock = VirtualClock()
    line = SerialLine(clock.env, name="rs485", baud=9600, half_duplex=True)
    slave = ModbusSlave(clock.env, random.Random(1), line, DEMO_SLAVE)
    with pytest.raises(ValueError, match=re.escape("ms must be a number in 0..60000, not -1")):
        slave.answer_late(-1)
    with pytest.raises(ValueError, match=re.escape("rate must be a number in 0..1, not 1.5")):
        slave.corrupt_crc(1.5)
    with pytest.raises(ValueError, match=re.escape("code must be one of 1, 2, 3, 4, 5, 6, 8, 10")):
        slave.answer_exception(7)
    assert [int(code) for code in ExceptionCode] == [1, 2, 3, 4, 5, 6, 8, 10, 11]
    slave.answer_exception(11)
    slave.reset()
    assert slave.snapshot().faults == {"late_ms": None, "crc_rate": None, "exception": 11}
    slave.stop_exception()
    assert slave.snapshot().faults is None


@pytest.mark.parametrize(("tx", "rx"), [(9600, 115200), (115200, 9600), (57600, 115200)])
def test_misread_at_another_speed_never_gives_the_bytes_sent(tx: int, rx: int) -> None:
    data = b"$XGC#GET_IMEI#0#0&#5A#\r\n"
    assert misread(data, tx, tx) == data
    garbled = misread(data, tx, rx)
    assert garbled != data
    assert misread(data, tx, rx) == garbled  # deterministic


def test_misread_of_a_slower_sender_is_mostly_framing_errors() -> None:
    """At 1/12 of the speed each sent bit lasts 12 received bits: long runs of 0 are read
    as 0x00 with a framing error, runs of 1 as idle."""
    garbled = misread(b"\x00", 9600, 115200)
    assert garbled
    assert set(garbled) <= {0x00, 0xFE, 0xF0, 0xC0, 0x80, 0xFC, 0xF8, 0xE0}


def test_line_fault_parameters_are_checked_and_clearing_drops_the_record() -> None:
    clock = VirtualClock()
    line = SerialLine(clock.env, name="uart", baud=115200)
    with pytest.raises(ValueError, match=re.escape("rate must be a number in 0..1, not 2")):
        line.drop_bytes(2)
    with pytest.raises(ValueError, match=re.escape("direction must be one of to-host, from-host")):
        line.drop_bytes(0.5, direction="up")
    with pytest.raises(ValueError, match=re.escape("baud must be one of 1200, 2400")):
        line.mismatch_baud(1234)
    with pytest.raises(
        ValueError, match=re.escape("bytes must be an integer in 0..4096, not 5000")
    ):
        line.inject_garbage(5000)
    assert line.faults is None
    line.add_noise(0.1)
    line.drop_bytes(0.1)
    line.mismatch_baud(9600)
    line.start_garbage(10)
    assert line.faults is not None
    line.stop_noise()
    line.stop_dropping()
    line.match_baud()
    assert line.faults is not None
    line.stop_garbage()
    assert line.faults is None
