"""What a new user does first, end to end: restart ``vdtu up``, use the cloud console, copy
the broker login from the first screen.

Each test starts ``vdtu up`` as a subprocess and talks to it as a user's tools would: the
console (``vdtu cloud``) as a subprocess, a plain paho client as a backend.
"""

from __future__ import annotations

import json
import queue
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import require_tool
from tests.e2e.cloud_tools import cloud
from tests.e2e.quec_tools import (
    CloudClient,
    Inbox,
    Received,
    StderrTail,
    broker_login,
    write_unit_config,
)
from tests.e2e.running import two_free_ports, vdtu_up
from vdtu.firmware.quec.config import default_config, load_config
from vdtu.identity import Identity

pytestmark = [pytest.mark.pty, pytest.mark.slow]

SEED = 0
LOGIN_KEYS = ("broker_username", "broker_password")


class Cloud(Protocol):
    """A cloud backend's MQTT client: what it received, and a way to subscribe and publish."""

    messages: Inbox[Received]

    def subscribe(self, *topics: str) -> None: ...

    def publish(self, topic: str, payload: bytes) -> None: ...


def ask_code_0(cloud: Cloud, imei: str, *, timeout_s: float = 30.0) -> dict[str, Any]:
    """Publish code 0 to a QuecPython unit once a second until it answers; its reply.

    The unit registers to the network before its channel connects, so the first
    commands may go unheard.
    """
    cloud.subscribe(f"quec/{imei}/up")
    deadline = time.monotonic() + timeout_s
    msg_id = 0
    while True:
        msg_id += 1
        cloud.publish(f"quec/{imei}/down", json.dumps({"msg_id": msg_id, "cmd_code": 0}).encode())
        try:
            _index, message = cloud.messages.wait(
                lambda m: m.source == f"quec/{imei}/up" and json.loads(m.data).get("code") == 0,
                timeout_s=1.0,
            )
        except AssertionError:
            if time.monotonic() > deadline:
                raise AssertionError(f"{imei} never answered code 0 in {timeout_s} s") from None
            continue
        reply: dict[str, Any] = json.loads(message.data)
        return reply


def ask_code_0_as_console(pty_dir: Path, imei: str) -> dict[str, Any]:
    """``ask_code_0`` from a paho client with the console login of ``up.json``."""
    cloud = CloudClient(pty_dir, client_id=f"new-user-{imei}")
    try:
        return ask_code_0(cloud, imei)
    finally:
        cloud.close()


def wait_for_file(path: Path, *, timeout_s: float = 10.0) -> str:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} was never written"
        time.sleep(0.05)
    return path.read_text()


def test_a_quec_unit_answers_after_vdtu_up_restarts(tmp_path: Path) -> None:
    """The default config names the fleet's broker by its local name, so the unit finds the
    broker of the next run (on another random port)."""
    pty_dir, state_dir = tmp_path / "pty", tmp_path / "state"
    args = ("--profile", "quec", "--pty-dir", str(pty_dir), "--state-dir", str(state_dir))
    with vdtu_up(*args, "--ports", "uart") as first:
        imei = first.units[0]["imei"]
        written = json.loads(wait_for_file(Path(first.units[0]["config"])))
        assert written["conf"]["1"]["url"] == "broker.vdtu"
        code, err = first.stop()
        assert code == 0, err
    with vdtu_up(*args, "--ports", "uart") as second:
        assert second.units[0]["broker"] != first.units[0]["broker"]  # another random port
        reply = ask_code_0_as_console(pty_dir, imei)
        assert (reply["code"], reply["data"], reply["status"]) == (0, imei, 1)
        code, err = second.stop()
        assert code == 0, err
        assert "connection refused" not in err


def test_an_older_vdtus_default_config_is_moved_to_the_local_name(tmp_path: Path) -> None:
    """Unit 0 holds the default an older vdtu wrote (127.0.0.1 and a port of a run long
    gone): it is rewritten, said once at INFO, and the unit answers. Unit 1 holds a config
    of the user's (the same but QoS 0): kept byte for byte."""
    pty_dir, state_dir = tmp_path / "pty", tmp_path / "state"
    imeis = [Identity.for_unit(SEED, unit).imei for unit in (0, 1)]
    logins = [dict(zip(LOGIN_KEYS, broker_login(SEED, imei), strict=True)) for imei in imeis]
    older = [  # port 9 (discard): nothing listens there
        default_config(imei, broker_host="127.0.0.1", broker_port=9, **login)
        for imei, login in zip(imeis, logins, strict=True)
    ]
    path_0 = write_unit_config(state_dir, SEED, 0, older[0])
    user_text = json.dumps(older[1].to_json()).replace('"qos": "1"', '"qos": "0"')
    assert user_text != json.dumps(older[1].to_json())
    path_1 = state_dir / imeis[1] / "dtu_config.json"
    path_1.parent.mkdir(parents=True)
    path_1.write_text(user_text)
    args = ("--profile", "quec", "--pty-dir", str(pty_dir), "--state-dir", str(state_dir))
    with vdtu_up(*args, "--ports", "uart", "-v", units=2) as fleet:
        log = StderrTail(fleet.process)
        try:
            reply = ask_code_0_as_console(pty_dir, imeis[0])
            assert (reply["code"], reply["data"]) == (0, imeis[0])
            migrated = load_config(path_0.read_text())
            today = default_config(
                imeis[0], broker_host="broker.vdtu", broker_port=1883, **logins[0]
            )
            assert migrated.conf["1"] == today.conf["1"]
            assert path_1.read_text() == user_text
            lines = [line for line in log.text().splitlines() if "broker.vdtu" in line]
            assert len(lines) == 1, lines
            assert lines[0].startswith("dtu0 ")
            assert " INFO " in lines[0]
            assert "127.0.0.1:9" in lines[0]
            code, err = fleet.stop()
            assert code == 0, err
        finally:
            log.close()


