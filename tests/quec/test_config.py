"""dtu_config.json: the seed's examples load, bad values are refused by path, configs round-trip."""

from __future__ import annotations

import copy
import json
import string
import subprocess
import sys
from collections.abc import Callable
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vdtu.errors import ConfigError
from vdtu.firmware.quec.channel_schema import (
    CHANNEL_TYPES,
    AliyunChannel,
    AuthType,
    HttpChannel,
    HttpMethod,
    MqttChannel,
    QuecthingChannel,
    SendMode,
    TcpChannel,
    TxyunChannel,
    UdpChannel,
)
from vdtu.firmware.quec.config import (
    DtuConfig,
    default_config,
    load_config,
    replace_all,
    with_apn,
    with_conf,
    with_fota,
    with_nolog,
    with_ota,
    with_password,
    with_pins,
    with_plate,
    with_reg,
    with_service_acquire,
    with_uconf,
    with_version,
)
from vdtu.firmware.quec.frames import ChannelType, WorkMode
from vdtu.firmware.quec.serial_schema import BAUD_RATES, PORT_UARTS, UART_PORTS, Parity
from vdtu.identity import Identity
from vdtu.modbus.rtu import FunctionCode
from vdtu.uart.line import STANDARD_BAUDS
from vdtu.unit import DEFAULT_BAUDS

IMEI = "867435059800763"

# The seed's channel examples (docs/spec/quec.md#6.10 and #8.2-#8.8), transcribed as they
# stand: loose types, a leading/trailing space in a product key, "" for defaults. (The
# quecthing example is not valid JSON in the seed: a // comment and a trailing comma, #8.8.)
SEED_CHANNELS: dict[str, dict[str, Any]] = {
    "conf_59": {
        "protocol": "aliyun",
        "type": "mos",
        "keepAlive": "",
        "clientID": "0",
        "Devicename": "ec600n",
        "ProductKey": "gbh26bFEA4M",
        "DeviceSecret": "b7ff5acc0671d40adfd0eff57e7605f6",
        "ProductSecret": "",
        "cleanSession": True,
        "qos": "1",
        "subscribe": {"0": "/gbh26bFEA4M/ec600n/user/subtest"},
        "publish": {"0": "/gbh26bFEA4M/ec600n/user/pubtest"},
        "serialID": "0",
    },
    "http": {
        "protocol": "http",
        "method": "get",
        "url": "http://httpbin.org/get",
        "reg_data": "",
        "timeout": "",
        "serialID": 1,
    },
    "tcp": {
        "protocol": "tcp",
        "ping": "",
        "heartbeat": 30,
        "url": "220.180.239.212",
        "port": "8305",
        "keepAlive": 300,
        "serialID": 2,
    },
    "udp": {
        "protocol": "udp",
        "ping": "",
        "heartbeat": 30,
        "url": "220.180.239.212",
        "port": "8305",
        "keepAlive": 300,
        "serialID": 2,
    },
    "mqtt": {
        "protocol": "mqtt",
        "clientID": "test_mqtt",
        "keepAlive": 0,
        "url": "broker-cn.emqx.io",
        "port": "1883",
        "cleanSession": True,
        "subscribe": {"0": "/python/mqtt"},
        "publish": {"0": "/python/mqtt"},
        "qos": "0",
        "retain": "1",
        "serialID": "1",
    },
    "aliyun": {
        "protocol": "aliyun",
        "type": "mos",
        "keepAlive": "",
        "clientID": "test_mos",
        "Devicename": "light01",
        "ProductKey": "a1QNbCDxIWM",
        "DeviceSecret": "0bceb8010ade0df2e6989982e63f7601",
        "ProductSecret": "",
        "cleanSession": True,
        "qos": "1",
        "subscribe": {"0": "/a1QNbCDxIWM/light01/user/get"},
        "publish": {"0": "/a1QNbCDxIWM/light01/user/update"},
        "serialID": "1",
    },
    "txyun": {
        "protocol": "txyun",
        "type": "mos",
        "keepAlive": "",
        "clientID": "test_tx_mos",
        "Devicename": "Smart_test01",
        "ProductKey": "H7MBLRYXN9",
        "DeviceSecret": "89c7tXT3s3grZTr/YFjxSg==",
        "ProductSecret": "",
        "cleanSession": True,
        "qos": "1",
        "subscribe": {"0": "H7MBLRYXN9/Smart_test01/control"},
        "publish": {"0": "H7MBLRYXN9/Smart_test01/event"},
        "serialID": "1",
    },
    "quecthing": {
        "protocol": "quecthing",
        "keepAlive": "",
        "ProductKey": " a1QNbCDxIWM ",
        "ProductSecret": "",
        "qos": "1",
        "SessionFlag": "",
        "sendMode": "phy",
        "serialID": "1",
    },
}

SEED_UART = {"baudrate": "115200", "databits": "8", "parity": "0", "stopbits": "1", "flowctl": "0"}


def file_with(conf: dict[str, Any], **top: Any) -> dict[str, Any]:
    """A complete file in the seed's shape around ``conf``, UARTs 0, 1 and 2 configured."""
    data: dict[str, Any] = {
        "plate": 1,
        "password": "012345",
        "conf": conf,
        "reg": 0,
        "convert": 0,
        "version": 100,
        "nolog": 0,
        "message": {},
        "uconf": {uart: dict(SEED_UART) for uart in ("0", "1", "2")},
        "fota": 1,
        "ota": 1,
        "pins": ["1", "2", "3"],
        "direction_pin": {},
        "apn": ["", "", ""],
        "service_acquire": 0,
        "work_mode": "command",
        "auto_connect": 1,
        "offline_storage": True,
        "modbus": {},
    }
    data.update(top)
    return data


