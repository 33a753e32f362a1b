"""The QuecPython DTU's cloud command protocol: downlinks, passwords, parameters and replies."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vdtu.firmware.quec.commands import (
    CODE_ERROR,
    NO_DATA,
    PASSWORD_ERROR,
    SEED,
    CommandCode,
    CommandOptions,
    CommandRequest,
    ForwardData,
    Ignored,
    ModbusRequest,
    Origin,
    Reply,
    check_password,
    failure_reply,
    needs_password,
    ok_reply,
    parse_config_command,
    parse_downlink,
)
from vdtu.firmware.quec.frames import ConfigRequest, WorkMode
from vdtu.firmware.quec.params import (
    PARAMS,
    CommandParams,
    ParamKind,
    param_schema,
    validate_params,
)

FIRMWARE = CommandOptions.firmware()
COMMAND, MODBUS, THROUGH = WorkMode.COMMAND, WorkMode.MODBUS, WorkMode.PASSTHROUGH


def down(message: object, mode: WorkMode = COMMAND, options: CommandOptions = SEED) -> Any:
    return parse_downlink(json.dumps(message).encode(), mode=mode, options=options)


def request(code: int, data: Any = None, **fields: Any) -> CommandRequest:
    return CommandRequest(code=code, data=data, msg_id=fields.pop("msg_id", 7), **fields)


def params(code: int, data: Any, options: CommandOptions = SEED) -> CommandParams:
    result = validate_params(request(code, data), options=options)
    assert isinstance(result, CommandParams), result
    return result


def refusal(code: int, data: Any, options: CommandOptions = SEED) -> str:
    result = validate_params(request(code, data), options=options)
    assert isinstance(result, Reply), result
    assert result.body["status"] == 0
    error = result.body["error"]
    assert isinstance(error, str)
    return error


# --- downlinks ----------------------------------------------------------------------


def test_a_command_downlink_carries_every_field() -> None:
    """cmd_code, password, data, msg_id and topic_id are all read from a command downlink."""
    message = {
        "msg_id": 1700000000123,
        "cmd_code": 51,
        "topic_id": 1,
        "password": "012345",
        "data": {"new_password": "654321"},
    }
    assert down(message) == CommandRequest(
        code=51,
        password="012345",
        data={"new_password": "654321"},
        msg_id=1700000000123,
        topic_id="1",
        origin=Origin.CLOUD,
    )


@pytest.mark.parametrize("code", [4, "4"])
def test_cmd_code_may_be_an_integer_or_a_numeric_string(code: object) -> None:
    """Both 4 and "4" are command code 4 (the firmware runs int() on it)."""
    result = down({"msg_id": 1, "cmd_code": code})
    assert isinstance(result, CommandRequest)
    assert result.code == 4
    assert result.password is None
    assert result.topic_id is None


@pytest.mark.parametrize("code", ["four", "4.0", 4.5, True, [4], ""])
def test_a_cmd_code_that_is_not_a_number_is_ignored(code: object) -> None:
    """A cmd_code that is no integer is dropped with a reason naming it (the firmware drops it)."""
    result = down({"msg_id": 1, "cmd_code": code})
    assert isinstance(result, Ignored)
    assert "cmd_code" in result.reason


@pytest.mark.parametrize("topic", [True, {"a": 1}, "", 1.5])
def test_a_bad_topic_id_is_ignored(topic: object) -> None:
    """A topic_id that names no topic is dropped with a reason."""
    result = down({"cmd_code": 0, "topic_id": topic})
    assert isinstance(result, Ignored)
    assert "topic_id" in result.reason


def test_a_password_that_is_not_a_string_never_matches() -> None:
    """A numeric password is kept as None, so it fails like the firmware's string compare."""
    result = down({"cmd_code": 4, "password": 123})
    assert isinstance(result, CommandRequest)
    assert result.password is None
    assert isinstance(check_password(result, "123"), Reply)


@pytest.mark.parametrize("mode", [COMMAND, MODBUS])
def test_a_modbus_downlink_is_a_modbus_request(mode: WorkMode) -> None:
    """A message with a modbus key and no cmd_code goes to the Modbus side in both modes."""
    body = {"groups": {"num": 0, "cmd": ["0x03", "0x00", "0x00", "0x00", "0x02"]}}
    assert down({"msg_id": 3, "modbus": body}, mode) == ModbusRequest(body=body, msg_id=3)


