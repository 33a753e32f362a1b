"""A QuecPython unit under ``vdtu up``, driven by a plain paho client as a cloud backend would.

Every command code of docs/spec/quec.md#3.1 is published on the unit's subscribe topic by a
paho client (not vdtu code) logged in to the embedded broker; the reply must come
back on the unit's publish topic with the code, the status and the ``msg_id``.
The serial configuration channel is driven through the unit's PTY with pyserial.
"""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import serial
from paho.mqtt.enums import CallbackAPIVersion

from tests.e2e.cloud_tools import Watcher, cloud
from tests.e2e.running import RunningFleet, vdtu_up
from vdtu.firmware.quec.config import default_config
from vdtu.firmware.quec.frames import (
    ChannelType,
    CommandFrame,
    ConfigReply,
    ConfigRequest,
    PortBinding,
    parse_config_reply,
    parse_frame,
)
from vdtu.identity import Identity

pytestmark = [pytest.mark.pty, pytest.mark.slow]

SEED = 7


class Backend:
    """A cloud backend: a paho client with its own network thread."""

    def __init__(self, discovery: dict[str, Any], imei: str) -> None:
        self.imei = imei
        self.down = f"quec/{imei}/down"
        self.up = f"quec/{imei}/up"
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"backend-{imei}")
        self.client.username_pw_set(discovery["username"], discovery["password"])
        subscribed = queue.Queue[int]()
        self.client.on_message = lambda _c, _u, message: self.messages.put(
            json.loads(message.payload)
        )
        self.client.on_subscribe = lambda *_args: subscribed.put(1)
        broker = discovery["broker"]
        self.client.connect(broker["host"], broker["port"])
        self.client.loop_start()
        self.client.subscribe(self.up, qos=1)
        subscribed.get(timeout=10)
        self.next_id = 1

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    def ask(self, code: int, *, timeout_s: float = 10.0, **fields: Any) -> dict[str, Any]:
        """Publish a command and return the reply that echoes its msg_id."""
        msg_id = self.next_id
        self.next_id += 1
        message = {"msg_id": msg_id, "cmd_code": code, **fields}
        self.client.publish(self.down, json.dumps(message), qos=1).wait_for_publish(5)
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no reply to code {code} within {timeout_s} s")
            reply = self.messages.get(timeout=left)
            if reply.get("msg_id") == msg_id:
                return reply


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningFleet, Path]]:
    base = tmp_path_factory.mktemp("quec")
    pty_dir = base / "pty"
    args = ("--profile", "quec", "--seed", str(SEED), "--pty-dir", str(pty_dir))
    with vdtu_up(*args, "--state-dir", str(base / "state"), "--ports", "uart") as fleet:
        yield fleet, pty_dir
        fleet.stop()


@pytest.fixture
def backend(running: tuple[RunningFleet, Path]) -> Iterator[Backend]:
    fleet, pty_dir = running
    discovery = json.loads((pty_dir / "up.json").read_text())
    client = Backend(discovery, fleet.units[0]["imei"])
    deadline = time.monotonic() + 40
    while True:  # until the unit's channel is up (it registers to the network first)
        try:
            client.ask(0, timeout_s=1.0)
            break
        except (AssertionError, queue.Empty):
            if time.monotonic() > deadline:
                raise
    yield client
    client.close()


def _password(imei: str) -> str:
    return imei[-6:]


def test_the_json_line_names_the_profile_and_the_config_file(
    running: tuple[RunningFleet, Path],
) -> None:
    fleet, _pty_dir = running
    unit = fleet.units[0]
    assert unit["profile"] == "quec"
    config = json.loads(Path(unit["config"]).read_text())
    assert config["password"] == _password(unit["imei"])
    assert config["conf"]["1"]["subscribe"] == {"0": f"quec/{unit['imei']}/down"}


