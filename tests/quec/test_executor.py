"""The QuecPython DTU's command codes executed against a fake unit: replies, settings, effects."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vdtu.errors import LocalProtocolError
from vdtu.firmware.quec.channel_schema import TcpChannel
from vdtu.firmware.quec.commands import (
    CODE_ERROR,
    PASSWORD_ERROR,
    SEED,
    SEED_EXEMPT,
    CommandCode,
    CommandOptions,
    CommandRequest,
    Origin,
    Reply,
)
from vdtu.firmware.quec.config import (
    Apn,
    DtuConfig,
    default_config,
    load_config,
    with_conf,
    with_password,
    with_pins,
    with_uconf,
    with_version,
)
from vdtu.firmware.quec.executor import (
    Diagnostic,
    DiagnosticCode,
    MqttState,
    Outcome,
    QuecDevice,
    QuecthingState,
    Restart,
    SendSms,
    SocketState,
    execute,
    sms_reply,
)
from vdtu.firmware.quec.frames import WorkMode
from vdtu.firmware.quec.params import PARAMS

IMEI = "867435059800763"
PASSWORD = IMEI[-6:]
CONFIG = default_config(IMEI, broker_host="127.0.0.1", broker_port=1883)
FIRMWARE = CommandOptions.firmware()
ICCID = "89860095803080542396"


@dataclass
class FakeDevice:
    """A unit with a SIM, a signal, two ADC channels, GPIO 1 and 2, and one MQTT channel."""

    imei: str = IMEI
    phone_number: str | None = "17201593988"
    iccid: str | None = ICCID
    rssi: int = 17
    adc: dict[int, int] = field(default_factory=lambda: {0: 3700, 1: 1250})
    gpio: dict[int, int] = field(default_factory=lambda: {1: 0, 2: 1})
    vbatt: int = 3590
    climate: tuple[float, float] = (26.0, 60.0)
    states: dict[str, int] = field(default_factory=lambda: {"1": MqttState.CONNECTED})
    cell: tuple[int, int] = (1, 1)
    location: tuple[float, float, int] | None = (117.1138, 31.82279, 550)

    def csq(self) -> int:
        return self.rssi

    def adc_mv(self, channel: int) -> int:
        if channel not in self.adc:
            raise ValueError(f"ADC channel must be one of {sorted(self.adc)}, not {channel!r}")
        return self.adc[channel]

    def gpio_level(self, pin: int) -> int:
        if pin not in self.gpio:
            raise ValueError(f"GPIO must be one of {sorted(self.gpio)}, not {pin!r}")
        return self.gpio[pin]

    def vbatt_mv(self) -> int:
        return self.vbatt

    def temperature_humidity(self) -> tuple[float, float]:
        return self.climate

    def channel_states(self) -> Mapping[str, int]:
        return self.states

    def cell_status(self) -> tuple[int, int]:
        return self.cell

    def cell_location(self) -> tuple[float, float, int] | None:
        return self.location


def run(
    code: int,
    data: Any = None,
    *,
    password: str | None = PASSWORD,
    device: QuecDevice | None = None,
    config: DtuConfig = CONFIG,
    pending: DtuConfig | None = None,
    options: CommandOptions = SEED,
    **kwargs: Any,
) -> Outcome:
    request = CommandRequest(
        code=code,
        password=password,
        data=data,
        msg_id=kwargs.pop("msg_id", 1700000000123),
        topic_id=kwargs.pop("topic_id", None),
        origin=kwargs.pop("origin", Origin.CLOUD),
    )
    return execute(
        request,
        config=config,
        pending=pending,
        device=FakeDevice() if device is None else device,
        options=options,
        **kwargs,
    )


def reply_of(outcome: Outcome) -> Reply:
    assert outcome.reply is not None, outcome
    return outcome.reply


def data_of(outcome: Outcome) -> Any:
    body = reply_of(outcome).body
    assert body["status"] == 1, body
    assert outcome.diagnostic is None
    return body["data"]


def error_of(outcome: Outcome) -> str:
    body = reply_of(outcome).body
    assert body["status"] == 0, body
    assert outcome.new_config is None
    assert outcome.effects == ()
    error = body["error"]
    assert isinstance(error, str)
    return error


def setting_of(outcome: Outcome) -> DtuConfig:
    body = reply_of(outcome).body
    assert body["status"] == 1, body
    assert "data" not in body
    assert outcome.new_config is not None
    return outcome.new_config


UART0 = {"baudrate": "9600", "databits": "8", "parity": "0", "stopbits": "1", "flowctl": "0"}
TCP = {"protocol": "tcp", "url": "10.0.0.1", "port": "8305", "serialID": "2"}

VALID_DATA: dict[CommandCode, Any] = {
    CommandCode.GET_ADC: {"adcn": 1},
    CommandCode.GET_GPIO: {"pins": 2},
    CommandCode.SEND_SMS: {"message": {"number": "+8613800000000", "sms_msg": "hello"}},
    CommandCode.SET_PASSWORD: {"new_password": "654321"},
    CommandCode.SET_PLATE: {"plate": 1},
    CommandCode.SET_REG: {"reg": "hello server"},
    CommandCode.SET_VERSION: {"version": "101"},
    CommandCode.SET_FOTA: {"fota": 0},
    CommandCode.SET_NOLOG: {"nolog": 1},
    CommandCode.SET_SERVICE_ACQUIRE: {"service_acquire": 1},
    CommandCode.SET_UCONF: {"uconf": {"0": UART0, "2": UART0}},
    CommandCode.SET_CONF: {"conf": {"1": TCP}},
    CommandCode.SET_APN: {"apn": ["cmnet", "user", "secret"]},
    CommandCode.SET_PINS: {"pins": ["4", "", "6"]},
    CommandCode.SET_OTA: {"ota": 0},
    CommandCode.SET_PARAMS: {"dtu_config": CONFIG.to_json() | {"version": 7}},
}
"""Good ``data`` for every command that takes parameters."""


def good_data(code: int) -> Any:
    """The good data for ``code`` (None for a code without parameters or an unknown code)."""
    return next((data for known, data in VALID_DATA.items() if known == code), None)


# --- every code ---------------------------------------------------------------------------


def test_the_valid_data_table_covers_every_command_with_parameters() -> None:
    """The table above has good data for exactly the codes that take parameters."""
    assert set(VALID_DATA) == set(PARAMS)


@pytest.mark.parametrize("code", list(CommandCode))
def test_every_code_is_executed(code: CommandCode) -> None:
    """Every seed code runs with good data: a query answers, a setting changes, 50/255 act."""
    outcome = run(code, VALID_DATA.get(code))
    assert outcome.diagnostic is None
    if code is CommandCode.RESTART:
        assert outcome == Outcome(reply=None, effects=(Restart(),))
    elif code is CommandCode.SEND_SMS:
        assert outcome.reply is None
        assert [type(effect) for effect in outcome.effects] == [SendSms]
    elif code.is_query:
        assert reply_of(outcome).body["code"] == code
        assert "data" in reply_of(outcome).body
        assert outcome.new_config is None
        assert outcome.effects == ()
    else:
        assert reply_of(outcome).body == {"code": code, "status": 1, "msg_id": 1700000000123}
        assert setting_of(outcome) != CONFIG


# --- queries ------------------------------------------------------------------------------


def test_imei() -> None:
    """Code 0 answers the device's IMEI as a string."""
    assert reply_of(run(0)).body == {
        "code": 0,
        "data": IMEI,
        "status": 1,
        "msg_id": 1700000000123,
    }


