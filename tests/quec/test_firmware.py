"""The QuecPython firmware on a simulated network, in virtual time: commands, serial, storage."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from tests.quec_harness import BROKER, QuecBench
from vdtu.cloud.fota_server import FotaService
from vdtu.cloud.http_server import Request as ServerRequest
from vdtu.cloud.quec_fota import FILES_PATH, FOTA_HOST, FOTA_PORT
from vdtu.firmware.quec.channel_schema import (
    HttpChannel,
    HttpMethod,
    MqttChannel,
    QuecthingChannel,
    TcpChannel,
    UdpChannel,
)
from vdtu.firmware.quec.config import DtuConfig, default_config, load_config
from vdtu.firmware.quec.frames import (
    ChannelType,
    CommandFrame,
    ConfigReply,
    ConfigRequest,
    PassthroughFrame,
    PortBinding,
    WorkMode,
    crc32_text,
    parse_config_reply,
    parse_frame,
)
from vdtu.firmware.quec.modbus_schema import ModbusConfig, ModbusGroup, PollEntry
from vdtu.firmware.quec.net import HttpRequest, HttpResponse
from vdtu.firmware.quec.offline import CAPACITY
from vdtu.modbus.rtu import FunctionCode, check_crc
from vdtu.storage import MemoryStorage, MemoryTextFile

PASSWORD = "362828"
"""The default password (docs/spec/quec.md#3.3): the last six digits of the IMEI."""


def _frame(text: str, binding: PortBinding) -> CommandFrame | PassthroughFrame:
    parsed = parse_frame(text.encode(), binding)
    assert isinstance(parsed, CommandFrame | PassthroughFrame), parsed
    return parsed


def test_unit_without_a_config_writes_the_default_with_the_imei_password() -> None:
    bench = QuecBench()
    bench.boot()
    text = bench.config_file.read()
    assert text is not None
    config = load_config(text)
    assert config.password == PASSWORD
    assert config.conf["1"].subscribe == {"0": bench.down_topic}  # type: ignore[union-attr]
    assert bench.command(0)["data"] == bench.imei


def test_a_setting_is_saved_at_once_but_applies_only_after_code_255() -> None:
    bench = QuecBench()
    bench.boot()
    reply = bench.command(51, password=PASSWORD, data={"new_password": "654321"})
    assert reply == {"code": 51, "status": 1, "msg_id": 1051}
    saved = bench.config_file.read()
    assert saved is not None
    assert load_config(saved).password == "654321"
    # still the old password until the reset
    assert bench.command(4, password=PASSWORD)["status"] == 1
    before = len(bench.published())
    bench.cloud({"msg_id": 7, "cmd_code": 255, "password": PASSWORD})
    bench.clock.run_for(1.0)
    assert bench.published()[before:] == []  # 255 never answers
    assert bench.firmware.state == "booting"
    bench.run_until(
        lambda: (
            all(d.connected for d in bench.firmware.drivers.values())
            and bool(bench.firmware.drivers)
        )
    )
    assert bench.command(4, password=PASSWORD)["error"] == "Password verify error"
    assert bench.command(4, password="654321")["status"] == 1


def test_wrong_password_and_unknown_code_are_answered_as_errors() -> None:
    bench = QuecBench()
    bench.boot()
    assert bench.command(6, password="nope") == {
        "code": 6,
        "status": 0,
        "error": "Password verify error",
        "msg_id": 1006,
    }
    assert bench.command(77, password=PASSWORD)["error"] == "Command code error"
    assert bench.command(5, password=PASSWORD)["data"] == [
        {"func_code": "6", "error_code": "5002"},
        {"func_code": "77", "error_code": "6005"},
    ]


def test_reply_goes_to_the_publish_topic_that_topic_id_names() -> None:
    config = default_config("867435053362828", broker_host=BROKER[0], broker_port=BROKER[1])
    channel = config.conf["1"]
    assert isinstance(channel, MqttChannel)
    two_topics = replace(channel, publish={"0": "a/up", "7": "b/up"})
    bench = QuecBench(config=replace(config, conf={"1": two_topics}))
    bench.boot()
    bench.cloud({"msg_id": 3, "cmd_code": 0, "topic_id": 7})
    bench.clock.run_for(0.5)
    assert [json.loads(p)["msg_id"] for p in bench.published("b/up")] == [3]
    assert bench.published("a/up") == []


def test_non_json_downlink_is_ignored_with_a_diagnostic_and_json_without_code_is_forwarded() -> (
    None
):
    bench = QuecBench()
    bench.boot()
    bench.written()
    bench.cloud(b"\x00garbage")
    bench.cloud({"msg_id": 9, "data": "to the host"})
    bench.clock.run_for(0.5)
    assert bench.firmware.stats.downlinks_ignored == 1
    binding = PortBinding.command({"1": ChannelType.MQTT})
    frame = _frame(b"".join(bench.written()).decode(), binding)
    assert frame == CommandFrame(cid="1", topic_id="0", data="to the host")
    assert any("not JSON" in record.text for record in bench.unit.log.records)


def test_command_mode_serial_frame_goes_up_as_data_json_on_its_topic() -> None:
    bench = QuecBench()
    bench.boot()
    bench.host_on().write(CommandFrame(cid="1", topic_id="0", data="a,b,c").encode())
    bench.clock.run_for(0.5)
    assert bench.published() == [b'{"data": "a,b,c"}']


def test_bad_crc_and_bad_length_are_dropped_and_counted() -> None:
    bench = QuecBench()
    bench.boot()
    good = crc32_text("test")
    bench.host_on().write(f"1,0,4,{good + 1},test".encode())
    bench.clock.run_for(0.2)
    bench.host_on().write(f"1,0,5,{good},test".encode())
    bench.clock.run_for(0.2)
    assert bench.published() == []
    stats = bench.firmware.stats
    assert (stats.bad_crc, stats.bad_length) == (1, 1)
    texts = [record.text for record in bench.unit.log.records]
    assert any("crc field says" in text for text in texts)
    assert any("length field says 5" in text for text in texts)


def test_serial_configuration_channel_runs_a_command_and_replies_on_the_uart() -> None:
    bench = QuecBench()
    bench.boot()
    bench.written()
    request = ConfigRequest(text=json.dumps({"cmd_code": 6, "password": PASSWORD}))
    bench.host_on().write(request.encode())
    bench.clock.run_for(0.5)
    reply = parse_config_reply(b"".join(bench.written()))
    assert isinstance(reply, ConfigReply)
    assert json.loads(reply.text) == {
        "code": 6,
        "data": bench.unit.config.identity.iccid,
        "status": 1,
    }


def test_passthrough_mode_sends_raw_data_and_frames_downlinks_with_the_topic_id() -> None:
    bench = QuecBench(
        config=lambda imei: replace(
            default_config(imei, broker_host=BROKER[0], broker_port=BROKER[1]),
            work_mode=WorkMode.PASSTHROUGH,
        )
    )
    bench.boot()
    bench.written()
    bench.host_on().write(PassthroughFrame(topic_id="0", data="raw,bytes").encode())
    bench.clock.run_for(0.5)
    assert bench.published() == [b"raw,bytes"]
    bench.cloud(b'{"cmd_code": 0}')  # passthrough: not a command, forwarded whole
    bench.clock.run_for(0.5)
    frame = _frame(b"".join(bench.written()).decode(), PortBinding.passthrough(ChannelType.MQTT))
    assert frame == PassthroughFrame(topic_id="0", data='{"cmd_code": 0}')


def test_uplinks_during_an_outage_are_stored_and_replayed_in_order() -> None:
    bench = QuecBench()
    bench.boot()
    bench.net.outage()
    bench.clock.run_for(0.5)
    for n in range(5):
        bench.host_on().write(CommandFrame(cid="1", topic_id="0", data=f"m{n}").encode())
        bench.clock.run_for(0.5)
    assert bench.firmware.stats.uplinks_stored == 5
    assert len(bench.flash.load()["history"]["data"]) == 5
    bench.net.restore()
    bench.run_until(lambda: len(bench.published()) == 5, limit_s=400)
    assert [json.loads(p)["data"] for p in bench.published()] == [f"m{n}" for n in range(5)]
    assert len(bench.firmware.offline) == 0
    assert bench.firmware.stats.replayed == 5


def test_offline_store_keeps_the_newest_hundred_and_counts_the_dropped() -> None:
    bench = QuecBench()
    bench.boot()
    bench.net.outage()
    bench.clock.run_for(0.5)
    for n in range(CAPACITY + 3):
        bench.firmware.send_uplink("1", "0", f"m{n}")
    assert len(bench.firmware.offline) == CAPACITY
    assert bench.firmware.offline.dropped == 3
    assert next(iter(bench.firmware.offline)).payload == "m3"


def test_stored_uplinks_survive_a_reboot() -> None:
    flash = MemoryStorage()
    bench = QuecBench(flash=flash)
    bench.boot()
    bench.net.outage()
    bench.clock.run_for(0.5)
    bench.firmware.send_uplink("1", "0", "kept")
    bench.unit.reboot()
    assert [item.payload for item in bench.firmware.offline] == ["kept"]
    bench.net.restore()
    bench.run_until(lambda: bench.published() == [b"kept"], limit_s=400)


def test_without_offline_storage_a_failed_uplink_is_counted_lost() -> None:
    bench = QuecBench(
        config=lambda imei: replace(
            default_config(imei, broker_host=BROKER[0], broker_port=BROKER[1]),
            offline_storage=False,
        )
    )
    bench.boot()
    bench.net.outage()
    bench.clock.run_for(0.5)
    bench.firmware.send_uplink("1", "0", "gone")
    assert bench.firmware.stats.uplinks_lost == 1
    assert len(bench.firmware.offline) == 0


def test_code_11_reports_the_live_mqtt_state() -> None:
    bench = QuecBench()
    bench.boot()
    assert bench.command(11, password=PASSWORD)["data"] == {"1": 0}
    bench.net.outage()
    bench.clock.run_for(0.5)
    assert bench.firmware.channel_states() == {"1": 2}


def test_code_50_puts_the_sms_in_the_modem_outbox() -> None:
    bench = QuecBench()
    bench.boot()
    reply = bench.command(
        50,
        wait_s=5.0,
        password=PASSWORD,
        data={"message": {"number": "13800138000", "sms_msg": "hi"}},
    )
    assert reply["status"] == 1
    (record,) = list(bench.unit.modem.sms_outbox)
    assert (record.phone, record.text) == ("13800138000", "hi")


def test_a_malformed_config_file_stops_the_boot_and_names_the_field() -> None:
    text = default_config("867435053362828", broker_host="h", broker_port=1).to_json()
    text["conf"]["1"]["port"] = "99999"
    bench = QuecBench(config_file=MemoryTextFile(json.dumps(text)))
    bench.unit.power_on()
    bench.clock.run_for(10)
    assert bench.firmware.state == "config-error"
    assert bench.firmware.config_error is not None
    assert "conf.1.port" in bench.firmware.config_error
    assert bench.unit.snapshot()["firmware"]["config_error"] == bench.firmware.config_error


def _modbus_config(imei: str, poll: tuple[PollEntry, ...] = ()) -> DtuConfig:
    base = default_config(imei, broker_host=BROKER[0], broker_port=BROKER[1])
    channel = base.conf["1"]
    assert isinstance(channel, MqttChannel)
    channel = replace(channel, serial_id="1")
    return replace(
        base,
        work_mode=WorkMode.MODBUS,
        conf={"1": channel},
        modbus=ModbusConfig(groups=(ModbusGroup(slave_addresses=(1,)),), poll=poll),
    )


def test_modbus_group_command_reads_the_slave_and_uploads_its_answer() -> None:
    bench = QuecBench(config=_modbus_config)
    bench.boot()
    bench.cloud(
        {
            "msg_id": 4,
            "modbus": {"groups": {"num": 0, "cmd": ["0x03", "0x00", "0x00", "0x00", "0x02"]}},
        }
    )
    bench.clock.run_for(2.0)
    published = [json.loads(p) for p in bench.published()]
    assert published[0] == {
        "code": ["0x03", "0x00", "0x00", "0x00", "0x02"],
        "status": 1,
        "msg_id": 4,
    }
    answer = bytes(int(x, 16) for x in published[1])
    assert check_crc(answer)
    assert answer[:3] == bytes([1, 3, 4])


def test_modbus_poll_table_reports_readings_every_interval() -> None:
    entry = PollEntry(
        slave=1, function=FunctionCode.READ_HOLDING_REGISTERS, start=0, count=2, interval_s=10.0
    )
    bench = QuecBench(config=lambda imei: _modbus_config(imei, (entry,)))
    bench.boot()
    start = bench.clock.now
    bench.clock.run_for(35)
    readings = [json.loads(p)["poll"] for p in bench.published()]
    assert len(readings) == 3, (readings, start)
    assert all(r["slave"] == 1 and len(r["values"]) == 2 for r in readings)


def test_tcp_channel_sends_registration_heartbeats_and_data_both_ways() -> None:
    base = default_config("867435053362828", broker_host="h", broker_port=1)
    tcp = TcpChannel(url="10.0.0.5", port=9000, ping="hb", heartbeat_s=30, serial_id="2")
    bench = QuecBench(config=replace(base, conf={"2": tcp}, reg=1))
    bench.net.socket_servers.add(("10.0.0.5", 9000))
    bench.boot()
    bench.written()
    bench.host_on().write(CommandFrame(cid="2", data="up!").encode())
    bench.clock.run_for(65)
    (link,) = bench.net.open_links(("10.0.0.5", 9000))
    registration = json.loads(link.received[0])
    assert registration["imei"] == bench.imei
    assert set(registration) == {"csq", "imei", "iccid", "ver"}
    assert link.received[1] == b'{"data": "up!"}'
    assert link.received[2:] == [b"hb", b"hb"]
    link.deliver(b'{"data": "down!"}')
    bench.clock.run_for(0.5)
    frame = _frame(b"".join(bench.written()).decode(), PortBinding.command({"2": ChannelType.TCP}))
    assert frame == CommandFrame(cid="2", data="down!")


def test_udp_channel_carries_data_both_ways() -> None:
    base = default_config("867435053362828", broker_host="h", broker_port=1)
    udp = UdpChannel(url="10.0.0.6", port=9001, serial_id="2")
    bench = QuecBench(config=replace(base, conf={"3": udp}, work_mode=WorkMode.PASSTHROUGH))
    bench.net.socket_servers.add(("10.0.0.6", 9001))
    bench.boot()
    bench.written()
    bench.host_on().write(PassthroughFrame(data="ping me").encode())
    bench.clock.run_for(0.5)
    (link,) = bench.net.open_links(("10.0.0.6", 9001))
    assert link.received == [b"ping me"]
    link.deliver(b"pong")
    bench.clock.run_for(0.5)
    assert _frame(
        b"".join(bench.written()).decode(), PortBinding.passthrough(ChannelType.UDP)
    ) == PassthroughFrame(data="pong")


def test_http_channel_makes_a_request_per_uplink_and_forwards_the_answer() -> None:
    base = default_config("867435053362828", broker_host="h", broker_port=1)
    http = HttpChannel(method=HttpMethod.POST, url="http://10.0.0.7:8080/api/up", serial_id="2")
    bench = QuecBench(config=replace(base, conf={"4": http}))
    seen: list[HttpRequest] = []

    def server(request: HttpRequest) -> HttpResponse:
        seen.append(request)
        return HttpResponse(status=200, body=b'{"data": "thanks"}')

    bench.net.http_servers[("10.0.0.7", 8080)] = server
    bench.boot()
    bench.written()
    bench.host_on().write(CommandFrame(cid="4", topic_id="0", data="reading=5").encode())
    bench.clock.run_for(0.5)
    assert [(r.method, r.body) for r in seen] == [("POST", b'{"data": "reading=5"}')]
    frame = _frame(b"".join(bench.written()).decode(), PortBinding.command({"4": ChannelType.HTTP}))
    assert frame == CommandFrame(cid="4", topic_id="0", data="thanks")
    assert bench.firmware.channel_states() == {"4": 200}


def test_unacknowledged_qos1_publish_is_stored_when_the_link_drops() -> None:
    bench = QuecBench()
    bench.boot()
    bench.firmware.send_uplink("1", "0", "in flight")
    bench.net.outage()  # before the broker's acknowledgement
    bench.clock.run_for(0.1)
    assert [item.payload for item in bench.firmware.offline] == ["in flight"]
    assert bench.firmware.stats.uplinks_stored == 1


def _serve(service: FotaService) -> Callable[[HttpRequest], HttpResponse]:
    routes = service.routes()

    def server(request: HttpRequest) -> HttpResponse:
        path = "/" + request.url.split("://", 1)[1].split("/", 1)[1]
        handler = routes.get((request.method, path)) or routes[(request.method, FILES_PATH + "/*")]
        reply = handler(
            ServerRequest(method=request.method, path=path, query="", headers={}, body=request.body)
        )
        return HttpResponse(status=reply.status, body=reply.body)

    return server


def test_fota_update_is_downloaded_installed_and_reported_after_the_reboot() -> None:
    bench = QuecBench()
    service = FotaService(f"http://{FOTA_HOST}:{FOTA_PORT}")
    bench.net.http_servers[(FOTA_HOST, FOTA_PORT)] = _serve(service)
    bench.boot()
    assert bench.command(2)["data"] == "v 100"
    service.offer(101, imei=bench.imei, size=3000)
    bench.cloud({"msg_id": 1, "cmd_code": 255, "password": PASSWORD})
    bench.run_until(
        lambda: bench.firmware.config is not None and bench.firmware.config.version == 101
    )
    bench.run_until(lambda: bool(bench.firmware.drivers) and bench.firmware.drivers["1"].connected)
    assert bench.command(2)["data"] == "v 101"
    assert service.reports == [{"imei": bench.imei, "version": 101, "code": 7}]
    saved = bench.config_file.read()
    assert saved is not None
    assert load_config(saved).version == 101
    bench.clock.run_for(10)
    assert len(service.reports) == 1  # up to date now: no second install


def test_fota_image_with_a_wrong_md5_is_refused_and_reported_failed() -> None:
    bench = QuecBench()
    service = FotaService(f"http://{FOTA_HOST}:{FOTA_PORT}")
    good = _serve(service)

    def corrupting(request: HttpRequest) -> HttpResponse:
        answer = good(request)
        if request.method == "GET":
            return HttpResponse(status=200, body=b"x" + answer.body[1:])
        return answer

    bench.net.http_servers[(FOTA_HOST, FOTA_PORT)] = corrupting
    service.offer(102, size=500)
    bench.boot()
    bench.clock.run_for(5)
    assert service.reports == [{"imei": bench.imei, "version": 102, "code": 8}]
    assert bench.command(2)["data"] == "v 100"
    assert any("MD5" in record.text for record in bench.unit.log.records)


def test_quecthing_uplink_ignores_the_pkgid_and_goes_to_its_one_topic() -> None:
    base = default_config("867435053362828", broker_host="h", broker_port=1)
    thing = QuecthingChannel(product_key="p1", product_secret="s1", serial_id="2")
    bench = QuecBench(config=replace(base, conf={"5": thing}))
    bench.net.brokers.add(("iot-south.quectel.com", 1883))
    bench.boot()
    bench.host_on().write(CommandFrame(cid="5", topic_id="3", data="reading").encode())
    bench.clock.run_for(0.5)
    assert bench.published(f"quecthing/p1/{bench.imei}/up") == [b'{"data": "reading"}']
    assert bench.firmware.channel_states() == {"5": 8}


def test_serial_events_carry_no_chunks_decoded_for_an_observer_that_did_not_ask() -> None:
    """A scenario's transcript observes every unit: it gets the texts, not a parse per chunk."""
    bench = QuecBench()
    bench.boot()
    events: list[tuple[str, dict[str, Any]]] = []
    bench.unit.log.observer = lambda _name, _at, kind, data: events.append((kind, data))
    bench.host_on().write(CommandFrame(cid="1", topic_id="0", data="test").encode())
    bench.clock.run_for(0.2)
    serial = [data for kind, data in events if kind == "from-host"]
    assert [data["text"] for data in serial] == [
        CommandFrame(cid="1", topic_id="0", data="test").encode().decode()
    ]
    assert all("frames" not in data for data in serial)


def test_serial_events_carry_each_chunk_decoded_with_its_crc_verified_both_ways() -> None:
    bench = QuecBench()
    bench.boot()
    events: list[tuple[str, dict[str, Any]]] = []
    bench.unit.log.observer = lambda _name, _at, kind, data: events.append((kind, data))
    bench.unit.log.describe_frames = True
    good = crc32_text("test")
    bench.host_on().write(CommandFrame(cid="1", topic_id="0", data="test").encode())
    bench.clock.run_for(0.2)
    bench.host_on().write(f"1,0,4,{good + 1},test".encode())
    bench.clock.run_for(0.2)
    request = ConfigRequest(text=json.dumps({"cmd_code": 6, "password": PASSWORD}))
    bench.host_on().write(request.encode())
    bench.clock.run_for(0.5)
    bench.cloud({"msg_id": 9, "data": "to the host"})
    bench.clock.run_for(0.5)
    serial = [data for kind, data in events if kind in ("from-host", "to-host")]
    assert {(data["port"], data["uart"]) for data in serial} == {("uart", "2")}  # MAIN UART
    frames = [(kind, data["frames"]) for kind, data in events if kind in ("from-host", "to-host")]
    assert frames[:3] == [
        ("from-host", [{"kind": "command", "check": f"crc32 {good}", "check_ok": True,
                        "fields": {"cid": "1", "topic_id": "0", "len": "4", "data": "test"}}]),
        ("from-host", [{"kind": "bad-crc", "check": f"crc32 {good + 1} (expected {good})",
                        "check_ok": False,
                        "fields": {"reason": f"crc field says {good + 1} but the data's CRC-32 "
                                             f"is {good}"}}]),
        ("from-host", [{"kind": "config-request", "check": f"crc32 {crc32_text(request.text)}",
                        "check_ok": True, "fields": {"len": str(len(request.text)),
                                                     "data": request.text}}]),
    ]  # fmt: skip
    (reply,) = frames[3][1]
    assert (frames[3][0], reply["kind"], reply["check_ok"]) == ("to-host", "config-reply", True)
    assert frames[4] == (
        "to-host",
        [{"kind": "command", "check": f"crc32 {crc32_text('to the host')}", "check_ok": True,
          "fields": {"cid": "1", "topic_id": "0", "len": "11", "data": "to the host"}}],
    )  # fmt: skip
