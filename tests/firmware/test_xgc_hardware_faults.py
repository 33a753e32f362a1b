"""What an XGC host sees of the hardware faults (issue 12), in virtual time.

Power (battery, VBUS, brown-out, power cut), the RS-485 bus and its Modbus slaves, the
host serial line and GPIO. The faults are applied to the unit's models directly, as the
fault catalogue will; the battery's cut-off is wired to the unit here as ``Unit`` will.
"""

from __future__ import annotations

import json

from tests.firmware.test_xgc_cloud import CloudBench, provisioned, states, topic
from tests.xgc_harness import XgcBench
from vdtu.cloud.xgc_api import Channel
from vdtu.firmware.xgc.codec import Frame, FrameReceived, GarbageDiscarded
from vdtu.firmware.xgc.states import DtuState
from vdtu.io.power import CUTOFF_MV, brown_out
from vdtu.modbus.rtu import check_crc

READ_REG_0 = "addr:01;instructions:03;reg:0000;value:0001"
BOOT_ACTIONS = ["GET_GPIO_ALL", "GET_DTU_STATE", "GET_DTU_STATE"]


def base_info(bench: XgcBench) -> dict[str, str]:
    return dict(item.split(":", 1) for item in bench.ask("GET_BASE_INFO").split(";"))


def wire_supply(bench: XgcBench) -> None:
    """What ``Unit`` will do: the supply's lockout switches the unit off and on."""
    bench.unit.battery.on_cutoff += (bench.unit.power_off,)
    bench.unit.battery.on_recover += (bench.unit.power_on,)


def connected() -> CloudBench:
    bench = provisioned()
    bench.boot(until=DtuState.MQTT_CONNECTED)
    bench.clock.run_for(1)
    bench.frames()
    return bench


def in_domain(bench: XgcBench) -> object:
    return bench.env.entered(bench.unit.domain)


# -- power ------------------------------------------------------------------------------------


def test_vbus_off_is_notified_and_the_battery_voltage_then_falls() -> None:
    """VBUS removed: GET_BASE_INFO is notified with vbus:false; an hour on the battery
    later the vbat it reports is lower (120 mA from 2000 mAh: 6 % of the charge)."""
    bench = XgcBench()
    bench.boot()
    bench.frames()
    before = int(base_info(bench)["vbat"])
    bench.unit.set_vbus(False)
    bench.clock.run_for(0.5)
    (notified,) = bench.frames()
    assert notified.action == "GET_BASE_INFO"
    assert notified.content is not None
    assert notified.content.endswith("vbus:false")
    bench.clock.run_for(3600)
    after = base_info(bench)
    assert after["vbus"] == "false"
    assert int(after["vbat"]) < before - 30


def test_battery_drain_reaches_cutoff_the_unit_goes_dark_and_vbus_brings_it_back() -> None:
    """No VBUS, a 5 %/min drain from 80 %: vbat falls in GET_BASE_INFO, at the cut-off
    (about 15.5 min) the unit goes off (no reply to anything); VBUS back: the boot
    notifications again and vbus:true with a nearly empty cell."""
    bench = XgcBench()
    wire_supply(bench)
    bench.boot()
    bench.unit.set_vbus(False)
    bench.unit.battery.drain(pct_per_min=5)
    cutoff_at = bench.clock.now + (0.8 - 0.025) / 0.05 * 60
    readings = []
    for _ in range(3):
        bench.clock.run_for(240)
        readings.append(int(base_info(bench)["vbat"]))
    assert readings == sorted(readings, reverse=True)
    bench.clock.run_for(cutoff_at - 5 - bench.clock.now)
    assert bench.unit.powered
    bench.clock.run_for(10)
    assert bench.unit.battery.cut_off
    assert not bench.unit.powered
    assert bench.command("GET_IMEI", wait_s=2) == []
    bench.unit.battery.stop_drain()
    bench.unit.set_vbus(True)
    bench.clock.run_for(30)
    assert [frame.action for frame in bench.frames()] == BOOT_ACTIONS
    info = base_info(bench)
    assert info["vbus"] == "true"
    assert int(info["vbat"]) < CUTOFF_MV + 60


def test_battery_cutoff_loses_the_broker_session_and_recharge_restores_it() -> None:
    """Cut-off with a cloud session: the broker shows the unit offline; with the cell put
    back above the restart level the unit boots and is online again."""
    bench = connected()
    wire_supply(bench)
    bench.unit.set_vbus(False)
    bench.unit.battery.drain(to_soc=0.02, over_s=60)
    bench.clock.run_for(120)
    assert not bench.unit.powered
    assert json.loads(bench.platform.retained[topic(Channel.STATE)]) == {"state": "offline"}
    bench.unit.battery.stop_drain()
    bench.unit.battery.set_soc(0.5)
    bench.clock.run_for(30)
    assert bench.firmware.state is DtuState.MQTT_CONNECTED
    assert json.loads(bench.platform.retained[topic(Channel.STATE)]) == {"state": "online"}