def test_phone_number() -> None:
    """Code 1 answers the SIM's number."""
    assert data_of(run(1)) == "17201593988"


@pytest.mark.parametrize(("code", "word"), [(1, "phone number"), (6, "ICCID")])
def test_sim_queries_fail_without_a_sim(code: int, word: str) -> None:
    """Codes 1 and 6 without a SIM fail with an error naming what is missing, and a SIM error."""
    outcome = run(code, device=FakeDevice(phone_number=None, iccid=None))
    error = error_of(outcome)
    assert word in error
    assert "SIM" in error
    assert outcome.diagnostic == Diagnostic(func_code=code, error_code=DiagnosticCode.SIM_ERROR)


def test_version_is_the_config_version_in_the_seeds_format() -> None:
    """Code 2 answers "v <version>" from the config in force, not from a pending one."""
    assert data_of(run(2)) == "v 100"
    pending = with_version(CONFIG, 250)
    assert data_of(run(2, pending=pending)) == "v 100"
    assert data_of(run(2, config=pending)) == "v 250"


@pytest.mark.parametrize(
    ("rssi", "text"), [(17, "CSQ17"), (0, "CSQ0"), (31, "CSQ31"), (99, "CSQ99")]
)
def test_csq(rssi: int, text: str) -> None:
    """Code 3 answers the signal as CSQ<n> (99: not known), the seed's form (quec.md#4.4)."""
    assert data_of(run(3, device=FakeDevice(rssi=rssi))) == text


