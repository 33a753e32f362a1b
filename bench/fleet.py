"""Units per process: a headless vdtu fleet against bare paho clients publishing the same pattern.

Run ``python -m bench.fleet [--units 1000,5000,10000] [--profile xgc|quec|mix] [--ramp 100]
[--duration 60] [--interval 10] [--payload 64] [--grace 10] [--seed 0] [--json]``.

Each unit count N runs in a fresh child process of its own (``--child count``), so that no count
reuses memory another one freed; the parent collects the children's JSON and prints the
tables. Inside the child, one asyncio loop runs two phases, each against a private mosquitto
started for it (``vdtu.cloud.mosquitto.Mosquitto(max_queued_messages=0)``, anonymous), so
that neither phase inherits the other's sessions or retained messages:

1. **The units.** ``vdtu.load.runner.LoadRun`` with N units, exactly what ``vdtu fleet
   --broker mqtt://127.0.0.1:PORT`` runs, with the command probe off and no progress line:
   units powered on at ``--ramp`` per second, each with its simulated host, which sends one
   uplink of ``--payload`` characters every ``--interval`` s (+/-20 %) once its unit has
   reached the broker, and vdtu's verifying subscriber counting them. The run's
   ``DeliveryTracker`` keeps its latency histogram in a ``WindowedHistogram``, so the steady
   window gets a histogram of its own besides the whole run's.
2. **The baseline.** N bare ``MqttLink``s on an ``MqttHub`` (``vdtu/net/mqtt.py``: the same
   event-loop design, no device model, no sim time), connected in batches of
   ``CONNECT_BATCH``. Each publishes, with QoS 1, what a unit of the profile publishes (the
   same topic and the same bytes: the uplink JSON, for a QuecPython unit wrapped as
   ``{"data": ...}``) on the same pattern: the first within one interval of its CONNACK,
   then every interval +/-20 %, from ``loop.call_later`` timers. The same ``Verifier``
   class counts them into a ``DeliveryTracker``. The objects alive are frozen out of the
   garbage collector's view every second, as ``LoadRun`` does for its units.

The units run first because their RSS is the figure the issue sets a limit on: in a fresh
process nothing freed earlier can hide part of their growth. After them the process collects
its garbage and gives free memory back (``malloc_trim``), but it keeps most of the units'
pages (Python's allocator frees an arena only when every object in it is gone), and the bare
clients then fill those, so their RSS growth in this process reads low. So the bare clients'
RSS is measured once more in another fresh process (``--child bare-rss``: mosquitto, the
verifier and the N bare clients connected, nothing else), and that is the figure the RSS
ratio uses; the tables show both.

What is measured, per phase:

* **Connect.** Units: ``connect_s`` of the run's report (start of the ramp to the last unit's
  first connection; the ramp takes N / ``--ramp`` s and each unit registers with the
  simulated network for 4 to 12 s before it dials). Bare clients: first ``connect()`` to the
  last CONNACK.
* **RSS.** This process's RSS just before the first unit is powered on (the broker link of
  the verifier and the fleet's cloud side already up) and once every unit is connected; the
  difference over N is the RSS per unit. The same for the bare clients.
* **The steady window.** For the units it opens once every unit is connected, or
  ``CONNECT_LIMIT_S`` after the ramp, and closes ``END_MARGIN_S`` before the run stops its
  hosts. The bare clients get a window of the same length, ``BARE_SETTLE_S`` after the last
  CONNACK. Over it: this process's CPU (user + system) and mosquitto's
  (``psutil``), the uplinks delivered, their latency, the garbage collector's pauses and, for
  the units, the sim clock's worst lateness.
  CPU per delivered message is the window's CPU over the uplinks delivered in it, so it
  carries the verifier's share, which is the same code in both phases.
* **The whole phase.** Total CPU and wall time, published, delivered, lost, duplicated and
  reordered uplinks and their latency, reconnects and errors.

Ratios are units over bare clients: CPU per delivered message and RSS per client.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import json
import math
import os
import random
import resource
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import psutil

from bench.bare import BareClient, freezing, unit_topic
from bench.common import (
    GcPauses,
    GcWatch,
    child_json,
    cpu_seconds,
    machine,
    machine_line,
    markdown_table,
    mosquitto_pid,
    opt,
    parse_counts,
    progress,
    rss_mb,
)
from vdtu.cloud.mosquitto import Mosquitto, find_mosquitto
from vdtu.errors import ConfigError, VdtuError
from vdtu.histogram import LatencyHistogram
from vdtu.links.xgc_stack import default_project
from vdtu.load.delivery import DeliveryTracker
from vdtu.load.options import PROFILES, LoadOptions, build_options
from vdtu.load.runner import LoadRun
from vdtu.load.verifier import Verifier
from vdtu.net.mqtt import MqttHub

MAX_UNITS = 100_000
"""``FleetConfig``'s limit; the open-file limit usually stops a run earlier (one fd a unit)."""
FD_MARGIN = 256
"""Open files beyond one per client: the broker links, the HTTP platform, mosquitto's own."""
MIN_DURATION_S = 30.0
"""The units register for up to 12 s after the ramp; the steady window needs what is left."""
CONNECT_LIMIT_S = 30.0
"""The steady window opens this long after the ramp at the latest, connected or not."""
MIN_WINDOW_S = 10.0
"""The shortest steady window measured (at the default interval, about one uplink a unit)."""
END_MARGIN_S = 0.5
"""The window closes this long before the run stops its hosts."""
START_POLL_S = 0.001
"""How often the start of the units' run is looked for (the RSS before the first unit)."""
POLL_S = 0.25
PROGRESS_S = 10.0
CONNECT_BATCH = 100
"""Bare clients dialling at once (the next batch starts when this one has its CONNACKs)."""
BATCH_TIMEOUT_S = 30.0
BARE_SETTLE_S = 3.0
"""The bare clients' window opens this long after the last CONNACK. Clients publish as soon as
they are connected, and with 10 000 dialling in 3 s, uplinks sent meanwhile wait up to 1.2 s
behind the later batches' CONNECTs: that backlog is the connect burst's, not steady traffic."""
MAX_LISTED = 10
"""Units with lost uplinks named in a result (to look into; the counts cover all)."""
CHILD_COUNT = "count"
CHILD_BARE_RSS = "bare-rss"
"""The two kinds of child process: a count's two phases, and the bare clients' RSS alone."""
UNITS = "vdtu units"
BARE = "bare paho"


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """How every count is run (the ``LoadOptions`` of the units, and the baseline's pattern)."""

    profile: str = "xgc"
    ramp: float = 100.0
    """Units powered on per second."""
    duration: float = 60.0
    """Seconds after the ramp until the hosts stop."""
    interval: float = 10.0
    """Mean seconds between two uplinks of one unit (or bare client)."""
    payload: int = 64
    """Characters of each uplink's JSON text."""
    grace: float = 10.0
    """Seconds to wait after sending stops for what is still in flight."""
    seed: int = 0

    def options_for(self, units: int, *, broker: str | None) -> LoadOptions:
        """``LoadOptions`` for ``units`` units against ``broker``, with the probe and the
        progress line off.

        Raises:
            ConfigError: ``vdtu fleet`` would refuse a setting (the message names it).
        """
        return build_options(
            {
                "units": units,
                "profile": self.profile,
                "broker": broker,
                "ramp": self.ramp,
                "duration": self.duration,
                "interval": self.interval,
                "payload": self.payload,
                "grace": self.grace,
                "seed": self.seed,
                "probe_rate": 0,
                "progress": False,
            }
        )


