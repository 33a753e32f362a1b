"""The XGC unit's cloud life in virtual time, against a simulated platform and broker."""

from __future__ import annotations

import json

import pytest

from tests.xgc_harness import XgcBench
from vdtu.clock import DomainEnvironment
from vdtu.cloud.xgc_api import Channel, device_topic, encode_json
from vdtu.firmware.xgc.codec import FrameKind
from vdtu.firmware.xgc.options import XgcOptions
from vdtu.firmware.xgc.states import DtuState
from vdtu.links.sim_xgc import SimXgcPlatform
from vdtu.storage import MemoryStorage

PID = "1000904556b23945fe90"
SECRET = "76EDCE04DE96555E16CB34175F2B1565493A7412"
IMEI = "867435053362828"


def topic(channel: Channel) -> str:
    return device_topic(PID, IMEI, channel)


class CloudBench(XgcBench):
    platform: SimXgcPlatform


def provisioned(*, secret: str = SECRET, **config: object) -> CloudBench:
    """A unit whose flash holds the project info, on a simulated platform knowing PID/SECRET."""
    flash = MemoryStorage()
    flash.save({"project": {"pid": PID, "secret": secret}})
    platforms: list[SimXgcPlatform] = []

    def make(env: DomainEnvironment) -> SimXgcPlatform:
        platforms.append(SimXgcPlatform(env, projects={PID: SECRET}))
        return platforms[0]

    bench = CloudBench(flash=flash, cloud=make, **config)  # type: ignore[arg-type]
    bench.platform = platforms[0]
    return bench


def states(bench: XgcBench) -> list[str]:
    return [f.content or "" for f in bench.frames() if f.action == "GET_DTU_STATE"]


def test_provisioned_unit_connects_and_says_online() -> None:
    """init-ok -> get-mqtt-info-ok -> mqtt-connected; the retained state says online."""
    bench = provisioned()
    bench.boot(until=DtuState.MQTT_CONNECTED)
    assert states(bench) == ["init-ok", "get-mqtt-info-ok", "mqtt-connected"]
    bench.clock.run_for(1)
    assert json.loads(bench.platform.retained[topic(Channel.STATE)]) == {"state": "online"}


def test_wrong_project_secret_gives_get_mqtt_info_fail_and_no_retry() -> None:
    """A wrong secret: get-mqtt-info-fail, and the unit does not hammer the platform."""
    bench = provisioned(secret="WRONG")
    bench.boot(until=DtuState.GET_MQTT_INFO_FAIL)
    bench.clock.run_for(600)
    assert states(bench) == ["init-ok", "get-mqtt-info-fail"]
    assert bench.platform.connect_attempts == []


def test_set_prjinfo_connects_an_unprovisioned_unit() -> None:
    """no-project-info, then SET_PRJINFO with the right project: the unit connects."""
    bench = CloudBench(cloud=lambda env: SimXgcPlatform(env, projects={PID: SECRET}))
    bench.boot()
    bench.frames()
    bench.send("SET_PRJINFO", f"PID:{PID};PSECRET:{SECRET}")
    bench.clock.run_for(2)
    replies = [(f.action, f.content) for f in bench.frames()]
    assert replies == [
        ("SET_PRJINFO", "ok"),
        ("GET_DTU_STATE", "get-mqtt-info-ok"),
        ("GET_DTU_STATE", "mqtt-connected"),
    ]


def test_data_pack_goes_up_as_typed_json() -> None:
    """DATA_PACK a:1;b:true;c:x;d:2.5 -> typed JSON {"a":1,"b":true,...}; a string stays one."""
    bench = provisioned()
    bench.boot(until=DtuState.MQTT_CONNECTED)
    bench.frames()
    assert bench.ask("DATA_PACK", "a:1;b:true;c:x;d:2.5") == "ok"
    assert bench.ask("DATA_PACK", "abcdefg") == "ok"
    bench.clock.run_for(1)
    ups = [json.loads(p) for p in bench.platform.payloads(topic(Channel.UP))]
    assert ups == [{"a": 1, "b": True, "c": "x", "d": 2.5}, "abcdefg"]
    assert len(bench.firmware.outbox.pending) == 0


@pytest.mark.parametrize(
    ("payload", "content"),
    [
        (b'{"switch1": true}', "switch1:true"),
        (b'{"up": true, "temperature": 32}', "up:true;temperature:32"),
        (b'"abcdefg"', "abcdefg"),
        (b"not json at all", "not json at all"),
    ],
)
def test_cloud_messages_reach_the_host_as_data_pack(payload: bytes, content: str) -> None:
    """The seed's three DATA_PACK cases (and raw text) arrive as $XGC#DATA_PACK frames."""
    bench = provisioned()
    bench.boot(until=DtuState.MQTT_CONNECTED)
    bench.frames()
    assert bench.platform.send(topic(Channel.DOWN), payload) == 1
    bench.clock.run_for(0.5)
    (frame,) = bench.frames()
    assert (frame.kind, frame.action, frame.sn, frame.content) == (
        FrameKind.COMMAND,
        "DATA_PACK",
        IMEI,
        content,
    )