BASE = file_with(
    {str(n): copy.deepcopy(ch) for n, ch in enumerate(SEED_CHANNELS.values(), start=1)},
    modbus={
        "groups": [
            {
                "device_type": "temp_humid_sensor",
                "device_model": "TH10S-B",
                "slave_address": ["0x01"],
            },
            {
                "device_type": "light_sensor",
                "device_model": "YGC-BG-M",
                "slave_address": ["0x02", "0x03"],
            },
        ],
        "poll": [
            {"slave": 1, "function": 3, "start": 0, "count": 2, "interval_s": 10},
            {"group": 1, "function": 4, "start": 0, "count": 1, "interval_s": 5, "channel": "5"},
        ],
    },
    direction_pin={"1": {"GPIOn": 24, "direction": 1}},
)
"""Every seed channel (conf 1 = the code 59 sample of quec.md#6.10, 2 http, 3 tcp, 4 udp,
5 mqtt, 6 aliyun, 7 txyun, 8 quecthing), two Modbus groups and two poll entries."""

# A v2-firmware-shaped file (the keys of docs/spec/quec.md#7.2 in the forms of the v2
# firmware's shipped dtu_config.json: channel "3", serialID as a number, ota, "offline_storage": 1).
V2_FILE: dict[str, Any] = {
    "plate": 1,
    "password": "123",
    "conf": {
        "3": {
            "protocol": "mqtt",
            "clientID": "dtu_device1",
            "keepAlive": "",
            "url": "mq.example.com",
            "port": "1883",
            "cleanSession": "0",
            "subscribe": {"0": "/dtu/device1/down"},
            "publish": {"0": "/dtu/device1/up", "1": "/dtu/device1/up2"},
            "qos": "1",
            "retain": "0",
            "serialID": 2,
        }
    },
    "reg": 0,
    "convert": 0,
    "version": 100,
    "nolog": 0,
    "message": {},
    "uconf": {"2": dict(SEED_UART)},
    "fota": 1,
    "ota": 1,
    "pins": ["1", "2", "3"],
    "direction_pin": {},
    "apn": ["", "", ""],
    "service_acquire": 0,
    "work_mode": "through",
    "auto_connect": 1,
    "offline_storage": 1,
    "modbus": {},
}


def test_every_seed_channel_example_loads_with_typed_values() -> None:
    """Each of the seed's channel dicts loads; loose values come out typed."""
    config = load_config(BASE)
    sample, http, tcp, udp, mqtt, aliyun, txyun, quec = (config.conf[str(n)] for n in range(1, 9))
    assert isinstance(sample, AliyunChannel)
    assert (sample.auth_type, sample.serial_id, sample.qos) == (AuthType.MOS, "0", 1)
    assert sample.keep_alive_s is None
    assert sample.effective_keep_alive_s == 300
    assert isinstance(http, HttpChannel)
    assert (http.method, http.serial_id, http.timeout_s, http.effective_timeout_s) == (
        HttpMethod.GET,
        "1",
        None,
        30,
    )
    assert isinstance(tcp, TcpChannel)
    assert isinstance(udp, UdpChannel)
    for socket in (tcp, udp):
        assert (socket.port, socket.heartbeat_s, socket.keep_alive_s, socket.serial_id) == (
            8305,
            30,
            300,
            "2",
        )
    assert isinstance(mqtt, MqttChannel)
    assert (mqtt.port, mqtt.qos, mqtt.retain, mqtt.clean_session) == (1883, 0, True, True)
    assert (mqtt.keep_alive_s, mqtt.effective_keep_alive_s) == (0, 0)
    assert dict(mqtt.publish) == {"0": "/python/mqtt"}
    assert isinstance(aliyun, AliyunChannel)
    assert isinstance(txyun, TxyunChannel)
    assert txyun.device_secret == "89c7tXT3s3grZTr/YFjxSg=="
    assert isinstance(quec, QuecthingChannel)
    assert quec.product_key == "a1QNbCDxIWM"
    assert (quec.session_flag, quec.send_mode, quec.effective_keep_alive_s) == (
        False,
        SendMode.PHY,
        120,
    )
    assert [channel.protocol for channel in config.conf.values()] == [
        ChannelType.ALIYUN,
        ChannelType.HTTP,
        ChannelType.TCP,
        ChannelType.UDP,
        ChannelType.MQTT,
        ChannelType.ALIYUN,
        ChannelType.TXYUN,
        ChannelType.QUECTHING,
    ]


def test_the_top_level_keys_load_typed() -> None:
    """Switches become bools, uconf values ints, Modbus addresses ints, the poll table typed."""
    config = load_config(BASE)
    assert (config.plate, config.fota, config.ota, config.nolog) == (True, True, True, False)
    assert (config.work_mode, config.version, config.pins) == (WorkMode.COMMAND, 100, (1, 2, 3))
    uart = config.uconf["2"]
    assert (uart.baudrate, uart.databits, uart.parity, uart.stopbits, uart.flowctl) == (
        115200,
        8,
        Parity.NONE,
        1,
        0,
    )
    assert [group.slave_addresses for group in config.modbus.groups] == [(1,), (2, 3)]
    first, second = config.modbus.poll
    assert (first.slave, first.function, first.count, first.interval_s) == (
        1,
        FunctionCode.READ_HOLDING_REGISTERS,
        2,
        10.0,
    )
    assert (first.serial_id, first.channel) == (PORT_UARTS["rs485"], None)
    assert (second.group, second.channel) == (1, "5")
    assert config.direction_pin["1"].gpio == 24
    assert not config.apn.in_use
    assert config.message is None


