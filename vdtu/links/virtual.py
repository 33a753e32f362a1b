"""Each personality's cloud in virtual time: what a scenario's units reach without a socket.

A ``VirtualSide`` is the virtual-time twin of a fleet side (``vdtu.links.side``): the
simulated platform and broker of its personality (``SimXgcPlatform``, ``SimQuecNet``)
as its units' network, the options and flash files a unit gets, what a fleet
provisions, the cloud's own actions (a downlink to a unit; the broker stopped and
restored) and what it received (each uplink a unit's host sent, as the cloud got it).
``virtual_sides`` makes the sides one scenario needs, by personality name. Nothing
here keeps the messages: the broker's listeners see them as they arrive.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any, Protocol

from vdtu.clock import DomainEnvironment
from vdtu.cloud.xgc_api import Channel, device_topic, parse_topic
from vdtu.firmware.quec.config import PUBLISH_TOPIC, SUBSCRIBE_TOPIC, default_config
from vdtu.firmware.quec.firmware import QuecOptions
from vdtu.firmware.quec.personality import CONFIG_FILE
from vdtu.links.quec_console import QUEC_CONSOLE
from vdtu.links.sim_quec import Sent, SimQuecNet
from vdtu.links.sim_xgc import Published, SimXgcPlatform
from vdtu.links.xgc_console import XGC_CONSOLE
from vdtu.links.xgc_stack import default_project
from vdtu.storage import MemoryTextFile, TextFile

MessageListener = Callable[[str, str, bytes], None]
"""Called with a unit's IMEI, the topic and the payload of each message the cloud received
from it."""
QUEC_BROKER = ("127.0.0.1", 1883)
"""Where a virtual QuecPython unit's default config points its MQTT channel."""


class VirtualSide(Protocol):
    """One personality's cloud in virtual time."""

    @property
    def network(self) -> object:
        """What its units reach (their ``Unit(network=...)``)."""

    on_message: list[MessageListener]

    def is_uplink(self, topic: str) -> bool:
        """Whether ``topic`` carries what a unit's host sent (not its state or replies)."""

    def unit_options(self, given: object | None) -> object | None:
        """The options a unit gets (``given``, completed with what the cloud needs)."""

    def unit_files(self, imei: str) -> Mapping[str, TextFile]:
        """A unit's named flash files, as a fresh unit of this fleet has them."""

    def provision(self, flash: dict[str, Any]) -> None:
        """Give a unit's flash document what the fleet provisions."""

    def downlink(self, imei: str, payload: bytes) -> int:
        """The cloud sends ``payload`` to the unit's downlink topic; how many links got it."""

    def push_config(self, imei: str, config: Mapping[str, object]) -> None:
        """The cloud pushes a configuration to the unit (ValueError: not for this kind)."""

    def push_ota(self, imei: str, job: Mapping[str, str]) -> None:
        """The cloud offers a firmware job (``version``, and ``filename``, ``url``, ``md5``
        or their defaults) to the unit (ValueError: not for this kind)."""

    def outage(self) -> None:
        """The broker goes down: every connection is lost, new ones fail."""

    def restore(self) -> None:
        """The broker is back."""


