"""A virtual-time test bench for one XGC unit: a host on the uart line and a device on the bus.

``XgcBench`` powers a unit on a ``VirtualClock``, talks to it as a host would
(frames with hex check codes, like the host commands of docs/spec/xgc.md#3.2), and decodes what
the unit says with the same reader the firmware uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from vdtu.clock import DomainEnvironment, VirtualClock
from vdtu.firmware.xgc.cloud import XgcCloud
from vdtu.firmware.xgc.codec import (
    CodeFormat,
    Frame,
    FrameKind,
    FrameReader,
    FrameReceived,
    ReaderEvent,
)
from vdtu.firmware.xgc.firmware import XgcFirmware
from vdtu.firmware.xgc.states import DtuState
from vdtu.identity import Identity
from vdtu.storage import MemoryStorage, Storage
from vdtu.uart.memory import MemoryEndpoint
from vdtu.unit import Unit, UnitConfig

SEED_IDENTITY = Identity(
    imei="867435053362828",
    iccid="898604E0092221379975",
    imsi="460001234567890",
    phone="13800138000",
)
"""The identity of the example device of docs/spec/xgc.md#5.1."""


class XgcBench:
    """One unit, a host on its uart, and a bus device on its rs485 line, in virtual time."""

    def __init__(
        self,
        *,
        identity: Identity = SEED_IDENTITY,
        flash: Storage | None = None,
        epoch_s: float = 1_692_157_152.787,
        cloud: Callable[[DomainEnvironment], XgcCloud] | None = None,
        **config: Any,
    ) -> None:
        self.clock = VirtualClock(epoch_s=epoch_s)
        self.env = self.clock.env
        self.flash = flash if flash is not None else MemoryStorage()
        self.config = replace(UnitConfig(identity=identity), **config)
        self.cloud = cloud(self.env) if cloud is not None else None
        self.unit = Unit(
            self.env, self.config, epoch_s=epoch_s, flash=self.flash, network=self.cloud
        )
        assert isinstance(self.unit.firmware, XgcFirmware)
        self.firmware: XgcFirmware = self.unit.firmware
        self.host = MemoryEndpoint(self.env, self.unit.lines["uart"], name="host")
        self.hosts = {"uart": self.host}
        self.bus = MemoryEndpoint(self.env, self.unit.lines["rs485"], name="bus-device")
        self._readers = {"uart": FrameReader()}
        self._taken = {"uart": 0}

    def host_on(self, port: str) -> MemoryEndpoint:
        """The host endpoint on ``port`` (created on first use; rs485 is the bus device)."""
        if port == "rs485":
            return self.bus
        if port not in self.hosts:
            self.hosts[port] = MemoryEndpoint(self.env, self.unit.lines[port], name="host")
        return self.hosts[port]

    def boot(self, *, until: DtuState = DtuState.NO_PROJECT_INFO, limit_s: float = 60.0) -> float:
        """Power on and run until the unit reaches ``until``; returns that sim time."""
        self.unit.power_on()
        step = 0.1
        while self.firmware.state is not until:
            if self.clock.now > limit_s:
                raise AssertionError(f"no {until.value} within {limit_s} s: {self.firmware.state}")
            self.clock.run_for(step)
        return self.clock.now

    def send_raw(self, data: bytes, port: str = "uart") -> None:
        """Write bytes as the host."""
        self.host_on(port).write(data)

    def send(
        self, action: str, content: str | None = None, *, port: str = "uart", sn: str = "0"
    ) -> None:
        """Write a host command frame with a hex check code."""
        frame = Frame(kind=FrameKind.COMMAND, action=action, sn=sn, timestamp="0", content=content)
        self.send_raw(frame.encode(CodeFormat.HEX), port)

    def events(self, port: str = "uart") -> list[ReaderEvent]:
        """Everything the unit sent on ``port`` since the last call, decoded."""
        endpoint = self.host_on(port)
        reader = self._readers.setdefault(port, FrameReader())
        chunks = endpoint.received[self._taken.get(port, 0) :]
        self._taken[port] = len(endpoint.received)
        for _at, chunk in chunks:
            reader.receive_data(chunk)
        return list(reader.events())

    def frames(self, port: str = "uart") -> list[Frame]:
        """The frames the unit sent since the last call (check codes verified)."""
        result: list[Frame] = []
        for event in self.events(port):
            assert isinstance(event, FrameReceived), event
            assert event.code_ok, event
            result.append(event.frame)
        return result

    def command(
        self, action: str, content: str | None = None, *, wait_s: float = 0.5, port: str = "uart"
    ) -> list[Frame]:
        """Send a command, run ``wait_s``, return the frames that came back."""
        self.frames(port)
        self.send(action, content, port=port)
        self.clock.run_for(wait_s)
        return self.frames(port)

    def ask(self, action: str, content: str | None = None, **kwargs: Any) -> str:
        """Send a command that gets exactly one reply; return the reply's content."""
        replies = self.command(action, content, **kwargs)
        assert len(replies) == 1, replies
        (reply,) = replies
        assert reply.kind is FrameKind.ACK
        assert reply.action == action
        assert reply.sn == self.config.identity.imei
        assert reply.content is not None
        return reply.content