@pytest.mark.parametrize("rssi", [-1, 32, 98, 100])
def test_a_csq_outside_the_contract_is_a_bug(rssi: int) -> None:
    """A device reporting an impossible RSSI is our own bug: LocalProtocolError names the value."""
    with pytest.raises(LocalProtocolError, match=f"not {rssi}"):
        run(3, device=FakeDevice(rssi=rssi))


def test_config_is_the_whole_config_in_force() -> None:
    """Code 4 answers the whole config in force, password included, as the device does."""
    dump = data_of(run(4, pending=with_password(CONFIG, "999999")))
    assert dump == CONFIG.to_json()
    assert dump["password"] == PASSWORD
    assert load_config(dump) == CONFIG


def test_config_can_leave_the_password_out() -> None:
    """include_password=False drops the password key and nothing else."""
    dump = data_of(run(4, include_password=False))
    expected = CONFIG.to_json()
    del expected["password"]
    assert dump == expected


def test_diagnostics_list_the_records_passed_in() -> None:
    """Code 5 answers the records in the seed's form, oldest first; none -> [] (quec.md#4.6)."""
    assert data_of(run(5)) == []
    records = [
        Diagnostic(func_code=5, error_code=DiagnosticCode.JSON_LOAD_ERROR),
        Diagnostic(func_code=51, error_code=DiagnosticCode.PASSWORD_VERIFY_ERROR),
    ]
    assert data_of(run(5, diagnostics=records)) == [
        {"func_code": "5", "error_code": "6001"},
        {"func_code": "51", "error_code": "5002"},
    ]


def test_iccid() -> None:
    """Code 6 answers the ICCID."""
    assert data_of(run(6)) == ICCID


@pytest.mark.parametrize(
    ("mv", "text"), [(3700, "3.7"), (0, "0"), (5000, "5"), (3712, "3.712"), (10, "0.01")]
)
def test_adc_answers_volts_as_the_seed_shows(mv: int, text: str) -> None:
    """Code 7 answers the channel's voltage in volts as a decimal string ("3.7")."""
    assert data_of(run(7, {"adcn": 1}, device=FakeDevice(adc={1: mv}))) == text


def test_adc_reads_channel_0_by_default() -> None:
    """Code 7 without adcn (or without data) reads channel 0."""
    assert data_of(run(7)) == "3.7"
    assert data_of(run(7, {})) == "3.7"


def test_an_absent_adc_channel_fails_naming_it() -> None:
    """Code 7 on a channel the unit lacks fails; the error names adcn and the channels there are."""
    outcome = run(7, {"adcn": 5})
    error = error_of(outcome)
    assert error.startswith("data.adcn: ")
    assert "[0, 1]" in error
    assert "5" in error
    assert outcome.diagnostic == Diagnostic(func_code=7, error_code=DiagnosticCode.DATA_PARSE_ERROR)


@pytest.mark.parametrize(("data", "words"), [({"adcn": "x"}, "data.adcn"), ({"adcn": -1}, ">= 0")])
def test_a_bad_adc_parameter_fails(data: Any, words: str) -> None:
    """Code 7 with a malformed adcn fails with the parameter's error and a parse diagnostic."""
    outcome = run(7, data)
    assert words in error_of(outcome)
    assert outcome.diagnostic == Diagnostic(func_code=7, error_code=DiagnosticCode.DATA_PARSE_ERROR)


@pytest.mark.parametrize(("pins", "level"), [(1, 0), (2, 1), ("2", 1)])
def test_gpio_answers_the_pins_level(pins: object, level: int) -> None:
    """Code 8 {"pins": n} answers that GPIO's level (n may be a numeric string)."""
    assert data_of(run(8, {"pins": pins})) == level


