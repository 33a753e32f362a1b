"""No cloud message can stop a unit: a hostile downlink is refused, logged once and counted.

Each case is sent on the topic it targets; the unit must send the host nothing for it,
write one WARN line saying why, count it in ``stats.downlinks_refused``, and go on
answering the host and passing on good downlinks.
"""

from __future__ import annotations

import pytest

from tests.xgc_harness import XgcBench
from vdtu.cloud.xgc_api import MAX_DOWNLINK_BYTES, Channel, device_topic
from vdtu.firmware.xgc.states import DtuState
from vdtu.links.sim_xgc import SimXgcPlatform
from vdtu.log import LogLevel
from vdtu.storage import MemoryStorage

PID = "1000904556b23945fe90"
SECRET = "76EDCE04DE96555E16CB34175F2B1565493A7412"
IMEI = "867435053362828"
DEEP = b"[" * 2000 + b"]" * 2000
HUGE_INT = b"1" * 5000
LONG_INT = b"9" * 100
OTA_FILE = b'"filename":"XGC-RG88C_1.1.bin","md5":"00"'
OTA = b'"fwVersion":"1.1",' + OTA_FILE


class Connected:
    """A provisioned unit on a simulated platform, connected, host frames taken."""

    def __init__(self) -> None:
        flash = MemoryStorage()
        flash.save({"project": {"pid": PID, "secret": SECRET}})
        platforms: list[SimXgcPlatform] = []

        def make(env: object) -> SimXgcPlatform:
            platforms.append(SimXgcPlatform(env, projects={PID: SECRET}))  # type: ignore[arg-type]
            return platforms[0]

        self.bench = XgcBench(flash=flash, cloud=make)
        self.platform = platforms[0]
        self.bench.boot(until=DtuState.MQTT_CONNECTED)
        self.bench.frames()

    def downlink(self, channel: Channel, payload: bytes) -> None:
        assert self.platform.send(device_topic(PID, IMEI, channel), payload) == 1
        self.bench.clock.run_for(0.5)

    def warnings(self) -> list[str]:
        return [r.text for r in self.bench.unit.log.records if r.level is LogLevel.WARN]


@pytest.mark.parametrize(
    ("channel", "payload", "why"),
    [
        (Channel.DOWN, b'{"a":"x\\r\\ny"}', "CR or LF"),
        (Channel.DOWN, b'{"a\\nb":1}', "CR or LF"),
        (Channel.DOWN, b'"two\\nlines"', "CR or LF"),
        (Channel.DOWN, b"raw text\r\nwith a line end", "CR or LF"),
        (Channel.DOWN, b'{"a":"\\udfff"}', "surrogate"),
        (Channel.DOWN, b'{"a":{"b":["\\ud800"]}}', "surrogate"),
        (Channel.DOWN, b'"\\udfff"', "surrogate"),
        (Channel.DOWN, b'{"a":' + HUGE_INT + b"}", "bytes"),
        (Channel.DOWN, b'{"a":' + LONG_INT + b"}", "digits"),
        (Channel.DOWN, b"-" + LONG_INT, "digits"),
        (Channel.DOWN, DEEP, "nesting"),
        (Channel.DOWN, b'"' + b"x" * MAX_DOWNLINK_BYTES + b'"', "bytes"),
        (Channel.DOWN, b'"' + b"x" * (MAX_DOWNLINK_BYTES - 20) + b'"', "line"),
        (Channel.DOWN, b"\xff" * 2000, "line"),
        (Channel.CONFIG, b'{"configVersion":"1\\r2","k":1}', "CR or LF"),
        (Channel.CONFIG, b'{"configVersion":1,"k":"\\udfff"}', "surrogate"),
        (Channel.CONFIG, b'{"configVersion":' + HUGE_INT + b"}", "bytes"),
        (Channel.CONFIG, b'{"configVersion":' + LONG_INT + b"}", "digits"),
        (Channel.CONFIG, DEEP, "nesting"),
        (Channel.CONFIG, b"[1,2]", "JSON object"),
        (Channel.OTA, b'{"fwVersion":"1\\n1",' + OTA_FILE + b',"url":"http://h/a"}', "CR or LF"),
        (Channel.OTA, b"{" + OTA + b',"url":"http://h/\\udfff"}', "surrogate"),
        (Channel.OTA, b'{"fwVersion":' + LONG_INT + b".5}", "digits"),
        (Channel.OTA, b"{" + OTA + b"}", "missing"),
        (Channel.OTA, DEEP, "nesting"),
    ],
)
def test_a_hostile_downlink_is_refused_logged_and_counted(
    channel: Channel, payload: bytes, why: str
) -> None:
    """The unit sends the host nothing for it, logs one WARN naming why, counts it, runs on."""
    unit = Connected()
    unit.downlink(channel, payload)
    assert unit.bench.frames() == []
    assert unit.bench.firmware.stats.downlinks_refused == 1
    refused = [text for text in unit.warnings() if "refused" in text]
    assert len(refused) == 1, refused
    assert why in refused[0]
    assert channel.value in refused[0]
    assert len(refused[0]) < 300
    assert unit.bench.ask("GET_IMEI") == IMEI
    unit.downlink(Channel.DOWN, b'{"after":true}')
    assert [f.content for f in unit.bench.frames()] == ["after:true"]
    assert unit.bench.firmware.state is DtuState.MQTT_CONNECTED


def test_a_nested_value_with_a_line_end_is_passed_on_escaped() -> None:
    """A CR or LF inside a nested value is JSON-escaped on the line, so it is passed on."""
    unit = Connected()
    unit.downlink(Channel.DOWN, b'{"a":{"b":"x\\ny"}}')
    assert [f.content for f in unit.bench.frames()] == ['a:{"b":"x\\ny"}']
    assert unit.bench.firmware.stats.downlinks_refused == 0


def test_a_downlink_at_the_size_limit_is_passed_on() -> None:
    """A downlink of exactly MAX_DOWNLINK_BYTES whose frame fits the line is not refused."""
    unit = Connected()
    payload = b'{"k":"' + b"x" * (MAX_DOWNLINK_BYTES - 200) + b'"}'
    unit.downlink(Channel.DOWN, payload + b" " * (MAX_DOWNLINK_BYTES - len(payload)))
    (frame,) = unit.bench.frames()
    assert frame.content == "k:" + "x" * (MAX_DOWNLINK_BYTES - 200)
    assert unit.bench.firmware.stats.downlinks_refused == 0
