"""Every XGC action run without a clock: a plain device in, an ``Outcome`` out.

``PlainDevice`` is a frozen dataclass that satisfies ``XgcDevice``; ``run`` frames a
request and calls ``actions.execute``. ``CASES`` covers every action in ``ACTIONS`` with
its answer and, for every action that can refuse, its error paths; the outcome is
compared whole (reply, flash entries, uplink, effects).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vdtu.cloud.xgc_api import Channel
from vdtu.firmware.xgc.actions import (
    ACTIONS,
    OTA_FAILED,
    base_info,
    execute,
    ota_finished,
    ota_refusal,
    property_report,
    switch_pipe,
    update_props,
)
from vdtu.firmware.xgc.codec import Frame, FrameKind
from vdtu.firmware.xgc.options import Raw485Encoding, XgcOptions
from vdtu.firmware.xgc.outcome import (
    AwaitBusAnswer,
    ErrorReply,
    Log,
    Outcome,
    QueueUplink,
    Reboot,
    Request,
    RestartCloud,
    RunAt,
    SendOnBus,
    SendSms,
    SetOutputs,
    StartOta,
    SwitchPipe,
)
from vdtu.firmware.xgc.pipe import Pipe
from vdtu.firmware.xgc.states import DtuState
from vdtu.log import LogLevel
from vdtu.modem import NetMode, NetState, SimState

IMEI = "867435053362828"
ICCID = "898604E0092221379975"
URL = "http%3A%2F%2Ffiles.xsgee.com%2Fdtu_1_2.bin"


@dataclass(frozen=True, slots=True, kw_only=True)
class PlainDevice:
    """An ``XgcDevice`` made of values: the seed's example unit, registered, eight relays."""

    imei: str = IMEI
    model: str = "XGC-RG88C"
    version: str = "1.0.0"
    options: XgcOptions = field(default_factory=XgcOptions)
    state: DtuState = DtuState.NO_PROJECT_INFO
    pipe: Pipe = Pipe.UART
    flash: Mapping[str, Any] = field(default_factory=dict)
    busy: frozenset[str] = frozenset()
    has_cloud_session: bool = False
    sim_state: SimState = SimState.READY
    iccid: str | None = ICCID
    registered: bool = True
    rssi: int = 28
    net_state: NetState = NetState.REGISTERED
    net_mode: NetMode = NetMode.LTE
    location: tuple[float, float] | None = (113.3160324, 22.5571994)
    time_ms: int | None = 1_692_157_152_787
    vbat_mv: int = 3916
    vbus: bool = True
    outputs: int = 8
    inputs: int = 8

    def network_time_ms(self) -> int | None:
        return self.time_ms

    def gpio_levels(self) -> Mapping[str, int]:
        outputs = {f"out{n}": 0 for n in range(1, self.outputs + 1)}
        return outputs | {f"in{n}": 1 for n in range(1, self.inputs + 1)}


PLAIN = PlainDevice()
NO_SIM = replace(PLAIN, sim_state=SimState.ABSENT, iccid=None, registered=False)
LOCKED = replace(PLAIN, sim_state=SimState.PIN_LOCKED, registered=False)
UNREGISTERED = replace(PLAIN, registered=False, location=None)
ON_485 = replace(PLAIN, pipe=Pipe.RS485)
CONNECTED = replace(PLAIN, state=DtuState.MQTT_CONNECTED, has_cloud_session=True)


def run(
    action: str,
    content: str | None = None,
    device: PlainDevice = PLAIN,
    *,
    timestamp: str = "0",
) -> Outcome:
    frame = Frame(
        kind=FrameKind.COMMAND, action=action, sn="0", timestamp=timestamp, content=content
    )
    return execute(Request(frame=frame, port="uart"), device)


def ok(reply: str = "ok", **rest: Any) -> Outcome:
    return Outcome(reply=reply, **rest)


def note(level: LogLevel, source: str, text: str) -> Log:
    return Log(level=level, source=source, text=text)


def uplink(channel: Channel, payload: bytes) -> QueueUplink:
    full = ErrorReply(
        code="queue-full",
        message="1000 messages wait for the cloud already (the limit); this one was not accepted",
    )
    return QueueUplink(channel=channel, payload=payload, when_full=full)


MBR_TIMEOUT = ErrorReply(code="timeout", message="no answer from slave 1 in 1.0 s")
MBR_FRAME = bytes.fromhex("010300000001840A")
"""The seed's request (docs/spec/xgc.md#5.14), CRC 84 0A."""