def test_an_absent_gpio_fails_naming_it() -> None:
    """Code 8 on a GPIO the unit lacks fails; the error names pins and the device's message."""
    outcome = run(8, {"pins": 40})
    error = error_of(outcome)
    assert error.startswith("data.pins: ")
    assert "40" in error
    assert outcome.diagnostic == Diagnostic(func_code=8, error_code=DiagnosticCode.DATA_PARSE_ERROR)


@pytest.mark.parametrize(("data", "words"), [(None, "data"), ({}, "data.pins is missing")])
def test_gpio_needs_a_pin(data: Any, words: str) -> None:
    """Code 8 without pins fails naming the parameter."""
    assert words in error_of(run(8, data))


def test_vbatt() -> None:
    """Code 9 answers the battery voltage in mV as a string, as the seed shows (quec.md#4.10)."""
    assert data_of(run(9)) == "3590"


def test_temperature_and_humidity() -> None:
    """Code 10 answers the sensor's reading as the seed's object (quec.md#4.11)."""
    device = FakeDevice(climate=(21.5, 43.2))
    assert data_of(run(10, device=device)) == {"temperature": 21.5, "humidity": 43.2}


def test_a_reading_that_is_not_a_number_is_a_bug() -> None:
    """A NaN temperature (no JSON form) raises LocalProtocolError."""
    with pytest.raises(LocalProtocolError, match="temperature_humidity"):
        run(10, device=FakeDevice(climate=(float("nan"), 50.0)))


def _channels_config() -> DtuConfig:
    return load_config(
        CONFIG.to_json()
        | {
            "conf": {
                "1": CONFIG.conf["1"].to_json(),
                "2": TCP,
                "3": {"protocol": "http", "method": "get", "url": "http://a/b", "serialID": "2"},
                "4": {"protocol": "quecthing", "ProductKey": "p1", "serialID": "2"},
                "5": {
                    "protocol": "aliyun",
                    "type": "mos",
                    "Devicename": "d",
                    "ProductKey": "k",
                    "DeviceSecret": "s",
                    "publish": {"0": "a/b"},
                    "serialID": "2",
                },
            }
        }
    )


def test_network_connection_reports_each_channel_by_its_table() -> None:
    """Code 11 answers every channel's state, in config order, as plain integers."""
    states = {
        "5": MqttState.ERROR,
        "4": QuecthingState.SUBSCRIBED,
        "3": 200,
        "2": SocketState.ESTABLISHED,
        "1": MqttState.CONNECTING,
    }
    data = data_of(run(11, config=_channels_config(), device=FakeDevice(states=states)))
    assert data == {"1": 1, "2": 4, "3": 200, "4": 8, "5": -1}
    assert list(data) == ["1", "2", "3", "4", "5"]
    assert all(type(value) is int for value in data.values())


@pytest.mark.parametrize(
    ("channel", "state"),
    [("1", 3), ("1", -2), ("2", 11), ("2", -1), ("3", 99), ("3", 600), ("4", 13), ("5", True)],
)
def test_a_channel_state_outside_its_table_is_a_bug(channel: str, state: int) -> None:
    """A state the table for that channel type (quec.md#4.12) lacks raises LocalProtocolError."""
    states = {"1": 0, "2": 4, "3": 0, "4": 8, "5": 0} | {channel: state}
    with pytest.raises(LocalProtocolError, match=repr(channel)):
        run(11, config=_channels_config(), device=FakeDevice(states=states))


@pytest.mark.parametrize("states", [{}, {"1": 0, "9": 0}])
def test_channel_states_must_cover_the_config(states: dict[str, int]) -> None:
    """The device must report exactly the channels of the config in force."""
    with pytest.raises(LocalProtocolError, match="channel ids"):
        run(11, device=FakeDevice(states=states))


def test_network_state() -> None:
    """Code 12 answers the voice and data registration stats."""
    device = FakeDevice(cell=(5, 1))
    assert data_of(run(12, device=device)) == {"voice_state": 5, "data_state": 1}


@pytest.mark.parametrize("cell", [(12, 1), (1, -1)])
def test_a_registration_stat_outside_0_to_11_is_a_bug(cell: tuple[int, int]) -> None:
    """cell_status() values outside the 3GPP table raise LocalProtocolError."""
    with pytest.raises(LocalProtocolError, match=r"0\.\.11"):
        run(12, device=FakeDevice(cell=cell))