def test_the_console_refuses_units_the_fleet_does_not_have_and_kinds_that_do_not_fit(
    tmp_path: Path,
) -> None:
    """``--profile mix``: unit 0 is XGC, unit 1 QuecPython. The console refuses (exit 2, one
    line) an IMEI the fleet lacks and a subcommand the unit's kind does not take; what fits
    is sent. Against a broker without a discovery file it sends and says it could not check."""
    pty_dir = tmp_path / "pty"
    args = ("--profile", "mix", "--pty-dir", str(pty_dir), "--no-state", "--ports", "uart")
    with vdtu_up(*args, units=2) as fleet:
        xgc, quec = (unit["imei"] for unit in fleet.units)
        at = ("--pty-dir", str(pty_dir))
        unknown = cloud(*at, "send", "notanimei", '{"a": 1}')
        assert unknown.returncode == 2
        assert unknown.stderr == (
            "vdtu: IMEI 'notanimei' is not a unit of the running vdtu up; "
            f"it has 2 units: {xgc} (xgc), {quec} (quec)\n"
        )
        assert unknown.stdout == ""
        wrong_kind = cloud(*at, "cmd", xgc, "0")
        assert wrong_kind.returncode == 2
        assert f"{xgc} is an XGC unit; 'cmd' needs a QuecPython unit" in wrong_kind.stderr
        assert cloud(*at, "config", quec, "a=1").returncode == 2
        sent = cloud(*at, "send", xgc, '{"a": 1}')
        assert (sent.returncode, sent.stderr) == (0, ""), sent.stderr
        assert sent.stdout.startswith("sent to xgc/")
        # a broker the console has no discovery file for: it cannot know the units
        document = json.loads((pty_dir / "up.json").read_text())
        broker = document["broker"]
        url = f"mqtt://{document['username']}:{document['password']}@{broker['host']}:{broker['port']}"
        elsewhere = tmp_path / "elsewhere"
        blind = cloud(
            "--pty-dir",
            str(elsewhere),
            "--broker",
            url,
            "--project",
            "p",
            "send",
            "notanimei",
            '{"a": 1}',
        )
        assert blind.returncode == 0, blind.stderr
        assert blind.stdout.startswith("sent to xgc/p/notanimei/down")
        assert "IMEI notanimei and its kind (XGC or QuecPython) are not checked" in blind.stderr
        code, err = fleet.stop()
        assert code == 0, err


class Subscriber:
    """A plain paho client, as a user's backend: messages of its subscriptions, in order."""

    def __init__(self, host: str, port: int, username: str, password: str) -> None:
        self.messages: Inbox[Received] = Inbox()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="new-user-backend")
        self.client.username_pw_set(username, password)
        connected: queue.Queue[str] = queue.Queue()
        granted: queue.Queue[list[int]] = queue.Queue()
        self.client.on_connect = lambda _c, _u, _f, reason, _p: connected.put(str(reason))
        self.client.on_subscribe = lambda _c, _u, _mid, codes, _p: granted.put(
            [code.value for code in codes]
        )
        self.client.on_message = lambda _c, _u, message: self.messages.add(
            Received(bytes(message.payload), message.topic, time.monotonic())
        )
        self.client.connect(host, port)
        self.client.loop_start()
        self._granted = granted
        assert connected.get(timeout=10) == "Success"

    def subscribe(self, *topics: str) -> None:
        for topic in topics:
            self.client.subscribe(topic, qos=1)
            assert self._granted.get(timeout=10) == [1], f"{topic} refused"

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_the_json_lines_console_url_sees_the_traffic(tmp_path: Path) -> None:
    """The ``console`` URL of the ``--json`` line logs a plain MQTT client in; subscribed to
    ``xgc/#`` it sees what ``vdtu cloud send ... --broker URL`` (the option after the
    subcommand) sends the unit. (The units' uplinks: the next test.)"""
    pty_dir = tmp_path / "pty"
    with vdtu_up("--pty-dir", str(pty_dir), "--no-state", "--ports", "uart") as fleet:
        unit = fleet.units[0]
        url = urlsplit(unit["console"])
        broker = urlsplit(unit["broker"])
        assert (url.scheme, url.hostname, url.port) == ("mqtt", "127.0.0.1", broker.port)
        assert url.username == "vdtu-console"
        assert url.password
        backend = Subscriber(url.hostname, url.port, unquote(url.username), unquote(url.password))
        try:
            backend.subscribe("xgc/#")
            prefix = f"xgc/{unit['project']}/{unit['imei']}/"
            sent = cloud(
                "send",
                unit["imei"],
                '{"hello": 1}',
                "--broker",
                unit["console"],
                "--pty-dir",
                str(pty_dir),
            )
            assert (sent.returncode, sent.stderr) == (0, "")
            _index, down = backend.messages.wait(lambda m: m.source == prefix + "down")
            assert json.loads(down.data) == {"hello": 1}
        finally:
            backend.close()
        code, err = fleet.stop()
        assert code == 0, err