def test_brown_out_resets_the_unit_and_saved_keys_survive() -> None:
    """A 50 ms dip: the boot notifications appear again and GET_KEYS still has the keys."""
    bench = XgcBench()
    bench.boot()
    assert bench.ask("SAVE_KEYS", "a:1;b:two") == "ok"
    bench.frames()
    with in_domain(bench):  # type: ignore[attr-defined]
        brown_out(bench.env, ms=50, power_off=bench.unit.power_off, power_on=bench.unit.power_on)
    bench.clock.run_for(0.03)
    assert not bench.unit.powered
    bench.clock.run_for(30)
    assert bench.unit.powered
    assert [frame.action for frame in bench.frames()] == BOOT_ACTIONS
    assert bench.ask("GET_KEYS", "a,b") == "a:1;b:two"


def test_power_cut_host_sees_nothing_the_broker_says_offline_and_restore_boots() -> None:
    """Power off: no reply to a command, the retained state goes offline (the will);
    power on: the boot sequence and the session back, online."""
    bench = connected()
    bench.unit.power_off()
    assert bench.command("GET_IMEI", wait_s=2) == []
    bench.clock.run_for(120)
    assert json.loads(bench.platform.retained[topic(Channel.STATE)]) == {"state": "offline"}
    bench.unit.power_on()
    bench.clock.run_for(30)
    assert states(bench) == ["init-ok", "get-mqtt-info-ok", "mqtt-connected"]
    assert json.loads(bench.platform.retained[topic(Channel.STATE)]) == {"state": "online"}


# -- RS-485 -----------------------------------------------------------------------------------


def mbr(bench: XgcBench, wait_s: float = 2) -> list[Frame]:
    return bench.command("SEND_MBR_485", READ_REG_0, wait_s=wait_s)


def test_offline_slave_gives_send_mbr_485_a_timeout_and_back_online_it_answers() -> None:
    bench = XgcBench()
    bench.boot()
    bench.unit.set_slave_online(1, False)
    (reply,) = mbr(bench)
    assert (reply.action, (reply.content or "")[:14]) == ("SEND_MBR_485", "error:timeout;")
    bench.unit.set_slave_online(1, True)
    (reply,) = mbr(bench)
    assert (reply.action, reply.content) == ("485_RECEIVE", "0103020115781B")


def test_slow_slave_past_one_second_is_a_timeout_then_its_late_answer_arrives() -> None:
    """2 s late: error:timeout at 1 s, then the answer lands as a stray 485_RECEIVE;
    500 ms late: an answer, 500 ms after the request."""
    bench = XgcBench()
    bench.boot()
    slave = bench.unit.slaves[0]
    slave.answer_late(2000)
    replies = mbr(bench, wait_s=1.2)
    assert [(r.action, (r.content or "")[:14]) for r in replies] == [
        ("SEND_MBR_485", "error:timeout;")
    ]
    bench.clock.run_for(1.5)
    (late,) = bench.frames()
    assert (late.action, late.content) == ("485_RECEIVE", "0103020115781B")
    slave.answer_late(500)
    bench.send("SEND_MBR_485", READ_REG_0)
    sent_at = bench.clock.now
    bench.clock.run_for(2)
    (reply,) = bench.frames()
    assert reply.action == "485_RECEIVE"
    answered_at = next(at for at, _chunk in bench.host.received if at > sent_at)
    assert 0.5 < answered_at - sent_at < 0.6
    slave.answer_on_time()
    assert slave.snapshot().faults is None


def test_crc_fault_reaches_the_host_as_the_bad_bytes_in_485_receive() -> None:
    """XGC forwards what the bus said, unchecked: the host gets the answer with its CRC
    inverted and has to see that itself; at rate 0.5 about half the answers are hit."""
    bench = XgcBench()
    bench.boot()
    slave = bench.unit.slaves[0]
    slave.corrupt_crc()
    (reply,) = mbr(bench)
    assert reply.action == "485_RECEIVE"
    assert reply.content is not None
    raw = bytes.fromhex(reply.content)
    assert raw[:5] == bytes.fromhex("0103020115")
    assert not check_crc(raw)
    slave.corrupt_crc(0.5)
    good = 0
    for _ in range(20):
        (reply,) = mbr(bench, wait_s=1)
        good += check_crc(bytes.fromhex(reply.content or ""))
    assert 4 <= good <= 16
    assert slave.stats.corrupted == 1 + 20 - good