def test_trailing_separator_option_reproduces_seed_case_one() -> None:
    """With data_pack_trailing_separator, {"switch1": true} -> 'switch1:true;' as in the seed."""
    bench = provisioned(options=XgcOptions(data_pack_trailing_separator=True))
    bench.boot(until=DtuState.MQTT_CONNECTED)
    bench.frames()
    bench.platform.send(topic(Channel.DOWN), b'{"switch1": true}')
    bench.clock.run_for(0.5)
    assert [f.content for f in bench.frames()] == ["switch1:true;"]


def test_config_and_ota_pushes_and_the_hosts_status_replies() -> None:
    """NOTIFY_CONFIG and NOTIFY_OTA reach the host; UPLOAD_*_STATUS go up to the status topics."""
    bench = provisioned()
    bench.boot(until=DtuState.MQTT_CONNECTED)
    bench.frames()
    bench.platform.send(
        topic(Channel.CONFIG), b'{"configVersion": 1693894843740, "key1": "value1", "key2": 2}'
    )
    bench.platform.send(
        topic(Channel.OTA),
        encode_json(
            {"fwVersion": "v1.0", "filename": "update.bin", "md5": "SD9V", "url": "http://h/a b"}
        ),
    )
    bench.clock.run_for(0.5)
    config, ota = bench.frames()
    assert (config.action, config.content) == (
        "NOTIFY_CONFIG",
        "configVersion:1693894843740;key1:value1;key2:2",
    )
    assert (ota.action, ota.content) == (
        "NOTIFY_OTA",
        "fwVersion:v1.0;filename:update.bin;md5:SD9V;url:http%3A%2F%2Fh%2Fa%20b",
    )
    assert bench.ask("UPLOAD_CONFIG_STATUS", "configVersion:1693894843740;status:success") == "ok"
    assert bench.ask("UPLOAD_OTA_STATUS", "fwVersion:v1.0;status:finish") == "ok"
    bench.clock.run_for(1)
    assert json.loads(bench.platform.payloads(topic(Channel.CONFIG_STATUS))[0]) == {
        "configVersion": 1693894843740,
        "status": "success",
    }
    assert json.loads(bench.platform.payloads(topic(Channel.OTA_STATUS))[0]) == {
        "fwVersion": "v1.0",
        "status": "finish",
    }


def test_outage_queues_data_and_delivers_it_in_order_after_reconnect() -> None:
    """Broker down for 30 s: mqtt-disconnected, reconnect 5 s later (then backoff); every
    DATA_PACK written meanwhile arrives after the broker is back, in order."""
    bench = provisioned()
    bench.boot(until=DtuState.MQTT_CONNECTED)
    bench.frames()
    bench.platform.outage()
    down_at = bench.clock.now
    bench.clock.run_for(0.5)
    assert states(bench) == ["mqtt-disconnected"]
    for n in range(20):
        assert bench.ask("DATA_PACK", f"n:{n}", wait_s=1) == "ok"
    bench.clock.run_until(down_at + 30)
    assert bench.platform.payloads(topic(Channel.UP)) == []
    attempts = [at - down_at for at, _ in bench.platform.connect_attempts[1:]]
    assert 5.0 <= attempts[0] <= 5.2
    assert attempts[1] - attempts[0] >= 8  # backoff: ~10 s (+/-20 %)
    bench.platform.restore()
    bench.clock.run_for(120)
    assert states(bench) == ["mqtt-connected"]
    ups = [json.loads(p)["n"] for p in bench.platform.payloads(topic(Channel.UP))]
    assert ups == list(range(20))
    assert len(bench.firmware.outbox.pending) == 0


def test_full_queue_refuses_new_data_and_counts_it() -> None:
    """With a 3-message queue and no broker, the 4th DATA_PACK is refused: error:queue-full."""
    bench = provisioned(options=XgcOptions(uplink_queue=3))
    bench.boot(until=DtuState.MQTT_CONNECTED)
    bench.platform.outage()
    bench.clock.run_for(1)
    bench.frames()
    for n in range(3):
        assert bench.ask("DATA_PACK", f"n:{n}") == "ok"
    assert bench.ask("DATA_PACK", "n:3").startswith("error:queue-full;")
    assert bench.firmware.outbox.refused == 1