def test_the_table_prints_a_mosquitto_sub_line_that_sees_the_traffic(tmp_path: Path) -> None:
    """Under the table (no ``--json``): the console URL and a ``mosquitto_sub`` line on
    stdout; its -h -p -u -P -t log a plain client in, and it sees both kinds of units
    (mix): a QuecPython unit's reply, an XGC unit's state; the login is never in the log
    (stderr)."""
    pty_dir = tmp_path / "pty"
    command = [sys.executable, "-m", "vdtu.cli", "up", "--profile", "mix", "--units", "2"]
    command += ["--pty-dir", str(pty_dir), "--no-state", "--ports", "uart"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines: list[str] = []
        while not lines or not lines[-1].lstrip().startswith("mosquitto_sub"):
            line = process.stdout.readline()
            assert line, f"vdtu up ended; printed {lines}"
            lines.append(line.rstrip("\n"))
        console = next(line for line in lines if line.startswith("console "))
        words = shlex.split(lines[-1])
        assert words[0] == "mosquitto_sub"
        assert "-v" in words
        option = {
            words[i]: words[i + 1]
            for i in range(1, len(words) - 1)
            if words[i] in ("-h", "-p", "-u", "-P")
        }
        topics = [words[i + 1] for i in range(len(words) - 1) if words[i] == "-t"]
        assert topics == ["xgc/#", "quec/#"]
        url = urlsplit(console.split()[1])
        assert (option["-h"], int(option["-p"])) == (url.hostname, url.port)
        assert (option["-u"], option["-P"]) == (url.username, url.password)
        backend = Subscriber(option["-h"], int(option["-p"]), option["-u"], option["-P"])
        try:
            backend.subscribe(*topics)
            quec_imei = Identity.for_unit(SEED, 1).imei
            assert ask_code_0(backend, quec_imei)["data"] == quec_imei
            xgc_imei = Identity.for_unit(SEED, 0).imei
            backend.messages.wait(lambda m: m.source.endswith(f"/{xgc_imei}/state"), timeout_s=15)
        finally:
            backend.close()
    finally:
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert option["-P"] not in err


def readme_json_lines() -> list[dict[str, Any]]:
    """The README's ``vdtu up --json`` example: one JSON object per unit (wrapped there)."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    after = readme.split("`vdtu up --json` prints", 1)[1]
    block = after.split("```json\n", 1)[1].split("```", 1)[0]
    decoder, objects, text = json.JSONDecoder(), [], block.strip()
    while text:
        value, end = decoder.raw_decode(text)
        objects.append(value)
        text = text[end:].strip()
    return objects


def test_the_readme_json_example_is_what_vdtu_up_prints(tmp_path: Path) -> None:
    """Same keys, in the same order, per kind of unit, and the same kinds of values."""
    require_tool("socat")
    example = readme_json_lines()
    assert [unit["profile"] for unit in example] == ["xgc", "quec"]
    pty_dir, state_dir = tmp_path / "pty", tmp_path / "state"
    args = ("--profile", "mix", "--pty-dir", str(pty_dir), "--state-dir", str(state_dir))
    tcp = two_free_ports()
    with vdtu_up(*args, "--serial-tcp", f"uart={tcp}", units=2) as fleet:
        for shown, printed in zip(example, fleet.units, strict=True):
            assert list(shown) == list(printed)
            for key, value in printed.items():
                assert type(shown[key]) is type(value), key
            assert list(shown["ports"]) == list(printed["ports"])
            assert urlsplit(shown["console"]).username == urlsplit(printed["console"]).username
        code, err = fleet.stop()
        assert code == 0, err
