"""QuecPython command round trip (cloud publish -> reply received), against a bare paho echo.

Run ``python -m bench.quec_command [--units 1,1000] [--samples N] [--inflight 1,10]
[--connect-timeout S] [--profile DIR] [--json]``.

Everything runs in this process, on one asyncio loop, against a private mosquitto
(``vdtu.cloud.mosquitto.Mosquitto``, anonymous) started afresh for each unit count N:

* **The units.** N QuecPython ``Unit``s on one ``RealtimeClock``, reaching the broker
  through one ``RealQuecNet`` on the loop's ``MqttHub``, as ``vdtu up`` builds them but
  without PTYs or flash files. Their config is ``default_config`` pointed at the broker
  with ``fota`` off (the update check would go to a server the benchmark does not run),
  and the resolver lets them reach the broker and nothing else. Channel 1 subscribes
  ``quec/<IMEI>/down`` and publishes its replies on ``quec/<IMEI>/up``, QoS 1.
* **The baseline.** N bare ``MqttLink``s on the same hub ("echo devices"), each
  subscribed with QoS 1 to ``echo/<IMEI>/down`` and publishing every message it gets,
  unchanged, with QoS 1 on ``echo/<IMEI>/up``: the same broker hops and the same paho
  driving as a unit's, and nothing else.
* **The backend.** One more ``MqttLink``, subscribed with QoS 1 to ``quec/+/up`` and
  ``echo/+/up``. It publishes ``{"msg_id": k, "cmd_code": 0}`` (get IMEI, no password)
  with QoS 1 on a unit's or an echo device's down topic, and times it from before the
  publish call to the arrival of the message with the same ``msg_id`` (the time stamp
  is taken first thing in ``on_message``). A unit must answer exactly
  ``{"code": 0, "data": IMEI, "status": 1, "msg_id": k}``, an echo device with the
  command itself, on its own up topic; anything else stops the run.

Phases. The echo devices connect, all at once, and subscribe. Then the units are built
and powered on, and the run waits until every unit's channel 1 is connected (its
subscription acknowledged): a unit registers with the simulated network 4-12 s after
power-on and only then dials, so that bounds the figure; each unit's power-on to
connected time is polled every ``POLL_S``. This process's RSS is read before the echo
devices, after them and after the units; then, after ``QUIET_S``, this process's and
mosquitto's CPU over ``IDLE_WINDOW_S`` with nobody talking.

Measuring. For each in-flight limit W (``--inflight``), commands go round-robin over
the units (or the echo devices) with at most W awaiting their reply; the next one goes
out as soon as one completes. The two kinds take turns in blocks of ``BLOCK`` samples,
in alternating order, after ``WARMUP`` untimed samples of each, so a slow spell of the
machine falls on both. Around every block the wall time and the CPU time of this process
and of mosquitto are read, so each kind gets its rate and its CPU per message. This
process's CPU holds the units' or the echo devices' work plus the backend's, which is
the same for both kinds. A sample with no reply after ``SAMPLE_TIMEOUT_S`` is lost; it
is counted and reported, and more than ``MAX_LOST`` stop the run. The garbage collector
stays on: the units' allocations and the collections they cause are part of vdtu's cost.
Ratios are units over echo devices.

Unit counts run one after the other, smallest first, each with a fresh loop, broker,
units and echo devices. ``--profile DIR`` runs cProfile over the timed phase of each
count (which slows it down) and writes ``quec-command-<N>.pstats`` there.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import gc
import itertools
import json
import pstats
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import psutil

from bench.common import (
    GcPauses,
    GcWatch,
    Latency,
    cpu_seconds,
    machine,
    machine_line,
    markdown_table,
    mosquitto_pid,
    opt,
    parse_counts,
    progress,
    rss_mb,
    stderr_kind,
    us_as_ms,
)
from vdtu.clock import RealtimeClock
from vdtu.cloud.mosquitto import Mosquitto, find_mosquitto
from vdtu.errors import ConfigError, VdtuError
from vdtu.firmware.quec.config import PUBLISH_TOPIC, SUBSCRIBE_TOPIC, DtuConfig, default_config
from vdtu.firmware.quec.firmware import QuecFirmware, QuecOptions
from vdtu.identity import Identity
from vdtu.links.quec_net import RealQuecNet
from vdtu.log import LogLevel, LogRecord
from vdtu.net.mqtt import MqttHub, MqttLink
from vdtu.unit import Unit, UnitConfig

BROKER_HOST = "127.0.0.1"
MAX_UNITS = 5000
"""Each unit and each echo device holds one socket, and mosquitto one per client."""
CHANNEL = "1"
"""The default config's MQTT channel."""
COMMAND_CODE = 0
"""Get the IMEI: needs no password, answers with data."""
ECHO_DOWN = "echo/{imei}/down"
ECHO_UP = "echo/{imei}/up"
WARMUP = 100
"""Untimed samples of each kind before the timed ones, at each in-flight limit."""
BLOCK = 100
"""Samples of one kind before the other kind's turn."""
SAMPLE_TIMEOUT_S = 5.0
"""A sample without its reply after this long is counted as lost."""
MAX_LOST = 10
"""More lost samples than this (warm-up or timed) stop the run: a healthy one loses none."""
LINKS_TIMEOUT_S = 60.0
"""How long the backend and the echo devices may take to connect and subscribe."""
QUIET_S = 1.0
"""Wait after the last unit connected, so the start-up traffic is over."""
IDLE_WINDOW_S = 2.0
POLL_S = 0.02
"""How often the units' channels are looked at while they connect."""
MAX_INFLIGHT = 20
"""paho and mosquitto each let a client have 20 QoS 1 messages in flight; beyond that the
backend's own queues would be measured."""