def test_the_v2_firmware_file_shape_loads() -> None:
    """The v2 firmware's file (channel "3" on UART 2, numeric serialID, ota, offline 1) loads."""
    config = load_config(V2_FILE)
    channel = config.conf["3"]
    assert isinstance(channel, MqttChannel)
    assert (channel.serial_id, channel.clean_session, channel.qos) == ("2", False, 1)
    assert dict(channel.publish) == {"0": "/dtu/device1/up", "1": "/dtu/device1/up2"}
    assert (config.work_mode, config.offline_storage, config.ota) == (
        WorkMode.PASSTHROUGH,
        True,
        True,
    )
    assert config.modbus.groups == ()
    assert config.channels_on("2") == ("3",)
    assert config.port_of("2") == "uart"


def test_missing_optional_keys_take_the_empty_value_of_their_type() -> None:
    """Only password and work_mode are required; the rest default as the v1 firmware does."""
    config = load_config({"password": "123", "work_mode": "through"})
    assert (config.conf, config.uconf, config.pins) == ({}, {}, (None, None, None))
    assert (config.ota, config.offline_storage, config.version, config.reg) == (False, False, 0, 0)
    assert config.to_json()["modbus"] == {"groups": []}


def test_round_trip_keeps_the_seed_forms() -> None:
    """to_json writes the seed's forms, and loading it gives the same config back."""
    config = load_config(BASE)
    data = config.to_json()
    assert load_config(data) == config
    assert load_config(json.dumps(data)) == config
    assert data["conf"]["3"] == {
        "protocol": "tcp",
        "ping": "",
        "heartbeat": 30,
        "url": "220.180.239.212",
        "port": "8305",
        "keepAlive": 300,
        "serialID": "2",
    }
    assert data["conf"]["8"]["ProductKey"] == "a1QNbCDxIWM"
    assert data["conf"]["8"]["SessionFlag"] is False
    assert data["conf"]["1"]["keepAlive"] == ""
    assert data["uconf"]["0"] == SEED_UART
    assert data["modbus"]["groups"][1]["slave_address"] == ["0x02", "0x03"]
    assert data["modbus"]["poll"][0] == {
        "slave": 1,
        "function": 3,
        "start": 0,
        "count": 2,
        "interval_s": 10.0,
        "serialID": "1",
    }
    assert (data["plate"], data["ota"], data["offline_storage"]) == (1, 1, True)
    assert "username" not in data["conf"]["5"]


class _Delete:
    """The marker's repr is fixed, so the test ids are the same in every process (xdist)."""

    def __repr__(self) -> str:
        return "DELETE"


DELETE = _Delete()


def mutated(path: str, value: object) -> dict[str, Any]:
    """A copy of ``BASE`` with the value at dotted ``path`` replaced (``DELETE``: removed)."""
    data = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    node: Any = data
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