@pytest.mark.parametrize(
    ("value", "text"),
    [("1234", "1234"), ({"a": 1, "b": "温"}, '{"a": 1, "b": "温"}'), (5, "5"), (True, "true")],
)
def test_data_without_cmd_code_is_forwarded(value: object, text: str) -> None:
    """The value of data goes to the serial port: strings as they are, other values as JSON."""
    result = down({"msg_id": 1, "data": value})
    assert result == ForwardData(value=value)
    assert result.text == text


def test_a_message_without_data_is_forwarded_whole() -> None:
    """JSON with neither cmd_code nor data is forwarded as the whole text, unchanged."""
    payload = b'{"msg_id": 9,  "temp": 21}'
    assert parse_downlink(payload, mode=COMMAND) == ForwardData(value=payload.decode())


def test_null_data_is_ignored() -> None:
    """data: null has nothing to forward; the message is dropped with a reason."""
    result = down({"msg_id": 1, "data": None})
    assert isinstance(result, Ignored)
    assert "null" in result.reason


@pytest.mark.parametrize("mode", [COMMAND, MODBUS])
@pytest.mark.parametrize(
    ("payload", "words"),
    [(b"hello", "not JSON"), (b"[1, 2]", "not an object"), (b'"x"', "not an object")],
)
def test_non_json_or_non_object_is_ignored(mode: WorkMode, payload: bytes, words: str) -> None:
    """In command and modbus mode a payload that is no JSON object is dropped visibly."""
    result = parse_downlink(payload, mode=mode)
    assert isinstance(result, Ignored)
    assert words in result.reason
    assert result.payload == payload


def test_invalid_utf8_is_ignored_in_every_mode() -> None:
    """Bytes that are not UTF-8 cannot be framed (len counts characters) and are dropped."""
    for mode in WorkMode:
        result = parse_downlink(b"\xff\x00", mode=mode)
        assert isinstance(result, Ignored)
        assert "UTF-8" in result.reason


@given(st.text(max_size=100))
def test_passthrough_forwards_every_payload_raw(text: str) -> None:
    """In passthrough any text, JSON command or not, is forwarded exactly."""
    assert parse_downlink(text.encode(), mode=THROUGH) == ForwardData(value=text)


def test_passthrough_does_not_run_commands() -> None:
    """A cmd_code in passthrough is just data (commands work in command mode only: quec.md#9)."""
    payload = b'{"cmd_code": 0, "msg_id": 1}'
    assert parse_downlink(payload, mode=THROUGH) == ForwardData(value=payload.decode())


def test_cmd_code_in_modbus_mode_follows_the_switch() -> None:
    """The seed runs commands in command mode only; the firmware also in modbus mode (quec.md#9)."""
    message = {"msg_id": 1, "cmd_code": 0, "data": "x"}
    assert down(message, MODBUS) == ForwardData(value="x")
    firmware = down(message, MODBUS, FIRMWARE)
    assert isinstance(firmware, CommandRequest)
    assert firmware.code == 0


def test_a_config_request_becomes_a_serial_command() -> None:
    """A 99 frame's JSON is a command from the serial side, whose reply has no msg_id."""
    frame = ConfigRequest(text='{"cmd_code": "0", "password": "1", "data": {}}')
    command = parse_config_command(frame)
    assert command == CommandRequest(code=0, password="1", data={}, origin=Origin.SERIAL)
    assert ok_reply(command, "867435059800763").body == {
        "code": 0,
        "data": "867435059800763",
        "status": 1,
    }


def test_a_config_request_with_a_bad_code_is_ignored() -> None:
    """A 99 frame whose cmd_code is not a number is dropped with a reason."""
    result = parse_config_command(ConfigRequest(text='{"cmd_code": "x"}'))
    assert isinstance(result, Ignored)


# --- replies ------------------------------------------------------------------------


def test_success_reply_shape_is_exact() -> None:
    """A success reply is code, data, status 1 and the echoed msg_id, in that order."""
    reply = ok_reply(request(0, msg_id="1700000000123"), "867435059800763")
    assert reply == Reply(
        body={"code": 0, "data": "867435059800763", "status": 1, "msg_id": "1700000000123"}
    )
    assert list(reply.body) == ["code", "data", "status", "msg_id"]
    assert reply.to_json() == (
        '{"code": 0, "data": "867435059800763", "status": 1, "msg_id": "1700000000123"}'
    )


def test_a_setting_reply_may_omit_data() -> None:
    """NO_DATA leaves the data key out; None publishes data: null."""
    assert ok_reply(request(55)).body == {"code": 55, "status": 1, "msg_id": 7}
    assert ok_reply(request(55), None).body == {"code": 55, "data": None, "status": 1, "msg_id": 7}
    assert ok_reply(request(55), NO_DATA) == ok_reply(request(55))


