"""A virtual-time test bench for one QuecPython unit on a simulated network.

``QuecBench`` powers a quec unit on a ``VirtualClock`` with a ``SimQuecNet`` that
serves a broker at 127.0.0.1:1883 (the default config's), talks to the unit as a
host MCU on its uart and as a cloud on the broker, and reads back what the unit
wrote and published.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from tests.xgc_harness import SEED_IDENTITY
from vdtu.clock import VirtualClock
from vdtu.firmware.quec.config import DtuConfig, default_config
from vdtu.firmware.quec.firmware import QuecFirmware, QuecOptions
from vdtu.firmware.quec.personality import CONFIG_FILE
from vdtu.identity import Identity
from vdtu.links.sim_quec import SimQuecNet
from vdtu.storage import MemoryStorage, MemoryTextFile, Storage, TextFile
from vdtu.uart.memory import MemoryEndpoint
from vdtu.unit import Unit, UnitConfig

BROKER = ("127.0.0.1", 1883)


class QuecBench:
    """One quec unit, a host on each port, and a simulated network, in virtual time."""

    def __init__(
        self,
        *,
        identity: Identity = SEED_IDENTITY,
        config: DtuConfig | Callable[[str], DtuConfig] | None = None,
        config_file: TextFile | None = None,
        flash: Storage | None = None,
        epoch_s: float = 1_692_157_152.787,
        **unit_config: Any,
    ) -> None:
        self.clock = VirtualClock(epoch_s=epoch_s)
        self.env = self.clock.env
        self.net = SimQuecNet(self.env)
        self.net.brokers.add(BROKER)
        self.flash = flash if flash is not None else MemoryStorage()
        self.config_file = config_file if config_file is not None else MemoryTextFile()
        self.imei = identity.imei
        if isinstance(config, DtuConfig):
            self.config_file.write(json.dumps(config.to_json()))
        elif callable(config):
            self.config_file.write(json.dumps(config(identity.imei).to_json()))
        options = QuecOptions(
            default_config=lambda imei: default_config(
                imei, broker_host=BROKER[0], broker_port=BROKER[1]
            )
        )
        base = UnitConfig(identity=identity, profile="quec", options=options)
        self.unit = Unit(
            self.env,
            replace(base, **unit_config),
            epoch_s=epoch_s,
            flash=self.flash,
            network=self.net,
            files={CONFIG_FILE: self.config_file},
        )
        assert isinstance(self.unit.firmware, QuecFirmware)
        self.firmware: QuecFirmware = self.unit.firmware
        self.hosts: dict[str, MemoryEndpoint] = {}
        self._taken: dict[str, int] = {}

    def host_on(self, port: str = "uart") -> MemoryEndpoint:
        """The host endpoint on ``port`` (created on first use)."""
        if port not in self.hosts:
            self.hosts[port] = MemoryEndpoint(self.env, self.unit.lines[port], name="host")
        return self.hosts[port]

    @property
    def down_topic(self) -> str:
        return f"quec/{self.imei}/down"

    @property
    def up_topic(self) -> str:
        return f"quec/{self.imei}/up"

    def boot(self, *, limit_s: float = 60.0) -> float:
        """Power on and run until every channel is connected (or sent a request)."""
        self.host_on("uart")
        self.unit.power_on()
        return self.run_until(
            lambda: (
                self.firmware.state == "running"
                and all(driver.connected for driver in self.firmware.drivers.values())
            ),
            limit_s=limit_s,
        )

    def run_until(self, condition: Callable[[], bool], *, limit_s: float = 60.0) -> float:
        """Run until ``condition()`` holds; returns that sim time."""
        deadline = self.clock.now + limit_s
        while not condition():
            if self.clock.now > deadline:
                raise AssertionError(f"condition not met within {limit_s} s")
            self.clock.run_for(0.05)
        return self.clock.now

    def written(self, port: str = "uart") -> list[bytes]:
        """What the unit wrote on ``port`` since the last call, one entry per write burst."""
        endpoint = self.host_on(port)
        chunks = [chunk for _at, chunk in endpoint.received[self._taken.get(port, 0) :]]
        self._taken[port] = len(endpoint.received)
        return chunks

    def cloud(self, message: dict[str, Any] | bytes, topic: str | None = None) -> int:
        """Publish to the unit's subscribe topic as the cloud."""
        payload = message if isinstance(message, bytes) else json.dumps(message).encode()
        return self.net.publish(topic or self.down_topic, payload)

    def published(self, topic: str | None = None) -> list[bytes]:
        """What the unit published on ``topic`` (default: its publish topic)."""
        return self.net.payloads(topic or self.up_topic)

    def command(self, code: int, *, wait_s: float = 0.5, **fields: Any) -> dict[str, Any]:
        """Send a command as the cloud and return the one reply published for it."""
        before = len(self.published())
        message = {"msg_id": 1000 + code, "cmd_code": code, **fields}
        assert self.cloud(message) == 1
        self.clock.run_for(wait_s)
        replies = self.published()[before:]
        assert len(replies) == 1, replies
        reply: dict[str, Any] = json.loads(replies[0])
        return reply
