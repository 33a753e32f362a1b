"""One bad input never takes a QuecPython unit down (issue 9): every decode path is total.

Each test sends something hostile (a number of thousands of digits, JSON nested a
thousand deep, an oversized payload) through one input path of a running unit in
virtual time, then checks the answer (the protocol's error reply, or a dropped input
with one log line and a counter) and that the unit still answers the next command.
"""

from __future__ import annotations

import errno
import json
from dataclasses import replace
from typing import Any

import pytest

from tests.quec_harness import BROKER, QuecBench
from vdtu.cloud.fota_server import MAX_RECORDS, FotaService
from vdtu.cloud.http_server import Request as ServerRequest
from vdtu.cloud.quec_fota import CHECK_PATH, FILES_PATH, REPORT_PATH, parse_check_answer
from vdtu.errors import ConfigError
from vdtu.firmware.quec.channel_schema import AliyunChannel, AuthType
from vdtu.firmware.quec.config import Apn, DtuConfig, default_config, load_config
from vdtu.firmware.quec.frames import (
    CommandFrame,
    ConfigReply,
    WorkMode,
    crc32_text,
    parse_config_reply,
)
from vdtu.firmware.quec.modbus_schema import ModbusConfig, ModbusGroup
from vdtu.firmware.quec.offline import CAPACITY, Stored
from vdtu.log import LogLevel
from vdtu.storage import MemoryStorage, MemoryTextFile

PASSWORD = "362828"
HUGE = "9" * 5000
"""More digits than Python's int() takes from text (4300)."""
DEEP = "[" * 1000 + "]" * 1000
"""Deeper than the interpreter's recursion limit lets json.loads go."""


def _still_answers(bench: QuecBench) -> None:
    assert bench.firmware.state == "running"
    assert bench.command(0)["data"] == bench.imei


def _log_texts(bench: QuecBench) -> list[str]:
    return [record.text for record in bench.unit.log.records]


def _chunk(bench: QuecBench, data: bytes) -> None:
    """Hand ``data`` to the firmware as one chunk of its uart.

    The simulated line delivers at most 4 KiB in one piece, so a 5000-digit number
    cannot cross it; the firmware's chunk handler must be total all the same.
    """
    bench.firmware.on_chunk("2", data)
    bench.clock.run_for(0.5)


def _config_frame(text: str) -> bytes:
    return f"99,{len(text)},{crc32_text(text)},{text}".encode()


def test_a_downlink_with_a_5000_digit_msg_id_or_cmd_code_is_ignored_and_counted() -> None:
    """Numbers past the interpreter's digit limit are refused by the decoder, not raised."""
    bench = QuecBench()
    bench.boot()
    for payload in (
        '{"msg_id": ' + HUGE + ', "cmd_code": 0}',
        '{"msg_id": 1, "cmd_code": ' + HUGE + "}",
    ):
        bench.cloud(payload.encode())
        bench.clock.run_for(0.5)
    assert bench.firmware.stats.downlinks_ignored == 2
    refused = [text for text in _log_texts(bench) if "downlink ignored" in text]
    assert len(refused) == 2
    assert all("5000 digits" in text and HUGE[:50] not in text for text in refused)
    _still_answers(bench)


def test_a_downlink_nested_1000_deep_is_ignored_not_a_recursion_error() -> None:
    """Deep nesting is measured before decoding: the downlink is dropped with a diagnostic."""
    bench = QuecBench()
    bench.boot()
    bench.cloud(('{"msg_id": 1, "cmd_code": 0, "data": ' + DEEP + "}").encode())
    bench.clock.run_for(0.5)
    assert bench.firmware.stats.downlinks_ignored == 1
    assert any("nesting deeper than" in text for text in _log_texts(bench))
    _still_answers(bench)