ANSWERS: list[tuple[str, str | None, PlainDevice, Outcome]] = [
    ("GET_IMEI", None, PLAIN, ok(IMEI)),
    (
        "SET_PRJINFO",
        "PID:1000904556b23945fe90;PSECRET:76EDCE04",
        PLAIN,
        ok(
            flash={"project": {"pid": "1000904556b23945fe90", "secret": "76EDCE04"}},
            effects=(
                note(LogLevel.INFO, "firmware", "project info saved (PID 1000904556b23945fe90)"),
                RestartCloud(),
            ),
        ),
    ),
    (
        "SET_PRJINFO",
        "PID:p1;PSECRET:s1",
        replace(PLAIN, state=DtuState.NO_INIT),
        ok(
            flash={"project": {"pid": "p1", "secret": "s1"}},
            effects=(note(LogLevel.INFO, "firmware", "project info saved (PID p1)"),),
        ),
    ),
    (
        "GET_BASE_INFO",
        None,
        PLAIN,
        ok("model:XGC-RG88C;version:1.0.0;rssi:28;vbat:3916;vbus:true"),
    ),
    ("GET_ICCID", None, PLAIN, ok(ICCID)),
    (
        "GET_NET_INFO",
        None,
        PLAIN,
        ok("rssi:28;netState:REGISTERED;netMode:4;simStatus:true"),
    ),
    ("GET_NET_INFO", None, NO_SIM, ok("rssi:28;netState:REGISTERED;netMode:4;simStatus:false")),
    ("GET_DTU_STATE", None, CONNECTED, ok("mqtt-connected")),
    (
        "SET_LOG_LEVEL",
        "03",
        PLAIN,
        ok(
            flash={"log_level": "INFO"},
            effects=(note(LogLevel.INFO, "firmware", "log level INFO from the next boot"),),
        ),
    ),
    ("GET_NOW", "timestamp", PLAIN, ok("1692157152787")),
    ("GET_NOW", None, PLAIN, ok("1692157152787")),
    (
        "GET_NOW",
        "date",
        PLAIN,
        ok("year:2023;month:8;day:16;hour:11;minute:39;second:12;millis:787"),
    ),
    (
        "SET_GPIO",
        "out1:1;out9:1;out2:0",
        PLAIN,
        ok("out1:1;out2:0", effects=(SetOutputs(levels=((1, 1), (2, 0))),)),
    ),
    ("SET_GPIO", "out3:1", replace(PLAIN, outputs=2), ok("")),
    (
        "GET_GPIO_ALL",
        None,
        replace(PLAIN, outputs=2, inputs=1),
        ok("out1:0;out2:0;in1:1"),
    ),
    ("GET_LBS", None, PLAIN, ok("longitude:113.3160324;latitude:022.5571994")),
    (
        "SET_DTU_PIPE",
        "485",
        PLAIN,
        ok(
            "485-ok",
            flash={"pipe": "485"},
            effects=(
                note(LogLevel.INFO, "firmware", "host pipe uart -> 485"),
                SwitchPipe(pipe=Pipe.RS485),
            ),
        ),
    ),
    ("SET_DTU_PIPE", "UART", PLAIN, ok("uart-ok")),
    ("GET_DTU_PIPE", None, ON_485, ok("485")),
    (
        "SEND_MBR_485",
        "addr:01;instructions:03;reg:0000;value:0001",
        PLAIN,
        Outcome(
            reply=None,
            effects=(
                SendOnBus(data=MBR_FRAME),
                note(LogLevel.DEBUG, "rs485", "sent 01 03 00 00 00 01 84 0a"),
                AwaitBusAnswer(timeout_s=1.0, on_timeout=MBR_TIMEOUT),
            ),
        ),
    ),
    (
        "SEND_MBR_485",
        "addr:00;instructions:06;reg:0001;value:0003",
        PLAIN,
        Outcome(
            reply=None,
            effects=(
                SendOnBus(data=bytes.fromhex("00060001000399DA")),
                note(LogLevel.DEBUG, "rs485", "sent 00 06 00 01 00 03 99 da"),
            ),
        ),
    ),
    (
        "SEND_RAW_485",
        "010300000001",
        PLAIN,
        ok(effects=(SendOnBus(data=bytes.fromhex("010300000001")),)),
    ),
    (
        "SEND_RAW_485",
        "0102",
        replace(PLAIN, options=XgcOptions(raw485=Raw485Encoding.TEXT)),
        ok(effects=(SendOnBus(data=b"0102"),)),
    ),
    ("SAVE_KEYS", "a:123;b:abc", PLAIN, ok(flash={"keys": {"a": "123", "b": "abc"}})),
    (
        "SAVE_KEYS",
        "b:2",
        replace(PLAIN, flash={"keys": {"a": "1", "b": "x"}}),
        ok(flash={"keys": {"a": "1", "b": "2"}}),
    ),
    ("GET_KEYS", "key1,nokey", replace(PLAIN, flash={"keys": {"key1": "v1"}}), ok("key1:v1")),
    ("GET_KEYS", "", replace(PLAIN, flash={"keys": {"a": "1", "b": "2"}}), ok("a:1;b:2")),
    (
        "SET_UPDATE_PROPS",
        "interval:30000;updataLoc:false",
        PLAIN,
        ok(flash={"update_props": {"interval": 30000, "updateLoc": False}}),
    ),
    (
        "DTU_OTA",
        f"filename:XGC-RG88C_V1.0.bin;fwVersion:1.0.1;url:{URL}",
        PLAIN,
        Outcome(reply=None, effects=(StartOta(filename="XGC-RG88C_V1.0.bin", version="1.0.1"),)),
    ),
    (
        "SEND_SMS",
        "PHONE:13800138000;CONTENT:a;b:c",
        PLAIN,
        Outcome(reply=None, effects=(SendSms(phone="13800138000", text="a;b:c"),)),
    ),
    ("DTU_REBOOT", None, PLAIN, ok("", effects=(Reboot(),))),
    ("AT", " AT+CSQ ", PLAIN, Outcome(reply=None, effects=(RunAt(line="AT+CSQ"),))),
    (
        "DATA_PACK",
        "up:true;temperature:32",
        CONNECTED,
        ok(uplink=uplink(Channel.UP, b'{"up":true,"temperature":32}')),
    ),
    (
        "UPLOAD_CONFIG_STATUS",
        "configVersion:17;status:ok",
        CONNECTED,
        ok(uplink=uplink(Channel.CONFIG_STATUS, b'{"configVersion":17,"status":"ok"}')),
    ),
    (
        "UPLOAD_OTA_STATUS",
        "status:done;fwVersion:1.0.1",
        CONNECTED,
        ok(uplink=uplink(Channel.OTA_STATUS, b'{"status":"done","fwVersion":"1.0.1"}')),
    ),
]
"""(action, content, device, the whole outcome) for each action's answers."""