def test_cell_location_follows_the_seeds_tuple() -> None:
    """Code 13 answers [longitude, latitude, accuracy], the seed's sample order (quec.md#4.14)."""
    assert data_of(run(13)) == [117.1138, 31.82279, 550]


def test_cell_location_fails_when_not_registered() -> None:
    """Code 13 while unregistered fails naming the network, with a dialing diagnostic."""
    outcome = run(13, device=FakeDevice(location=None))
    assert "not registered" in error_of(outcome)
    assert outcome.diagnostic == Diagnostic(func_code=13, error_code=DiagnosticCode.DIALING_ERROR)


@pytest.mark.parametrize(
    "location", [(181.0, 0.0, 1), (0.0, -90.5, 1), (float("nan"), 0.0, 1), (0.0, 0.0, -1)]
)
def test_an_impossible_location_is_a_bug(location: tuple[float, float, int]) -> None:
    """A longitude, latitude or accuracy out of range raises LocalProtocolError."""
    with pytest.raises(LocalProtocolError, match="cell_location"):
        run(13, device=FakeDevice(location=location))


# --- SMS ---------------------------------------------------------------------------------


def test_sms_is_an_effect_answered_later() -> None:
    """Code 50 gives no reply yet, a SendSms effect with the number, the text and the request."""
    outcome = run(50, VALID_DATA[CommandCode.SEND_SMS], topic_id="2")
    assert outcome.reply is None
    assert outcome.new_config is None
    (effect,) = outcome.effects
    assert isinstance(effect, SendSms)
    assert (effect.number, effect.text) == ("+8613800000000", "hello")
    assert effect.request.code == 50
    assert effect.request.topic_id == "2"


def test_sms_reads_flat_parameters_under_the_firmware_switch() -> None:
    """With flat_sms, number and sms_msg sit directly in data."""
    (effect,) = run(50, {"number": "10086", "sms_msg": "温度"}, options=FIRMWARE).effects
    assert isinstance(effect, SendSms)
    assert (effect.number, effect.text) == ("10086", "温度")


def test_sms_reply_on_success_and_failure() -> None:
    """sms_reply answers status 1 without data when sent, status 0 with the error otherwise."""
    (effect,) = run(50, VALID_DATA[CommandCode.SEND_SMS], topic_id="2").effects
    assert isinstance(effect, SendSms)
    sent = sms_reply(effect.request, sent=True)
    assert sent.body == {"code": 50, "status": 1, "msg_id": 1700000000123}
    assert sent.topic_id == "2"
    failed = sms_reply(effect.request, sent=False, error="no SIM card")
    assert failed.body == {"code": 50, "status": 0, "error": "no SIM card", "msg_id": 1700000000123}
    assert sms_reply(effect.request, sent=False).body["error"] == "the SMS was not sent"


def test_sms_reply_refuses_contradictions() -> None:
    """sms_reply refuses an error for a sent SMS, and a request that is not code 50."""
    request = CommandRequest(code=50, msg_id=1)
    with pytest.raises(ValueError, match="'oops'"):
        sms_reply(request, sent=True, error="oops")
    with pytest.raises(ValueError, match="code 51"):
        sms_reply(CommandRequest(code=51), sent=True)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"message": {"number": "abc", "sms_msg": "x"}}, "data.message.number"),
        ({"message": {"number": "1"}}, "data.message.sms_msg is missing"),
        ({"number": "1", "sms_msg": "x"}, "data.message is missing"),
    ],
)
def test_a_bad_sms_is_refused_without_an_effect(data: Any, words: str) -> None:
    """Code 50 with bad parameters answers a failure at once and sends nothing."""
    assert words in error_of(run(50, data))


# --- password and unknown codes ---------------------------------------------------------


@pytest.mark.parametrize("code", sorted(SEED_EXEMPT))
def test_exempt_codes_need_no_password(code: int) -> None:
    """Codes 0-3 run without a password, or with a wrong one."""
    assert reply_of(run(code, password=None)).body["status"] == 1
    assert reply_of(run(code, password="wrong")).body["status"] == 1