def test_failure_reply_shape_is_exact() -> None:
    """A failure reply is code, status 0, error, and the echoed msg_id."""
    reply = failure_reply(request(51), PASSWORD_ERROR)
    assert reply.body == {"code": 51, "status": 0, "error": "Password verify error", "msg_id": 7}
    assert list(reply.body) == ["code", "status", "error", "msg_id"]
    assert failure_reply(request(51)).body == {"code": 51, "status": 0, "msg_id": 7}


def test_a_missing_msg_id_is_echoed_as_null() -> None:
    """A cloud request without msg_id gets msg_id null, as the firmware's get() gives."""
    result = down({"cmd_code": 0})
    assert (
        ok_reply(result, "x").to_json() == '{"code": 0, "data": "x", "status": 1, "msg_id": null}'
    )


def test_topic_id_is_returned_beside_the_reply_never_in_it() -> None:
    """The topic_id picks the reply topic and is not published."""
    result = down({"msg_id": 1, "cmd_code": 3, "topic_id": 2})
    reply = ok_reply(result, 17)
    assert reply.topic_id == "2"
    assert "topic_id" not in reply.body
    assert failure_reply(result, "x").topic_id == "2"


def test_non_ascii_replies_are_written_as_utf8_text() -> None:
    """Replies keep non-ASCII text as is, as the firmware's ujson writes it."""
    assert (
        ok_reply(request(1), "温").to_json()
        == '{"code": 1, "data": "温", "status": 1, "msg_id": 7}'
    )


# --- passwords ----------------------------------------------------------------------


@pytest.mark.parametrize("code", [0, 1, 2, 3])
@pytest.mark.parametrize("options", [SEED, FIRMWARE])
def test_identity_queries_need_no_password(code: int, options: CommandOptions) -> None:
    """IMEI, number, version and CSQ run without a password under both settings."""
    assert not needs_password(code, options)
    assert check_password(request(code), "012345", options=options) is True


def test_diagnostics_need_the_password_unless_the_firmware_switch_is_on() -> None:
    """Code 5 needs the password per the seed; the firmware exempts it (quec.md#3.3)."""
    assert needs_password(5)
    refused = check_password(request(5), "012345")
    assert isinstance(refused, Reply)
    assert refused.body["error"] == PASSWORD_ERROR
    assert not needs_password(5, FIRMWARE)
    assert check_password(request(5), "012345", options=FIRMWARE) is True


@pytest.mark.parametrize("code", [4, 6, 7, 8, 9, 10, 11, 12, 13, 50, 51, 55, 63, 255, 99])
@pytest.mark.parametrize("options", [SEED, FIRMWARE])
def test_every_other_code_needs_the_password(code: int, options: CommandOptions) -> None:
    """Config, settings, reset and unknown codes need the exact stored password."""
    assert needs_password(code, options)
    assert check_password(request(code, password="012345"), "012345", options=options) is True
    for wrong in (None, "12345", "0123456", " 012345"):
        refused = check_password(request(code, password=wrong), "012345", options=options)
        assert refused == Reply(
            body={"code": code, "status": 0, "error": "Password verify error", "msg_id": 7}
        )


def test_an_unknown_code_without_password_gets_the_password_error_first() -> None:
    """As on the device, the password is checked before the code is looked up."""
    unknown = request(99)
    first = check_password(unknown, "012345")
    assert isinstance(first, Reply)
    assert first.body["error"] == PASSWORD_ERROR
    with_password = request(99, password="012345")
    assert check_password(with_password, "012345") is True
    second = validate_params(with_password)
    assert isinstance(second, Reply)
    assert second.body == {"code": 99, "status": 0, "error": "Command code error", "msg_id": 7}


# --- codes and parameters -----------------------------------------------------------


def test_the_enum_holds_every_code_of_the_seed() -> None:
    """Codes 0-13, 50-63 and 255 are all named, and nothing else."""
    assert {int(c) for c in CommandCode} == {*range(14), *range(50, 64), 255}
    assert CommandCode(9) is CommandCode.GET_VBATT
    assert CommandCode.GET_CSQ.is_query
    assert not CommandCode.RESTART.is_query


@pytest.mark.parametrize("code", [0, 1, 2, 3, 4, 5, 6, 9, 10, 11, 12, 13, 255])
def test_commands_without_parameters_ignore_data(code: int) -> None:
    """Queries (and reset) take no parameters; whatever data came is ignored."""
    for data in (None, {}, "x", {"y": 1}):
        assert params(code, data) == CommandParams(code=CommandCode(code), values={})