BAD = [
    ("password", DELETE, "dtu_config: missing required keys ['password']"),
    ("pasword", "x", "dtu_config: unknown keys ['pasword']; allowed: ['apn', 'auto_connect'"),
    (
        "work_mode",
        "though",
        "work_mode must be one of ['command', 'modbus', 'through'], not 'though' (a typo",
    ),
    (
        "work_mode",
        "transparent",
        "work_mode must be one of ['command', 'modbus', 'through'], not 'transparent'",
    ),
    ("conf.3.port", "0", "conf.3.port must be 1..65535, not 0"),
    (
        "conf.3.port",
        "80a",
        "conf.3.port must be an integer (a number or a string of digits), not '80a'",
    ),
    (
        "conf.3.port",
        True,
        "conf.3.port must be an integer (a number or a string of digits), not True",
    ),
    ("conf.5.qos", "2", "conf.5.qos must be one of [0, 1], not 2"),
    ("conf.5.cleanSession", "yes", "conf.5.cleanSession must be true/false, 0/1"),
    (
        "conf.5.keepAlive",
        -1,
        'conf.5.keepAlive must be 0..65535 seconds, or "" for the default 60; not -1',
    ),
    (
        "conf.6.keepAlive",
        "30",
        'conf.6.keepAlive must be 60..1200 seconds, or "" for the default 300; not 30',
    ),
    ("conf.8.keepAlive", 1201, "conf.8.keepAlive must be 60..1200 seconds"),
    ("conf.4.keepAlive", 601, "conf.4.keepAlive must be 60..600 seconds"),
    ("conf.4.keepAlive", "forever", "conf.4.keepAlive must be an integer"),
    ("conf.5.publish", {}, "conf.5.publish must hold at least one topic"),
    (
        "conf.5.publish.0",
        "a/+/b",
        "conf.5.publish.0 is a publish topic: it must not contain + or #",
    ),
    ("conf.5.subscribe.0", "a/#/b", "conf.5.subscribe.0 must use + only as a whole level"),
    ("conf.5.subscribe", {"x": "a/b"}, "conf.5.subscribe: topic id 'x' must be a topic id"),
    # a list holding text is described, not quoted: it could hold a secret (issue 9)
    (
        "conf.5.subscribe",
        ["a/b"],
        "conf.5.subscribe must be a JSON object, not a list of 1 items (not shown)",
    ),
    (
        "conf.5.serialID",
        "5",
        "conf.5.serialID must be one of the uconf keys ['0', '1', '2'], not '5'",
    ),
    ("conf.5.serialID", "01", "conf.5.serialID must be a UART id: a string of digits"),
    ("conf.5.serialID", 1.5, "conf.5.serialID must be a string of digits such as '1'"),
    ("conf.5.protocol", "hwyun", "conf.5.protocol 'hwyun' (Huawei cloud) is in the firmware"),
    ("conf.5.protocol", "ftp", "conf.5.protocol must be one of ['http', 'tcp', 'udp', 'mqtt'"),
    ("conf.5.protocl", "mqtt", "conf.5: unknown keys ['protocl'] for protocol 'mqtt'; allowed: ["),
    ("conf.5.url", DELETE, "conf.5: missing required keys ['url'] for protocol 'mqtt'"),
    ("conf.6.DeviceSecret", "", "conf.6.DeviceSecret must not be empty when type is 'mos'"),
    ("conf.6.type", "tas", "conf.6.ProductSecret must not be empty when type is 'tas'"),
    ("conf.6.type", "abc", "conf.6.type must be one of ['mos', 'tas'], not 'abc'"),
    ("conf.6.clientID", "x" * 65, "conf.6.clientID must be at most 64 characters"),
    ("conf.6.ProductKey", "", "conf.6.ProductKey must not be empty"),
    ("conf.7.DeviceSecret", "not_base64!!", "conf.7.DeviceSecret must be base64"),
    ("conf.2.url", "ftp://x", "conf.2.url must be an http:// or https:// URL"),
    (
        "conf.2.method",
        "fetch",
        "conf.2.method must be one of ['get', 'post', 'put', 'delete', 'head'], not 'fetch'",
    ),
    ("conf.2.timeout", 0, "conf.2.timeout must be 1..300 seconds, not 0"),
    ("conf.3.ping", "hi there", "conf.3.ping must be 1..64 letters and digits"),
    ("conf.3.heartbeat", -5, "conf.3.heartbeat must be 0..86400 seconds, not -5"),
    ("conf.3.url", "tcp://1.2.3.4", "conf.3.url must be a host name or IP address"),
    ("conf.8.sendMode", "raw", "conf.8.sendMode must be one of ['phy', 'pass'], not 'raw'"),
    ("conf.8.SessionFlag", "maybe", "conf.8.SessionFlag must be true/false"),
    ("conf.x", SEED_CHANNELS["mqtt"], "conf: channel id 'x' must be a channel id"),
    ("conf", [], "conf must be a JSON object, not []"),
    ("uconf.2.baudrate", "12345", "uconf.2.baudrate must be one of [300, 600, 1200"),
    ("uconf.2.databits", "9", "uconf.2.databits must be 5..8, not 9"),
    ("uconf.2.parity", "3", "uconf.2.parity must be 0 (none), 1 (even) or 2 (odd), not 3"),
    ("uconf.2.stopbits", "0", "uconf.2.stopbits must be one of [1, 2], not 0"),
    ("uconf.2.flowctl", 2, "uconf.2.flowctl must be one of [0, 1], not 2"),
    ("uconf.2.baudrat", "9600", "uconf.2: unknown keys ['baudrat']; allowed: ['baudrate'"),
    ("uconf.2.flowctl", DELETE, "uconf.2: missing required keys ['flowctl']"),
    (
        "uconf.7",
        SEED_UART,
        "uconf: UART id '7' must be one of ['0', '1', '2'] (the unit's ports: 0 = rs232",
    ),
    (
        "pins",
        ["1", "2"],
        "pins must hold 3 entries [network LED, server connected, reset parameters], not 2",
    ),
    ("pins.1", "gpio5", "pins.1 must be a GPIO number 1..128 such as '1' (or 'pio1')"),
    ("pins", ["1", "1", ""], "pins uses GPIO [1] for more than one role"),
    ("pins.2", "200", "pins.2 must be 1..128, not 200"),
    (
        "apn",
        ["cmnet", "user"],
        "apn must be a list of 3 strings [apn, user, password], not a list of 2",
    ),
    ("apn.0", 5, "apn.0 must be a string, not 5"),
    ("ota", ["uid", "EC600N", "pk"], "ota must be 0 or 1 (the v2 firmware's switch"),
    ("fota", 2, "fota must be true/false, 0/1"),
    ("version", "v1", "version must be an integer (a number or a string of digits), not 'v1'"),
    ("version", -1, "version must be 0..2147483647, not -1"),
    ("reg", "", 'reg must be 0, 1 or a registration message string, not ""'),
    ("reg", 2, "reg must be one of [0, 1], not 2"),
    ("message", {"number": "abc", "sms_msg": "hi"}, "message.number must be 1..31 digits"),
    (
        "direction_pin",
        {"3": {"GPIOn": 3, "direction": 1}},
        "direction_pin: UART id '3' must be one of the uconf keys",
    ),
    ("direction_pin.1.GPIOn", 200, "direction_pin.1.GPIOn must be 1..128, not 200"),
    ("direction_pin.1.direction", 2, "direction_pin.1.direction must be one of [0, 1], not 2"),
    (
        "modbus.groups.0.slave_address.0",
        "01",
        "modbus.groups.0.slave_address.0 must be a hex string such as '0x01'",
    ),
    (
        "modbus.groups.0.slave_address.0",
        "0xF8",
        "modbus.groups.0.slave_address.0 must be 1..247, not 248",
    ),
    (
        "modbus.groups.0.slave_address",
        [],
        "modbus.groups.0.slave_address must list at least one address",
    ),
    (
        "modbus.groups.1.slave_address",
        ["0x02", "0x02"],
        "modbus.groups.1.slave_address lists [2] more than once",
    ),
    ("modbus.gruops", [], "modbus: unknown keys ['gruops']; allowed: ['groups', 'poll']"),
    ("modbus.poll.0.function", 5, "modbus.poll.0.function must be 1 (coils), 2 (discrete inputs)"),
    ("modbus.poll.0.count", 126, "modbus.poll.0.count must be 1..125 for function 3, not 126"),
    (
        "modbus.poll.0.start",
        65535,
        "modbus.poll.0.count 2 from start 65535 runs past address 65535",
    ),
    (
        "modbus.poll.0.interval_s",
        0,
        "modbus.poll.0.interval_s must be a number of seconds > 0, not 0.0",
    ),
    (
        "modbus.poll.0.interval_s",
        "10",
        "modbus.poll.0.interval_s must be a number of seconds, not '10'",
    ),
    (
        "modbus.poll.0.group",
        0,
        "modbus.poll.0.slave: give exactly one of slave (an address 1..247) or group",
    ),
    ("modbus.poll.0.slave", 0, "modbus.poll.0.slave must be 1..247, not 0"),
    (
        "modbus.poll.1.group",
        5,
        "modbus.poll.1.group must be the index of one of the 2 modbus groups (0..1), not 5",
    ),
    ("modbus.poll.1.channel", "9", "modbus.poll.1.channel must be one of the conf keys ['1', '2'"),
    ("modbus.poll.0.serialID", "0x1", "modbus.poll.0.serialID must be a UART id"),
]