class Kind(StrEnum):
    """Who answers a sample's command."""

    UNIT = "quec unit"
    ECHO = "paho echo"


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """How every run is done."""

    samples: int
    """Timed samples of each kind at each in-flight limit."""
    inflight: tuple[int, ...]
    """The in-flight limits, each measured in turn."""
    connect_timeout_s: float
    """How long to wait for every unit's channel to connect."""
    profile: Path | None = None
    """Where to write a cProfile of each count's timed phase (None: no profiling)."""
    warmup: int = WARMUP
    block: int = BLOCK


# -- results --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Connect:
    """How the echo devices and the units came up, and what the process weighs then."""

    units: int
    connected: int
    """Units whose channel was connected at the end of the connect phase."""
    echo_connected_s: float
    """From the first echo device's connect() to the last one's SUBACK (all dial at once)."""
    all_connected_s: float | None
    """From powering the units on to the last unit's channel connected (None: not all did)."""
    per_unit: Latency | None
    """Each connected unit's power-on to connected time (µs, as Latency keeps; polled)."""
    base_rss_mb: float
    """This process with the broker's backend link only."""
    echo_rss_kb: float
    """RSS growth per echo device."""
    unit_rss_kb: float
    """RSS growth per unit."""
    rss_mb: float
    """This process with everything connected."""
    broker_rss_mb: float
    idle_cpu_percent: float
    """This process's CPU, in percent of one core, while nobody talks."""
    broker_idle_cpu_percent: float


@dataclass(frozen=True, slots=True, kw_only=True)
class KindResult:
    """The samples of one kind at one in-flight limit."""

    kind: str
    inflight: int
    latency: Latency | None
    """None when every sample was lost."""
    lost: int
    rate_per_s: float
    """Samples completed per second of the kind's blocks."""
    cpu_us: float
    """This process's CPU time per sample over the kind's blocks."""
    broker_cpu_us: float
    """mosquitto's."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Trouble:
    """Signs of a defect, counted over the whole run (all zero in a clean run)."""

    late: int
    """Replies to a sample already lost or answered (a QoS 1 duplicate, too)."""
    other_messages: int
    """Messages on an up topic that are not JSON with a ``msg_id``."""
    reconnects: int
    """Times a unit's channel was lost after connecting."""
    unit_warnings: int
    """Unit log records at WARN or above."""
    warning_kinds: dict[str, int]
    """The most frequent of them (numbers and quoted parts left out)."""
    clock_max_lateness_ms: float
    """The worst delay of a sim event behind the wall clock once every unit connected."""
    gc: GcPauses
    """The garbage collector's pauses while measuring."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    """One unit count."""

    units: int
    connect: Connect | None
    """None when the run failed before every unit had its chance to connect."""
    kinds: list[KindResult]
    trouble: Trouble
    ratios: dict[str, float]
    """``<inflight>_p50`` / ``<inflight>_p99``: units over echo devices."""
    failure: str | None
    """Why the run stopped early (None: it did not)."""

    def kind(self, kind: Kind, inflight: int) -> KindResult | None:
        """The result of one kind at one in-flight limit, if it has one."""
        return next(
            (k for k in self.kinds if k.kind == kind.value and k.inflight == inflight), None
        )


# -- the sample bookkeeping -----------------------------------------------------------------------


@dataclass(slots=True)
class Bucket:
    """What the samples of one kind at one in-flight limit add up to."""

    durations: list[int] = field(default_factory=list)
    """Round trips in ns."""
    lost: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    broker_cpu_s: float = 0.0

    def result(self, kind: Kind, inflight: int) -> KindResult:
        """The bucket as a result (per-sample figures over every sample sent)."""
        sent = max(1, len(self.durations) + self.lost)
        return KindResult(
            kind=kind.value,
            inflight=inflight,
            latency=Latency.of(self.durations) if self.durations else None,
            lost=self.lost,
            rate_per_s=len(self.durations) / self.wall_s if self.wall_s else 0.0,
            cpu_us=self.cpu_s / sent * 1e6,
            broker_cpu_us=self.broker_cpu_s / sent * 1e6,
        )


@dataclass(frozen=True, slots=True)
class Target:
    """Where a kind's commands go, and where the reply must come from."""

    imei: str
    down_topic: str
    up_topic: str