def test_properties_are_sent_every_interval_with_location() -> None:
    """Properties (rssi, vbat, vbus, iccid, lbs) go up at connect and every interval."""
    bench = provisioned(location=(113.3160324, 22.5571994))
    bench.boot(until=DtuState.MQTT_CONNECTED)
    assert bench.ask("SET_UPDATE_PROPS", "interval:10000;updateLoc:true") == "ok"
    bench.clock.run_for(165.5)
    props = [json.loads(p) for p in bench.platform.payloads(topic(Channel.PROPS))]
    assert (
        len(props) == 2
    )  # at connect, then 165 s later (the interval read at that time was 165 s)
    bench.clock.run_for(30)
    props = [json.loads(p) for p in bench.platform.payloads(topic(Channel.PROPS))]
    assert len(props) == 5
    assert set(props[-1]) == {"rssi", "vbat", "vbus", "iccid", "lbs"}
    assert props[-1]["lbs"] == {"longitude": 113.3160324, "latitude": 22.5571994}
    assert props[-1]["iccid"] == "898604E0092221379975"
    assert bench.ask("SET_UPDATE_PROPS", "updateLoc:false") == "ok"
    bench.clock.run_for(10)
    assert "lbs" not in json.loads(bench.platform.payloads(topic(Channel.PROPS))[-1])


def test_losing_coverage_drops_the_connection_and_publishes_the_will() -> None:
    """No coverage: mqtt-disconnected at once and the broker shows offline; back: reconnected."""
    bench = provisioned()
    bench.boot(until=DtuState.MQTT_CONNECTED)
    bench.clock.run_for(1)
    bench.frames()
    bench.unit.set_coverage(False)
    bench.clock.run_for(1)
    assert states(bench) == ["mqtt-disconnected"]
    assert json.loads(bench.platform.retained[topic(Channel.STATE)]) == {"state": "offline"}
    bench.unit.set_coverage(True)
    bench.clock.run_for(60)
    assert states(bench) == ["mqtt-connected"]
    assert json.loads(bench.platform.retained[topic(Channel.STATE)]) == {"state": "online"}


def test_reboot_with_queued_data_reports_the_loss() -> None:
    """Queued uplinks do not survive a power cycle: the loss is logged and counted."""
    bench = provisioned()
    bench.boot(until=DtuState.MQTT_CONNECTED)
    bench.platform.outage()
    bench.clock.run_for(1)
    bench.ask("DATA_PACK", "x:1")
    bench.unit.reboot()
    assert bench.firmware.stats.uplinks_lost_at_power_off == 1
    assert any("1 queued uplinks lost" in r.text for r in bench.unit.log.records)


def test_a_fleet_reconnects_spread_out_not_in_step() -> None:
    """50 units lose the broker at once; their later reconnect attempts are spread by jitter."""
    from vdtu.clock import VirtualClock  # noqa: PLC0415
    from vdtu.identity import Identity  # noqa: PLC0415
    from vdtu.unit import Unit, UnitConfig  # noqa: PLC0415

    clock = VirtualClock()
    platform = SimXgcPlatform(clock.env, projects={PID: SECRET})
    for unit_id in range(50):
        flash = MemoryStorage()
        flash.save({"project": {"pid": PID, "secret": SECRET}})
        config = UnitConfig(unit_id=unit_id, identity=Identity.for_unit(0, unit_id))
        Unit(clock.env, config, epoch_s=clock.epoch_s, flash=flash, network=platform).power_on()
    clock.run_for(30)
    assert len(platform.connections) == 50
    platform.outage()
    outage_at = clock.now
    clock.run_for(100)
    third_attempts = sorted(
        at - outage_at for at, client in platform.connect_attempts if at > outage_at + 12
    )
    assert len(third_attempts) >= 50
    spread = third_attempts[49] - third_attempts[0]
    assert spread > 2.0
    platform.restore()
    clock.run_for(600)
    assert len(platform.connections) == 50


def test_coverage_lost_while_connecting_leaves_no_stray_connection() -> None:
    """Coverage goes while the CONNECT is in flight: the attempt is abandoned (no late
    mqtt-connected), and after coverage returns there is exactly one connection."""
    bench = provisioned()
    bench.unit.power_on()
    while bench.platform.connect_attempts == []:
        bench.clock.run_for(0.01)
    bench.unit.set_coverage(False)
    bench.clock.run_for(5)
    assert bench.firmware.state is not DtuState.MQTT_CONNECTED
    assert bench.platform.connections == []
    bench.unit.set_coverage(True)
    bench.clock.run_for(60)
    assert bench.unit.snapshot()["state"] == "mqtt-connected"
    assert len(bench.platform.connections) == 1