@pytest.mark.parametrize(
    ("path", "value", "message"), BAD, ids=[f"{p}={v!r}"[:60] for p, v, _ in BAD]
)
def test_bad_values_are_refused_naming_the_path(path: str, value: object, message: str) -> None:
    """Each kind of bad value gives a ConfigError naming its field path, the value and the rule."""
    with pytest.raises(ConfigError) as caught:
        load_config(mutated(path, value))
    assert message in str(caught.value)


def test_a_poll_on_a_uart_without_a_channel_needs_one() -> None:
    """A poll entry on a UART no channel is bound to must name the channel its readings go to."""
    data = mutated("modbus.poll.0.serialID", "0")
    data["conf"]["1"]["serialID"] = "1"
    with pytest.raises(ConfigError) as caught:
        load_config(data)
    assert "modbus.poll.0.channel is needed: no channel in conf is bound to serialID '0'" in str(
        caught.value
    )
    data["modbus"]["poll"][0]["channel"] = "5"
    assert load_config(data).modbus.poll[0].channel == "5"


SECRETS = [
    ("conf.6.DeviceSecret", "s3cr et", "conf.6.DeviceSecret must not contain whitespace"),
    ("conf.7.DeviceSecret", "s3cr€t", "conf.7.DeviceSecret must be base64"),
    ("conf.6.ProductSecret", ["s3cret"], "conf.6.ProductSecret must be a string, not a list"),
    ("password", "s3cr\u0007t", "password must be 1..64 printable characters"),
    ("password", ["s3cret"], "password must be a string (or an integer), not a list"),
    ("apn.2", "s3cret" * 20, "apn.2 must be at most 64 printable characters"),
    ("apn", ["cmnet", "u", "s3cret", "x"], "apn must be a list of 3 strings"),
]


@pytest.mark.parametrize(("path", "secret", "message"), SECRETS)
def test_secrets_are_never_quoted(path: str, secret: object, message: str) -> None:
    """Errors about passwords and secrets name the field but do not show the value."""
    with pytest.raises(ConfigError) as caught:
        load_config(mutated(path, secret))
    assert message in str(caught.value)
    assert "s3cr" not in str(caught.value)


def test_repr_hides_secrets() -> None:
    """The repr of a config shows no password or secret."""
    data = mutated("password", "s3cret0")
    data["apn"] = ["cmnet", "user", "s3cret1"]
    data["conf"]["6"]["DeviceSecret"] = "s3cret2"
    data["conf"]["6"]["ProductSecret"] = "s3cret3"
    data["conf"]["5"].update(username="u", password="s3cret4")
    config = load_config(data)
    assert "s3cret" not in repr(config)
    assert config.to_json()["conf"]["5"]["password"] == "s3cret4"


def test_json_text_errors_give_line_and_column() -> None:
    """Broken JSON text is refused with its line and column; a repeated key is refused too."""
    with pytest.raises(ConfigError) as caught:
        load_config('{"password": "1",\n "work_mode": command}')
    assert "not valid JSON: Expecting value at line 2 column 15" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        load_config('{"password": "1", "work_mode": "command", "password": "2"}')
    assert "key 'password' appears twice in one object" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        load_config('{"password": "1", "work_mode": "command", "version": ' + "9" * 5000 + "}")
    assert "dtu_config.json is not usable JSON" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        load_config("[1, 2]")
    assert "dtu_config must be a JSON object, not [1, 2]" in str(caught.value)


def value_at(data: object, path: str) -> object:
    """The value at dotted ``path`` in parsed JSON."""
    for key in path.split("."):
        data = data[int(key)] if isinstance(data, list) else cast("dict[str, object]", data)[key]
    return data