def test_exception_fault_reaches_the_host_as_an_exception_response() -> None:
    """Code 6 (slave device busy): 485_RECEIVE 01 83 06 + CRC; cleared, the register again."""
    bench = XgcBench()
    bench.boot()
    slave = bench.unit.slaves[0]
    slave.answer_exception(6)
    (reply,) = mbr(bench)
    assert reply.action == "485_RECEIVE"
    raw = bytes.fromhex(reply.content or "")
    assert raw[:3] == bytes([1, 0x83, 6])
    assert check_crc(raw)
    slave.stop_exception()
    (reply,) = mbr(bench)
    assert reply.content == "0103020115781B"


def test_bus_noise_corrupts_requests_so_the_slave_ignores_them_and_the_host_gets_timeouts() -> None:
    bench = XgcBench()
    bench.boot()
    bus = bench.unit.lines["rs485"]
    bus.add_noise(1.0)
    (reply,) = mbr(bench)
    assert (reply.content or "")[:14] == "error:timeout;"
    assert bench.unit.slaves[0].stats.bad_crc == 1
    bus.stop_noise()
    assert bus.faults is None
    (reply,) = mbr(bench)
    assert reply.content == "0103020115781B"


# -- the host serial line ---------------------------------------------------------------------


def test_garbage_toward_the_host_arrives_between_intact_frames() -> None:
    """Garbage injected while a reply is on its way: the host's reader sees the reply
    whole (check code right), then the garbage; the next reply is whole too."""
    bench = XgcBench()
    bench.boot()
    bench.events()
    bench.send("GET_IMEI")
    bench.clock.run_for(0.01)
    bench.unit.lines["uart"].inject_garbage(64)
    bench.send("GET_ICCID")
    bench.clock.run_for(0.5)
    events = bench.events()
    frames = [e for e in events if isinstance(e, FrameReceived)]
    assert [(f.frame.action, f.code_ok) for f in frames] == [
        ("GET_IMEI", True),
        ("GET_ICCID", True),
    ]
    assert any(isinstance(e, GarbageDiscarded) for e in events)


def test_garbage_rate_keeps_coming_until_stopped() -> None:
    bench = XgcBench()
    bench.boot()
    line = bench.unit.lines["uart"]
    bench.events()
    received = len(bench.host.data)
    line.start_garbage(100)
    bench.clock.run_for(10)
    assert 990 <= len(bench.host.data) - received <= 1010
    bench.send("GET_IMEI")
    bench.clock.run_for(0.5)
    replies = [e.frame for e in bench.events() if isinstance(e, FrameReceived) and e.code_ok]
    assert [(r.action, r.content) for r in replies] == [("GET_IMEI", bench.config.identity.imei)]
    line.stop_garbage()
    assert line.faults is None
    bench.clock.run_for(0.1)  # the last burst, already on the wire, arrives
    received = len(bench.host.data)
    bench.clock.run_for(10)
    assert len(bench.host.data) == received


def test_dropped_bytes_from_the_host_get_error_replies_or_silence_never_a_wrong_answer() -> None:
    """1 byte in 10 lost on the way in: each SAVE_KEYS is answered ok, with the strict
    check code's error, or not at all (its start lost); the keys saved are only whole
    ones. Cleared, every command is answered."""
    bench = XgcBench()
    bench.boot()
    line = bench.unit.lines["uart"]
    line.drop_bytes(0.1, direction="from-host")
    answers = []
    for n in range(20):
        answers += [frame.content or "" for frame in bench.command("SAVE_KEYS", f"k{n}:{n}")]
    assert set(answers) <= {"ok"} | {a for a in answers if a.startswith("error:")}
    assert any(a.startswith("error:") for a in answers)
    assert len(answers) < 20 or answers.count("ok") < 20
    line.stop_dropping()
    keys = bench.ask("GET_KEYS", ",".join(f"k{n}" for n in range(20)))
    for item in keys.split(";"):
        key, _, value = item.partition(":")
        assert value in ("", key[1:])
    assert [bench.ask("GET_IMEI") for _ in range(3)] == [bench.config.identity.imei] * 3


def test_dropped_bytes_toward_the_host_leave_the_unit_acting_but_the_host_deaf() -> None:
    bench = XgcBench()
    bench.boot()
    line = bench.unit.lines["uart"]
    line.drop_bytes(1.0, direction="to-host")
    assert bench.command("SAVE_KEYS", "x:9") == []
    line.stop_dropping()
    assert bench.ask("GET_KEYS", "x") == "x:9"