def test_every_query_code_answers_with_its_data(backend: Backend) -> None:
    imei = backend.imei
    password = _password(imei)
    identity = Identity.for_unit(SEED, 0)
    assert backend.ask(0) == {"code": 0, "data": imei, "status": 1, "msg_id": backend.next_id - 1}
    assert backend.ask(1)["data"] == identity.phone
    assert backend.ask(2)["data"] == "v 100"
    assert backend.ask(3)["data"].startswith("CSQ")
    assert json.loads(json.dumps(backend.ask(4, password=password)["data"]))["password"] == password
    assert backend.ask(5, password=password)["status"] == 1
    assert backend.ask(6, password=password)["data"] == identity.iccid
    assert float(backend.ask(7, password=password, data={"adcn": 0})["data"]) >= 0
    assert backend.ask(8, password=password, data={"pins": 1})["data"] in (0, 1)
    assert int(backend.ask(9, password=password)["data"]) > 3000
    sensor = backend.ask(10, password=password)["data"]
    assert set(sensor) == {"temperature", "humidity"}
    assert backend.ask(11, password=password)["data"] == {"1": 0}
    assert backend.ask(12, password=password)["data"] == {"voice_state": 1, "data_state": 1}
    longitude, latitude, accuracy = backend.ask(13, password=password)["data"]
    assert 70 < longitude < 140
    assert 15 < latitude < 55
    assert accuracy > 0


def test_every_setting_code_is_accepted_and_saved(
    backend: Backend, running: tuple[RunningFleet, Path]
) -> None:
    fleet, _pty_dir = running
    password = _password(backend.imei)
    sms = backend.ask(
        50,
        password=password,
        data={"message": {"number": "13800138000", "sms_msg": "hello"}},
    )
    assert sms["status"] == 1
    current = default_config(backend.imei, broker_host="h", broker_port=1).to_json()
    settings: list[tuple[int, dict[str, Any]]] = [
        (52, {"plate": 1}),
        (53, {"reg": 1}),
        (54, {"version": 100}),
        (55, {"fota": 1}),
        (56, {"nolog": 0}),
        (57, {"service_acquire": 0}),
        (58, {"uconf": current["uconf"]}),
        (60, {"apn": ["cmnet", "", ""]}),
        (61, {"pins": ["1", "2", "3"]}),
        (62, {"ota": 1}),
    ]
    for code, data in settings:
        reply = backend.ask(code, password=password, data=data)
        assert reply == {"code": code, "status": 1, "msg_id": reply["msg_id"]}, (code, reply)
    saved = json.loads(Path(fleet.units[0]["config"]).read_text())
    assert saved["apn"] == ["cmnet", "", ""]
    assert saved["reg"] == 1
    # 59 and 63 rewrite the channels; give back the ones in force so the unit stays reachable
    in_force = backend.ask(4, password=password)["data"]
    assert backend.ask(59, password=password, data={"conf": in_force["conf"]})["status"] == 1
    assert backend.ask(63, password=password, data={"dtu_config": in_force})["status"] == 1
    assert backend.ask(51, password=password, data={"new_password": password})["status"] == 1


def test_wrong_password_and_unknown_code_get_error_replies(backend: Backend) -> None:
    refused = backend.ask(6, password="000000")
    assert refused == {
        "code": 6,
        "status": 0,
        "error": "Password verify error",
        "msg_id": refused["msg_id"],
    }
    unknown = backend.ask(99, password=_password(backend.imei))
    assert unknown["status"] == 0
    assert unknown["error"] == "Command code error"


def test_configuration_channel_through_the_pty(running: tuple[RunningFleet, Path]) -> None:
    fleet, _pty_dir = running
    imei = fleet.units[0]["imei"]
    port = serial.serial_for_url(fleet.units[0]["ports"]["uart"], baudrate=115200, timeout=0.1)
    try:
        request = ConfigRequest(text=json.dumps({"cmd_code": 0, "password": _password(imei)}))
        received = b""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            port.write(request.encode())
            time.sleep(0.3)
            received = port.read(4096)
            if received:
                break
        reply = parse_config_reply(received)
        assert isinstance(reply, ConfigReply), received
        assert json.loads(reply.text) == {"code": 0, "data": imei, "status": 1}
    finally:
        port.close()