class XgcVirtualSide:
    """The XGC platform and broker of one project, in sim time."""

    def __init__(self, env: DomainEnvironment, seed: int, epoch_s: float) -> None:
        self.epoch_s = epoch_s
        self.project_id, self.project_secret = default_project(seed)
        self.platform = SimXgcPlatform(env, projects={self.project_id: self.project_secret})
        self.platform.keep_published = False
        self.platform.on_published.append(self._published)
        self.on_message: list[MessageListener] = []

    @property
    def network(self) -> SimXgcPlatform:
        return self.platform

    def _published(self, message: Published) -> None:
        parsed = parse_topic(message.topic)
        if parsed is not None:
            for listener in self.on_message:
                listener(parsed[1], message.topic, message.payload)

    def is_uplink(self, topic: str) -> bool:
        parsed = parse_topic(topic)
        return parsed is not None and parsed[2] is Channel.UP

    def unit_options(self, given: object | None) -> object | None:
        return given

    def unit_files(self, imei: str) -> Mapping[str, TextFile]:
        return {}

    def provision(self, flash: dict[str, Any]) -> None:
        flash.setdefault("project", {"pid": self.project_id, "secret": self.project_secret})

    def downlink(self, imei: str, payload: bytes) -> int:
        return self.platform.send(device_topic(self.project_id, imei, Channel.DOWN), payload)

    def push_config(self, imei: str, config: Mapping[str, object]) -> None:
        self._push(imei, "config", config)

    def push_ota(self, imei: str, job: Mapping[str, str]) -> None:
        self._push(imei, "ota", job)

    def _push(self, imei: str, kind: str, fields: Mapping[str, object]) -> None:
        now_ms = round((self.epoch_s + self.platform.now) * 1000)  # the platform's clock
        topic, payload = XGC_CONSOLE.job(self.project_id, imei, kind, fields, now_ms)
        if not self.platform.send(topic, payload):
            raise ValueError(f"the unit is not subscribed to its {kind} topic now: it is lost")

    def outage(self) -> None:
        self.platform.outage()

    def restore(self) -> None:
        self.platform.restore()


class QuecVirtualSide:
    """The QuecPython units' network: a broker at ``QUEC_BROKER``, in sim time."""

    def __init__(self, env: DomainEnvironment) -> None:
        self.net = SimQuecNet(env)
        self.net.brokers.add(QUEC_BROKER)
        self.net.keep_sent = False
        self.net.on_sent.append(self._sent)
        self.on_message: list[MessageListener] = []

    @property
    def network(self) -> SimQuecNet:
        return self.net

    def _sent(self, sent: Sent) -> None:
        parts = (sent.topic or "").split("/")
        if len(parts) >= 2 and parts[0] == PUBLISH_TOPIC.split("/", 1)[0]:
            for listener in self.on_message:
                listener(parts[1], sent.topic or "", sent.payload)

    def is_uplink(self, topic: str) -> bool:
        parts = topic.split("/")
        return len(parts) == 3 and topic == PUBLISH_TOPIC.format(imei=parts[1])

    @staticmethod
    def _config(imei: str) -> Any:
        return default_config(imei, broker_host=QUEC_BROKER[0], broker_port=QUEC_BROKER[1])

    def unit_options(self, given: object | None) -> object | None:
        options = given if isinstance(given, QuecOptions) else QuecOptions()
        if options.default_config is not None:
            return options
        return replace(options, default_config=self._config)

    def unit_files(self, imei: str) -> Mapping[str, TextFile]:
        file = MemoryTextFile()
        file.write(json.dumps(self._config(imei).to_json()))
        return {CONFIG_FILE: file}

    def provision(self, flash: dict[str, Any]) -> None:
        """A QuecPython unit's settings are its ``dtu_config.json`` (``unit_files``)."""

    def downlink(self, imei: str, payload: bytes) -> int:
        return self.net.publish(SUBSCRIBE_TOPIC.format(imei=imei), payload)

    def push_config(self, imei: str, config: Mapping[str, object]) -> None:
        QUEC_CONSOLE.job(None, imei, "config", config, 0)  # it says why it cannot

    def push_ota(self, imei: str, job: Mapping[str, str]) -> None:
        QUEC_CONSOLE.job(None, imei, "ota", job, 0)

    def outage(self) -> None:
        self.net.outage()

    def restore(self) -> None:
        self.net.restore()


def virtual_sides(
    env: DomainEnvironment, seed: int, epoch_s: float, names: Iterable[str]
) -> dict[str, VirtualSide]:
    """The virtual sides of the personalities ``names`` (``epoch_s``: Unix time at sim 0)."""
    makers: dict[str, Callable[[], VirtualSide]] = {
        "xgc": lambda: XgcVirtualSide(env, seed, epoch_s),
        "quec": lambda: QuecVirtualSide(env),
    }
    return {name: makers[name]() for name in dict.fromkeys(names)}