@dataclass(slots=True, eq=False)
class Pending:
    """A command awaiting its reply."""

    target: Target
    expected: dict[str, Any]
    """The reply's JSON, exactly."""
    bucket: Bucket
    start_ns: int = 0


class EchoDevice:
    """A bare MQTT client that republishes whatever arrives on its down topic on its up topic.

    Args:
        hub: the loop's hub.
        target: its topics.
        port: the broker's port.
        ready: called once its subscription is acknowledged.
        fault: called with a reason if its connection fails or is lost.
    """

    def __init__(
        self,
        hub: MqttHub,
        target: Target,
        port: int,
        *,
        ready: Callable[[], None],
        fault: Callable[[str], None],
    ) -> None:
        self.target = target
        self.link = MqttLink(hub, client_id=f"echo-{target.imei}", host=BROKER_HOST, port=port)
        self.link.subscribe(target.down_topic, qos=1)
        self.link.on_message = self._message
        self.link.on_subscribed = lambda _topic, _qos: ready()
        self.link.on_connect_failed = lambda why: fault(f"echo {target.imei}: {why}")
        self.link.on_disconnected = lambda why: fault(f"echo {target.imei} lost: {why}")

    def _message(self, _topic: str, data: bytes) -> None:
        self.link.publish(self.target.up_topic, data, qos=1)


def unit_target(imei: str) -> Target:
    """A unit's topics (its default config's)."""
    return Target(
        imei=imei,
        down_topic=SUBSCRIBE_TOPIC.format(imei=imei),
        up_topic=PUBLISH_TOPIC.format(imei=imei),
    )


def echo_target(imei: str) -> Target:
    """An echo device's topics."""
    return Target(
        imei=imei, down_topic=ECHO_DOWN.format(imei=imei), up_topic=ECHO_UP.format(imei=imei)
    )


def expected_reply(kind: Kind, target: Target, command: dict[str, Any]) -> dict[str, Any]:
    """What must come back for ``command``: the unit's get-IMEI reply, or the command itself."""
    if kind is Kind.ECHO:
        return command
    return {"code": COMMAND_CODE, "data": target.imei, "status": 1, "msg_id": command["msg_id"]}


class CpuMeter:
    """CPU seconds of this process and of the broker."""

    def __init__(self, broker_pid: int) -> None:
        self.broker = psutil.Process(broker_pid)

    def read(self) -> tuple[float, float, float]:
        """(wall, this process's CPU, the broker's CPU) in seconds."""
        return time.perf_counter(), time.process_time(), cpu_seconds(self.broker)


# -- one run --------------------------------------------------------------------------------------