def test_code_255_restarts_the_unit_and_it_answers_again(backend: Backend) -> None:
    before = time.monotonic()
    backend.client.publish(
        backend.down,
        json.dumps({"msg_id": 0, "cmd_code": 255, "password": _password(backend.imei)}),
        qos=1,
    ).wait_for_publish(5)
    time.sleep(1.0)
    deadline = time.monotonic() + 40
    while True:
        try:
            reply = backend.ask(0, timeout_s=1.0)
            break
        except (AssertionError, queue.Empty):
            if time.monotonic() > deadline:
                raise
    assert reply["data"] == backend.imei
    assert time.monotonic() - before > 3.0  # it booted again (firmware start + registration)


def test_a_malformed_dtu_config_stops_vdtu_up_naming_the_field(tmp_path: Path) -> None:
    imei = Identity.for_unit(SEED, 0).imei
    config = default_config(imei, broker_host="broker.vdtu", broker_port=1883).to_json()
    config["uconf"]["2"]["baudrate"] = "12345"
    path = tmp_path / "state" / imei / "dtu_config.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(config))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "vdtu.cli",
            "up",
            "--profile",
            "quec",
            "--seed",
            str(SEED),
            "--state-dir",
            str(tmp_path / "state"),
            "--pty-dir",
            str(tmp_path / "pty"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "uconf.2.baudrate" in result.stderr
    assert str(path) in result.stderr


def test_cloud_cmd_prints_the_reply_and_send_reaches_the_pty(
    running: tuple[RunningFleet, Path], backend: Backend
) -> None:
    fleet, pty_dir = running
    imei = backend.imei
    done = cloud("--pty-dir", str(pty_dir), "cmd", imei, "6")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["data"] == Identity.for_unit(SEED, 0).iccid
    refused = cloud("--pty-dir", str(pty_dir), "cmd", imei, "6", "--password", "000000")
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["error"] == "Password verify error"
    port = serial.serial_for_url(fleet.units[0]["ports"]["uart"], baudrate=115200, timeout=0.2)
    try:
        port.read(65536)
        sent = cloud("--pty-dir", str(pty_dir), "send", imei, '{"data": "from the cloud"}')
        assert sent.returncode == 0, sent.stderr
        received = b""
        deadline = time.monotonic() + 5
        while not received.endswith(b"from the cloud") and time.monotonic() < deadline:
            received += port.read(4096)
        frame = parse_frame(received, PortBinding.command({"1": ChannelType.MQTT}))
        assert frame == CommandFrame(cid="1", topic_id="0", data="from the cloud")
    finally:
        port.close()


def test_cloud_watch_shows_what_a_quec_unit_publishes(
    running: tuple[RunningFleet, Path], backend: Backend
) -> None:
    fleet, pty_dir = running
    watcher = Watcher("--pty-dir", str(pty_dir), timeout_s=30)
    port = serial.serial_for_url(fleet.units[0]["ports"]["uart"], baudrate=115200, timeout=0.2)
    try:
        # The watcher says nothing when its subscription is in place: the host writes again
        # each second until a record comes (a fixed sleep lost the race on a loaded machine).
        deadline = time.monotonic() + 15
        watched: list[dict[str, Any]] = []
        while not watched:
            assert time.monotonic() < deadline, f"no quec-up within 15 s: {watcher.records}"
            port.write(CommandFrame(cid="1", topic_id="0", data="watched").encode())
            with contextlib.suppress(AssertionError):
                watched = watcher.wait_for("quec-up", timeout_s=1.0)
        record = watched[0]
        assert record["imei"] == backend.imei
        assert record["payload"] == {"data": "watched"}
    finally:
        port.close()
        watcher.stop()
