"""Start ``vdtu up`` as a user would (a subprocess) and talk to its PTYs with pyserial."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import serial

from vdtu.firmware.xgc.codec import (
    CodeFormat,
    Frame,
    FrameKind,
    FrameReader,
    FrameReceived,
    ReaderEvent,
    ShortcutReceived,
)


class RunningFleet:
    """A ``vdtu up`` child process and the units it printed."""

    def __init__(self, process: subprocess.Popen[str], units: list[dict[str, Any]]) -> None:
        self.process = process
        self.units = units

    def stop(self, sig: int = signal.SIGINT) -> tuple[int, str]:
        """Signal the child and wait; returns its exit code and stderr."""
        self.process.send_signal(sig)
        _out, err = self.process.communicate(timeout=20)
        return self.process.returncode, err


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
        yield fleet
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)


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