class CommandBench:
    """The broker, the backend, the echo devices and the units of one count, and the samples.

    Args:
        units: how many units (and echo devices).
        settings: how the run is done.
    """

    def __init__(self, units: int, settings: Settings) -> None:
        self.units_asked = units
        self.settings = settings
        self.loop = asyncio.get_running_loop()
        self.mosquitto = Mosquitto(host=BROKER_HOST)
        self.meter: CpuMeter | None = None
        self.hub = MqttHub(self.loop)
        self.clock: RealtimeClock | None = None
        self.net: RealQuecNet | None = None
        self.backend: MqttLink | None = None
        self.backend_filters: set[str] = set()
        self.echoes: list[EchoDevice] = []
        self.echoes_ready = 0
        self.all_echoes_ready: asyncio.Future[None] = self.loop.create_future()
        self.units: list[Unit] = []
        self.targets: dict[Kind, list[Target]] = {kind: [] for kind in Kind}
        self.turns = {kind: itertools.count() for kind in Kind}
        self.pending: dict[int, Pending] = {}
        """msg_id -> the sample awaiting it, oldest first."""
        self.msg_ids = itertools.count(1)
        self.freed: asyncio.Future[None] | None = None
        """Set when a sample completes (or a fault comes) while the sender waits for a slot."""
        self.late = 0
        self.other_messages = 0
        self.unit_warnings: dict[str, int] = {}
        self.faults: list[str] = []
        """What went wrong inside a loop callback (raised by the next wait, not lost)."""
        self.failure: str | None = None
        self.gc = GcWatch()

    # -- start-up -----------------------------------------------------------------------------

    async def start(self) -> None:
        """The broker, and the backend connected and subscribed to every up topic."""
        self.mosquitto.start()
        self.meter = CpuMeter(mosquitto_pid())
        backend = MqttLink(
            self.hub, client_id="bench-backend", host=BROKER_HOST, port=self.mosquitto.port
        )
        filters = (PUBLISH_TOPIC.format(imei="+"), ECHO_UP.format(imei="+"))
        for topic in filters:
            backend.subscribe(topic, qos=1)
        backend.on_message = self._message
        backend.on_subscribed = lambda topic, _qos: self.backend_filters.add(topic)
        backend.on_connect_failed = lambda why: self._fault(f"backend: {why}")
        backend.on_disconnected = lambda why: self._fault(f"backend lost: {why}")
        self.backend = backend
        backend.connect()
        await self._until(
            lambda: self.backend_filters == set(filters), LINKS_TIMEOUT_S, "backend SUBACK"
        )

    async def connect_echoes(self) -> float:
        """Connect every echo device at once; seconds until the last SUBACK."""
        started = time.perf_counter()
        for unit_id in range(self.units_asked):
            target = echo_target(Identity.for_unit(0, unit_id).imei)
            echo = EchoDevice(
                self.hub, target, self.mosquitto.port, ready=self._echo_ready, fault=self._fault
            )
            self.echoes.append(echo)
            self.targets[Kind.ECHO].append(target)
            echo.link.connect()
        try:
            async with asyncio.timeout(LINKS_TIMEOUT_S):
                await self.all_echoes_ready
        except TimeoutError:
            raise TimeoutError(
                f"{self.echoes_ready} of {self.units_asked} echo devices subscribed "
                f"after {LINKS_TIMEOUT_S:g} s"
            ) from None
        return time.perf_counter() - started

    def _echo_ready(self) -> None:
        self.echoes_ready += 1
        if self.echoes_ready == self.units_asked and not self.all_echoes_ready.done():
            self.all_echoes_ready.set_result(None)

    def _resolve(self, host: str, port: int) -> tuple[str, int]:
        """The units reach the broker and nothing else."""
        if (host, port) != (BROKER_HOST, self.mosquitto.port):
            raise ValueError(
                f"the benchmark serves only its broker at {BROKER_HOST}:{self.mosquitto.port}, "
                f"not {host}:{port}"
            )
        return host, port

    def _unit_default(self, imei: str) -> DtuConfig:
        config = default_config(imei, broker_host=BROKER_HOST, broker_port=self.mosquitto.port)
        return dataclasses.replace(config, fota=False)

    def _build_unit(self, clock: RealtimeClock, net: RealQuecNet, unit_id: int) -> Unit:
        identity = Identity.for_unit(0, unit_id)
        options = QuecOptions(default_config=self._unit_default)
        unit = Unit(
            clock.env,
            UnitConfig(unit_id=unit_id, identity=identity, profile="quec", options=options),
            epoch_s=clock.epoch_s,
            network=net,
        )
        unit.log.sinks += (self._unit_log,)
        return unit

    async def connect_units(self) -> tuple[float | None, list[int]]:
        """Build and power on every unit, wait until their channels are connected.

        Returns:
            Seconds from power-on to the last unit connected (None when not all did), and
            each connected unit's power-on to connected time in ns.
        """
        # The units power on at sim time 0, which is the wall time the clock is created
        # at: the clock is made here, not earlier, or it would run their first seconds at
        # once to catch up with the wall clock. Building them is part of their boot.
        started = time.perf_counter_ns()
        clock = self.clock = RealtimeClock(self.loop)
        clock.on_crash.append(lambda exc: self._fault(f"the simulation crashed: {exc!r}"))
        net = self.net = RealQuecNet(clock, self.hub, resolve=self._resolve)
        self.units = [self._build_unit(clock, net, i) for i in range(self.units_asked)]
        progress(
            f"{len(self.units)} units built in {(time.perf_counter_ns() - started) / 1e9:.2f} s"
        )
        for unit in self.units:
            unit.power_on()
        clock.start()
        waiting = list(self.units)
        took: dict[str, int] = {}
        deadline = time.monotonic() + self.settings.connect_timeout_s
        while waiting and time.monotonic() < deadline:
            await asyncio.sleep(POLL_S)
            self._raise_faults()
            now = time.perf_counter_ns()
            still: list[Unit] = []
            for unit in waiting:
                if channel_connected(unit):
                    took[unit.imei] = now - started
                else:
                    still.append(unit)
            waiting = still
        self.targets[Kind.UNIT] = [unit_target(u.imei) for u in self.units if u.imei in took]
        if waiting:
            progress(
                f"{len(waiting)} of {len(self.units)} units not connected after "
                f"{self.settings.connect_timeout_s:g} s"
            )
            return None, list(took.values())
        return max(took.values()) / 1e9, list(took.values())

    async def wait_connected(self) -> Connect:
        """Echo devices, then units; the RSS along the way and the idle CPU at the end."""
        process = psutil.Process()
        base_rss = rss_mb(process)
        echo_s = await self.connect_echoes()
        echo_rss = rss_mb(process)
        all_connected_s, took = await self.connect_units()
        units_rss = rss_mb(process)
        if self.clock is not None:
            self.clock.max_lateness_s = 0.0  # the connect storm is over: count from here
        await asyncio.sleep(QUIET_S)
        assert self.meter is not None  # set by start()
        _wall, cpu, broker_cpu = self.meter.read()
        await asyncio.sleep(IDLE_WINDOW_S)
        _wall, cpu_after, broker_after = self.meter.read()
        n = self.units_asked
        return Connect(
            units=n,
            connected=len(took),
            echo_connected_s=echo_s,
            all_connected_s=all_connected_s,
            per_unit=Latency.of(took) if took else None,
            base_rss_mb=base_rss,
            echo_rss_kb=(echo_rss - base_rss) * 1024 / n,
            unit_rss_kb=(units_rss - echo_rss) * 1024 / n,
            rss_mb=units_rss,
            broker_rss_mb=rss_mb(self.meter.broker),
            idle_cpu_percent=100 * (cpu_after - cpu) / IDLE_WINDOW_S,
            broker_idle_cpu_percent=100 * (broker_after - broker_cpu) / IDLE_WINDOW_S,
        )

    # -- arrivals -----------------------------------------------------------------------------

    def _message(self, topic: str, data: bytes) -> None:
        """The backend's on_message: complete the sample the reply answers."""
        now = time.perf_counter_ns()
        try:
            value = json.loads(data)
            msg_id = value["msg_id"]
        except (ValueError, KeyError, TypeError):
            self.other_messages += 1
            return
        pending = self.pending.get(msg_id) if isinstance(msg_id, int) else None
        if pending is None:
            self.late += 1
            return
        if topic != pending.target.up_topic or value != pending.expected:
            self._fault(
                f"{data!r} on {topic} does not answer msg_id {msg_id}: expected "
                f"{pending.expected} on {pending.target.up_topic}"
            )
            return
        del self.pending[msg_id]
        pending.bucket.durations.append(now - pending.start_ns)
        self._wake()

    def _unit_log(self, name: str, record: LogRecord) -> None:
        if record.level >= LogLevel.WARN:
            kind = stderr_kind(record.format())
            self.unit_warnings[kind] = self.unit_warnings.get(kind, 0) + 1
            if sum(self.unit_warnings.values()) <= 5:
                progress(f"{name}: {record.format()}")

    def _wake(self) -> None:
        if self.freed is not None and not self.freed.done():
            self.freed.set_result(None)

    def _fault(self, text: str) -> None:
        """Record a failure seen in a callback; the sender raises it at its next wait."""
        self.faults.append(text)
        self._wake()

    def _raise_faults(self) -> None:
        if self.faults:
            raise RuntimeError(f"{len(self.faults)} failures, the first: {self.faults[0]}")

    async def _until(self, done: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            self._raise_faults()
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {what} after {timeout_s:g} s")
            await asyncio.sleep(POLL_S)

    # -- samples ------------------------------------------------------------------------------

    def _send(self, kind: Kind, bucket: Bucket) -> None:
        targets = self.targets[kind]
        target = targets[next(self.turns[kind]) % len(targets)]
        msg_id = next(self.msg_ids)
        command = {"msg_id": msg_id, "cmd_code": COMMAND_CODE}
        payload = json.dumps(command).encode()
        pending = Pending(
            target=target, expected=expected_reply(kind, target, command), bucket=bucket
        )
        self.pending[msg_id] = pending
        assert self.backend is not None  # set by start()
        pending.start_ns = time.perf_counter_ns()
        if self.backend.publish(target.down_topic, payload, qos=1) is None:
            raise RuntimeError(f"the backend is not connected ({self.backend.state})")

    async def _wait_slot(self) -> None:
        """Until a sample completes, or the oldest one is lost."""
        msg_id, oldest = next(iter(self.pending.items()))
        left_s = (oldest.start_ns - time.perf_counter_ns()) / 1e9 + SAMPLE_TIMEOUT_S
        if left_s > 0:
            self.freed = self.loop.create_future()
            try:
                async with asyncio.timeout(left_s):
                    await self.freed
            except TimeoutError:
                pass
            finally:
                self.freed = None
            self._raise_faults()
        else:
            del self.pending[msg_id]
            oldest.bucket.lost += 1
            progress(
                f"msg_id {msg_id} to {oldest.target.down_topic}: no reply in {SAMPLE_TIMEOUT_S:g} s"
            )

    async def samples(self, kind: Kind, count: int, inflight: int, bucket: Bucket) -> None:
        """``count`` commands of ``kind``, at most ``inflight`` awaiting a reply; then drain."""
        for _ in range(count):
            while len(self.pending) >= inflight:
                await self._wait_slot()
            self._send(kind, bucket)
        while self.pending:
            await self._wait_slot()

    async def measure(self) -> list[KindResult]:
        """Every in-flight limit in turn: warm-up, then the timed blocks of both kinds.

        A failure stops measuring; what was measured until then is returned, and the reason
        kept in ``failure``.
        """
        if not self.targets[Kind.UNIT]:
            raise RuntimeError("no unit connected: nothing to measure")
        results: list[KindResult] = []
        try:
            with self.gc.watching():
                for inflight in self.settings.inflight:
                    buckets = {kind: Bucket() for kind in Kind}
                    try:
                        await self._run_blocks(inflight, buckets)
                    finally:
                        sent = [k for k in Kind if buckets[k].durations or buckets[k].lost]
                        results += [buckets[kind].result(kind, inflight) for kind in sent]
        except (RuntimeError, TimeoutError) as exc:
            self.failure = f"measuring stopped: {exc}"
            progress(self.failure)
        return results

    async def _run_blocks(self, inflight: int, buckets: dict[Kind, Bucket]) -> None:
        settings = self.settings
        warmup = Bucket()
        for kind in Kind:
            await self.samples(kind, settings.warmup, inflight, warmup)
        if warmup.lost > MAX_LOST:
            raise RuntimeError(f"{warmup.lost} warm-up samples lost (more than {MAX_LOST})")
        kinds = list(Kind)
        assert self.meter is not None  # set by start()
        for block, first in enumerate(range(0, settings.samples, settings.block)):
            count = min(settings.block, settings.samples - first)
            for kind in kinds if block % 2 == 0 else kinds[::-1]:
                bucket = buckets[kind]
                wall, cpu, broker = self.meter.read()
                await self.samples(kind, count, inflight, bucket)
                wall_after, cpu_after, broker_after = self.meter.read()
                bucket.wall_s += wall_after - wall
                bucket.cpu_s += cpu_after - cpu
                bucket.broker_cpu_s += broker_after - broker
            lost = sum(bucket.lost for bucket in buckets.values())
            if lost > MAX_LOST:
                raise RuntimeError(f"{lost} samples lost (more than {MAX_LOST})")

    # -- the end ------------------------------------------------------------------------------

    def trouble(self) -> Trouble:
        """What went wrong over the run (see ``Trouble``); before ``stop()``, which ends the
        units' channels."""
        reconnects = sum(unit.firmware.counters().reconnects for unit in self.units)
        frequent = sorted(self.unit_warnings.items(), key=lambda item: -item[1])[:10]
        return Trouble(
            late=self.late,
            other_messages=self.other_messages,
            reconnects=reconnects,
            unit_warnings=sum(self.unit_warnings.values()),
            warning_kinds=dict(frequent),
            clock_max_lateness_ms=(self.clock.max_lateness_s * 1000 if self.clock else 0.0),
            gc=self.gc.pauses,
        )

    async def stop(self) -> None:
        """Power the units off, close every link, stop the broker."""
        try:
            for unit in self.units:
                unit.power_off()
            if self.clock is not None:
                self.clock.stop()
            if self.net is not None:
                self.net.close()
                await self.net.wait_idle()
            self.hub.close()
        finally:
            self.mosquitto.stop()


def channel_connected(unit: Unit) -> bool:
    """Whether a QuecPython unit's MQTT channel is connected (its subscription acknowledged)."""
    firmware = unit.firmware
    if not isinstance(firmware, QuecFirmware):
        raise TypeError(f"unit {unit.name} is not a QuecPython unit")
    driver = firmware.drivers.get(CHANNEL)
    return driver is not None and driver.connected


@contextmanager
def profiled(path: Path | None) -> Iterator[None]:
    """cProfile over the block when ``path`` is given: dumped there, the top printed to stderr."""
    if path is None:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        path.parent.mkdir(parents=True, exist_ok=True)
        profiler.dump_stats(path)
        progress(f"profile written to {path}; the top functions by own time:")
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)