@pytest.mark.parametrize(
    ("code", "data", "values"),
    [
        (7, None, {"adcn": 0}),
        (7, {"adcn": 2}, {"adcn": 2}),
        (8, {"pins": 1}, {"pins": 1}),
        (8, {"pins": "3"}, {"pins": 3}),
        (50, {"message": {"number": "+8613800000000", "sms_msg": "hi"}}, None),
        (51, {"new_password": "654321"}, {"new_password": "654321"}),
        (51, {"new_password": 654321}, {"new_password": "654321"}),
        (52, {"plate": 1}, {"plate": 1}),
        (53, {"reg": 1}, {"reg": 1}),
        (53, {"reg": "hello server"}, {"reg": "hello server"}),
        (54, {"version": "100"}, {"version": 100}),
        (54, {"version": 101}, {"version": 101}),
        (55, {"fota": 0}, {"fota": 0}),
        (56, {"nolog": 1}, {"nolog": 1}),
        (57, {"service_acquire": 0}, {"service_acquire": 0}),
        (58, {"uconf": {"2": {"baudrate": "115200"}}}, {"uconf": {"2": {"baudrate": "115200"}}}),
        (59, {"conf": {"1": {"protocol": "tcp"}}}, {"conf": {"1": {"protocol": "tcp"}}}),
        (60, {"apn": ["cmnet", "", ""]}, {"apn": ("cmnet", "", "")}),
        (61, {"pins": ["1", "2", "128"]}, {"pins": ("1", "2", "128")}),
        (61, {"pins": ["", "", ""]}, {"pins": ("", "", "")}),
        (62, {"ota": 1}, {"ota": 1}),
        (63, {"dtu_config": {"work_mode": "command"}}, {"dtu_config": {"work_mode": "command"}}),
    ],
)
def test_valid_parameters_come_back_typed(
    code: int, data: Any, values: dict[str, Any] | None
) -> None:
    """Each command's documented data is accepted and converted to its declared types."""
    expected = values or {"number": "+8613800000000", "sms_msg": "hi"}
    assert params(code, data) == CommandParams(code=CommandCode(code), values=expected)


@pytest.mark.parametrize(
    ("code", "data", "words"),
    [
        (7, {"adcn": -1}, "data.adcn must be >= 0, not -1"),
        (7, {"adcn": "1"}, "data.adcn must be an integer, not '1'"),
        (8, None, "data must be a JSON object with data.pins"),
        (8, {}, "data.pins is missing"),
        (8, {"pins": "x"}, "data.pins must be an integer or a numeric string, not 'x'"),
        (50, {"number": "1", "sms_msg": "x"}, "data.message is missing"),
        (50, {"message": "x"}, "data.message must be a JSON object, not 'x'"),
        (50, {"message": {"sms_msg": "x"}}, "data.message.number is missing"),
        (50, {"message": {"number": "abc", "sms_msg": "x"}}, "data.message.number must match"),
        (50, {"message": {"number": "1" * 33, "sms_msg": "x"}}, "at most 32 bytes, not 33"),
        (50, {"message": {"number": "1", "sms_msg": "温" * 342}}, "at most 1024 bytes, not 1026"),
        (51, {}, "data.new_password is missing"),
        (51, {"new_password": None}, "data.new_password must be a string or an integer, not None"),
        (52, {"plate": 2}, "data.plate must be 0 or 1, not 2"),
        (53, {"reg": 2}, "data.reg must be 0, 1 or a string, not 2"),
        (54, {"version": "v1"}, "data.version must be an integer or a numeric string, not 'v1'"),
        (54, {"version": -1}, "data.version must be >= 0, not -1"),
        (55, {"fota": "1"}, "data.fota must be 0 or 1, not '1'"),
        (55, {"fota": True}, "data.fota must be 0 or 1, not True"),
        (56, {"nolog": 3}, "data.nolog must be 0 or 1, not 3"),
        (57, {"service_acquire": None}, "data.service_acquire must be 0 or 1"),
        (58, {"uconf": []}, "data.uconf must be a JSON object, not []"),
        (59, {"conf": "x"}, "data.conf must be a JSON object, not 'x'"),
        (60, {"apn": ["a", "b"]}, "data.apn must have 3 items, not 2"),
        (60, {"apn": ["a", "b", 3]}, "data.apn must be a list of strings"),
        (61, {"pins": ["1", "2"]}, "data.pins must have 3 items, not 2"),
        (61, {"pins": ["1", "2", "129"]}, 'data.pins[2] must be "1".."128" or "", not \'129\''),
        (61, {"pins": ["0", "2", "3"]}, "data.pins[0]"),
        (62, {"ota": [1, 2, 3]}, "data.ota must be 0 or 1, not [1, 2, 3]"),
        (63, {"dtu_config": None}, "data.dtu_config must be a JSON object, not None"),
        (63, "x", "data must be a JSON object with data.dtu_config, not 'x'"),
    ],
)
def test_bad_parameters_get_a_reply_naming_the_field(code: int, data: Any, words: str) -> None:
    """A bad or missing parameter is refused with status 0 and an error naming the field."""
    assert words in refusal(code, data)


