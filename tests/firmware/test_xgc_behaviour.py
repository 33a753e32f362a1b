"""XGC firmware behaviour over time, in virtual time: boot, reboot, persistence, hardware events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.xgc_harness import XgcBench
from vdtu.firmware.xgc.codec import FrameKind
from vdtu.firmware.xgc.states import DtuState
from vdtu.storage import FileStorage


def notifications(bench: XgcBench) -> list[tuple[str, str]]:
    return [(f.action, f.content or "") for f in bench.frames() if f.kind is FrameKind.ACK]


def test_boot_timeline_notifies_gpio_then_init_ok_then_no_project_info(bench: XgcBench) -> None:
    """At power-on: GET_GPIO_ALL at 1 s, init-ok once registered (a few s), then no-project-info."""
    bench.unit.power_on()
    bench.clock.run_for(0.99)
    assert bench.frames() == []
    bench.clock.run_for(0.1)
    (gpio,) = bench.frames()
    assert gpio.action == "GET_GPIO_ALL"
    assert gpio.content == ";".join(
        [*(f"out{i}:0" for i in range(1, 9)), *(f"in{i}:0" for i in range(1, 9))]
    )
    at = bench.boot()
    assert 4.0 <= at <= 12.0  # modem boot 2..4 s + network search 2..8 s
    assert notifications(bench) == [
        ("GET_DTU_STATE", "init-ok"),
        ("GET_DTU_STATE", "no-project-info"),
    ]
    assert bench.ask("GET_DTU_STATE") == "no-project-info"


def test_state_before_registration_is_no_init(bench: XgcBench) -> None:
    """Between firmware start and registration the state is no-init and is not notified."""
    bench.unit.power_on()
    bench.clock.run_for(1.5)
    bench.frames()
    assert bench.ask("GET_DTU_STATE") == "no-init"
    assert bench.ask("GET_NET_INFO").startswith("rssi:")


def test_bytes_before_the_firmware_listens_are_lost_and_counted(bench: XgcBench) -> None:
    """A command sent during the first second after power-on gets no answer; the loss is counted."""
    bench.unit.power_on()
    bench.clock.run_for(0.2)
    bench.send("GET_IMEI")
    bench.clock.run_for(0.5)
    assert bench.frames() == []
    assert bench.firmware.stats.bytes_lost_booting == len(b"$XGC#GET_IMEI#0#0&#5A#\r\n")


def test_reboot_runs_the_boot_sequence_again(bench: XgcBench) -> None:
    """DTU_REBOOT replies, then the unit boots again: no-init, GPIO notification, init-ok."""
    bench.boot()
    replies = bench.command("DTU_REBOOT", wait_s=0.1)
    assert [(f.action, f.content) for f in replies] == [("DTU_REBOOT", "")]
    assert bench.firmware.state is DtuState.NO_INIT
    bench.boot()
    actions = [(f.action, f.content) for f in bench.frames()]
    assert actions[0][0] == "GET_GPIO_ALL"
    assert actions[1:] == [("GET_DTU_STATE", "init-ok"), ("GET_DTU_STATE", "no-project-info")]


def test_relays_drop_on_reboot(bench: XgcBench) -> None:
    """Outputs set before a reboot read 0 after it (relays lose power)."""
    bench.boot()
    assert bench.ask("SET_GPIO", "out1:1;out2:1") == "out1:1;out2:1"
    bench.unit.reboot()
    bench.boot()
    assert bench.ask("GET_GPIO_ALL").startswith("out1:0;out2:0;")


def test_saved_keys_survive_reboot_but_not_reflash(bench: XgcBench) -> None:
    """SAVE_KEYS persists across DTU_REBOOT; a re-flash erases it."""
    bench.boot()
    assert bench.ask("SAVE_KEYS", "a:123;b:abc") == "ok"
    bench.command("DTU_REBOOT", wait_s=0.1)
    bench.boot()
    bench.frames()
    assert bench.ask("GET_KEYS", "a,b,zz") == "a:123;b:abc"
    bench.unit.reflash()
    bench.boot()
    bench.frames()
    assert bench.ask("GET_KEYS", "a,b") == ""


def test_saved_keys_survive_a_restart_of_the_process(tmp_path: Path) -> None:
    """A new unit on the same flash file (a vdtu restart) reads the saved keys and project."""
    path = tmp_path / "unit" / "flash.json"
    first = XgcBench(flash=FileStorage(path))
    first.boot()
    assert first.ask("SAVE_KEYS", "k:v") == "ok"
    assert first.command("SET_PRJINFO", "PID:abc;PSECRET:DEF")[0].content == "ok"
    second = XgcBench(flash=FileStorage(path))
    second.boot(until=DtuState.GET_MQTT_INFO_FAIL)
    second.frames()
    assert second.ask("GET_KEYS", "k") == "k:v"
    assert list(path.parent.iterdir()) == [path]  # no temporary files left behind


def test_set_prjinfo_moves_on_from_no_project_info(bench: XgcBench) -> None:
    """SET_PRJINFO replies ok and leaves no-project-info (no platform yet: get-mqtt-info-fail)."""
    bench.boot()
    bench.frames()
    replies = bench.command("SET_PRJINFO", "PID:1000904556b23945fe90;PSECRET:76EDCE04")
    assert [(f.action, f.content) for f in replies] == [
        ("SET_PRJINFO", "ok"),
        ("GET_DTU_STATE", "get-mqtt-info-fail"),
    ]
    assert bench.unit.flash.load()["project"] == {
        "pid": "1000904556b23945fe90",
        "secret": "76EDCE04",
    }


def test_input_change_sends_gpio_int_once(bench: XgcBench) -> None:
    """An opto input change sends GPIO_INT; setting the same level again sends nothing."""
    bench.boot()
    bench.frames()
    bench.unit.set_input(3, 1)
    bench.clock.run_for(0.1)
    bench.unit.set_input(3, 1)
    bench.clock.run_for(0.1)
    bench.unit.set_input(3, 0)
    bench.clock.run_for(0.1)
    assert notifications(bench) == [("GPIO_INT", "in3:1"), ("GPIO_INT", "in3:0")]


def test_io_count_is_configurable_and_missing_io_is_not_reported() -> None:
    """A model with 2 outputs and 1 input reports only those; setting out5 is silently skipped."""
    bench = XgcBench(outputs=2, inputs=1)
    bench.boot()
    bench.frames()
    assert bench.ask("GET_GPIO_ALL") == "out1:0;out2:0;in1:0"
    assert bench.ask("SET_GPIO", "out1:1;out5:1") == "out1:1"


def test_pulling_the_sim_deregisters_and_net_info_says_sim_false(bench: XgcBench) -> None:
    """SIM pulled: GET_NET_INFO shows simStatus:false and UNREGISTER; GET_ICCID errors."""
    bench.boot()
    bench.frames()
    bench.unit.pull_sim()
    bench.clock.run_for(0.1)
    assert bench.ask("GET_NET_INFO").endswith("netState:UNREGISTER;netMode:0;simStatus:false")
    assert bench.ask("GET_ICCID").startswith("error:no-sim;")
    assert bench.ask("GET_LBS").startswith("error:no-sim;")
    bench.unit.insert_sim()
    bench.clock.run_for(15)
    assert "netState:REGISTERED" in bench.ask("GET_NET_INFO")


def test_no_sim_at_power_on_stays_in_no_init() -> None:
    """Without a SIM the unit never registers, so it never reaches init-ok."""
    bench = XgcBench(sim_inserted=False)
    bench.unit.power_on()
    bench.clock.run_for(60)
    assert bench.firmware.state is DtuState.NO_INIT
    assert bench.ask("GET_NET_INFO").endswith("simStatus:false")


def test_vbus_change_notifies_base_info(bench: XgcBench) -> None:
    """Unplugging external power notifies GET_BASE_INFO with vbus:false."""
    bench.boot()
    bench.frames()
    bench.unit.set_vbus(False)
    bench.clock.run_for(0.1)
    ((action, content),) = notifications(bench)
    assert action == "GET_BASE_INFO"
    assert content.startswith("model:XGC-RG88C;version:1.0.0;rssi:")
    assert content.endswith(";vbus:false")


def test_log_level_takes_effect_after_reboot(bench: XgcBench) -> None:
    """SET_LOG_LEVEL ERROR is stored but the old level holds until the next boot."""
    bench.boot()
    assert bench.ask("SET_LOG_LEVEL", "ERROR") == "ok"
    assert bench.unit.log.threshold.name == "INFO"
    bench.unit.reboot()
    bench.boot()
    assert bench.unit.log.threshold.name == "ERROR"
    assert bench.ask("SET_LOG_LEVEL", "LOUD").startswith("error:bad-param;")


def test_ota_finish_changes_the_version_after_reboot(bench: XgcBench) -> None:
    """DTU_OTA with a filename of this model downloads, answers stage:finish, and the version
    reported by GET_BASE_INFO changes only after a reboot."""
    bench.boot()
    bench.frames()
    url = "http%3A%2F%2Ffiles.example.com%2Fdtu_1_2.bin"
    replies = bench.command(
        "DTU_OTA", f"filename:XGC-RG88C_V1.1.bin;fwVersion:1.1.0;url:{url}", wait_s=20
    )
    assert [(f.action, f.content) for f in replies] == [("DTU_OTA", "stage:finish;fwVersion:1.1.0")]
    assert "version:1.0.0;" in bench.ask("GET_BASE_INFO")
    bench.unit.reboot()
    bench.boot()
    bench.frames()
    assert "version:1.1.0;" in bench.ask("GET_BASE_INFO")


def test_ota_with_another_models_file_fails(bench: XgcBench) -> None:
    """A filename whose prefix is not the model ends in stage:failed."""
    bench.boot()
    url = "http%3A%2F%2Fh%2Fx.bin"
    assert (
        bench.ask("DTU_OTA", f"filename:OTHER_V1.bin;fwVersion:1.1.0;url:{url}", wait_s=20)
        == "stage:failed"
    )


def test_ota_fails_when_the_network_goes_during_download(bench: XgcBench) -> None:
    """Losing coverage during the download ends in stage:failed and no version change."""
    bench.boot()
    bench.frames()
    bench.send("DTU_OTA", "filename:XGC-RG88C_V2.bin;fwVersion:2.0;url:http%3A%2F%2Fh%2Fa")
    bench.clock.run_for(1)
    bench.unit.set_coverage(False)
    bench.clock.run_for(20)
    assert [(f.action, f.content) for f in bench.frames()] == [("DTU_OTA", "stage:failed")]
    assert "pending_fw_version" not in bench.unit.flash.load()


def test_sms_goes_to_the_outbox(bench: XgcBench) -> None:
    """SEND_SMS puts the message in the modem's outbox and replies ok."""
    bench.boot()
    bench.frames()
    assert bench.ask("SEND_SMS", "PHONE:13800138000;CONTENT:hello; world", wait_s=5) == "ok"
    (record,) = list(bench.unit.modem.sms_outbox)
    assert (record.phone, record.text) == ("13800138000", "hello; world")