@pytest.mark.parametrize("code", [*sorted(set(CommandCode) - SEED_EXEMPT), 99, 64])
@pytest.mark.parametrize("password", [None, "wrong", PASSWORD + " "])
def test_every_other_code_needs_the_password(code: int, password: str | None) -> None:
    """Every other code (unknown ones too) without the right password gets the password error."""
    outcome = run(code, good_data(code), password=password)
    assert error_of(outcome) == PASSWORD_ERROR
    assert outcome.diagnostic == Diagnostic(
        func_code=code, error_code=DiagnosticCode.PASSWORD_VERIFY_ERROR
    )


def test_diagnostics_are_exempt_under_the_firmware_switch() -> None:
    """The firmware also lets code 5 run without a password."""
    assert error_of(run(5, password=None)) == PASSWORD_ERROR
    assert data_of(run(5, password=None, options=FIRMWARE)) == []


def test_the_password_in_force_is_checked_not_the_pending_one() -> None:
    """After code 51, the old password works and the new one does not, until a reset."""
    new = setting_of(run(51, {"new_password": "654321"}))
    assert data_of(run(4, pending=new)) == CONFIG.to_json()
    assert error_of(run(4, password="654321", pending=new)) == PASSWORD_ERROR
    assert data_of(run(4, password="654321", config=new))["password"] == "654321"


@pytest.mark.parametrize("code", [14, 49, 64, 65, 99, 143, 254, 256, -1])
def test_an_unknown_code_is_a_command_code_error(code: int) -> None:
    """A code not in quec.md#3.1 answers "Command code error" with its code echoed."""
    outcome = run(code)
    assert error_of(outcome) == CODE_ERROR
    assert reply_of(outcome).body["code"] == code
    assert outcome.diagnostic == Diagnostic(
        func_code=code, error_code=DiagnosticCode.COMMAND_CODE_ERROR
    )


def test_plate_follows_the_removal_switch() -> None:
    """Code 52 sets plate by default; under plate_removed (v2) it is an unknown code."""
    assert setting_of(run(52, {"plate": 1})).plate is True
    removed = CommandOptions(plate_removed=True)
    assert error_of(run(52, {"plate": 1}, options=removed)) == CODE_ERROR


# --- msg_id and topic_id --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "data", "password"),
    [
        (0, None, None),
        (4, None, PASSWORD),
        (4, None, "wrong"),
        (7, {"adcn": 9}, PASSWORD),
        (51, {"new_password": "x"}, PASSWORD),
        (58, {"uconf": {"7": UART0}}, PASSWORD),
        (99, None, PASSWORD),
    ],
)
@pytest.mark.parametrize("msg_id", [1700000000123, "abc", None])
def test_msg_id_and_topic_id_are_echoed(
    code: int, data: Any, password: str | None, msg_id: object
) -> None:
    """Success or failure, the reply echoes msg_id in the body and topic_id beside it."""
    reply = reply_of(run(code, data, password=password, msg_id=msg_id, topic_id="3"))
    assert reply.body["msg_id"] == msg_id
    assert reply.body["code"] == code
    assert reply.topic_id == "3"
    assert "topic_id" not in reply.body


def test_a_serial_command_is_answered_without_msg_id() -> None:
    """A command from the serial configuration channel gets a reply without msg_id."""
    reply = reply_of(run(0, origin=Origin.SERIAL))
    assert reply.body == {"code": 0, "data": IMEI, "status": 1}
    assert reply.topic_id is None


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "data", "changed"),
    [
        (51, {"new_password": 654321}, {"password": "654321"}),
        (52, {"plate": 1}, {"plate": True}),
        (53, {"reg": 1}, {"reg": 1}),
        (53, {"reg": "hello"}, {"reg": "hello"}),
        (54, {"version": "101"}, {"version": 101}),
        (55, {"fota": 0}, {"fota": False}),
        (56, {"nolog": 1}, {"nolog": True}),
        (57, {"service_acquire": 1}, {"service_acquire": True}),
        (60, {"apn": ["cmnet", "u", "p"]}, {"apn": Apn(name="cmnet", user="u", password="p")}),
        (61, {"pins": ["4", "", "6"]}, {"pins": (4, None, 6)}),
        (62, {"ota": 0}, {"ota": False}),
    ],
)
def test_a_setting_changes_only_its_field(code: int, data: Any, changed: dict[str, Any]) -> None:
    """A setting command answers status 1 without data and returns the config with one change."""
    before = CONFIG.to_json()
    new = setting_of(run(code, data))
    assert new == replace(CONFIG, **changed)
    assert CONFIG.to_json() == before