# -- results --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Window:
    """What the steady window measured."""

    seconds: float
    cpu_s: float
    """This process's CPU over the window."""
    broker_cpu_s: float
    published: int
    delivered: int
    cpu_percent: float
    """This process's CPU in percent of one core."""
    cpu_us_per_msg: float | None
    """This process's CPU per delivered uplink (None: nothing delivered)."""
    broker_cpu_us_per_msg: float | None
    """mosquitto's CPU per delivered uplink."""
    latency_ms: dict[str, float | None]
    """p50, p95, p99, max of the uplinks that arrived in the window."""
    gc: GcPauses
    load_1m: float
    """The machine's 1-minute load average when the window closed (this run included)."""

    @classmethod
    def between(
        cls, start: Reading, end: Reading, latency: LatencyHistogram, gc_pauses: GcPauses
    ) -> Window:
        """The window from two readings, the latencies and the collector's pauses in it."""
        seconds = end.wall - start.wall
        cpu = end.cpu - start.cpu
        broker_cpu = end.broker_cpu - start.broker_cpu
        delivered = end.delivered - start.delivered
        return cls(
            seconds=seconds,
            cpu_s=cpu,
            broker_cpu_s=broker_cpu,
            published=end.published - start.published,
            delivered=delivered,
            cpu_percent=100 * cpu / seconds if seconds > 0 else 0.0,
            cpu_us_per_msg=cpu / delivered * 1e6 if delivered else None,
            broker_cpu_us_per_msg=broker_cpu / delivered * 1e6 if delivered else None,
            latency_ms=latency.summary().to_json(),
            gc=gc_pauses,
            load_1m=os.getloadavg()[0],
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Window:
        """Read back ``asdict``."""
        return cls(**{**data, "gc": GcPauses(**data["gc"])})


@dataclass(frozen=True, slots=True, kw_only=True)
class Phase:
    """One phase of a count: the units, or the bare clients."""

    kind: str
    clients: int
    connected: int
    """Connected when the window opened."""
    connect_failures: int
    connect_s: float | None
    """See the module comment; None when not every client connected."""
    rss_before_mb: float
    rss_connected_mb: float
    rss_kb_per_client: float
    broker_rss_mb: float
    """mosquitto's RSS when the window opened."""
    window: Window
    total_cpu_s: float
    total_s: float
    published: int
    delivered: int
    lost: int
    duplicated: int
    reordered: int
    latency_ms: dict[str, float | None]
    """The whole phase's uplinks."""
    reconnects: int
    late: int = 0
    """Uplinks that arrived after the grace period (counted lost, too)."""
    lost_units: dict[str, int] = field(default_factory=dict)
    """Fleet id -> uplinks lost, for the first ``MAX_LISTED`` units that lost any."""
    errors: dict[str, int] = field(default_factory=dict)
    clock_lateness_ms: float | None = None
    """The units' sim clock: its worst delay behind the wall clock in the window."""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Phase:
        """Read back ``asdict``."""
        return cls(**{**data, "window": Window.from_json(data["window"])})


@dataclass(frozen=True, slots=True, kw_only=True)
class FreshRss:
    """The bare clients' RSS in a fresh process of their own (connect only, no window)."""

    clients: int
    connected: int
    rss_before_mb: float
    rss_connected_mb: float
    kb_per_client: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CountResult:
    """One unit count: both phases, or why it stopped."""

    units: int
    vdtu: Phase | None
    bare: Phase | None
    bare_fresh: FreshRss | None = None
    """The bare clients' RSS measured apart (see the module comment); None if not run."""
    failure: str | None = None

    @property
    def cpu_ratio(self) -> float | None:
        """Units' CPU per delivered message over the bare clients'."""
        if self.vdtu is None or self.bare is None:
            return None
        ours, theirs = self.vdtu.window.cpu_us_per_msg, self.bare.window.cpu_us_per_msg
        return ours / theirs if ours is not None and theirs else None

    @property
    def rss_ratio(self) -> float | None:
        """RSS per unit over RSS per bare client in a fresh process."""
        if self.vdtu is None or self.bare_fresh is None or self.bare_fresh.kb_per_client <= 0:
            return None
        return self.vdtu.rss_kb_per_client / self.bare_fresh.kb_per_client

    def to_json(self) -> dict[str, Any]:
        """The result with its ratios."""
        return {**asdict(self), "cpu_ratio": self.cpu_ratio, "rss_ratio": self.rss_ratio}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CountResult:
        """Read back ``to_json``."""
        return cls(
            units=data["units"],
            vdtu=Phase.from_json(data["vdtu"]) if data["vdtu"] else None,
            bare=Phase.from_json(data["bare"]) if data["bare"] else None,
            bare_fresh=FreshRss(**data["bare_fresh"]) if data["bare_fresh"] else None,
            failure=data["failure"],
        )


# -- measuring ------------------------------------------------------------------------------------


class WindowedHistogram(LatencyHistogram):
    """A latency histogram that also feeds ``window`` while one is set."""

    def __init__(self) -> None:
        super().__init__()
        self.window: LatencyHistogram | None = None

    def add(self, ms: float) -> None:
        """Count one latency here, and in the window if one is open."""
        super().add(ms)
        if self.window is not None:
            self.window.add(ms)


@dataclass(frozen=True, slots=True)
class Reading:
    """The counters at one moment."""

    wall: float
    cpu: float
    broker_cpu: float
    published: int
    delivered: int

    @classmethod
    def take(cls, tracker: DeliveryTracker, broker: psutil.Process) -> Reading:
        """Read them now."""
        totals = tracker.totals()
        return cls(
            wall=time.monotonic(),
            cpu=cpu_seconds(),
            broker_cpu=cpu_seconds(broker),
            published=totals.published,
            delivered=totals.delivered,
        )


async def steady_window(
    label: str,
    tracker: DeliveryTracker,
    latency: WindowedHistogram,
    broker: psutil.Process,
    seconds: float,
) -> Window:
    """Measure ``seconds`` of steady traffic, with a progress line every ``PROGRESS_S``."""
    watch = GcWatch()
    latency.window = latency.empty_like()
    start = Reading.take(tracker, broker)
    end_at = start.wall + seconds
    with watch.watching():
        while (left := end_at - time.monotonic()) > 0:
            await asyncio.sleep(min(PROGRESS_S, left))
            now = Reading.take(tracker, broker)
            took = now.wall - start.wall
            progress(
                f"{label}: window {took:.0f}/{seconds:.0f} s, delivered "
                f"{now.delivered - start.delivered}, CPU {100 * (now.cpu - start.cpu) / took:.0f} %"
            )
    end = Reading.take(tracker, broker)
    window, latency.window = latency.window, None
    return Window.between(start, end, window, watch.pauses)


def release_memory() -> None:
    """After a phase: unfreeze what ``gc.freeze`` kept, collect, give free pages back (glibc)."""
    gc.unfreeze()
    gc.collect()
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if trim is not None:
        trim(0)


def raise_fd_limit(needed: int) -> None:
    """Raise this process's open-file limit to ``needed`` (mosquitto inherits it).

    Raises:
        ConfigError: the hard limit is lower, naming both numbers.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise ConfigError(
            f"{needed} open files are needed (one per client and {FD_MARGIN} more), but the "
            f"hard limit is {hard}: raise it (ulimit -Hn) or run fewer units"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


# -- phase 1: the units ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Steady:
    """The units' figures from the moment every unit was connected to the window's end."""

    connected: int
    """Units connected when the window opened."""
    rss_mb: float
    """This process's RSS then."""
    broker_rss_mb: float
    window: Window
    clock_lateness_s: float
    """The sim clock's worst delay behind the wall clock in the window."""


class UnitsPhase:
    """A ``LoadRun`` of N units on a fresh mosquitto, and its figures.

    Args:
        settings: how the run is done.
        units: how many units.
    """

    def __init__(self, settings: Settings, units: int) -> None:
        self.settings = settings
        self.units = units
        self.latency = WindowedHistogram()
        self.rss_before_mb = 0.0
        self.powered_before = 0
        """Units already powered on when the RSS before them was read (0 or 1, usually)."""

    async def run(self) -> Phase:
        """Run the fleet to its end; the figures, or RuntimeError saying what went wrong."""
        with Mosquitto(max_queued_messages=0) as mosquitto:
            broker = psutil.Process(mosquitto_pid())
            options = self.settings.options_for(self.units, broker=str(mosquitto.url))
            load = LoadRun(asyncio.get_running_loop(), options, sys.stderr)
            load.tracker.latency = self.latency
            cpu_before, wall_before = cpu_seconds(), time.monotonic()
            stop = asyncio.Event()
            task = asyncio.create_task(load.run(stop))
            try:
                await self._until_ramp(load, task)
                steady = await self._steady(load, task, broker)
                report = await task
            finally:
                stop.set()
                if not task.done():
                    await asyncio.wait([task])
        totals = load.tracker.totals()
        return Phase(
            kind=UNITS,
            clients=self.units,
            connected=steady.connected,
            connect_failures=report.connect_failures,
            connect_s=report.connect_s if len(load.first_connected) == self.units else None,
            rss_before_mb=self.rss_before_mb,
            rss_connected_mb=steady.rss_mb,
            rss_kb_per_client=per_client_kb(
                steady.rss_mb - self.rss_before_mb, self.units - self.powered_before
            ),
            broker_rss_mb=steady.broker_rss_mb,
            window=steady.window,
            total_cpu_s=cpu_seconds() - cpu_before,
            total_s=time.monotonic() - wall_before,
            published=totals.published,
            delivered=totals.delivered,
            lost=totals.lost,
            duplicated=totals.duplicated,
            reordered=totals.reordered,
            late=totals.late,
            lost_units=lost_units(load.tracker),
            latency_ms=report.latency_ms.to_json(),
            reconnects=report.reconnects,
            errors=dict(report.errors),
            clock_lateness_ms=steady.clock_lateness_s * 1000,
        )

    async def _until_ramp(self, load: LoadRun, task: asyncio.Task[Any]) -> None:
        """Wait for the ramp's start and read the RSS before the units."""
        while not load.started_at:
            _check_alive(task)
            await asyncio.sleep(START_POLL_S)
        self.rss_before_mb = rss_mb()
        self.powered_before = len(load.hosts)
        progress(
            f"{self.units} units: broker and verifier up, RSS {self.rss_before_mb:.1f} MB; "
            f"ramp of {self.units / self.settings.ramp:.0f} s"
        )

    async def _steady(
        self, load: LoadRun, task: asyncio.Task[Any], broker: psutil.Process
    ) -> Steady:
        """Wait until every unit is connected (or ``CONNECT_LIMIT_S``), then measure the window."""
        ramp_s = self.units / self.settings.ramp
        deadline = load.started_at + ramp_s + self.settings.duration
        opens_at = min(load.started_at + ramp_s + CONNECT_LIMIT_S, deadline - MIN_WINDOW_S)
        said = time.monotonic()
        while len(load.first_connected) < self.units and time.monotonic() < opens_at:
            _check_alive(task)
            await asyncio.sleep(POLL_S)
            if time.monotonic() - said >= PROGRESS_S:
                said = time.monotonic()
                progress(
                    f"{self.units} units: {len(load.hosts)} powered on, "
                    f"{len(load.first_connected)} connected"
                )
        connected = len(load.first_connected)
        seconds = deadline - END_MARGIN_S - time.monotonic()
        if seconds < MIN_WINDOW_S:
            raise RuntimeError(
                f"only {seconds:.1f} s left for the steady window after {connected} units "
                f"connected: give a longer --duration"
            )
        rss_connected = rss_mb()
        broker_rss = rss_mb(broker)
        progress(
            f"{self.units} units: {connected} connected at {load.report().connect_s:.1f} s, "
            f"RSS {rss_connected:.1f} MB; steady window of {seconds:.0f} s"
        )
        clock = load.fleet.clock
        clock.max_lateness_s = 0.0
        window = await steady_window(
            f"{self.units} units", load.tracker, self.latency, broker, seconds
        )
        return Steady(
            connected=connected,
            rss_mb=rss_connected,
            broker_rss_mb=broker_rss,
            window=window,
            clock_lateness_s=clock.max_lateness_s,
        )


def _check_alive(task: asyncio.Task[Any]) -> None:
    """Raise if the units' run has ended (crashed, or stopped) before its time."""
    if task.done():
        exc = task.exception()
        raise RuntimeError(f"the units' run ended early: {exc!r}" if exc else "ended early")


def lost_units(tracker: DeliveryTracker) -> dict[str, int]:
    """The first ``MAX_LISTED`` units that lost uplinks, and how many each."""
    lost = [(str(unit), counts.lost) for unit, counts in tracker.per_unit().items() if counts.lost]
    return dict(lost[:MAX_LISTED])


def per_client_kb(grown_mb: float, clients: int) -> float:
    """RSS growth per client in KB."""
    return grown_mb * 1024 / clients if clients > 0 else 0.0


# -- phase 2: the bare clients --------------------------------------------------------------------


class BareFleet:
    """The baseline: N bare clients, the verifier counting their uplinks, one fresh mosquitto.

    Args:
        settings: the pattern to publish.
        clients: how many bare clients.
    """

    def __init__(self, settings: Settings, clients: int) -> None:
        self.settings = settings
        self.clients = clients
        self.loop = asyncio.get_running_loop()
        self.rng = random.Random(f"bench-fleet:{settings.seed}")
        self.project, _secret = default_project(settings.seed)
        self.latency = WindowedHistogram()
        self.tracker = DeliveryTracker(self.latency)
        self.hub = MqttHub(self.loop)
        self.port = 0
        self.interval_s = settings.interval
        self.payload = settings.payload
        self.links: list[BareClient] = []
        self.sending = True
        self.connected = 0
        self.failures = 0
        self.disconnects = 0
        self._batch_left = 0
        self._batch_done: asyncio.Future[None] | None = None

    def connected_one(self, unit: int) -> None:
        """A client's CONNACK came."""
        del unit
        self.connected += 1
        self._settled()

    def connect_failed(self, _reason: str) -> None:
        """A client's attempt failed (it does not try again: the run reports it)."""
        self.failures += 1
        self._settled()

    def disconnected(self, _reason: str) -> None:
        """A client lost its connection (it does not reconnect: the run reports it)."""
        self.disconnects += 1

    def _settled(self) -> None:
        self._batch_left -= 1
        if self._batch_left <= 0 and self._batch_done is not None and not self._batch_done.done():
            self._batch_done.set_result(None)

    @asynccontextmanager
    async def _serving(self) -> AsyncIterator[tuple[psutil.Process, Verifier]]:
        """A fresh mosquitto and the verifier connected to it; everything closed on the way out."""
        with Mosquitto(max_queued_messages=0) as mosquitto:
            self.port = mosquitto.port
            broker = psutil.Process(mosquitto_pid())
            verifier = Verifier(self.hub, mosquitto.url, self.tracker, range(self.clients))
            freezer = self.loop.create_task(freezing())
            try:
                await verifier.connect()
                yield broker, verifier
            finally:
                freezer.cancel()
                self.sending = False
                verifier.close()
                self.hub.close()

    async def memory(self) -> FreshRss:
        """Only connect (in a fresh process): the RSS before the clients and with all connected."""
        async with self._serving():
            rss_before = rss_mb()
            await self._connect_all()
            rss_connected = rss_mb()
        progress(
            f"{self.clients} bare (fresh process): RSS {rss_before:.1f} -> {rss_connected:.1f}"
        )
        return FreshRss(
            clients=self.clients,
            connected=self.connected,
            rss_before_mb=rss_before,
            rss_connected_mb=rss_connected,
            kb_per_client=per_client_kb(rss_connected - rss_before, self.clients),
        )

    async def run(self, window_s: float) -> Phase:
        """Connect, measure a window of ``window_s``, stop, drain; the figures."""
        cpu_before, wall_before = cpu_seconds(), time.monotonic()
        async with self._serving() as (broker, verifier):
            rss_before = rss_mb()
            connect_s = await self._connect_all()
            rss_connected = rss_mb()
            broker_rss = rss_mb(broker)
            progress(
                f"{self.clients} bare: {self.connected} connected in {connect_s:.2f} s, "
                f"RSS {rss_before:.1f} -> {rss_connected:.1f} MB; window of {window_s:.0f} s "
                f"in {BARE_SETTLE_S:g} s"
            )
            await asyncio.sleep(BARE_SETTLE_S)
            window = await steady_window(
                f"{self.clients} bare", self.tracker, self.latency, broker, window_s
            )
            await self._drain(verifier)
        totals = self.tracker.totals()
        return Phase(
            kind=BARE,
            clients=self.clients,
            connected=self.connected,
            connect_failures=self.failures,
            connect_s=connect_s if self.connected == self.clients else None,
            rss_before_mb=rss_before,
            rss_connected_mb=rss_connected,
            rss_kb_per_client=per_client_kb(rss_connected - rss_before, self.clients),
            broker_rss_mb=broker_rss,
            window=window,
            total_cpu_s=cpu_seconds() - cpu_before,
            total_s=time.monotonic() - wall_before,
            published=totals.published,
            delivered=totals.delivered,
            lost=totals.lost,
            duplicated=totals.duplicated,
            reordered=totals.reordered,
            late=totals.late,
            lost_units=lost_units(self.tracker),
            latency_ms=self.latency.summary().to_json(),
            reconnects=0,
            errors={
                name: count
                for name, count in (
                    ("disconnects", self.disconnects),
                    ("verifier_redials", verifier.redials),
                )
                if count
            },
        )

    async def _connect_all(self) -> float:
        """Dial every client, ``CONNECT_BATCH`` at a time; seconds until the last settled."""
        started = time.monotonic()
        for first in range(0, self.clients, CONNECT_BATCH):
            last = min(first + CONNECT_BATCH, self.clients)
            batch = [self._client(unit) for unit in range(first, last)]
            self.links += batch
            self._batch_left = len(batch)
            self._batch_done = self.loop.create_future()
            for client in batch:
                client.link.connect()
            try:
                async with asyncio.timeout(BATCH_TIMEOUT_S):
                    await self._batch_done
            except TimeoutError:
                raise RuntimeError(
                    f"bare clients {first}..{first + len(batch) - 1}: {self._batch_left} "
                    f"without CONNACK or failure after {BATCH_TIMEOUT_S:g} s"
                ) from None
        return time.monotonic() - started

    def _client(self, unit: int) -> BareClient:
        topic, quec = unit_topic(self.settings.profile, self.settings.seed, self.project, unit)
        return BareClient(self, unit, topic, quec=quec)

    async def _drain(self, verifier: Verifier) -> None:
        """Stop sending; wait up to ``grace`` for what is in flight; count the rest lost."""
        self.sending = False
        for _ in range(math.ceil(self.settings.grace / POLL_S)):
            if not self.tracker.totals().pending:
                break
            await asyncio.sleep(POLL_S)
        verifier.finish()
        self.tracker.finish()


# -- one count, in its own process ----------------------------------------------------------------


async def measure_count(settings: Settings, units: int) -> CountResult:
    """Both phases of one count: the units first, then the bare clients (see the module comment).

    A failure ends the count with what was measured and the reason.
    """
    vdtu: Phase | None = None
    bare: Phase | None = None
    try:
        progress(f"{units} units: mosquitto and the fleet's cloud side")
        vdtu = await UnitsPhase(settings, units).run()
        release_memory()
        progress(f"{units} units: done; {units} bare paho clients on a fresh mosquitto")
        bare = await BareFleet(settings, units).run(vdtu.window.seconds)
    except (RuntimeError, TimeoutError, OSError, VdtuError) as exc:
        progress(f"{units} units: failed: {type(exc).__name__}: {exc}")
        return CountResult(
            units=units, vdtu=vdtu, bare=bare, failure=f"{type(exc).__name__}: {exc}"
        )
    return CountResult(units=units, vdtu=vdtu, bare=bare)


async def measure_fresh_rss(settings: Settings, units: int) -> FreshRss:
    """The bare clients' RSS in this (fresh) process: connect them all, nothing else."""
    return await BareFleet(settings, units).memory()


def run_child(settings: Settings, units: int, mode: str) -> int:
    """The ``--child`` side: one count (``count``) or the bare clients' RSS (``bare-rss``) in
    this process, its JSON on standard output (``null`` and status 1 when it failed)."""
    result: dict[str, Any] | None = None
    try:
        raise_fd_limit(units + FD_MARGIN)
        if mode == CHILD_COUNT:
            result = asyncio.run(measure_count(settings, units)).to_json()
        else:
            result = asdict(asyncio.run(measure_fresh_rss(settings, units)))
    except ConfigError as exc:
        if mode == CHILD_COUNT:
            result = CountResult(units=units, vdtu=None, bare=None, failure=str(exc)).to_json()
        progress(f"{units} units: {exc}")
    except (RuntimeError, TimeoutError, OSError, VdtuError) as exc:
        progress(f"{units} bare clients (fresh process): failed: {type(exc).__name__}: {exc}")
    print(json.dumps(result))
    return 0 if result is not None else 1


def child_result(settings: Settings, units: int, mode: str) -> dict[str, Any] | None:
    """Run ``--child mode`` for ``units`` and read its JSON (None: it gave none)."""
    args = [mode, "--units", str(units)]
    for name, value in asdict(settings).items():
        args += [f"--{name}", str(value)]
    result = child_json("bench.fleet", args)
    return result if isinstance(result, dict) else None


def run_count(settings: Settings, units: int) -> CountResult:
    """One count in a child process, then (if the units ran) the bare clients' RSS in another."""
    found = child_result(settings, units, CHILD_COUNT)
    if found is None:
        return CountResult(
            units=units, vdtu=None, bare=None, failure="the count's child process gave no result"
        )
    result = CountResult.from_json(found)
    if result.vdtu is None:
        return result
    fresh = child_result(settings, units, CHILD_BARE_RSS)
    if fresh is None:
        why = "the bare clients' RSS child process gave no result"
        return replace(result, failure=f"{result.failure}; {why}" if result.failure else why)
    return replace(result, bare_fresh=FreshRss(**fresh))


# -- the report -----------------------------------------------------------------------------------


def phase_table(results: Sequence[CountResult]) -> tuple[list[str], list[list[str]]]:
    """One row per count and phase: connect, RSS, the window's CPU and latency, the losses."""
    head = ["units", "kind", "connected", "connect s", "RSS before MB", "RSS MB", "KB/client"]
    head += ["window s", "delivered", "CPU %", "CPU µs/msg", "mosquitto µs/msg"]
    head += ["p50 ms", "p99 ms", "max ms", "lost"]
    rows = []
    for r in results:
        for phase in (r.vdtu, r.bare):
            if phase is None:
                continue
            w = phase.window
            rows.append(
                [
                    str(r.units),
                    phase.kind,
                    f"{phase.connected}/{phase.clients}",
                    opt(phase.connect_s, ".2f"),
                    f"{phase.rss_before_mb:.1f}",
                    f"{phase.rss_connected_mb:.1f}",
                    f"{phase.rss_kb_per_client:.1f}",
                    f"{w.seconds:.1f}",
                    str(w.delivered),
                    f"{w.cpu_percent:.1f}",
                    opt(w.cpu_us_per_msg, ".0f"),
                    opt(w.broker_cpu_us_per_msg, ".0f"),
                    opt(w.latency_ms["p50"], ".2f"),
                    opt(w.latency_ms["p99"], ".2f"),
                    opt(w.latency_ms["max"], ".1f"),
                    str(phase.lost),
                ]
            )
    return head, rows


def whole_table(results: Sequence[CountResult]) -> tuple[list[str], list[list[str]]]:
    """One row per count and phase: the whole phase, and the signs of trouble."""
    head = ["units", "kind", "total s", "total CPU s", "published", "delivered", "lost"]
    head += ["dup", "reord", "p50 ms", "p99 ms", "max ms", "reconnects", "failures"]
    head += ["clock late ms", "gc full", "gc longest ms", "load 1m", "errors"]
    rows = []
    for r in results:
        for phase in (r.vdtu, r.bare):
            if phase is None:
                continue
            errors = ", ".join(f"{k} {v}" for k, v in phase.errors.items()) or "-"
            rows.append(
                [
                    str(r.units),
                    phase.kind,
                    f"{phase.total_s:.0f}",
                    f"{phase.total_cpu_s:.1f}",
                    str(phase.published),
                    str(phase.delivered),
                    str(phase.lost),
                    str(phase.duplicated),
                    str(phase.reordered),
                    opt(phase.latency_ms["p50"], ".2f"),
                    opt(phase.latency_ms["p99"], ".2f"),
                    opt(phase.latency_ms["max"], ".1f"),
                    str(phase.reconnects),
                    str(phase.connect_failures),
                    opt(phase.clock_lateness_ms, ".1f"),
                    str(phase.window.gc.full),
                    f"{phase.window.gc.longest_ms:.1f}",
                    f"{phase.window.load_1m:.2f}",
                    errors,
                ]
            )
    return head, rows


def ratio_table(results: Sequence[CountResult]) -> tuple[list[str], list[list[str]]]:
    """One row per count: units against bare clients, CPU per message and RSS per client."""
    head = ["units", "units µs/msg", "bare µs/msg", "CPU/msg ratio", "KB/unit"]
    head += ["KB/bare (own process)", "RSS/client ratio", "failure"]
    rows = []
    for r in results:
        fresh = r.bare_fresh
        rows.append(
            [
                str(r.units),
                opt(r.vdtu.window.cpu_us_per_msg if r.vdtu else None, ".0f"),
                opt(r.bare.window.cpu_us_per_msg if r.bare else None, ".0f"),
                opt(r.cpu_ratio, ".2f"),
                opt(r.vdtu.rss_kb_per_client if r.vdtu else None, ".1f"),
                opt(fresh.kb_per_client if fresh else None, ".1f"),
                opt(r.rss_ratio, ".2f"),
                r.failure or "-",
            ]
        )
    return head, rows


def print_report(results: Sequence[CountResult], settings: Settings) -> None:
    """The human-readable report (Markdown tables)."""
    print(
        f"{machine_line()}; profile {settings.profile}, ramp {settings.ramp:g}/s, duration "
        f"{settings.duration:g} s, interval {settings.interval:g} s, payload {settings.payload}\n"
    )
    print(
        "Steady window (every client connected; CPU of this process in % of one core and per "
        "delivered\nuplink; latency of the uplinks delivered in the window); RSS before the "
        "first client and\nonce all connected; lost over the whole phase:\n"
    )
    print(markdown_table(*phase_table(results)))
    print("\nWhole phase (ramp or connect, window, grace), and trouble (window's gc and clock):\n")
    print(markdown_table(*whole_table(results)))
    print(
        "\nvdtu units against bare paho clients: CPU per delivered uplink in the window, RSS "
        "per unit,\nand RSS per bare client in a process of their own (the KB/client above "
        "reuses the units'\nfreed memory):\n"
    )
    print(markdown_table(*ratio_table(results)))
    for r in results:
        for phase in (r.vdtu, r.bare):
            if phase is not None and phase.lost:
                print(
                    f"\n{r.units} {phase.kind}: {phase.lost} uplinks lost ({phase.late} arrived "
                    f"after the grace period); by unit: {phase.lost_units}"
                )


# -- the command ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.fleet",
        description="Headless vdtu units per process against bare paho clients, on mosquitto.",
    )
    parser.add_argument(
        "--units",
        default="1000,5000,10000",
        help="unit counts, comma-separated, each in a process of its own (default 1000,5000,10000)",
    )
    parser.add_argument("--profile", default="xgc", choices=PROFILES, help="default xgc")
    parser.add_argument("--ramp", type=float, default=100.0, help="units per second (100)")
    parser.add_argument(
        "--duration", type=float, default=60.0, help="seconds after the ramp (default 60)"
    )
    parser.add_argument(
        "--interval", type=float, default=10.0, help="seconds between uplinks (default 10)"
    )
    parser.add_argument("--payload", type=int, default=64, help="uplink characters (64)")
    parser.add_argument(
        "--grace", type=float, default=10.0, help="seconds to wait for uplinks in flight (10)"
    )
    parser.add_argument("--seed", type=int, default=0, help="fleet seed (0)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--child", choices=(CHILD_COUNT, CHILD_BARE_RSS), help=argparse.SUPPRESS)
    return parser