async def run_one(units: int, settings: Settings) -> RunResult:
    """Start, connect, measure and stop one unit count.

    A failure (a link drops, units do not connect, too many samples lost) ends the run with
    what was measured so far and the reason, so the next count still runs.
    """
    bench = CommandBench(units, settings)
    connect: Connect | None = None
    kinds: list[KindResult] = []
    try:
        progress(f"{units} units: starting mosquitto and the backend")
        await bench.start()
        progress(f"{units} units: connecting {units} echo devices, then the units")
        connect = await bench.wait_connected()
        took = opt(connect.all_connected_s, ".2f")
        progress(
            f"{units} units: {connect.connected} connected in {took} s; "
            f"measuring {settings.samples} samples of each kind at in-flight {settings.inflight}"
        )
        profile = settings.profile
        with profiled(profile / f"quec-command-{units}.pstats" if profile else None):
            kinds = await bench.measure()
    except (RuntimeError, TimeoutError, OSError, VdtuError) as exc:
        bench.failure = f"{type(exc).__name__}: {exc}"
        progress(f"{units} units: failed: {bench.failure}")
    finally:
        trouble = bench.trouble()
        await bench.stop()
    return RunResult(
        units=units,
        connect=connect,
        kinds=kinds,
        trouble=trouble,
        ratios=ratios(kinds),
        failure=bench.failure,
    )