def test_a_numeric_string_cmd_code_of_5000_digits_is_ignored_without_echoing_it() -> None:
    """A cmd_code string too long for int() is a bad cmd_code; the log line stays short."""
    bench = QuecBench()
    bench.boot()
    bench.cloud({"msg_id": 1, "cmd_code": HUGE})
    bench.clock.run_for(0.5)
    assert bench.firmware.stats.downlinks_ignored == 1
    (line,) = [text for text in _log_texts(bench) if "downlink ignored" in text]
    assert "cmd_code" in line
    assert len(line) < 200
    _still_answers(bench)


def test_a_huge_msg_id_string_gets_an_error_reply_that_does_not_echo_it() -> None:
    """msg_id is echoed in every reply, so an oversized one is refused by name, never sent back."""
    bench = QuecBench()
    bench.boot()
    reply = bench.command(0, msg_id="m" * 5000)
    assert reply["status"] == 0
    assert reply["msg_id"] is None
    assert "msg_id" in reply["error"]
    assert "m" * 100 not in json.dumps(reply)


def test_a_numeric_parameter_of_5000_digits_gets_an_error_reply_naming_it() -> None:
    """Code 8's pins as a 5000-digit string: a failure reply naming data.pins, short."""
    bench = QuecBench()
    bench.boot()
    reply = bench.command(8, password=PASSWORD, data={"pins": HUGE})
    assert reply["status"] == 0
    assert reply["error"].startswith("data.pins must be")
    assert len(reply["error"]) < 200
    _still_answers(bench)


def test_a_modbus_group_number_of_5000_digits_gets_the_modbus_error_reply() -> None:
    """modbus.groups.num as a 5000-digit string is a bad group index, not an int() crash."""
    bench = QuecBench(
        config=lambda imei: replace(
            default_config(imei, broker_host=BROKER[0], broker_port=BROKER[1]),
            work_mode=WorkMode.MODBUS,
            modbus=ModbusConfig(groups=(ModbusGroup(slave_addresses=(1,)),)),
        )
    )
    bench.boot()
    bench.cloud({"msg_id": 5, "modbus": {"groups": {"num": HUGE, "cmd": ["0x03"]}}})
    bench.clock.run_for(0.5)
    (reply,) = [json.loads(payload) for payload in bench.published()]
    assert reply["status"] == 0
    assert reply["error"].startswith("modbus.groups.num must be the index")
    assert len(reply["error"]) < 200


def test_a_code_59_conf_with_a_5000_digit_port_gets_an_error_reply_naming_the_field() -> None:
    """A config edit with a huge number string is refused by field, short."""
    bench = QuecBench()
    bench.boot()
    channel = default_config(bench.imei, broker_host=BROKER[0], broker_port=BROKER[1]).to_json()
    conf = channel["conf"]
    conf["1"]["port"] = HUGE
    reply = bench.command(59, password=PASSWORD, data={"conf": conf})
    assert reply["status"] == 0
    assert reply["error"].startswith("conf.1.port must be")
    assert len(reply["error"]) < 300
    _still_answers(bench)


def test_serial_config_frames_with_huge_numbers_or_deep_json_are_dropped_and_counted() -> None:
    """99-channel frames the decoder refuses are dropped with a log line, never raised."""
    bench = QuecBench()
    bench.boot()
    bench.host_on().write(_config_frame('{"cmd_code": 0, "data": ' + DEEP + "}"))
    bench.clock.run_for(1.0)
    _chunk(bench, _config_frame('{"cmd_code": ' + HUGE + "}"))
    _chunk(bench, _config_frame('{"cmd_code": "' + HUGE + '"}'))
    stats = bench.firmware.stats
    assert stats.malformed + stats.config_requests_ignored == 3
    texts = _log_texts(bench)
    assert any("5000 digits" in text for text in texts)
    assert any("nesting deeper than" in text for text in texts)
    assert all(HUGE[:100] not in text for text in texts)
    assert bench.written() == []
    request = '{"cmd_code": 0}'
    bench.host_on().write(_config_frame(request))
    bench.clock.run_for(1.0)
    reply = parse_config_reply(b"".join(bench.written()))
    assert isinstance(reply, ConfigReply)
    assert json.loads(reply.text)["data"] == bench.imei