def test_sms_without_sim_fails(bench: XgcBench) -> None:
    """SEND_SMS with the SIM pulled fails with error:no-sim and the outbox stays empty."""
    bench.boot()
    bench.unit.pull_sim()
    bench.clock.run_for(0.1)
    bench.frames()
    assert bench.ask("SEND_SMS", "PHONE:13800138000;CONTENT:x").startswith("error:no-sim;")
    assert list(bench.unit.modem.sms_outbox) == []


def test_at_commands_and_unsolicited_result_forwarding(bench: XgcBench) -> None:
    """AT replies come back as AT frames; URCs are forwarded after an AT command until AT+RIL=0."""
    bench.boot()
    bench.frames()
    rssi = bench.unit.modem.rssi
    replies = bench.command("AT", "AT+CSQ")
    assert [f.content for f in replies] == [f"+CSQ: {rssi},99", "OK"]
    bench.command("AT", "AT+CREG=1")
    bench.unit.pull_sim()
    bench.clock.run_for(0.1)
    forwarded = [f.content for f in bench.frames()]
    assert "+CREG: 0" in forwarded
    assert [f.content for f in bench.command("AT", "AT+RIL=0")] == ["OK"]
    bench.unit.insert_sim()
    bench.clock.run_for(15)
    assert [f for f in bench.frames() if f.action == "AT"] == []