def ratios(kinds: Sequence[KindResult]) -> dict[str, float]:
    """Units over echo devices, p50 and p99, at each in-flight limit that has both."""
    found: dict[str, float] = {}
    for unit in kinds:
        if unit.kind != Kind.UNIT.value or unit.latency is None:
            continue
        echo = next(
            (k for k in kinds if k.kind == Kind.ECHO.value and k.inflight == unit.inflight), None
        )
        if echo is not None and echo.latency is not None:
            found[f"{unit.inflight}_p50"] = unit.latency.p50_us / echo.latency.p50_us
            found[f"{unit.inflight}_p99"] = unit.latency.p99_us / echo.latency.p99_us
    return found


def run_all(counts: Sequence[int], settings: Settings) -> list[RunResult]:
    """Every count, smallest first, each on a fresh loop."""
    results = []
    for units in sorted(counts):
        results.append(asyncio.run(run_one(units, settings)))
        gc.collect()
    return results


# -- the report -----------------------------------------------------------------------------------


def latency_table(results: Sequence[RunResult]) -> tuple[list[str], list[list[str]]]:
    """Head and rows of the latency table: one row per count and in-flight limit."""
    head = ["units", "in flight", "unit p50", "unit p99", "unit max"]
    head += ["echo p50", "echo p99", "echo max", "ratio p50", "ratio p99", "lost"]
    rows = []
    for r in results:
        for inflight in sorted({k.inflight for k in r.kinds}):
            unit, echo = r.kind(Kind.UNIT, inflight), r.kind(Kind.ECHO, inflight)
            ulat = unit.latency if unit else None
            elat = echo.latency if echo else None
            rows.append(
                [
                    str(r.units),
                    str(inflight),
                    us_as_ms(ulat.p50_us if ulat else None),
                    us_as_ms(ulat.p99_us if ulat else None),
                    us_as_ms(ulat.max_us if ulat else None),
                    us_as_ms(elat.p50_us if elat else None),
                    us_as_ms(elat.p99_us if elat else None),
                    us_as_ms(elat.max_us if elat else None),
                    opt(r.ratios.get(f"{inflight}_p50"), ".2f"),
                    opt(r.ratios.get(f"{inflight}_p99"), ".2f"),
                    f"{unit.lost if unit else '-'}+{echo.lost if echo else '-'}",
                ]
            )
    return head, rows