def test_a_serial_frame_with_a_5000_digit_length_or_crc_field_is_malformed() -> None:
    """Length and CRC fields too long for any frame are malformed, not int() errors."""
    bench = QuecBench()
    bench.boot()
    _chunk(bench, f"1,0,{HUGE},0,data".encode())
    _chunk(bench, f"1,0,4,{HUGE},data".encode())
    assert bench.firmware.stats.malformed == 2
    assert all(HUGE[:100] not in text for text in _log_texts(bench))
    _still_answers(bench)


def test_an_oversized_downlink_is_ignored_in_every_mode() -> None:
    """A downlink over the size limit is dropped before any work, passthrough too."""
    bench = QuecBench(
        config=lambda imei: replace(
            default_config(imei, broker_host=BROKER[0], broker_port=BROKER[1]),
            work_mode=WorkMode.PASSTHROUGH,
        )
    )
    bench.boot()
    bench.written()
    bench.cloud(b"x" * 100_000)
    bench.clock.run_for(0.5)
    assert bench.firmware.stats.downlinks_ignored == 1
    assert bench.written() == []
    assert any("100000 bytes" in text for text in _log_texts(bench))


def test_a_dtu_config_json_nested_1000_deep_stops_the_boot_with_a_config_error() -> None:
    """A config file the decoder refuses is a config-error naming the limit, not a crash."""
    text = '{"password": "1", "work_mode": "command", "message": ' + DEEP + "}"
    with pytest.raises(ConfigError, match="not usable JSON: nesting deeper than 16 levels"):
        load_config(text)
    bench = QuecBench(config_file=MemoryTextFile(text))
    bench.host_on()
    bench.unit.power_on()
    bench.clock.run_for(5.0)
    assert bench.firmware.state == "config-error"
    assert bench.firmware.config_error is not None
    assert "nesting deeper than 16 levels" in bench.firmware.config_error


# --- item 2: no reply or log line quotes a secret ------------------------------------------

COMMAND_PASSWORD = "cmdSECRET0"
SECRETS = (COMMAND_PASSWORD, "apnSECRET1", "mqttSECRET2", "devSECRET3", "prodSECRET4", "newSECRET5")


def _secret_bench() -> QuecBench:
    def config(imei: str) -> DtuConfig:
        base = default_config(
            imei,
            broker_host=BROKER[0],
            broker_port=BROKER[1],
            broker_username="unit",
            broker_password="mqttSECRET2",
        )
        aliyun = AliyunChannel(
            auth_type=AuthType.MOS,
            publish={"0": "/a1b2c3d4e5f/dtu0/user/up"},
            product_key="a1b2c3d4e5f",
            device_name="dtu0",
            device_secret="devSECRET3",
            serial_id="2",
        )
        return replace(
            base,
            password=COMMAND_PASSWORD,
            apn=Apn(name="cmnet", user="user", password="apnSECRET1"),
            conf={**base.conf, "2": aliyun},
        )

    bench = QuecBench(config=config)
    bench.host_on()
    bench.unit.power_on()
    bench.run_until(lambda: "1" in bench.firmware.drivers and bench.firmware.drivers["1"].connected)
    bench.unit.log.threshold = LogLevel.DEBUG
    return bench


