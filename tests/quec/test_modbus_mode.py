"""QuecPython Modbus mode: cloud commands to frames, bus bytes to uplinks, poll reports."""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vdtu.firmware.quec.commands import ModbusRequest, Reply
from vdtu.firmware.quec.modbus_mode import (
    NO_PARAMS_ERROR,
    ModbusOptions,
    ModbusPlan,
    PollError,
    format_bus_data,
    plan_modbus,
    poll_report,
    poll_requests,
    poll_slaves,
)
from vdtu.firmware.quec.modbus_schema import ModbusConfig, ModbusGroup, PollEntry
from vdtu.modbus.rtu import (
    ExceptionCode,
    ExceptionResponse,
    FunctionCode,
    ReadBitsResponse,
    ReadRegistersResponse,
    WriteSingleRegister,
    encode_response,
)

SEED = ModbusOptions()
CONFIG = ModbusConfig(
    groups=(
        ModbusGroup(device_type="th", slave_addresses=(1,)),
        ModbusGroup(device_type="light", slave_addresses=(2, 3, 4)),
    )
)
READ_TWO = ["0x03", "0x00", "0x00", "0x00", "0x02"]


def reference_crc(data: bytes) -> bytes:
    """CRC-16/MODBUS bit by bit (independent of vdtu.modbus's table), low byte first."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return bytes((crc & 0xFF, crc >> 8))


def with_crc(hex_text: str) -> bytes:
    data = bytes.fromhex(hex_text)
    return data + reference_crc(data)


def plan(body: Any, options: ModbusOptions = SEED, config: ModbusConfig = CONFIG) -> ModbusPlan:
    result = plan_modbus(ModbusRequest(body=body, msg_id=7), config, options=options)
    assert isinstance(result, ModbusPlan), result
    return result


def refusal(body: Any, options: ModbusOptions = SEED, config: ModbusConfig = CONFIG) -> Reply:
    result = plan_modbus(ModbusRequest(body=body, msg_id=7), config, options=options)
    assert isinstance(result, Reply), result
    return result


def entry(
    function: int, *, slave: int | None = 1, group: int | None = None, count: int = 2
) -> PollEntry:
    return PollEntry(
        slave=slave,
        group=group,
        function=FunctionCode(function),
        start=16,
        count=count,
        interval_s=10.0,
    )


# --- cloud -> bus -------------------------------------------------------------------------


def test_reference_crc_matches_the_known_vector() -> None:
    assert reference_crc(bytes.fromhex("01 03 00 00 00 02")) == bytes.fromhex("c4 0b")


def test_group_command_writes_one_frame_per_address_in_group_order() -> None:
    result = plan({"groups": {"num": 1, "cmd": READ_TWO}})
    assert result.frames == (
        with_crc("02 03 00 00 00 02"),
        with_crc("03 03 00 00 00 02"),
        with_crc("04 03 00 00 00 02"),
    )
    assert result.gap_s == 1.0


def test_group_command_frame_is_byte_exact_for_the_known_vector() -> None:
    result = plan({"groups": {"num": 0, "cmd": READ_TWO}})
    assert result.frames == (bytes.fromhex("01 03 00 00 00 02 c4 0b"),)


def test_group_command_reply_echoes_cmd_status_1_and_msg_id() -> None:
    result = plan({"groups": {"num": 1, "cmd": READ_TWO}})
    assert result.reply.body == {"code": READ_TWO, "status": 1, "msg_id": 7}
    assert result.reply.topic_id is None
    assert json.loads(result.reply.to_json()) == {"code": READ_TWO, "status": 1, "msg_id": 7}


def test_last_address_only_writes_only_the_groups_last_address() -> None:
    result = plan({"groups": {"num": 1, "cmd": READ_TWO}}, ModbusOptions(last_address_only=True))
    assert result.frames == (with_crc("04 03 00 00 00 02"),)


def test_group_gap_option_sets_the_gap_between_frames() -> None:
    result = plan({"groups": {"num": 1, "cmd": READ_TWO}}, ModbusOptions(group_gap_s=0.25))
    assert result.gap_s == 0.25


def test_group_number_may_be_a_decimal_string() -> None:
    result = plan({"groups": {"num": "1", "cmd": READ_TWO}})
    assert len(result.frames) == 3


def test_command_appends_the_crc_to_the_bytes_as_given() -> None:
    result = plan({"command": ["0x01", "0x03", "0x00", "0x00", "0x00", "0x02"]})
    assert result.frames == (bytes.fromhex("01 03 00 00 00 02 c4 0b"),)
    assert result.gap_s == 0.0
    assert result.reply.body == {
        "code": ["0x01", "0x03", "0x00", "0x00", "0x00", "0x02"],
        "status": 1,
        "msg_id": 7,
    }


def test_command_accepts_integers_one_digit_and_uppercase_hex() -> None:
    command: list[Any] = [1, "0x6", "0X00", "0x0a", 0xFF, "0xFF"]
    result = plan({"command": command})
    assert result.frames == (with_crc("01 06 00 0a ff ff"),)
    assert result.reply.body["code"] == command


def test_command_address_is_not_checked() -> None:
    result = plan({"command": ["0xff", "0x03"]})
    assert result.frames == (with_crc("ff 03"),)


def test_echo_msg_id_off_leaves_msg_id_out_of_success_and_failure() -> None:
    options = ModbusOptions(echo_msg_id=False)
    assert plan({"command": ["0x01", "0x03"]}, options).reply.body == {
        "code": ["0x01", "0x03"],
        "status": 1,
    }
    assert "msg_id" not in refusal({}, options).body


def test_firmware_options_are_the_v2_behaviour() -> None:
    options = ModbusOptions.firmware()
    assert options.last_address_only
    assert options.python_repr
    assert not options.echo_msg_id


@pytest.mark.parametrize("gap", [-0.5, float("nan"), float("inf")])
def test_options_refuse_a_bad_group_gap(gap: float) -> None:
    with pytest.raises(ValueError, match="group_gap_s must be a finite number"):
        ModbusOptions(group_gap_s=gap)


def test_plan_refuses_no_frames() -> None:
    with pytest.raises(ValueError, match="at least one frame"):
        ModbusPlan(frames=(), gap_s=0.0, reply=Reply(body={}))


REFUSALS = [
    pytest.param(
        ["0x01"], 'modbus must be a JSON object with "groups" or "command", not [', id="list"
    ),
    pytest.param("0x01", "modbus must be a JSON object", id="string"),
    pytest.param(
        {"groups": {"num": 0, "cmd": READ_TWO}, "command": ["0x01", "0x03"]},
        'one of "groups" and "command", not both',
        id="both",
    ),
    pytest.param(
        {}, f'{NO_PARAMS_ERROR}: modbus must have "groups" or "command", not keys: none', id="empty"
    ),
    pytest.param(
        {"task": {}},
        f'{NO_PARAMS_ERROR}: modbus must have "groups" or "command", not keys: [\'task\']',
        id="task",
    ),
    pytest.param(
        {"groups": [0]}, 'modbus.groups must be a JSON object with "num"', id="groups-list"
    ),
    pytest.param({"groups": {"cmd": READ_TWO}}, "modbus.groups.num is missing", id="num-missing"),
    pytest.param({"groups": {"num": 0}}, "modbus.groups.cmd is missing", id="cmd-missing"),
    pytest.param(
        {"groups": {"num": 2, "cmd": READ_TWO}},
        "modbus.groups.num must be the index of one of the 2 modbus groups (0..1), not 2",
        id="num-unknown",
    ),
    pytest.param({"groups": {"num": -1, "cmd": READ_TWO}}, "(0..1), not -1", id="num-negative"),
    pytest.param({"groups": {"num": True, "cmd": READ_TWO}}, "(0..1), not True", id="num-bool"),
    pytest.param({"groups": {"num": "x", "cmd": READ_TWO}}, "(0..1), not 'x'", id="num-text"),
    pytest.param(
        {"groups": {"num": 0, "cmd": []}},
        "modbus.groups.cmd must have 1..253 bytes, not 0",
        id="cmd-empty",
    ),
    pytest.param(
        {"groups": {"num": 0, "cmd": ["0x00"] * 254}},
        "modbus.groups.cmd must have 1..253 bytes, not 254",
        id="cmd-long",
    ),
    pytest.param(
        {"groups": {"num": 0, "cmd": "0x03"}},
        "modbus.groups.cmd must be a list of hex bytes",
        id="cmd-text",
    ),
    pytest.param(
        {"groups": {"num": 0, "cmd": ["0x03", "00"]}},
        "modbus.groups.cmd[1] must be a byte",
        id="cmd-no-prefix",
    ),
    pytest.param(
        {"command": []}, "modbus.command must have 2..254 bytes, not 0", id="command-empty"
    ),
    pytest.param(
        {"command": ["0x01"]}, "modbus.command must have 2..254 bytes, not 1", id="command-short"
    ),
    pytest.param(
        {"command": ["0x01"] * 255},
        "modbus.command must have 2..254 bytes, not 255",
        id="command-long",
    ),
    pytest.param(
        {"command": None},
        'modbus.command must be a list of hex bytes such as "0x03", not None',
        id="command-null",
    ),
]


@pytest.mark.parametrize(("body", "error"), REFUSALS)
def test_bad_modbus_command_gets_a_failure_naming_the_field(body: Any, error: str) -> None:
    reply = refusal(body)
    assert reply.body["code"] == 0
    assert reply.body["status"] == 0
    assert reply.body["msg_id"] == 7
    assert error in reply.body["error"]


@pytest.mark.parametrize(
    ("index", "item"),
    [
        (2, "03"),
        (2, "0x100"),
        (2, "0xg1"),
        (2, 256),
        (2, -1),
        (2, True),
        (2, 3.0),
        (2, None),
        (0, []),
    ],
)
def test_bad_command_byte_is_named_by_index_and_value(index: int, item: object) -> None:
    command: list[object] = ["0x01", "0x03", "0x00"]
    command[index] = item
    reply = refusal({"command": command})
    assert reply.body["error"] == (
        f'modbus.command[{index}] must be a byte as a hex string "0x00".."0xff" or an integer '
        f"0..255, not {item!r}"
    )


def test_group_command_without_configured_groups_is_refused() -> None:
    reply = refusal({"groups": {"num": 0, "cmd": READ_TWO}}, config=ModbusConfig())
    assert reply.body["error"] == "modbus.groups.num 0: no modbus groups are configured"


def test_long_bad_value_is_cut_in_the_error() -> None:
    reply = refusal({"command": "x" * 500})
    assert len(reply.body["error"]) < 150
    assert reply.body["error"].endswith("...")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-300, 300) | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(
    body=JSON_VALUES
    | st.fixed_dictionaries({"groups": JSON_VALUES})
    | st.fixed_dictionaries({"command": JSON_VALUES})
    | st.fixed_dictionaries(
        {"groups": st.fixed_dictionaries({"num": JSON_VALUES, "cmd": JSON_VALUES})}
    )
)
def test_any_json_body_gets_a_plan_or_a_failure_reply(body: Any) -> None:
    result = plan_modbus(ModbusRequest(body=body, msg_id=1), CONFIG, options=SEED)
    if isinstance(result, Reply):
        assert result.body["status"] == 0
        assert result.body["error"]
    else:
        assert result.reply.body["status"] == 1
        for frame in result.frames:
            assert frame[-2:] == reference_crc(frame[:-2])
            assert len(frame) <= 256


# --- bus -> cloud -------------------------------------------------------------------------


def test_bus_data_goes_up_as_a_json_list_of_lowercase_hex_bytes() -> None:
    text = format_bus_data(bytes.fromhex("01 03 04 00 7B 01 C8"), options=SEED)
    assert text == '["0x01", "0x03", "0x04", "0x00", "0x7b", "0x01", "0xc8"]'
    assert json.loads(text) == ["0x01", "0x03", "0x04", "0x00", "0x7b", "0x01", "0xc8"]


def test_python_repr_option_sends_the_v2_single_quoted_list() -> None:
    text = format_bus_data(b"\x01\xab", options=ModbusOptions(python_repr=True))
    assert text == "['0x01', '0xab']"


def test_no_bus_bytes_give_an_empty_list() -> None:
    assert format_bus_data(b"", options=SEED) == "[]"


# --- polls --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "count", "expected"),
    [
        (1, 10, "01 01 00 10 00 0a"),
        (2, 3, "01 02 00 10 00 03"),
        (3, 2, "01 03 00 10 00 02"),
        (4, 125, "01 04 00 10 00 7d"),
    ],
)
def test_poll_of_one_slave_sends_one_read_frame(function: int, count: int, expected: str) -> None:
    assert poll_requests(entry(function, count=count), CONFIG) == (with_crc(expected),)


def test_poll_of_a_group_reads_every_slave_in_order() -> None:
    group_entry = entry(3, slave=None, group=1)
    assert poll_slaves(group_entry, CONFIG) == (2, 3, 4)
    assert poll_requests(group_entry, CONFIG) == (
        with_crc("02 03 00 10 00 02"),
        with_crc("03 03 00 10 00 02"),
        with_crc("04 03 00 10 00 02"),
    )


def test_poll_of_a_group_missing_from_the_config_raises() -> None:
    with pytest.raises(ValueError, match=r"entry\.group must be the index of one of the 0 modbus"):
        poll_requests(entry(3, slave=None, group=1), ModbusConfig())


def registers(function: int, values: tuple[int, ...], address: int = 1) -> bytes:
    return encode_response(
        ReadRegistersResponse(address=address, function=FunctionCode(function), values=values)
    )


@pytest.mark.parametrize("function", [3, 4])
def test_register_answer_is_reported_as_values(function: int) -> None:
    answer = with_crc(f"01 0{function} 04 00 7b 01 c8")
    assert poll_report(entry(function), 1, answer, 12.5) == {
        "poll": {
            "slave": 1,
            "function": function,
            "start": 16,
            "count": 2,
            "time_s": 12.5,
            "values": [123, 456],
        }
    }


@pytest.mark.parametrize("function", [1, 2])
def test_bit_answer_is_reported_as_the_requested_bits(function: int) -> None:
    answer = with_crc(f"01 0{function} 02 cd 01")
    report = poll_report(entry(function, count=10), 1, answer, 3.0)
    assert report["poll"]["values"] == [1, 0, 1, 1, 0, 0, 1, 1, 1, 0]
    assert report["poll"]["function"] == function
    assert "error" not in report["poll"]


def test_no_answer_is_reported_as_a_timeout() -> None:
    report = poll_report(entry(3), 5, None, 20.0)
    assert report == {
        "poll": {
            "slave": 5,
            "function": 3,
            "start": 16,
            "count": 2,
            "time_s": 20.0,
            "error": "timeout",
            "detail": "no answer from slave 5",
        }
    }


def test_exception_answer_is_reported_with_its_code() -> None:
    answer = encode_response(
        ExceptionResponse(address=1, function=3, code=ExceptionCode.ILLEGAL_DATA_ADDRESS)
    )
    reading = poll_report(entry(3), 1, answer, 1.0)["poll"]
    assert reading["error"] == "exception"
    assert reading["exception_code"] == 2
    assert reading["detail"] == "slave 1 refused function 3: illegal-data-address"
    assert "values" not in reading


def test_bad_crc_answer_is_reported_with_the_raw_bytes() -> None:
    answer = bytes.fromhex("01 03 04 00 7b 01 c8 00 00")
    reading = poll_report(entry(3), 1, answer, 1.0)["poll"]
    assert reading["error"] == "bad-crc"
    assert "CRC must be" in reading["detail"]
    assert reading["raw"] == "01 03 04 00 7b 01 c8 00 00"


@pytest.mark.parametrize(
    "answer",
    [b"\x01", with_crc("01 03 05 00 7b 01 c8"), with_crc("01 63 00")],
    ids=["too-short", "odd-byte-count", "unknown-function"],
)
def test_malformed_answer_is_reported_as_a_bad_frame(answer: bytes) -> None:
    reading = poll_report(entry(3), 1, answer, 1.0)["poll"]
    assert reading["error"] == "bad-frame"
    assert reading["raw"] == answer.hex(" ")


@pytest.mark.parametrize(
    ("poll", "answer", "detail"),
    [
        (entry(3), registers(3, (1, 2), address=2), "answer from slave 2, not from slave 1"),
        (entry(3), registers(4, (1, 2)), "answer to function 4, not to function 3"),
        (entry(3), registers(3, (1, 2, 3)), "3 registers, not the 2 requested"),
        (
            entry(1, count=10),
            encode_response(
                ReadBitsResponse(address=1, function=FunctionCode.READ_COILS, bits=(True,))
            ),
            "1 data bytes for 10 bits, not 2",
        ),
        (
            entry(3),
            encode_response(WriteSingleRegister(address=1, start=16, value=2)),
            "answer to function 6, not to function 3",
        ),
        (
            entry(3),
            encode_response(
                ExceptionResponse(address=1, function=4, code=ExceptionCode.ILLEGAL_FUNCTION)
            ),
            "answer to function 4, not to function 3",
        ),
    ],
    ids=[
        "other-slave",
        "other-function",
        "register-count",
        "bit-bytes",
        "write-echo",
        "other-exception",
    ],
)
def test_sound_answer_to_another_request_is_a_mismatch(
    poll: PollEntry, answer: bytes, detail: str
) -> None:
    reading = poll_report(poll, 1, answer, 1.0)["poll"]
    assert reading["error"] == "mismatch"
    assert reading["detail"] == detail
    assert reading["raw"] == answer.hex(" ")


@given(answer=st.none() | st.binary(max_size=12), function=st.sampled_from([1, 2, 3, 4]))
def test_any_answer_gives_a_json_report_with_values_or_a_known_error(
    answer: bytes | None, function: int
) -> None:
    report = poll_report(entry(function), 1, answer, 0.0)
    reading = json.loads(json.dumps(report))["poll"]
    assert ("values" in reading) != ("error" in reading)
    if "error" in reading:
        assert reading["error"] in {error.value for error in PollError}
        assert reading["detail"]


def test_register_reading_round_trips_through_the_response_codec() -> None:
    values = tuple(range(100, 225))
    answer = registers(4, values)
    reading = poll_report(entry(4, count=125), 1, answer, 0.0)["poll"]
    assert reading["values"] == list(values)
    assert answer[3:-2] == struct.pack(">125H", *values)