REFUSALS: list[tuple[str, str | None, PlainDevice, str]] = [
    ("SET_PRJINFO", "PID:abc", PLAIN, "missing-field"),
    ("SET_PRJINFO", "garbage-with-secret", PLAIN, "bad-param"),
    ("SET_PRJINFO", "PID:a-b;PSECRET:x", PLAIN, "bad-param"),
    ("SET_PRJINFO", "PID:ab;PSECRET:x;X:1", PLAIN, "bad-param"),
    ("GET_ICCID", None, NO_SIM, "no-sim"),
    ("GET_ICCID", None, LOCKED, "sim-locked"),
    ("SET_LOG_LEVEL", "LOUD", PLAIN, "bad-param"),
    ("SET_LOG_LEVEL", "07", PLAIN, "bad-param"),
    ("GET_NOW", "week", PLAIN, "bad-param"),
    ("GET_NOW", None, replace(PLAIN, time_ms=None), "no-network-time"),
    ("SET_GPIO", "", PLAIN, "missing-field"),
    ("SET_GPIO", "relay1:1", PLAIN, "bad-param"),
    ("SET_GPIO", "in1:1", PLAIN, "bad-param"),
    ("SET_GPIO", "out1:2", PLAIN, "bad-param"),
    ("GET_LBS", None, NO_SIM, "no-sim"),
    ("GET_LBS", None, LOCKED, "sim-locked"),
    ("GET_LBS", None, UNREGISTERED, "not-registered"),
    ("GET_LBS", None, replace(PLAIN, location=None), "not-registered"),
    ("SET_DTU_PIPE", "usb", PLAIN, "bad-param"),
    ("SEND_MBR_485", "addr:01;instructions:03;reg:0000;value:0001", ON_485, "pipe-is-485"),
    ("SEND_MBR_485", "addr:01;instructions:03;reg:0000", PLAIN, "missing-field"),
    ("SEND_MBR_485", "addr:F8;instructions:03;reg:0000;value:0001", PLAIN, "bad-param"),
    ("SEND_MBR_485", "addr:01;instructions:03;reg:0000;value:0000", PLAIN, "bad-param"),
    (
        "SEND_MBR_485",
        "addr:01;instructions:03;reg:0000;value:0001",
        replace(PLAIN, busy=frozenset({"SEND_MBR_485"})),
        "busy",
    ),
    ("SEND_RAW_485", "0103", ON_485, "pipe-is-485"),
    ("SEND_RAW_485", None, PLAIN, "missing-field"),
    ("SEND_RAW_485", "01x", PLAIN, "bad-param"),
    ("SAVE_KEYS", "", PLAIN, "missing-field"),
    ("SAVE_KEYS", "bad key:1", PLAIN, "bad-param"),
    ("SAVE_KEYS", "a:" + "v" * 257, PLAIN, "bad-param"),
    ("SAVE_KEYS", ";".join(f"k{n}:v" for n in range(65)), PLAIN, "storage-full"),
    ("SET_UPDATE_PROPS", "", PLAIN, "missing-field"),
    ("SET_UPDATE_PROPS", "interval:9999", PLAIN, "bad-param"),
    ("SET_UPDATE_PROPS", "updateLoc:maybe", PLAIN, "bad-param"),
    ("SET_UPDATE_PROPS", "period:1", PLAIN, "bad-param"),
    ("DTU_OTA", "filename:XGC-RG88C.bin;fwVersion:1.0.1", PLAIN, "missing-field"),
    ("DTU_OTA", f"filename:XGC-RG88C.bin;fwVersion:1 0;url:{URL}", PLAIN, "bad-param"),
    ("DTU_OTA", "filename:XGC-RG88C.bin;fwVersion:1.0;url:ftp%3A%2F%2Fx", PLAIN, "bad-param"),
    (
        "DTU_OTA",
        f"filename:XGC-RG88C.bin;fwVersion:1.0;url:{URL}",
        replace(PLAIN, busy=frozenset({"DTU_OTA"})),
        "busy",
    ),
    ("SEND_SMS", "CONTENT:abc", PLAIN, "missing-field"),
    ("SEND_SMS", "PHONE:1;CONTENT:a", NO_SIM, "no-sim"),
    ("SEND_SMS", "PHONE:1;CONTENT:a", LOCKED, "sim-locked"),
    ("SEND_SMS", "PHONE:1;CONTENT:a", UNREGISTERED, "not-registered"),
    ("SEND_SMS", "PHONE:1;CONTENT:a", replace(PLAIN, busy=frozenset({"SEND_SMS"})), "busy"),
    ("AT", "  ", PLAIN, "missing-field"),
    ("DATA_PACK", None, CONNECTED, "missing-field"),
    ("DATA_PACK", "a:1", PLAIN, "no-project"),
    ("UPLOAD_CONFIG_STATUS", "status:ok", CONNECTED, "missing-field"),
    ("UPLOAD_CONFIG_STATUS", "configVersion:1;status:ok", PLAIN, "no-project"),
    ("UPLOAD_OTA_STATUS", "fwVersion:1", CONNECTED, "missing-field"),
    ("UPLOAD_OTA_STATUS", "status:ok", PLAIN, "no-project"),
    ("NOTIFY_CONFIG", "configVersion:1", PLAIN, "unknown-action"),
    ("NOTIFY_OTA", None, PLAIN, "unknown-action"),
    ("GPIO_INT", "in1:1", PLAIN, "unknown-action"),
    ("485_RECEIVE", "0103", PLAIN, "unknown-action"),
    ("FROBNICATE", None, PLAIN, "unknown-action"),
]
"""(action, content, device, error code) for each way an action refuses."""