LOOSE = [
    # path, loose value in the file, canonical value to_json writes back
    ("conf.5.cleanSession", 1, True),
    ("conf.5.cleanSession", "0", False),
    ("conf.5.cleanSession", "true", True),
    ("conf.5.retain", True, "1"),
    ("conf.5.keepAlive", " ", ""),
    ("conf.5.keepAlive", "45", 45),
    ("conf.5.port", 8883, "8883"),
    ("conf.5.qos", 1, "1"),
    ("conf.5.serialID", 1, "1"),
    ("conf.2.method", "POST", "post"),
    ("conf.5.protocol", "MQTT", "mqtt"),
    ("conf.6.ProductKey", " a1QNbCDxIWM ", "a1QNbCDxIWM"),
    ("conf.8.SessionFlag", "1", True),
    ("uconf.2.baudrate", 9600, "9600"),
    ("uconf.2.parity", 2, "2"),
    ("pins", ["pio4", 5, ""], ["4", "5", ""]),
    ("modbus.groups.0.slave_address", ["0x0A", 11], ["0x0a", "0x0b"]),
    ("reg", "1", 1),
    ("reg", True, 1),
    ("reg", "hello", "hello"),
    ("plate", "false", 0),
    ("offline_storage", 0, False),
    ("password", 123, "123"),
    ("version", "101", 101),
    ("message", {"number": "+8613800000000", "sms_msg": "hi"}, None),
    ("apn", ["cmnet", "u", "p"], ["cmnet", "u", "p"]),
]


@pytest.mark.parametrize(
    ("path", "loose", "written"), LOOSE, ids=[f"{p}={v!r}" for p, v, _ in LOOSE]
)
def test_loose_forms_normalise(path: str, loose: object, written: object) -> None:
    """Each loose form the seed uses reads as its typed value and is written back in one form."""
    data = load_config(mutated(path, loose)).to_json()
    assert value_at(data, path) == (loose if written is None else written)


def test_default_config_is_a_working_mqtt_unit() -> None:
    """The default config: password = IMEI's last six, topics and client id with the IMEI."""
    imei = Identity.for_unit(0, 7).imei
    config = default_config(imei, broker_host="127.0.0.1", broker_port=41883)
    assert config.password == imei[-6:]
    assert config.work_mode is WorkMode.COMMAND
    (channel_id, channel), *others = config.conf.items()
    assert (channel_id, others) == ("1", [])
    assert isinstance(channel, MqttChannel)
    assert (channel.url, channel.port, channel.client_id, channel.qos) == (
        "127.0.0.1",
        41883,
        imei,
        1,
    )
    assert dict(channel.subscribe) == {"0": f"quec/{imei}/down"}
    assert dict(channel.publish) == {"0": f"quec/{imei}/up"}
    assert config.port_of(channel.serial_id) == "uart"
    assert config.offline_storage
    assert [group.slave_addresses for group in config.modbus.groups] == [(1,)]
    assert {config.port_of(u): uart.baudrate for u, uart in config.uconf.items()} == dict(
        DEFAULT_BAUDS
    )
    assert load_config(config.to_json()) == config
    assert load_config(json.dumps(config.to_json())) == config


def test_default_config_takes_a_broker_login_and_refuses_bad_arguments() -> None:
    """A broker login goes into the channel; a bad IMEI or port is refused."""
    config = default_config(
        IMEI, broker_host="h", broker_port=1, broker_username="u", broker_password="p"
    )
    channel = config.conf["1"]
    assert isinstance(channel, MqttChannel)
    assert (channel.username, channel.password) == ("u", "p")
    assert channel.to_json()["username"] == "u"
    assert load_config(config.to_json()) == config
    with pytest.raises(ValueError, match="imei must be 15 digits, not '12345'"):
        default_config("12345", broker_host="h", broker_port=1883)
    with pytest.raises(ConfigError, match=r"conf\.1\.port must be 1\.\.65535, not 0"):
        default_config(IMEI, broker_host="h", broker_port=0)
    with pytest.raises(ConfigError, match=r"conf\.1\.url must be a host name"):
        default_config(IMEI, broker_host="mqtt://h", broker_port=1883)
    with pytest.raises(ConfigError, match=r"conf\.1\.password needs a username"):
        default_config(IMEI, broker_host="h", broker_port=1883, broker_password="p")


def test_uart_ports_cover_the_unit_and_the_baud_rates_the_lines_know() -> None:
    """UART_PORTS names each of the unit's ports once; every standard line rate is allowed."""
    assert sorted(UART_PORTS.values()) == sorted(DEFAULT_BAUDS)
    assert {PORT_UARTS[port] for port in DEFAULT_BAUDS} == set(UART_PORTS)
    assert set(STANDARD_BAUDS) <= set(BAUD_RATES)
    assert set(CHANNEL_TYPES) == set(ChannelType) - {ChannelType.HWYUN}