def cost_table(results: Sequence[RunResult]) -> tuple[list[str], list[list[str]]]:
    """Head and rows of the rate and CPU table: one row per count, in-flight limit and kind."""
    head = ["units", "in flight", "kind", "msg/s", "process CPU µs/msg", "mosquitto CPU µs/msg"]
    rows = [
        [
            str(r.units),
            str(k.inflight),
            k.kind,
            f"{k.rate_per_s:.0f}",
            f"{k.cpu_us:.0f}",
            f"{k.broker_cpu_us:.0f}",
        ]
        for r in results
        for k in r.kinds
    ]
    return head, rows


def connect_table(results: Sequence[RunResult]) -> tuple[list[str], list[list[str]]]:
    """Head and rows of the connect table: one row per count that got that far."""
    head = ["units", "connected", "echoes s", "units s", "unit p50 s", "unit max s"]
    head += ["RSS MB", "base MB", "KB/echo", "KB/unit", "mosquitto MB", "idle %"]
    head += ["mosquitto idle %"]
    rows = []
    for r in results:
        c = r.connect
        if c is None:
            rows.append([str(r.units), "failed", *["-"] * (len(head) - 2)])
            continue
        per_unit = c.per_unit
        rows.append(
            [
                str(r.units),
                f"{c.connected}/{c.units}",
                f"{c.echo_connected_s:.3f}",
                opt(c.all_connected_s, ".2f"),
                opt(per_unit.p50_us / 1e6 if per_unit else None, ".2f"),
                opt(per_unit.max_us / 1e6 if per_unit else None, ".2f"),
                f"{c.rss_mb:.1f}",
                f"{c.base_rss_mb:.1f}",
                f"{c.echo_rss_kb:.1f}",
                f"{c.unit_rss_kb:.1f}",
                f"{c.broker_rss_mb:.1f}",
                f"{c.idle_cpu_percent:.1f}",
                f"{c.broker_idle_cpu_percent:.1f}",
            ]
        )
    return head, rows