def _bad_secret_commands(bench: QuecBench) -> list[dict[str, Any]]:
    conf = bench.firmware.config.to_json()["conf"]  # type: ignore[union-attr]
    conf_secret = {"1": {**conf["1"], "password": ["mqttSECRET2"]}}
    tas = {**conf["2"], "type": "tas", "ProductSecret": "prodSECRET4", "DeviceSecret": 7}
    return [
        {"cmd_code": 60, "data": {"apn": ["cmnet", "user", "apnSECRET1", "extra"]}},
        {"cmd_code": 60, "data": {"apn": ["cmnet", "user", ["apnSECRET1"]]}},
        {"cmd_code": 60, "data": ["cmnet", "user", "apnSECRET1"]},
        {"cmd_code": 60, "data": {"apn": ["cmnet", "user", "apnSECRET1" * 10]}},
        {"cmd_code": 51, "data": {"new_password": ["newSECRET5"]}},
        {"cmd_code": 51, "data": {"new_password": "newSECRET5" * 10}},
        {"cmd_code": 51, "data": {"new_password": 1.5, "other": "newSECRET5"}},
        {"cmd_code": 59, "data": {"conf": [conf]}},
        {"cmd_code": 59, "data": {"conf": conf_secret}},
        {"cmd_code": 59, "data": {"conf": {"2": tas, "3": ["prodSECRET4"]}}},
        {"cmd_code": 59, "data": {"conf": {"1": ["devSECRET3"]}}},
        {"cmd_code": 63, "data": {"dtu_config": [bench.firmware.config.to_json()]}},  # type: ignore[union-attr]
        {"cmd_code": 63, "data": {"dtu_config": {"password": ["newSECRET5"]}}},
        {"cmd_code": 53, "data": {"reg": ["apnSECRET1"]}},
        {"cmd_code": 77, "data": {"x": "newSECRET5"}},
        {"cmd_code": 7, "data": ["devSECRET3"]},
    ]


def test_no_error_reply_or_log_line_quotes_a_password_or_secret() -> None:
    """Bad code 51/53/59/60/63 commands carrying secrets: replies and logs never quote them."""
    bench = _secret_bench()
    bench.written()
    replies: list[dict[str, Any]] = []
    for message in _bad_secret_commands(bench):
        replies.append(bench.command(message.pop("cmd_code"), password=COMMAND_PASSWORD, **message))
        replies.append(bench.command(4, password="wrong", data={"x": COMMAND_PASSWORD}))
    # the serial configuration channel, with a bad CRC and as a good frame
    request = json.dumps({"cmd_code": 60, "password": COMMAND_PASSWORD, "data": ["apnSECRET1"]})
    bench.host_on().write(f"99,{len(request)},1,{request}".encode())
    bench.clock.run_for(1.0)
    bench.host_on().write(_config_frame(request))
    bench.clock.run_for(1.0)
    serial = parse_config_reply(b"".join(bench.written()))
    assert isinstance(serial, ConfigReply)
    assert all(reply["status"] == 0 for reply in replies)
    texts = [json.dumps(reply) for reply in replies] + [serial.text]
    texts += [record.text for record in bench.unit.log.records]
    leaks = [(secret, text) for text in texts for secret in SECRETS if secret in text]
    assert leaks == []


# --- item 3: an unknown topic_id never pushes stored uplinks out ----------------------------


def _full_offline_store(bench: QuecBench) -> list[Stored]:
    items = [Stored(channel="9", topic_id=None, payload=f"kept {n}") for n in range(CAPACITY)]
    for item in items:
        bench.firmware.offline.add(item)
    return items


def test_a_reply_to_an_unconfigured_topic_id_goes_to_the_first_topic_not_the_offline_store() -> (
    None
):
    """The reply is published on the default topic with a WARN; stored uplinks all stay."""
    bench = QuecBench()
    bench.boot()
    kept = _full_offline_store(bench)
    bench.cloud({"msg_id": 3, "cmd_code": 0, "topic_id": "7" * 3000})
    bench.clock.run_for(0.5)
    (reply,) = [json.loads(payload) for payload in bench.published()]
    assert reply == {"code": 0, "data": bench.imei, "status": 1, "msg_id": 3}
    assert list(bench.firmware.offline) == kept
    assert bench.firmware.offline.dropped == 0
    assert bench.firmware.stats.replies_rerouted == 1
    (line,) = [text for text in _log_texts(bench) if "not a publish topic" in text]
    assert len(line) < 200