def test_set_update_props_validates_and_persists(bench: XgcBench) -> None:
    """Intervals under 10000 ms are refused; a valid one is stored in flash."""
    bench.boot()
    assert bench.ask("SET_UPDATE_PROPS", "interval:9999;updateLoc:true").startswith(
        "error:bad-param;"
    )
    assert bench.ask("SET_UPDATE_PROPS", "interval:abc").startswith("error:bad-param;")
    assert bench.ask("SET_UPDATE_PROPS", "updateLoc:maybe").startswith("error:bad-param;")
    assert bench.ask("SET_UPDATE_PROPS", "").startswith("error:missing-field;")
    assert bench.ask("SET_UPDATE_PROPS", "interval:30000;updataLoc:false") == "ok"
    assert bench.unit.flash.load()["update_props"] == {"interval": 30000, "updateLoc": False}


def test_pipe_switch_moves_the_protocol_and_persists(bench: XgcBench) -> None:
    """SET_DTU_PIPE on uart -> 232-ok; then uart is deaf and rs232 answers, after reboot too."""
    bench.boot()
    assert bench.ask("SET_DTU_PIPE", "232") == "232-ok"
    assert bench.command("GET_IMEI") == []
    assert bench.firmware.stats.frames_on_other_ports == 1
    assert bench.ask("GET_DTU_PIPE", port="rs232") == "232"
    bench.unit.reboot()
    bench.clock.run_for(20)
    bench.frames("rs232")
    assert bench.ask("GET_DTU_PIPE", port="rs232") == "232"