UART_2 = {
    "2": {"baudrate": "9600", "databits": "8", "parity": "2", "stopbits": "1", "flowctl": "0"}
}
TCP = {"1": {"protocol": "tcp", "url": "10.0.0.1", "port": 9000, "serialID": "2"}}
WITH = [
    (
        with_password,
        "654321",
        lambda c: c.password,
        "654321",
        "",
        "password must be 1..64 printable",
    ),
    (with_password, 654321, lambda c: c.password, "654321", None, "password must be a string"),
    (with_plate, 1, lambda c: c.plate, True, "x", "plate must be true/false"),
    (with_reg, "hello", lambda c: c.reg, "hello", 2, "reg must be one of [0, 1], not 2"),
    (with_version, "101", lambda c: c.version, 101, "v2", "version must be an integer"),
    (with_fota, 0, lambda c: c.fota, False, 3, "fota must be true/false"),
    (with_nolog, 1, lambda c: c.nolog, True, [1], "nolog must be true/false"),
    (with_service_acquire, "1", lambda c: c.service_acquire, True, "on", "service_acquire must be"),
    (with_ota, 0, lambda c: c.ota, False, ["u", "m", "pk"], "ota must be 0 or 1"),
    (
        with_apn,
        ["cmnet", "u", "p"],
        lambda c: (c.apn.name, c.apn.in_use),
        ("cmnet", True),
        ["a"],
        "apn must be a list of 3",
    ),
    (
        with_pins,
        ["4", "5", ""],
        lambda c: c.pins,
        (4, 5, None),
        ["4", "4", "5"],
        "pins uses GPIO [4]",
    ),
    (
        with_uconf,
        UART_2,
        lambda c: (list(c.uconf), c.uconf["2"].parity),
        (["2"], Parity.ODD),
        {"0": UART_2["2"]},
        "conf.1.serialID must be one of the uconf keys ['0'], not '2'",
    ),
    (
        with_conf,
        TCP,
        lambda c: c.conf["1"].protocol,
        ChannelType.TCP,
        {"1": {**TCP["1"], "port": 0}},
        "conf.1.port must be 1..65535, not 0",
    ),
]


@pytest.mark.parametrize(
    ("change", "good", "read", "expected", "bad", "message"),
    WITH,
    ids=[f"{row[0].__name__}" + ("_int" if row[1] == 654321 else "") for row in WITH],
)
def test_setting_commands_change_one_field_and_validate(
    change: Callable[[DtuConfig, object], DtuConfig],
    good: object,
    read: Callable[[DtuConfig], object],
    expected: object,
    bad: object,
    message: str,
) -> None:
    """Each with_* function returns a new config with one field changed, or refuses naming it."""
    config = default_config(IMEI, broker_host="127.0.0.1", broker_port=1883)
    changed = change(config, good)
    assert read(changed) == expected
    assert changed != config
    assert config == default_config(IMEI, broker_host="127.0.0.1", broker_port=1883)
    fields_changed = {k for k, v in changed.to_json().items() if config.to_json()[k] != v}
    assert len(fields_changed) == 1
    assert load_config(changed.to_json()) == changed
    with pytest.raises(ConfigError) as caught:
        change(config, bad)
    assert message in str(caught.value)


def test_replace_all_reads_a_whole_config() -> None:
    """Code 63 replaces the whole config with a validated one, or refuses it by path."""
    assert replace_all(BASE) == load_config(BASE)
    with pytest.raises(ConfigError, match="dtu_config must be a JSON object, not 'x'"):
        replace_all("x")
    with pytest.raises(ConfigError, match=r"conf\.3\.port must be 1\.\.65535, not 70000"):
        replace_all(mutated("conf.3.port", 70000))


def test_direct_construction_is_validated_too() -> None:
    """A channel built in Python is checked like one read from a file."""
    with pytest.raises(ConfigError, match=r"port must be 1\.\.65535, not 0"):
        TcpChannel(url="h", port=0, serial_id="1")
    with pytest.raises(ConfigError, match="DeviceSecret must be base64"):
        TxyunChannel(
            auth_type=AuthType.MOS,
            device_name="d",
            product_key="p",
            device_secret="%%%",
            publish={"0": "t"},
            serial_id="1",
        )
    config = default_config(IMEI, broker_host="h", broker_port=1883)
    with pytest.raises(ConfigError, match=r"conf\.1\.serialID must be one of the uconf keys"):
        DtuConfig(password="1", work_mode=WorkMode.COMMAND, conf=config.conf)


def test_pure_module_imports_no_io_library() -> None:
    """Importing the config module pulls in no I/O, scheduler or UI library."""
    forbidden = ["simpy", "serial", "pexpect", "paho", "amqtt", "textual", "asyncio"]
    code = (
        "import sys, vdtu.firmware.quec.config; "
        f"print(','.join(m for m in {forbidden!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


# --- properties ---------------------------------------------------------------------------


def loose_int(low: int, high: int) -> st.SearchStrategy[object]:
    """An integer in range, as a JSON number or as a string of its digits."""
    return st.integers(low, high).flatmap(lambda n: st.sampled_from([n, str(n)]))


FLAGS = st.sampled_from([True, False, 0, 1, "0", "1", "true", "false"])
NAMES = st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=12)
HOSTS = st.from_regex(r"[a-z][a-z0-9.-]{0,20}", fullmatch=True)
UARTS = st.sampled_from(["0", "1", "2", 0, 1, 2])
TOPICS = st.lists(NAMES, min_size=1, max_size=4).map("/".join)
TOPIC_MAPS = st.dictionaries(st.integers(0, 20).map(str), TOPICS, min_size=1, max_size=3)
KEEPALIVE = st.one_of(st.sampled_from(["", " "]), loose_int(60, 600))