NEVER_REFUSED = {"GET_IMEI", "GET_BASE_INFO", "GET_NET_INFO", "GET_DTU_STATE", "GET_GPIO_ALL"}
NEVER_REFUSED |= {"GET_DTU_PIPE", "GET_KEYS", "DTU_REBOOT"}
"""The actions that always answer (they read and change nothing that can be wrong)."""


def test_the_cases_cover_every_action_and_every_refusing_action_has_its_errors() -> None:
    """Every action in ACTIONS has an answer case or is a DTU-only frame; every action that
    can refuse has refusal cases."""
    answered = {action for action, *_ in ANSWERS}
    refused = {action for action, *_ in REFUSALS}
    assert answered | refused >= set(ACTIONS)
    assert set(ACTIONS) - NEVER_REFUSED <= refused
    assert answered >= NEVER_REFUSED


@pytest.mark.parametrize(
    ("action", "content", "device", "expected"),
    ANSWERS,
    ids=[f"{a}-{i}" for i, (a, *_) in enumerate(ANSWERS)],
)
def test_action_answers(
    action: str, content: str | None, device: PlainDevice, expected: Outcome
) -> None:
    """The action's whole outcome: reply, flash entries, uplink and effects, in order."""
    assert run(action, content, device) == expected


@pytest.mark.parametrize(
    ("action", "content", "device", "code"),
    REFUSALS,
    ids=[f"{a}-{i}" for i, (a, *_) in enumerate(REFUSALS)],
)
def test_action_refusals(action: str, content: str | None, device: PlainDevice, code: str) -> None:
    """A refused command's outcome is one error reply and nothing else."""
    outcome = run(action, content, device)
    assert isinstance(outcome.reply, ErrorReply), outcome
    assert outcome.reply.code == code
    assert (outcome.flash, outcome.uplink, outcome.effects) == (None, None, ())