def test_uconf_and_conf_replace_the_whole_table() -> None:
    """Codes 58 and 59 replace uconf and conf entirely, as the firmware does."""
    uconf = setting_of(run(58, {"uconf": {"0": UART0, "2": UART0}}))
    assert uconf == with_uconf(CONFIG, {"0": UART0, "2": UART0})
    assert set(uconf.uconf) == {"0", "2"}
    conf = setting_of(run(59, {"conf": {"7": TCP}}))
    assert conf == with_conf(CONFIG, {"7": TCP})
    assert list(conf.conf) == ["7"]
    assert isinstance(conf.conf["7"], TcpChannel)


@pytest.mark.parametrize(
    ("code", "data", "words"),
    [
        (51, {"new_password": ""}, "password must be 1..64 printable characters"),
        (51, {"new_password": None}, "data.new_password must be a string or an integer"),
        (53, {"reg": ""}, "reg must be"),
        (54, {"version": "-1"}, "data.version must be >= 0"),
        (54, {"version": 2**31}, "version"),
        (55, {"fota": 2}, "data.fota must be 0 or 1"),
        (58, {"uconf": {"7": UART0}}, "uconf: UART id '7'"),
        (58, {"uconf": {"0": UART0}}, "conf.1.serialID must be one of the uconf keys ['0']"),
        (58, {"uconf": {"2": UART0 | {"baudrate": "1234"}}}, "uconf.2.baudrate"),
        (59, {"conf": {"1": TCP | {"port": "0"}}}, "conf.1.port"),
        (59, {"conf": []}, "data.conf must be a JSON object"),
        (60, {"apn": ["a", "b"]}, "data.apn must have 3 items"),
        (61, {"pins": ["1", "1", ""]}, "pins uses GPIO [1] for more than one role"),
        (61, {"pins": ["129", "", ""]}, "data.pins[0]"),
        (62, {"ota": "1"}, "data.ota must be 0 or 1"),
    ],
)
def test_a_refused_setting_names_the_field(code: int, data: Any, words: str) -> None:
    """A bad setting answers status 0 naming the field, with no new config."""
    outcome = run(code, data)
    assert words in error_of(outcome)
    assert outcome.diagnostic == Diagnostic(
        func_code=code, error_code=DiagnosticCode.DATA_PARSE_ERROR
    )


def test_a_refused_setting_never_quotes_the_new_password() -> None:
    """A refused password is not echoed in the error."""
    error = error_of(run(51, {"new_password": "bad\npass"}))
    assert "bad" not in error


def test_settings_accumulate_through_pending() -> None:
    """Two setting commands in a row both stick: the second builds on the first's result."""
    first = setting_of(run(51, {"new_password": "654321"}))
    second = setting_of(run(55, {"fota": 0}, pending=first))
    assert second.password == "654321"
    assert second.fota is False
    assert second == replace(CONFIG, password="654321", fota=False)


def test_a_refused_setting_leaves_pending_alone() -> None:
    """A refused setting returns no config, so the pending one stays as it was."""
    first = setting_of(run(54, {"version": 7}))
    outcome = run(61, {"pins": ["1", "1", ""]}, pending=first)
    assert outcome.new_config is None
    assert setting_of(run(62, {"ota": 0}, pending=first)).version == 7


def test_replace_all_replaces_everything_including_pending() -> None:
    """Code 63 returns exactly the given config, whatever was pending."""
    whole = CONFIG.to_json() | {"version": 9, "work_mode": "modbus", "nolog": 1}
    pending = with_password(CONFIG, "abcdef")
    new = setting_of(run(63, {"dtu_config": whole}, pending=pending))
    assert new == load_config(whole)
    assert new.password == PASSWORD
    assert new.work_mode is WorkMode.MODBUS