MQTT_LIKE = {
    "keepAlive": KEEPALIVE,
    "clientID": NAMES,
    "cleanSession": FLAGS,
    "qos": loose_int(0, 1),
    "subscribe": TOPIC_MAPS,
}
CHANNELS = st.one_of(
    st.fixed_dictionaries(
        {
            "protocol": st.just("http"),
            "method": st.sampled_from(["get", "post", "PUT"]),
            "url": HOSTS.map(lambda h: f"http://{h}/x"),
            "serialID": UARTS,
        },
        optional={
            "reg_data": st.text(max_size=10),
            "timeout": st.one_of(st.just(""), loose_int(1, 300)),
        },
    ),
    st.fixed_dictionaries(
        {
            "protocol": st.sampled_from(["tcp", "udp"]),
            "url": HOSTS,
            "port": loose_int(1, 65535),
            "serialID": UARTS,
        },
        optional={
            "ping": st.from_regex(r"[a-z0-9]{0,6}", fullmatch=True),
            "heartbeat": loose_int(0, 600),
            "keepAlive": KEEPALIVE,
        },
    ),
    st.fixed_dictionaries(
        {"protocol": st.just("mqtt"), "url": HOSTS, "publish": TOPIC_MAPS, "serialID": UARTS},
        optional={
            **MQTT_LIKE,
            "port": loose_int(1, 65535),
            "retain": FLAGS,
            "keepAlive": st.one_of(st.just(""), loose_int(0, 65535)),
        },
    ),
    st.fixed_dictionaries(
        {
            "protocol": st.sampled_from(["aliyun", "txyun"]),
            "type": st.just("mos"),
            "Devicename": NAMES,
            "ProductKey": NAMES,
            "DeviceSecret": st.just("89c7tXT3s3grZTr/YFjxSg=="),
            "publish": TOPIC_MAPS,
            "serialID": UARTS,
        },
        optional={**MQTT_LIKE, "ProductSecret": NAMES},
    ),
    st.fixed_dictionaries(
        {"protocol": st.just("quecthing"), "ProductKey": NAMES, "serialID": UARTS},
        optional={
            "keepAlive": KEEPALIVE,
            "ProductSecret": NAMES,
            "Devicename": NAMES,
            "DeviceSecret": NAMES,
            "qos": loose_int(0, 1),
            "SessionFlag": st.one_of(st.just(""), FLAGS),
            "sendMode": st.sampled_from(["phy", "pass"]),
        },
    ),
)
UCONF = st.fixed_dictionaries(
    {
        "baudrate": st.sampled_from(BAUD_RATES).flatmap(lambda b: st.sampled_from([b, str(b)])),
        "databits": loose_int(5, 8),
        "parity": loose_int(0, 2),
        "stopbits": loose_int(1, 2),
        "flowctl": loose_int(0, 1),
    }
)
POLL = st.fixed_dictionaries(
    {
        "slave": st.integers(1, 247),
        "function": st.integers(1, 4),
        "start": st.integers(0, 1000),
        "count": st.integers(1, 125),
        "interval_s": st.floats(0.01, 3600),
        "channel": st.just("1"),
    },
    optional={"serialID": UARTS},
)
FILES = st.fixed_dictionaries(
    {
        "password": st.text(string.digits + string.ascii_letters, min_size=1, max_size=12),
        "work_mode": st.sampled_from(["command", "modbus", "through"]),
        "conf": st.lists(CHANNELS, min_size=1, max_size=4).map(
            lambda chans: {str(i + 1): c for i, c in enumerate(chans)}
        ),
        "uconf": st.fixed_dictionaries({"0": UCONF, "1": UCONF, "2": UCONF}),
    },
    optional={
        "plate": FLAGS,
        "reg": st.one_of(loose_int(0, 1), st.just("custom registration")),
        "version": loose_int(0, 10**6),
        "fota": FLAGS,
        "ota": FLAGS,
        "offline_storage": FLAGS,
        "pins": st.sampled_from([["1", "2", "3"], ["", "", ""], ["pio1", "", 5], [4, "pio5", "6"]]),
        "apn": st.lists(NAMES, min_size=3, max_size=3),
        "modbus": st.fixed_dictionaries(
            {
                "groups": st.just([{"slave_address": ["0x01", 2]}]),
                "poll": st.lists(POLL, max_size=2),
            }
        ),
    },
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(FILES)
def test_any_valid_file_round_trips(data: dict[str, Any]) -> None:
    """Whatever loose forms a valid file uses, to_json reloads to the same config and is stable."""
    config = load_config(data)
    written = config.to_json()
    assert load_config(written) == config
    assert load_config(json.dumps(written)) == config
    assert load_config(written).to_json() == written


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats() | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


def leaf_paths(node: object, prefix: str = "") -> list[str]:
    """Every dotted path into ``node``, objects and lists included."""
    if isinstance(node, dict):
        items: list[tuple[str, object]] = list(node.items())
    elif isinstance(node, list):
        items = [(str(i), v) for i, v in enumerate(node)]
    else:
        return []
    paths = []
    for key, value in items:
        path = f"{prefix}.{key}" if prefix else key
        paths.append(path)
        paths.extend(leaf_paths(value, path))
    return paths


@settings(max_examples=300)
@given(st.sampled_from(leaf_paths(BASE)), JSON_VALUES)
def test_any_value_anywhere_loads_or_is_a_config_error(path: str, value: object) -> None:
    """Garbage at any place in the file is either accepted or refused with a ConfigError."""
    try:
        config = load_config(mutated(path, value))
    except ConfigError:
        return
    assert load_config(config.to_json()) == config


def test_a_lone_surrogate_in_a_text_field_is_refused_naming_the_field() -> None:
    data = default_config("867435053362828", broker_host="h", broker_port=1).to_json()
    data["conf"]["1"]["clientID"] = "\ud800"
    with pytest.raises(ConfigError, match=r"conf\.1\.clientID must be valid Unicode"):
        load_config(json.dumps(data))