def test_set_prjinfo_refusals_never_quote_the_secret() -> None:
    """A malformed SET_PRJINFO content is not quoted back: it may hold the secret."""
    for content in ("PSECRET=hush", "PID:a;PSECRET:hush-1", "PSECRET:hush", "PID:a:b;hush"):
        outcome = run("SET_PRJINFO", content)
        assert isinstance(outcome.reply, ErrorReply)
        assert "hush" not in outcome.reply.message


def test_set_dtu_pipe_reads_the_value_from_the_timestamp_when_there_is_no_content() -> None:
    """The seed's example: $XGC#SET_DTU_PIPE#SN#232 (docs/spec/xgc.md#5.12)."""
    outcome = run("SET_DTU_PIPE", None, timestamp="232")
    assert outcome.reply == "232-ok"
    assert outcome.flash == {"pipe": "232"}


def test_switch_pipe_to_the_current_pipe_changes_nothing() -> None:
    assert switch_pipe(ON_485, Pipe.RS485) == ok("485-ok")


def test_save_keys_fits_exactly_the_limit() -> None:
    """64 keys are accepted; the 65th (with what the flash holds) is storage-full."""
    stored = {f"k{n}": "v" for n in range(63)}
    assert run("SAVE_KEYS", "last:v", replace(PLAIN, flash={"keys": stored})).flash == {
        "keys": stored | {"last": "v"}
    }
    over = run("SAVE_KEYS", "k63:v;k64:v", replace(PLAIN, flash={"keys": stored}))
    assert isinstance(over.reply, ErrorReply)
    assert over.reply.code == "storage-full"


def test_update_props_defaults_and_copies() -> None:
    props = update_props({})
    assert props == {"interval": 165_000, "updateLoc": True}
    props["interval"] = 1
    assert update_props({})["interval"] == 165_000


def test_ota_refusal_as_the_update_starts() -> None:
    """The file name must start with the model and be under 32 bytes; the network must be up."""
    assert ota_refusal(PLAIN, "XGC-RG88C_V1.0.bin") is None
    assert ota_refusal(PLAIN, "OTHER_V1.0.bin") == (
        "filename 'OTHER_V1.0.bin' does not start with the model XGC-RG88C"
    )
    assert ota_refusal(PLAIN, "XGC-RG88C" + "x" * 23) == "filename is 32 bytes; it must be under 32"
    assert ota_refusal(UNREGISTERED, "XGC-RG88C.bin") == "no network"
    assert (OTA_FAILED, ota_finished("1.2")) == ("stage:failed", "stage:finish;fwVersion:1.2")


def test_property_report_carries_the_location_unless_updateloc_is_off() -> None:
    """Signal, battery, charging and ICCID always; the cell's location with updateLoc
    (docs/spec/xgc.md#5.18), and never without a serving cell."""
    report = {"rssi": 28, "vbat": 3916, "vbus": True, "iccid": ICCID}
    location = {"lbs": {"longitude": 113.3160324, "latitude": 22.5571994}}
    assert property_report(PLAIN) == report | location
    no_location = {"update_props": {"interval": 165_000, "updateLoc": False}}
    assert property_report(replace(PLAIN, flash=no_location)) == report
    assert property_report(UNREGISTERED) == report


def test_base_info_follows_external_power() -> None:
    assert base_info(replace(PLAIN, vbus=False)).endswith(";vbus:false")


@given(
    action=st.sampled_from(sorted(ACTIONS)),
    content=st.none() | st.text(st.characters(blacklist_characters="\r\n"), max_size=80),
)
def test_any_content_gives_an_outcome(action: str, content: str | None) -> None:
    """Whatever the content, ``execute`` returns an outcome (a refusal is an error reply)."""
    outcome = run(action, content, CONNECTED)
    assert outcome.reply is not None or outcome.effects


def test_an_outcome_is_checked_as_it_is_made() -> None:
    """An error carries nothing else; no reply needs an effect."""
    error = ErrorReply(code="bad-param", message="x")
    with pytest.raises(ValueError, match="carries nothing else"):
        Outcome(reply=error, effects=(Reboot(),))
    with pytest.raises(ValueError, match="must carry an effect"):
        Outcome(reply=None)