def test_baud_mismatch_garbles_both_ways_and_matching_again_works() -> None:
    """The unit's UART at 9600 against a host at 115200: a command reaches the firmware
    as bytes outside any frame (no reply), a notification reaches the host as bytes that
    are no frame; at the same speed again, commands are answered."""
    bench = XgcBench()
    bench.boot()
    line = bench.unit.lines["uart"]
    line.mismatch_baud(9600)
    frames_before = bench.firmware.stats.frames
    bench.events()
    bench.send("GET_IMEI")
    bench.clock.run_for(1)
    assert bench.events() == []
    assert bench.firmware.stats.frames == frames_before
    received = len(bench.host.data)
    bench.unit.set_input(1, 1)
    bench.clock.run_for(1)
    assert len(bench.host.data) > received
    assert not [e for e in bench.events() if isinstance(e, FrameReceived)]
    line.match_baud()
    bench.send("GET_IMEI")
    bench.clock.run_for(0.5)
    replies = [e.frame for e in bench.events() if isinstance(e, FrameReceived) and e.code_ok]
    assert [(r.action, r.content) for r in replies] == [("GET_IMEI", bench.config.identity.imei)]


# -- GPIO -------------------------------------------------------------------------------------


def gpio_ints(bench: XgcBench) -> list[tuple[float, str]]:
    """(arrival time, content) of each GPIO_INT the host has received since the last call."""
    out = []
    reader_events = []
    for at, chunk in bench.host.received[bench._taken["uart"] :]:
        bench._readers["uart"].receive_data(chunk)
        reader_events += [(at, e) for e in bench._readers["uart"].events()]
    bench._taken["uart"] = len(bench.host.received)
    for at, event in reader_events:
        assert isinstance(event, FrameReceived)
        if event.frame.action == "GPIO_INT":
            out.append((at, event.frame.content or ""))
    return out


def test_input_pulses_are_each_notified_as_two_gpio_ints() -> None:
    """Three 100 ms pulses every second on in2: in2:1, in2:0 three times, at the edges."""
    bench = XgcBench()
    bench.boot()
    bench.frames()
    start = bench.clock.now
    with in_domain(bench):  # type: ignore[attr-defined]
        bench.unit.gpio.pulse_input(2, width_ms=100, count=3, period_ms=1000)
    bench.clock.run_for(3)
    notes = gpio_ints(bench)
    assert [content for _at, content in notes] == ["in2:1", "in2:0"] * 3
    offsets = [round(at - start, 1) for at, _content in notes]
    assert offsets == [0.0, 0.1, 1.0, 1.1, 2.0, 2.1]
    assert bench.ask("GET_GPIO_ALL").endswith("in1:0;in2:0;in3:0;in4:0;in5:0;in6:0;in7:0;in8:0")


def test_bounce_is_not_debounced_the_host_sees_every_edge() -> None:
    """The XGC firmware notifies each input change as it happens (it has no debounce):
    a change to 1 with 3 bounces within 10 ms is seven GPIO_INTs, the last in1:1."""
    bench = XgcBench()
    bench.boot()
    bench.frames()
    with in_domain(bench):  # type: ignore[attr-defined]
        bench.unit.gpio.bounce_input(1, 1, bounces=3, ms=10)
    bench.clock.run_for(1)
    contents = [content for _at, content in gpio_ints(bench)]
    assert contents == ["in1:1", "in1:0"] * 3 + ["in1:1"]
    assert "in1:1" in bench.ask("GET_GPIO_ALL")


def test_stuck_relay_accepts_the_command_reports_the_coil_and_the_contact_stays() -> None:
    """out3 welded closed: SET_GPIO out3:0 is accepted and GET_GPIO_ALL says out3:0 (the
    firmware reads its coil), the snapshot's contact says 1; a power cycle drops the coil,
    not the weld; unstuck, the contact follows the coil."""
    bench = XgcBench()
    bench.boot()
    gpio = bench.unit.gpio
    gpio.stick_relay(3, 1)
    assert bench.ask("SET_GPIO", "out3:0") == "out3:0"
    assert "out3:0" in bench.ask("GET_GPIO_ALL")
    snapshot = bench.unit.snapshot()["gpio"]
    assert (snapshot["outputs"]["out3"], snapshot["contacts"]["out3"]) == (0, 1)
    bench.unit.reboot()
    bench.clock.run_for(10)
    assert gpio.contact_levels()["out3"] == 1
    gpio.unstick_relay(3)
    assert gpio.contact_levels()["out3"] == 0
    assert bench.unit.snapshot()["gpio"]["contacts"] == bench.unit.snapshot()["gpio"]["outputs"]