def test_pipe_value_in_the_timestamp_slot_is_accepted(bench: XgcBench) -> None:
    """The seed's form $XGC#SET_DTU_PIPE#SN#232 (value where the timestamp goes) works."""
    bench.boot()
    bench.frames()
    bench.send_raw(b"$XGC#SET_DTU_PIPE#867435053362828#232&#5B#\r\n")
    bench.clock.run_for(0.1)
    assert [f.content for f in bench.frames()] == ["232-ok"]
    assert bench.firmware.pipe.value == "232"


def test_shortcut_works_on_any_port(bench: XgcBench) -> None:
    """The shortcut SET_DTU_PIPE#UART is understood on the rs232 port while the pipe is uart."""
    bench.boot()
    rs232 = bench.host_on("rs232")
    rs232.write(b"SET_DTU_PIPE#UART\r\n")
    bench.clock.run_for(0.1)
    assert rs232.data == b"SET_DTU_PIPE#uart-ok\r\n"


def test_send_mbr_485_to_an_absent_slave_times_out(bench: XgcBench) -> None:
    """A request to an address nobody has gets error:timeout after mbr_timeout_s."""
    bench.boot()
    bench.frames()
    assert bench.ask(
        "SEND_MBR_485", "addr:07;instructions:03;reg:0000;value:0001", wait_s=2
    ).startswith("error:timeout;")


def test_send_mbr_485_to_a_silenced_slave_times_out(bench: XgcBench) -> None:
    """A slave made to go silent no longer answers."""
    bench.boot()
    bench.unit.set_slave_online(1, False)
    bench.frames()
    assert bench.ask(
        "SEND_MBR_485", "addr:01;instructions:03;reg:0000;value:0001", wait_s=2
    ).startswith("error:timeout;")
    with pytest.raises(ValueError, match="no Modbus slave at address 9"):
        bench.unit.set_slave_online(9, True)


def test_send_mbr_485_exception_response_is_forwarded(bench: XgcBench) -> None:
    """An illegal register read comes back as the slave's exception response (fc | 0x80)."""
    bench.boot()
    bench.frames()
    (reply,) = bench.command(
        "SEND_MBR_485", "addr:01;instructions:03;reg:FFF0;value:0001", wait_s=2
    )
    assert reply.action == "485_RECEIVE"
    assert reply.content is not None
    assert reply.content[:6] == "018302"


def test_send_mbr_485_timing_follows_the_wire(bench: XgcBench) -> None:
    """At 9600 baud: request (8 bytes) + slave delay + answer (7) + t3.5 silence take ~20 ms."""
    bench.boot()
    bench.frames()
    bench.send("SEND_MBR_485", "addr:01;instructions:03;reg:0000;value:0001")
    sent_at = bench.clock.now
    bench.clock.run_for(1)
    (at, _chunk), *_ = [(t, c) for t, c in bench.host.received if t > sent_at]
    byte = 10 / 9600
    minimum = 8 * byte + 7 * byte + 3.5 * byte
    assert minimum < at - sent_at < minimum + 0.05


def test_snapshot_is_json_and_shows_the_state(bench: XgcBench) -> None:
    """A unit's snapshot serialises to JSON and reflects state and phase, the firmware's own
    part (pipe, stats), GPIO and lines."""
    import json  # noqa: PLC0415

    bench.boot()
    bench.unit.set_input(2, 1)
    bench.send_raw(b"noise\r\n")
    bench.clock.run_for(0.1)
    snapshot = json.loads(json.dumps(bench.unit.snapshot()))
    assert snapshot["imei"] == "867435053362828"
    assert snapshot["state"] == "no-project-info"
    assert snapshot["phase"] == "no-cloud"
    assert snapshot["firmware"]["pipe"] == "uart"
    assert snapshot["firmware"]["stats"]["garbage_bytes"] == len(b"noise")
    assert snapshot["lines"]["rs485"]["baud"] == 9600
    assert snapshot["slaves"][0]["address"] == 1
    assert snapshot["gpio"]["inputs"]["in2"] == 1
    assert snapshot["gpio"]["outputs"]["out1"] == 0