def test_a_parameter_failure_reply_is_a_complete_reply() -> None:
    """The refusal is the failure shape, echoing msg_id and keeping the topic id beside it."""
    result = validate_params(request(55, {"fota": 2}, topic_id="1"))
    assert result == Reply(
        body={"code": 55, "status": 0, "error": "data.fota must be 0 or 1, not 2", "msg_id": 7},
        topic_id="1",
    )


def test_extra_keys_in_data_are_ignored() -> None:
    """Keys outside the schema do not make a command fail, as on the device."""
    assert params(55, {"fota": 1, "other": "x"}).values == {"fota": 1}


def test_sms_parameters_follow_the_switch() -> None:
    """The seed nests number/sms_msg in data.message (quec.md#6.1); the firmware reads them flat."""
    flat = {"number": "10086", "sms_msg": "hi"}
    assert "data.message is missing" in refusal(50, flat)
    assert params(50, flat, FIRMWARE).values == flat
    assert "data.number is missing" in refusal(50, {"message": flat}, FIRMWARE)


def test_pin_count_follows_the_switch() -> None:
    """The seed wants exactly three pins; the firmware takes any number (quec.md#6.12)."""
    assert "3 items" in refusal(61, {"pins": ["1"]})
    assert params(61, {"pins": ["1"]}, FIRMWARE).get_texts("pins") == ("1",)


def test_code_52_follows_the_switch() -> None:
    """The seed lists 52; v2 removed it and answers "Command code error" (quec.md#6.3)."""
    assert params(52, {"plate": 0}).get_int("plate") == 0
    assert refusal(52, {"plate": 0}, FIRMWARE) == CODE_ERROR


@pytest.mark.parametrize("code", [14, 49, 64, 65, 143, 254, 256, -1])
def test_unknown_codes_get_the_code_error(code: int) -> None:
    """Codes outside the table of quec.md#3.1 are refused with the firmware's exact text."""
    assert refusal(code, None) == "Command code error"


def test_every_schema_entry_is_a_setting_or_a_query_with_inputs() -> None:
    """Each setting code 50-63 (quec.md#6) has a schema; of the queries only 7 and 8 take data."""
    settings = {c for c in CommandCode if 50 <= c <= 63}
    assert settings <= set(PARAMS)
    assert {c for c in PARAMS if c.is_query} == {CommandCode.GET_ADC, CommandCode.GET_GPIO}
    assert param_schema(CommandCode.SEND_SMS)[0].path == "data.message.number"
    assert param_schema(CommandCode.SEND_SMS, FIRMWARE)[0].path == "data.number"
    assert all(spec.kind in ParamKind for specs in PARAMS.values() for spec in specs)


def test_typed_getters_refuse_the_wrong_type() -> None:
    """Reading a parameter as the wrong type is a programming error with the value named."""
    result = params(53, {"reg": "hello"})
    assert result.get_text("reg") == "hello"
    with pytest.raises(TypeError, match="'hello', not an int"):
        result.get_int("reg")
    with pytest.raises(TypeError, match="not a list"):
        result.get_texts("reg")
    with pytest.raises(TypeError, match="not an object"):
        result.get_object("reg")
    assert params(59, {"conf": {}}).get_object("conf") == {}
    with pytest.raises(TypeError, match="not a str"):
        params(55, {"fota": 1}).get_text("fota")


def test_a_command_request_cannot_be_built_with_a_bad_code_or_topic() -> None:
    """CommandRequest refuses a non-integer code and an empty topic id."""
    with pytest.raises(ValueError, match="code must be an integer, not True"):
        CommandRequest(code=True)
    with pytest.raises(ValueError, match="topic_id"):
        CommandRequest(code=1, topic_id="")


def test_a_downlink_whose_json_hides_a_lone_surrogate_is_ignored() -> None:
    """``\\ud800`` is valid JSON but no serial frame or topic can carry it."""
    result = parse_downlink(b'{"data": "x\\ud800"}', mode=WorkMode.COMMAND)
    assert isinstance(result, Ignored)
    assert "lone surrogate" in result.reason
