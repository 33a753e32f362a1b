"""vdtu's own cloud client during a load test: it counts what arrived and probes with commands.

``Verifier`` is one ``MqttLink`` on the fleet's hub, logged in like the console. It
subscribes to every personality's uplink topic (its fleet side's ``uplink_topic``:
XGC ``xgc/+/+/up``, QuecPython ``quec/+/up``) and hands each uplink that carries
our sequence numbers to the ``DeliveryTracker`` with its arrival time; uplinks of
units outside this shard are counted apart (another process tracks them). A shard of a
fleet split over processes or machines instead subscribes to its own units' topics
only, one exact topic per unit in one SUBSCRIBE: with n shards reading the wildcards,
the broker would send every uplink n + 1 times and each shard would read n times its
own traffic, most of it to throw away (20 shards of 100 000 units at one uplink per
10 s: 10 000 foreign uplinks a second into every shard).

The command probe sends, ``probe_rate`` times a second, a command to the next of
a sample of units and times the answer. Each unit's fleet side says what the
command is and which of its fields carries the probe's number in the answer (a
QuecPython unit gets command code 0 and answers with its ``msg_id``; an XGC unit
gets ``{"probe": k}``, which its simulated host echoes back as an uplink). A probe
not answered within ``PROBE_TIMEOUT_S`` is counted as timed out.

The verifier must outlive the broker's trouble it is there to measure: when its
connection drops it dials again every ``REDIAL_S`` (sooner than any unit, whose
first retry comes after about 5 s), with a persistent session, so what the
broker kept for it while it was away still arrives.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from vdtu.cloud.broker_url import BrokerUrl
from vdtu.errors import ConfigError
from vdtu.histogram import LatencyHistogram
from vdtu.links.side import Probe
from vdtu.links.sides import SIDES
from vdtu.load.delivery import DeliveryTracker
from vdtu.load.payload import find_uplink
from vdtu.net.mqtt import MqttHub, MqttLink, connect_and_wait

PROBE_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 10.0
REDIAL_S = 0.5
AUTH_REFUSALS = ("not authorized", "bad user name or password")
"""The CONNACK refusals (as ``MqttLink`` names them) that another login may cure."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeTarget:
    """A unit the probe may address."""

    probe: Probe
    ready: Callable[[], bool]
    """Whether the unit is connected (a probe to a unit still booting proves nothing)."""


class Verifier:
    """The verifying subscriber and the command probe.

    Args:
        hub: the loop's MQTT hub.
        broker: where to connect, with the console's login.
        tracker: where uplinks are counted.
        units: the fleet ids of this process's units (others are foreign).
        topics: the uplink topics to read (a shard: its own units' topics, see the module
            comment); None: every personality's uplink filter.
    """

    def __init__(
        self,
        hub: MqttHub,
        broker: BrokerUrl,
        tracker: DeliveryTracker,
        units: range,
        topics: Sequence[str] | None = None,
    ) -> None:
        self.hub = hub
        self.broker = broker
        self.loop = hub.loop
        self.tracker = tracker
        self.units = units
        self.foreign = 0
        """Our uplinks from units of other shards (another process counts them)."""
        self.other = 0
        """Messages on the uplink topics that are not ours (properties, states, replies)."""
        self.command_rtt = LatencyHistogram()
        self.probes_sent = 0
        self.probe_timeouts = 0
        self.redials = 0
        """Times the verifier lost the broker and dialled again."""
        self._closed = False
        self._pending: dict[int, float] = {}
        self._next_probe = 1
        self._answer_keys: tuple[str, ...] = ()
        """The fields that carry a probe's number in an answer (one per personality probed)."""
        self._probe_task: asyncio.Task[None] | None = None
        self.link = MqttLink(
            hub,
            client_id=f"vdtu-verifier-{units.start}-{time.monotonic_ns() % 1_000_000}",
            host=broker.host,
            port=broker.port,
            username=broker.username,
            password=broker.password,
            keepalive=60,
            tls_ca=broker.ca_file,
            clean_session=False,
        )
        self.link.on_message = self._received
        for topic in topics if topics is not None else [s.uplink_topic for s in SIDES.values()]:
            self.link.subscribe(topic, qos=1)

    async def connect(self) -> None:
        """Connect and subscribe, or raise ConfigError saying why not."""
        reason = await connect_and_wait(self.link, CONNECT_TIMEOUT_S + 1)
        if reason is not None:
            hint = " (give it a login with --verify-login USER:PASS)"
            raise ConfigError(
                f"the verifying subscriber cannot connect to {self.broker}: {reason}"
                + (hint if reason in AUTH_REFUSALS else "")
            )
        self.link.on_disconnected = self._lost
        self.link.on_connect_failed = self._lost
        self.link.on_connected = lambda: None

    def _lost(self, _reason: str) -> None:
        if not self._closed:
            self.redials += 1
            self.loop.call_later(REDIAL_S, self._redial)

    def _redial(self) -> None:
        if not self._closed and not self.link.connected:
            self.link.connect()

    def close(self) -> None:
        self._closed = True
        if self._probe_task is not None:
            self._probe_task.cancel()
        self.link.close()

    # -- uplinks -------------------------------------------------------------------------

    def _received(self, _topic: str, payload: bytes) -> None:
        now_ms = time.time() * 1000
        uplink = find_uplink(payload)
        if uplink is not None:
            if uplink.unit in self.units:
                self.tracker.delivered(uplink, now_ms)
            else:
                self.foreign += 1
            return
        if not self._probe_answer(payload, now_ms):
            self.other += 1

    def _probe_answer(self, payload: bytes, now_ms: float) -> bool:
        if not self._pending or not payload.startswith(b"{"):
            return False
        try:
            message = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return False
        if not isinstance(message, dict):
            return False
        found = (message[name] for name in self._answer_keys if name in message)
        key = next(found, None)
        if not isinstance(key, int) or key not in self._pending:
            return False
        self.command_rtt.add(max(0.0, now_ms - self._pending.pop(key)))  # a wall clock step
        return True

    # -- the command probe ---------------------------------------------------------------

    def start_probe(self, targets: Sequence[ProbeTarget], rate_per_s: float) -> None:
        """Probe ``targets`` round robin, ``rate_per_s`` commands a second."""
        if rate_per_s > 0 and targets:
            self._answer_keys = tuple(dict.fromkeys(target.probe.key for target in targets))
            self._probe_task = self.loop.create_task(self._probing(targets, 1.0 / rate_per_s))

    async def _probing(self, targets: Sequence[ProbeTarget], period_s: float) -> None:
        index = 0
        while True:
            await asyncio.sleep(period_s)
            self._expire()
            for _ in range(len(targets)):
                target = targets[index % len(targets)]
                index += 1
                if target.ready():
                    self._probe(target)
                    break

    def _probe(self, target: ProbeTarget) -> None:
        key = self._next_probe
        self._next_probe += 1
        command = json.dumps(target.probe.command(key)).encode()
        if self.link.publish(target.probe.topic, command, qos=1) is None:
            return
        self._pending[key] = time.time() * 1000
        self.probes_sent += 1

    def _expire(self) -> None:
        deadline = time.time() * 1000 - PROBE_TIMEOUT_S * 1000
        for key, sent in list(self._pending.items()):
            if sent < deadline:
                del self._pending[key]
                self.probe_timeouts += 1

    def finish(self) -> None:
        """The run is over: every probe still unanswered timed out."""
        self.probe_timeouts += len(self._pending)
        self._pending.clear()