def test_outside_code_on_the_bus_can_be_a_slave() -> None:
    """With no simulated slaves, a device on the rs485 line answers SEND_MBR_485 itself: it sees
    the request with its CRC, and its answer reaches the host as 485_RECEIVE."""
    from vdtu.modbus.rtu import append_crc  # noqa: PLC0415

    bench = XgcBench(slaves=())
    bench.boot()
    bench.frames()
    bench.send("SEND_MBR_485", "addr:07;instructions:04;reg:0002;value:0001")
    bench.clock.run_for(0.05)
    assert bench.bus.data == append_crc(bytes.fromhex("070400020001"))
    bench.bus.write(append_crc(bytes.fromhex("0704020BB8")))
    bench.clock.run_for(0.5)
    (reply,) = bench.frames()
    assert (reply.action, reply.content) == (
        "485_RECEIVE",
        append_crc(bytes.fromhex("0704020BB8")).hex().upper(),
    )


def test_pin_locked_sim_waits_for_at_cpin() -> None:
    """A SIM with a PIN keeps the unit in no-init until the host unlocks it with AT+CPIN."""
    bench = XgcBench(sim_pin="1234")
    bench.unit.power_on()
    bench.clock.run_for(30)
    assert bench.firmware.state is DtuState.NO_INIT
    bench.frames()
    assert bench.ask("GET_ICCID").startswith("error:sim-locked;")
    assert [f.content for f in bench.command("AT", "AT+CPIN?")] == ["+CPIN: SIM PIN", "OK"]
    assert [f.content for f in bench.command("AT", "AT+CPIN=1234")][-1] == "OK"
    bench.clock.run_for(15)
    assert bench.unit.snapshot()["state"] == DtuState.NO_PROJECT_INFO.value


def test_serial_events_carry_no_frames_for_an_observer_that_did_not_ask() -> None:
    """A scenario's transcript observes every unit: it gets the texts, not a parse per frame."""
    bench = XgcBench()
    bench.boot()
    events: list[tuple[str, dict[str, Any]]] = []
    bench.unit.log.observer = lambda _name, _at, kind, data: events.append((kind, data))
    bench.send("GET_IMEI", sn="7")
    bench.clock.run_for(0.5)
    serial = [data for kind, data in events if kind in ("from-host", "to-host")]
    assert [data["port"] for data in serial] == ["uart", "uart"]
    assert all("frames" not in data for data in serial)


def test_serial_events_carry_each_frame_decoded_with_its_check_code_verified_both_ways() -> None:
    bench = XgcBench()
    bench.boot()
    events: list[tuple[str, dict[str, Any]]] = []
    bench.unit.log.observer = lambda _name, _at, kind, data: events.append((kind, data))
    bench.unit.log.describe_frames = True
    imei = bench.config.identity.imei
    bench.send("GET_IMEI", sn="7")
    bench.clock.run_for(0.5)
    bench.send_raw(b"$XGC#GET_CSQ#8#0&#99#\r\n")
    bench.clock.run_for(0.5)
    frames = [(kind, data["frames"]) for kind, data in events if kind in ("from-host", "to-host")]
    assert frames[0] == ("from-host", [{
        "kind": "XGC", "check": "5D (expected 5D hex, 93)", "check_ok": True,
        "fields": {"action": "GET_IMEI", "sn": "7", "timestamp": "0", "content": ""}}])  # fmt: skip
    kind, (reply,) = frames[1]
    assert (kind, reply["kind"], reply["check_ok"]) == ("to-host", "XGC_ACK", True)
    assert reply["fields"] == {"action": "GET_IMEI", "sn": imei, "timestamp": reply["fields"][
        "timestamp"], "content": imei}  # fmt: skip
    assert frames[2] == ("from-host", [{
        "kind": "XGC", "check": "99 (expected 1B hex, 27)", "check_ok": False,
        "fields": {"action": "GET_CSQ", "sn": "8", "timestamp": "0", "content": ""}}])  # fmt: skip