def test_a_serial_frame_to_an_unconfigured_topic_id_is_dropped_not_stored() -> None:
    """A host frame naming a topic id the channel lacks is dropped and counted, never stored."""
    bench = QuecBench()
    bench.boot()
    kept = _full_offline_store(bench)
    bench.host_on().write(CommandFrame(cid="1", topic_id="7", data="x").encode())
    bench.clock.run_for(0.5)
    assert bench.published() == []
    assert list(bench.firmware.offline) == kept
    assert bench.firmware.stats.uplinks_unroutable == 1
    assert any("topic id '7' is not a publish topic" in text for text in _log_texts(bench))


# --- item 4: no setting may cut the unit off from every cloud -------------------------------


def test_code_59_with_no_channel_is_refused_naming_conf_and_the_unit_comes_back_after_255() -> None:
    """{"conf": {}} would leave the unit unreachable (no cloud, no 99 channel): refused."""
    bench = QuecBench()
    bench.boot()
    saved = bench.config_file.read()
    reply = bench.command(59, password=PASSWORD, data={"conf": {}})
    assert reply["status"] == 0
    assert reply["error"].startswith("conf must keep at least one channel")
    everything = bench.firmware.config.to_json()  # type: ignore[union-attr]
    reply = bench.command(63, password=PASSWORD, data={"dtu_config": {**everything, "conf": {}}})
    assert reply["status"] == 0
    assert reply["error"].startswith("dtu_config.conf must keep at least one channel")
    assert bench.config_file.read() == saved
    assert bench.firmware.pending is None
    bench.cloud({"msg_id": 7, "cmd_code": 255, "password": PASSWORD})
    bench.clock.run_for(1.0)
    bench.run_until(
        lambda: bench.firmware.state == "running" and bench.firmware.drivers["1"].connected
    )
    _still_answers(bench)


# --- item 5: a failing flash is a device condition ----------------------------------------


@pytest.mark.parametrize(
    ("failure", "reason"),
    [(errno.ENOSPC, "flash-full"), (errno.EROFS, "flash-read-only"), (errno.EIO, "flash-io")],
)
def test_a_setting_the_flash_cannot_store_gets_an_error_reply_and_nothing_pending(
    failure: int, reason: str
) -> None:
    """Code 53 with dtu_config.json unwritable: error reply naming the condition, no pending
    settings, the unit answers on; once the flash works again the same command sticks."""
    bench = QuecBench(config_file=MemoryTextFile())
    bench.boot()
    assert isinstance(bench.config_file, MemoryTextFile)
    saved = bench.config_file.read()
    bench.config_file.fail_writes = failure
    reply = bench.command(53, password=PASSWORD, data={"reg": 1})
    assert reply["status"] == 0
    assert reason in reply["error"]
    assert bench.firmware.pending is None
    assert bench.config_file.read() == saved
    _still_answers(bench)
    bench.config_file.fail_writes = None
    assert bench.command(53, password=PASSWORD, data={"reg": 1})["status"] == 1
    assert bench.firmware.pending is not None
    assert bench.firmware.pending.reg == 1


def test_a_serial_setting_the_flash_cannot_store_gets_an_error_reply_on_the_uart() -> None:
    """The 99 channel answers a failed write with an error reply as well."""
    bench = QuecBench(config_file=MemoryTextFile())
    bench.boot()
    assert isinstance(bench.config_file, MemoryTextFile)
    bench.config_file.fail_writes = errno.ENOSPC
    bench.written()
    request = json.dumps({"cmd_code": 56, "password": PASSWORD, "data": {"nolog": 1}})
    bench.host_on().write(_config_frame(request))
    bench.clock.run_for(1.0)
    reply = parse_config_reply(b"".join(bench.written()))
    assert isinstance(reply, ConfigReply)
    body = json.loads(reply.text)
    assert (body["status"], body["code"]) == (0, 56)
    assert "flash-full" in body["error"]