def print_report(results: Sequence[RunResult], settings: Settings) -> None:
    """The human-readable report (Markdown tables)."""
    print(
        f"{machine_line()}; {settings.samples} samples of each kind per count and in-flight limit"
        + ("; PROFILED (latencies inflated)" if settings.profile else "")
        + "\n"
    )
    print(
        "Command round trip, backend publish -> reply received (ms), round-robin over the "
        "units\nor the echo devices; ratio = unit/echo; lost = unit samples + echo samples:\n"
    )
    print(markdown_table(*latency_table(results)))
    print(
        "\nRate and CPU time per message over each kind's blocks (this process runs the units, "
        "the\necho devices and the backend):\n"
    )
    print(markdown_table(*cost_table(results)))
    print(
        "\nConnect: echo devices all at once, first connect() to last SUBACK; units: power-on "
        "to the\nlast channel connected, and each unit's (polled every "
        f"{POLL_S * 1000:.0f} ms); RSS of this process\n(base: broker link only; growth per echo "
        "device and per unit); idle CPU in % of one core:\n"
    )
    print(markdown_table(*connect_table(results)))
    print(
        "\nTrouble (all 0 in a clean run): late or duplicate replies, other messages on the up "
        "topics,\nunit channel reconnects, unit WARN+ log records; the clock's worst lateness once "
        "all\nunits connected; the garbage collector's runs and pauses while measuring:\n"
    )
    head = ["units", "late", "other", "reconnects", "unit warnings", "clock lateness ms"]
    head += ["gc runs", "gc full", "gc longest ms", "gc total ms"]
    rows = [
        [
            str(r.units),
            str(r.trouble.late),
            str(r.trouble.other_messages),
            str(r.trouble.reconnects),
            str(r.trouble.unit_warnings),
            f"{r.trouble.clock_max_lateness_ms:.1f}",
            str(r.trouble.gc.collections),
            str(r.trouble.gc.full),
            f"{r.trouble.gc.longest_ms:.1f}",
            f"{r.trouble.gc.total_ms:.1f}",
        ]
        for r in results
    ]
    print(markdown_table(head, rows))
    for r in results:
        if r.failure is not None:
            print(f"\n{r.units} units FAILED: {r.failure}")
        if r.trouble.warning_kinds:
            print(f"\n{r.units} units: the most frequent unit warnings:")
            for kind, count in r.trouble.warning_kinds.items():
                print(f"    {count:8d}  {kind}")


# -- the command ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.quec_command",
        description="QuecPython command round trip over mosquitto, against a bare paho echo.",
    )
    parser.add_argument(
        "--units", default="1,1000", help="unit counts, comma-separated (default 1,1000)"
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=2000,
        help="timed samples of each kind per count and in-flight limit (default 2000)",
    )
    parser.add_argument(
        "--inflight",
        default="1,10",
        help=f"in-flight limits, comma-separated: commands awaiting a reply at once, each "
        f"1..{MAX_INFLIGHT} (default 1,10)",
    )
    parser.add_argument(
        "--connect-timeout",
        type=float,
        default=60.0,
        help="seconds to wait for every unit's channel to connect (default 60)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="cProfile each count's timed phase into DIR/quec-command-<units>.pstats",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        counts = parse_counts(args.units, option="--units", top=MAX_UNITS)
        inflight = parse_counts(args.inflight, option="--inflight", top=MAX_INFLIGHT)
        find_mosquitto()
    except (ValueError, ConfigError) as exc:
        parser.error(str(exc))
    if args.samples < 1 or args.connect_timeout <= 0:
        parser.error(
            f"--samples must be >= 1 and --connect-timeout > 0, "
            f"not {args.samples} and {args.connect_timeout}"
        )
    settings = Settings(
        samples=args.samples,
        inflight=tuple(inflight),
        connect_timeout_s=args.connect_timeout,
        profile=args.profile,
    )
    results = run_all(counts, settings)
    if args.json:
        report = {
            "machine": machine(),
            "settings": asdict(settings),
            "results": [asdict(r) for r in results],
        }
        print(json.dumps(report, indent=2, default=str))  # default: the --profile Path
    else:
        print_report(results, settings)
    return 0 if all(r.failure is None for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
