"""Bare paho clients that publish what vdtu units publish: the baseline of ``bench.fleet`` and
``bench.ramp``.

A ``BareClient`` is one ``MqttLink`` (``vdtu/net/mqtt.py``: the same event-loop design as a
unit's link, with no device model and no sim time) on the uplink topic of the unit with the
same fleet id. Once its CONNACK has come it publishes, with QoS 1, the bytes that unit would
publish (the uplink JSON; for a QuecPython unit wrapped as ``{"data": ...}``): the first
within one interval, then every interval +/-20 % (``loop.call_later``), and tells its
owner's ``DeliveryTracker``. ``freezing`` freezes the objects alive out of the garbage
collector's view every second, as ``LoadRun`` does for its units.

This module imports ``vdtu``, so it is apart from ``bench.common``, which must not.
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import time
from typing import Protocol

from vdtu.cloud.xgc_api import Channel, device_topic
from vdtu.firmware.quec.config import PUBLISH_TOPIC
from vdtu.identity import Identity
from vdtu.load.delivery import DeliveryTracker
from vdtu.load.hosts import JITTER
from vdtu.load.payload import encode_uplink
from vdtu.net.mqtt import MqttHub, MqttLink

BROKER_HOST = "127.0.0.1"
FREEZE_EVERY_S = 1.0


class BareOwner(Protocol):
    """What a bare client needs from the baseline it belongs to."""

    loop: asyncio.AbstractEventLoop
    rng: random.Random
    hub: MqttHub
    port: int
    sending: bool
    interval_s: float
    payload: int

    @property
    def tracker(self) -> DeliveryTracker:
        """Where the uplinks published are counted."""

    def connected_one(self, unit: int) -> None:
        """A client's CONNACK came."""

    def connect_failed(self, reason: str) -> None:
        """A client's attempt failed (it does not try again)."""

    def disconnected(self, reason: str) -> None:
        """A client lost its connection (it does not reconnect)."""


def unit_topic(profile: str, seed: int, project: str, unit: int) -> tuple[str, bool]:
    """The uplink topic of fleet unit ``unit`` and whether it is a QuecPython unit's."""
    imei = Identity.for_unit(seed, unit).imei
    quec = profile == "quec" or (profile == "mix" and unit % 2 == 1)
    if quec:
        return PUBLISH_TOPIC.format(imei=imei), True
    return device_topic(project, imei, Channel.UP), False


class BareClient:
    """One bare MQTT link that publishes a unit's uplinks on a unit's topic, on its pattern.

    Args:
        owner: the baseline it belongs to.
        unit: its fleet id (in the uplinks).
        topic: where it publishes (``unit_topic``).
        quec: wrap each uplink as a QuecPython unit does.
    """

    __slots__ = ("link", "owner", "quec", "seq", "topic", "unit")

    def __init__(self, owner: BareOwner, unit: int, topic: str, *, quec: bool) -> None:
        self.owner = owner
        self.unit = unit
        self.quec = quec
        self.topic = topic
        self.seq = 0
        self.link = MqttLink(owner.hub, client_id=f"bare-{unit}", host=BROKER_HOST, port=owner.port)
        self.link.on_connected = self._connected
        self.link.on_connect_failed = owner.connect_failed
        self.link.on_disconnected = owner.disconnected

    def _connected(self) -> None:
        owner = self.owner
        owner.connected_one(self.unit)
        owner.loop.call_later(owner.rng.uniform(0.0, owner.interval_s), self._tick)

    def _tick(self) -> None:
        owner = self.owner
        if not owner.sending:
            return
        if self.link.connected:
            self._send()
        period = owner.interval_s * owner.rng.uniform(1 - JITTER, 1 + JITTER)
        owner.loop.call_later(period, self._tick)

    def _send(self) -> None:
        owner = self.owner
        seq = self.seq + 1
        text = encode_uplink(
            unit=self.unit, seq=seq, sent_ms=int(time.time() * 1000), size=owner.payload
        )
        wire = json.dumps({"data": text}, ensure_ascii=False) if self.quec else text
        if self.link.publish(self.topic, wire.encode(), qos=1) is not None:
            self.seq = seq
            owner.tracker.published(self.unit, seq)


async def freezing() -> None:
    """Freeze the objects alive out of the collector's view every second, until cancelled."""
    while True:
        await asyncio.sleep(FREEZE_EVERY_S)
        gc.freeze()