def test_a_unit_whose_flash_fails_at_first_boot_runs_on_the_default_config() -> None:
    """The default dtu_config.json cannot be written: an ERROR, and the unit runs anyway."""
    config_file = MemoryTextFile()
    config_file.fail_writes = errno.EROFS
    bench = QuecBench(config_file=config_file)
    bench.boot()
    assert config_file.read() is None
    assert any("flash-read-only" in text for text in _log_texts(bench))
    _still_answers(bench)


def test_offline_storage_and_saved_secrets_survive_a_full_flash_in_memory() -> None:
    """Storing an uplink offline with the flash full keeps it in memory and logs the condition."""
    flash = MemoryStorage()
    bench = QuecBench(flash=flash)
    bench.boot()
    flash.fail_writes = errno.ENOSPC
    bench.firmware.send_uplink("9", None, "for a channel that is not running")
    assert [item.payload for item in bench.firmware.offline] == [
        "for a channel that is not running"
    ]
    bench.firmware.login_needs().save_secret("aliyun:pk:dn", "s")
    assert bench.firmware.nvram["secrets"] == {"aliyun:pk:dn": "s"}
    assert bench.firmware.stats.flash_errors == 2
    assert sum("flash-full" in text for text in _log_texts(bench)) == 2
    _still_answers(bench)


# --- item 6: the update server and the firmware's reading of it -----------------------------


def _fota_request(method: str, path: str, body: bytes = b"") -> ServerRequest:
    return ServerRequest(method=method, path=path, query="", headers={}, body=body)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (DEEP.encode(), "body"),
        (b'{"version": ' + HUGE.encode() + b', "imei": "1"}', "body"),
        (b'{"imei": "1"}', "version"),
    ],
)
def test_the_update_server_answers_bad_check_bodies_400_naming_the_field(
    body: bytes, field: str
) -> None:
    """A check body nested 1000 deep or with a 5000-digit version is a 400, not a traceback."""
    service = FotaService("http://fota.test")
    routes = service.routes()
    reply = routes[("POST", CHECK_PATH)](_fota_request("POST", CHECK_PATH, body))
    assert reply.status == 400
    answer = json.loads(reply.body)
    assert answer["code"] == 400
    assert field in answer["msg"]
    reply = routes[("POST", REPORT_PATH)](_fota_request("POST", REPORT_PATH, body))
    assert reply.status in (200, 400)
    assert service.checks == []


@pytest.mark.parametrize("name", [HUGE + "/1.bin", "1/" + HUGE + ".bin", "\u00b2/1.bin"])
def test_the_update_server_answers_an_impossible_image_path_404(name: str) -> None:
    """Image paths with 5000-digit or non-ASCII digits are 404, not an int() error."""
    service = FotaService("http://fota.test")
    path = f"{FILES_PATH}/{name}"
    reply = service.routes()[("GET", FILES_PATH + "/*")](_fota_request("GET", path))
    assert reply.status == 404
    assert len(reply.body) < 200


def test_the_update_server_keeps_a_bounded_record_of_checks_and_reports() -> None:
    """Checks and reports are kept, the newest MAX_RECORDS of each: memory stays bounded."""
    service = FotaService("http://fota.test")
    routes = service.routes()
    for n in range(MAX_RECORDS + 5):
        body = json.dumps({"version": n, "imei": "1"}).encode()
        routes[("POST", CHECK_PATH)](_fota_request("POST", CHECK_PATH, body))
        routes[("POST", REPORT_PATH)](_fota_request("POST", REPORT_PATH, body))
    assert len(service.checks) == len(service.reports) == MAX_RECORDS
    assert service.checks[-1]["version"] == MAX_RECORDS + 4


def test_the_firmware_reads_a_hostile_update_answer_as_a_failed_check() -> None:
    """An update answer nested 1000 deep is a ValueError (the check fails), not a crash."""
    for body in (DEEP.encode(), b'{"code": ' + HUGE.encode() + b"}"):
        with pytest.raises(ValueError, match="limits"):
            parse_check_answer(body)