def settings_from(args: argparse.Namespace, counts: Sequence[int]) -> Settings:
    """The settings, each checked as ``vdtu fleet`` checks it (ConfigError names a bad one)."""
    settings = Settings(
        profile=args.profile,
        ramp=args.ramp,
        duration=args.duration,
        interval=args.interval,
        payload=args.payload,
        grace=args.grace,
        seed=args.seed,
    )
    for units in counts:
        settings.options_for(units, broker=None)
    if settings.duration < MIN_DURATION_S:
        raise ConfigError(
            f"--duration must be >= {MIN_DURATION_S:g} s (units register for up to 12 s after "
            f"the ramp, and the steady window needs the rest), not {settings.duration:g}"
        )
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        counts = parse_counts(args.units, option="--units", top=MAX_UNITS)
        settings = settings_from(args, counts)
        find_mosquitto()
    except (ValueError, ConfigError) as exc:
        parser.error(str(exc))
    if args.child is not None:
        if len(counts) != 1:
            parser.error(f"--child runs one count, not {args.units!r}")
        return run_child(settings, counts[0], args.child)
    results = [run_count(settings, units) for units in sorted(counts)]
    if args.json:
        report = {
            "machine": machine(),
            "settings": asdict(settings),
            "results": [r.to_json() for r in results],
        }
        print(json.dumps(report, indent=2))
    else:
        print_report(results, settings)
    return 0 if all(r.failure is None for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
