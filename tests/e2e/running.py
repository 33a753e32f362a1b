"""Start ``vdtu up`` as a user would (a subprocess) and talk to its PTYs with pyserial."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import serial

from vdtu.cloud.xgc_api import device_password
from vdtu.firmware.xgc.codec import (
    CodeFormat,
    Frame,
    FrameKind,
    FrameReader,
    FrameReceived,
    ReaderEvent,
    ShortcutReceived,
)
from vdtu.fleet import default_pty_dir


class RunningFleet:
    """A ``vdtu up`` child process and the units it printed."""

    def __init__(self, process: subprocess.Popen[str], units: list[dict[str, Any]]) -> None:
        self.process = process
        self.units = units
        self.stderr = ""
        """Everything the child wrote to stderr (its log), once it has ended."""

    def stop(self, sig: int = signal.SIGINT) -> tuple[int, str]:
        """Signal the child and wait; returns its exit code and stderr."""
        self.process.send_signal(sig)
        _out, self.stderr = self.process.communicate(timeout=20)
        return self.process.returncode, self.stderr

    def secrets(self, discovery: Path) -> set[str]:
        """What must never appear in the log: project secrets, device passwords, the console
        login, and every password or secret in a QuecPython unit's dtu_config.json."""
        found: set[str] = set()
        for unit in self.units:
            secret = unit.get("project_secret")
            if secret:
                found |= {secret, device_password(secret, unit["imei"])}
            if unit.get("config"):
                found |= _config_secrets(json.loads(Path(unit["config"]).read_text()))
        if discovery.exists():
            found.add(json.loads(discovery.read_text()).get("password") or "")
        return {text for text in found if len(text) >= 6}


@contextmanager
def vdtu_up(*args: str, units: int = 1) -> Iterator[RunningFleet]:
    """Run ``vdtu up --json`` with ``args``; yields once every unit's JSON line is read."""
    command = [sys.executable, "-m", "vdtu.cli", "up", "--json", "--units", str(units), *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    fleet = RunningFleet(process, [])
    try:
        assert process.stdout is not None
        for _ in range(units):
            line = process.stdout.readline()
            if not line:
                _out, err = process.communicate(timeout=10)
                raise AssertionError(f"vdtu up exited {process.returncode}: {err}")
            fleet.units.append(json.loads(line))
        secrets = fleet.secrets(_pty_dir(args) / "up.json")
        yield fleet
        if process.poll() is None:
            process.kill()
            _out, fleet.stderr = process.communicate(timeout=10)
        leaked = sorted(secret for secret in secrets if secret in fleet.stderr)
        assert not leaked, f"secrets in the log of vdtu up: {leaked}"
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)


def _pty_dir(args: tuple[str, ...]) -> Path:
    for index, arg in enumerate(args[:-1]):
        if arg == "--pty-dir":
            return Path(args[index + 1])
    return default_pty_dir()


SECRET_KEYS = ("password", "secret", "devicesecret", "productsecret", "psk", "token")