@pytest.mark.parametrize(
    ("dtu_config", "words"),
    [
        (CONFIG.to_json() | {"conf": {"1": TCP | {"port": "70000"}}}, "conf.1.port"),
        ({"work_mode": "command"}, "password"),
        (CONFIG.to_json() | {"colour": "red"}, "unknown keys ['colour']"),
        (CONFIG.to_json() | {"work_mode": "though"}, "work_mode"),
    ],
)
def test_replace_all_refuses_a_bad_config_naming_the_field(
    dtu_config: dict[str, Any], words: str
) -> None:
    """Code 63 with an invalid config answers status 0 naming the field, and changes nothing."""
    outcome = run(63, {"dtu_config": dtu_config})
    assert words in error_of(outcome)
    assert outcome.diagnostic == Diagnostic(
        func_code=63, error_code=DiagnosticCode.DATA_PARSE_ERROR
    )


@pytest.mark.parametrize(
    ("data", "words"), [({}, "data.dtu_config is missing"), ({"dtu_config": "x"}, "JSON object")]
)
def test_replace_all_needs_an_object(data: Any, words: str) -> None:
    """Code 63 without a dtu_config object is refused naming it."""
    assert words in error_of(run(63, data))


@pytest.mark.parametrize("code", [58, 59, 60, 61])
def test_serial_and_channel_settings_are_refused_in_passthrough(code: int) -> None:
    """Codes 58-61 are refused while the config in force is in passthrough mode (quec.md#6.15)."""
    through = replace(CONFIG, work_mode=WorkMode.PASSTHROUGH)
    outcome = run(code, VALID_DATA[CommandCode(code)], config=through, origin=Origin.SERIAL)
    assert "passthrough" in error_of(outcome)
    assert outcome.diagnostic == Diagnostic(
        func_code=code, error_code=DiagnosticCode.THROUGH_CHANNEL_ERROR
    )


def test_other_settings_work_in_passthrough() -> None:
    """In passthrough, 62 and 63 still work (63 is how to leave passthrough)."""
    through = replace(CONFIG, work_mode=WorkMode.PASSTHROUGH)
    assert setting_of(run(62, {"ota": 0}, config=through)).ota is False
    back = setting_of(run(63, {"dtu_config": CONFIG.to_json()}, config=through))
    assert back == CONFIG


def test_pins_in_any_number_under_the_firmware_switch() -> None:
    """Under any_pin_count a pin list of the wrong length reaches the config, which refuses it."""
    assert "data.pins must have 3 items" in error_of(run(61, {"pins": ["1"]}))
    assert "pins must hold 3 entries" in error_of(run(61, {"pins": ["1"]}, options=FIRMWARE))
    assert setting_of(run(61, {"pins": ["7", "8", "9"]}, options=FIRMWARE)) == with_pins(
        CONFIG, ["7", "8", "9"]
    )


# --- restart ---------------------------------------------------------------------------------


def test_restart_is_an_effect_without_a_reply() -> None:
    """Code 255 answers nothing and asks for a restart; it needs the password."""
    outcome = run(255, {})
    assert outcome.reply is None
    assert outcome.effects == (Restart(),)
    assert outcome.new_config is None
    assert error_of(run(255, password="wrong")) == PASSWORD_ERROR


def test_an_outcome_must_answer_or_act() -> None:
    """An Outcome with neither a reply nor an effect cannot exist."""
    with pytest.raises(ValueError, match="effect"):
        Outcome(reply=None)


# --- every request is answered -----------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 300) | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
NAMES = sorted({spec.name for specs in PARAMS.values() for spec in specs} | {"message"})
CODES = st.sampled_from([*CommandCode, 14, 99])


@settings(max_examples=400)
@given(
    CODES,
    JSON | st.dictionaries(st.sampled_from(NAMES), JSON, max_size=3),
    st.sampled_from([SEED, FIRMWARE]),
)
def test_every_request_is_answered_or_acted_on(
    code: int, data: Any, options: CommandOptions
) -> None:
    """Any code with any data answers with its code and msg_id echoed, or acts (50, 255)."""
    outcome = run(code, data, options=options, msg_id=42)
    if outcome.reply is None:
        assert code in (CommandCode.SEND_SMS, CommandCode.RESTART)
        assert len(outcome.effects) == 1
        return
    body = outcome.reply.body
    assert body["code"] == code
    assert body["msg_id"] == 42
    assert body["status"] in (0, 1)
    assert (body["status"] == 0) == (outcome.diagnostic is not None)
    if outcome.new_config is not None:
        assert load_config(outcome.new_config.to_json()) == outcome.new_config