def _config_secrets(value: object) -> set[str]:
    """Every string under a key that names a secret, anywhere in a JSON document."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str) and any(word in key.lower() for word in SECRET_KEYS):
                found.add(item)
            else:
                found |= _config_secrets(item)
    elif isinstance(value, list):
        for item in value:
            found |= _config_secrets(item)
    return found


class Host:
    """A host MCU on a PTY: pyserial, frames out, decoded frames in."""

    def __init__(self, path: str, *, baud: int = 115200) -> None:
        self.port = serial.serial_for_url(path, baudrate=baud, timeout=0.05)
        self.reader = FrameReader(max_line=1 << 16)
        self.events: list[ReaderEvent] = []

    def close(self) -> None:
        self.port.close()

    def write(self, data: bytes) -> None:
        self.port.write(data)

    def send(self, action: str, content: str | None = None) -> None:
        frame = Frame(kind=FrameKind.COMMAND, action=action, sn="0", timestamp="0", content=content)
        self.write(frame.encode(CodeFormat.HEX))

    def pump(self) -> None:
        data = self.port.read(65536)
        if data:
            self.reader.receive_data(data)
            self.events.extend(self.reader.events())

    def wait_for(self, action: str, *, timeout_s: float = 5.0) -> FrameReceived:
        """The next frame with ``action`` (earlier frames of other actions are kept)."""
        deadline = time.monotonic() + timeout_s
        while True:
            for index, event in enumerate(self.events):
                if isinstance(event, FrameReceived) and event.frame.action == action:
                    del self.events[: index + 1]
                    return event
            if time.monotonic() > deadline:
                raise AssertionError(f"no {action} within {timeout_s} s; got {self.events}")
            self.pump()

    def wait_for_shortcut(self, value: str, *, timeout_s: float = 5.0) -> None:
        """Wait for the shortcut line ``SET_DTU_PIPE#<value>``."""
        deadline = time.monotonic() + timeout_s
        while ShortcutReceived(value=value) not in self.events:
            if time.monotonic() > deadline:
                raise AssertionError(f"no SET_DTU_PIPE#{value} within {timeout_s} s: {self.events}")
            self.pump()

    def ask(
        self, action: str, content: str | None = None, *, timeout_s: float = 5.0
    ) -> FrameReceived:
        self.events.clear()
        self.send(action, content)
        return self.wait_for(action, timeout_s=timeout_s)


def wait_until_listening(host: Host, *, timeout_s: float = 15.0) -> None:
    """Poll GET_IMEI until the unit's firmware answers (it listens 1 s after power-on)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        host.send("GET_IMEI")
        try:
            host.wait_for("GET_IMEI", timeout_s=0.3)
        except AssertionError:
            continue
        return
    raise AssertionError("the unit never answered GET_IMEI")


def wait_for_state(host: Host, state: str, *, timeout_s: float = 20.0) -> None:
    """Poll GET_DTU_STATE until it reads ``state``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if host.ask("GET_DTU_STATE").frame.content == state:
            return
        time.sleep(0.2)
    raise AssertionError(f"the unit never reached {state}")


def link(fleet: RunningFleet, port: str, unit: int = 0) -> Path:
    return Path(fleet.units[unit]["ports"][port])


FLOODS = {
    "uart": b"$XGC#GET_IMEI#0#0&#5A#\r\n" * 400,
    "rs232": b"$XGC#DATA_PACK#0#0#" + b"x" * 16_000,  # no line end, ever
    "rs485": bytes(range(256)) * 64,
}
"""What a misbehaving host writes on each port, over and over: GET_IMEI as fast as the PTY
takes it, a line that never ends, noise on the RS-485 bus."""


def rss_kb(pid: int) -> int:
    """The resident memory of process ``pid``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def flood(fleet: RunningFleet, seconds: float, *, unit: int = 0) -> tuple[dict[str, int], int]:
    """Write ``FLOODS`` to every port of ``unit`` for ``seconds`` (non-blocking, reading back
    whatever comes), then drain; returns the bytes each port took and the peak RSS (KB)."""
    ports = {
        name: serial.serial_for_url(
            str(link(fleet, name, unit)), baudrate=9600 if name == "rs485" else 115200, timeout=0
        )
        for name in FLOODS
    }
    written = dict.fromkeys(FLOODS, 0)
    peak = rss_kb(fleet.process.pid)
    try:
        for port in ports.values():
            os.set_blocking(port.fileno(), False)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for name, data in FLOODS.items():
                fd = ports[name].fileno()
                with suppress(BlockingIOError):
                    written[name] += os.write(fd, data)
                with suppress(BlockingIOError):
                    os.read(fd, 65536)
            peak = max(peak, rss_kb(fleet.process.pid))
            time.sleep(0.002)
    finally:
        for port in ports.values():
            port.close()
    return written, peak


def two_free_ports() -> int:
    """A TCP port that is free with the next one (units 0 and 1), below Linux's ephemeral
    range (32768 on), so outgoing connections of other programs cannot take them."""
    for base in range(20000 + os.getpid() % 5000 * 2, 32000, 2):
        try:
            with socket.socket() as first, socket.socket() as second:
                first.bind(("127.0.0.1", base))
                second.bind(("127.0.0.1", base + 1))
        except OSError:
            continue
        return base
    raise AssertionError("no two free TCP ports in 20000..32000")
