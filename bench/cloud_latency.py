"""Cloud <-> PTY latency of vdtu units, against a bare MQTT publish/subscribe loop in the same run.

Run ``python -m bench.cloud_latency [--units 1,100,1000] [--brokers amqtt,mosquitto]
[--samples N] [--connect-timeout S] [--watch-connects] [--logs DIR] [--json]``.

For each unit count N and each broker, one fresh device side runs in its own
process: ``vdtu up --units N --json --no-pacing --no-state --ports uart --pty-dir
<tmp>``, with ``--broker mqtt://127.0.0.1:PORT`` and a private mosquitto child of
this process (``vdtu.cloud.mosquitto.Mosquitto``, anonymous), or without
``--broker`` so vdtu embeds amqtt (the console login then comes from
``<pty-dir>/up.json``, as ``vdtu cloud`` reads it).

The measuring client is this process: one asyncio loop, the units' PTYs as raw
non-blocking fds (``add_reader``; no pyserial), and MQTT through
``vdtu.net.mqtt`` links on one ``MqttHub`` (paho without threads): the cloud
console's own link (``vdtu.console.Console``) and two more links for the baseline.

What is measured, and why this way:

* **Connect.** From spawning ``vdtu up`` to the last JSON line (``listed``) and
  to the last ``mqtt-connected`` notification read on a PTY. A unit registers
  with the simulated network 4-12 s after power-on and only then starts its cloud
  session, so the fleet figure is bounded below by that; the per-unit connect
  time (its ``init-ok`` notification to its ``mqtt-connected`` notification:
  credentials over HTTP, TCP, CONNECT, CONNACK) is the figure of the cloud side
  itself. A unit counts as connected when its last notification is
  ``mqtt-connected`` and its last state on ``xgc/<project>/+/state`` (retained)
  is ``{"state": "online"}``. That topic is subscribed to only when every unit
  has notified, because amqtt 0.12 sends a connecting client every retained
  message that matches *any* client's subscription
  (``Broker._handle_client_session`` loops over all subscriptions): with a
  console watching the states during the connect storm, each unit would get
  every earlier unit's state. ``--watch-connects`` subscribes
  first anyway, as a running ``vdtu cloud watch`` would, and then also times the
  last live online state. Then the RSS of vdtu (and mosquitto) and their CPU
  over ``IDLE_WINDOW_S`` with nobody talking.
* **cloud -> PTY.** The console link publishes ``{"seq":k}`` with QoS 1 to
  ``xgc/<project>/<imei>/down``, which is exactly what ``vdtu cloud send IMEI
  '{"seq":k}'`` does (one QoS 1 publish on the console's link), without starting
  a process per sample. Timed from before the publish call to the read that
  completes ``$XGC#DATA_PACK#<imei>#0#seq:k&#CC#`` on that unit's PTY.
* **PTY -> cloud.** ``$XGC#DATA_PACK#0#0#seq:k&#CC#\\r\\n`` (hex check code) is
  written to the PTY; timed until ``{"seq":k}`` arrives on the console link's
  QoS 1 subscription to ``xgc/<project>/+/up``.
* **Baseline.** Two bare links in this process on the same broker (with the N
  units connected): one publishes ``{"seq":k}`` with QoS 1 to ``bench/baseline``,
  the other is subscribed with QoS 1; timed from publish to receipt.

One message is in flight at a time; a sample also waits, untimed, for the rest of
its exchange (the PUBACK of a publish, the unit's ``$XGC_ACK#DATA_PACK#...#ok``
for an uplink) so nothing of it is left over for the next one. Units are taken
round-robin. The three kinds take turns in blocks of ``BLOCK`` samples, in a
rotating order, so a slow spell of the machine falls on all of them alike, after
``WARMUP`` untimed samples of each. The time stamp of an arrival is taken right
after the read that delivered it, before any parsing; the client's garbage
collector is off while timing. Around every block the CPU time of vdtu, of
mosquitto and of this client is read, so each kind gets its CPU per message (with
amqtt the broker is inside vdtu's process, so vdtu's CPU per baseline message is
amqtt's own cost). A sample that does not complete in ``SAMPLE_TIMEOUT_S`` is
counted as lost, as are units that never connect: both are reported, never
hidden. Ratios are vdtu over the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import psutil

from bench.common import (
    READ_SIZE,
    REPO_ROOT,
    STOP_TIMEOUT_S,
    Latency,
    cpu_seconds,
    gc_paused,
    machine,
    machine_line,
    markdown_table,
    mosquitto_pid,
    open_host_port,
    opt,
    parse_counts,
    parse_list,
    progress,
    rss_mb,
    stderr_kind,
    us_as_ms,
    vdtu_up_argv,
    write_all,
)
from vdtu.cloud.broker_url import BrokerUrl
from vdtu.cloud.mosquitto import Mosquitto
from vdtu.cloud.xgc_api import TOPIC_ROOT, Channel, device_topic, parse_topic
from vdtu.console import CONNECT_TIMEOUT_S, Console, find_target
from vdtu.errors import VdtuError
from vdtu.firmware.xgc.codec import CodeFormat, Frame, FrameKind, FrameReceived, parse_frame
from vdtu.net.mqtt import MqttLink, connect_and_wait

BROKERS = ("amqtt", "mosquitto")
MAX_UNITS = 3000
"""One PTY per unit (``--ports uart``); the machine has 4095."""
WARMUP = 100
"""Untimed samples of each kind before the timed ones."""
BLOCK = 100
"""Samples of one kind before the next kind's turn."""
SAMPLE_TIMEOUT_S = 5.0
"""A sample not complete after this long is counted as lost."""
MAX_LOST = 10
"""A run that loses more samples than this (in the warm-up, or timed) stops measuring: a healthy run
loses none, and each loss costs ``SAMPLE_TIMEOUT_S``."""
SUBSCRIBE_TIMEOUT_S = 30.0
"""How long the client waits for a SUBACK."""
LIST_TIMEOUT_S = 120.0
QUIET_S = 1.0
"""Wait after the last unit connected, so its start-up traffic is over."""
IDLE_WINDOW_S = 2.0
POLL_S = 0.05
BASELINE_TOPIC = "bench/baseline"
DOWNLINK_PREFIX = b"$XGC#DATA_PACK#"
UPLINK_ACK_PREFIX = b"$XGC_ACK#DATA_PACK#"
STATE_PREFIX = b"$XGC_ACK#GET_DTU_STATE#"


class Kind(StrEnum):
    """What a sample measures."""

    DOWN = "cloud->pty"
    UP = "pty->cloud"
    BASELINE = "baseline"


def payload(seq: int) -> bytes:
    """The JSON of sample ``seq``, as the console and the units send it (compact)."""
    return b'{"seq":%d}' % seq


def uplink_frame(seq: int) -> bytes:
    """The host's DATA_PACK for sample ``seq``, hex check code, CRLF."""
    frame = Frame(
        kind=FrameKind.COMMAND, action="DATA_PACK", sn="0", timestamp="0", content=f"seq:{seq}"
    )
    return frame.encode(CodeFormat.HEX)


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """How every run is done."""

    samples: int
    """Timed samples of each kind per run."""
    connect_timeout_s: float
    """How long to wait for every unit to connect."""
    watch_connects: bool
    """Subscribe to the units' state topics before they connect (see the module comment)."""
    logs: Path | None = None
    """Where to keep each run's vdtu standard error (None: nowhere)."""
    warmup: int = WARMUP
    block: int = BLOCK


# -- results --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Connect:
    """How the fleet came up on the broker, and what it weighs then."""

    units: int
    connected: int
    """Units whose last notification on the PTY was mqtt-connected and whose last state on
    the broker was online, at the end of the connect phase."""
    connected_on_pty: int
    """Units whose last notification was mqtt-connected (whether or not seen online)."""
    ever_connected: int
    """Units that notified mqtt-connected at least once."""
    listed_s: float
    """Spawn to the last JSON line read."""
    all_connected_s: float | None
    """Spawn to the last mqtt-connected notification read (None: not every unit did)."""
    all_online_s: float | None
    """Spawn to the last live online state seen on the broker (None: not every unit was, or
    the state topics were subscribed to only afterwards)."""
    per_unit: Latency | None
    """Each connected unit's init-ok to mqtt-connected notification (µs, as Latency keeps)."""
    vdtu_rss_mb: float
    broker_rss_mb: float | None
    vdtu_idle_cpu_percent: float
    broker_idle_cpu_percent: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class KindResult:
    """The samples of one kind in one run."""

    kind: str
    latency: Latency | None
    """None when every sample was lost."""
    lost: int
    vdtu_cpu_us: float
    """vdtu's CPU time per message over this kind's blocks."""
    broker_cpu_us: float | None
    """mosquitto's (None with amqtt, which is inside vdtu)."""
    client_cpu_us: float
    """This process's."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Trouble:
    """Signs of a defect, counted while measuring (all zero in a clean run)."""

    went_offline: int
    """``{"state": "offline"}`` messages (a unit's will)."""
    disconnects: int
    """mqtt-disconnected (or get-mqtt-info-fail) notifications on the PTYs."""
    late: int
    """Arrivals for a sample that had already been given up."""
    refused_uplinks: int
    """DATA_PACK acknowledged with something else than ok."""
    other_lines: int
    """PTY lines that were neither DATA_PACK, its ack, nor a state notification."""
    vdtu_stderr_lines: int
    vdtu_stderr_kinds: dict[str, int]
    """The most frequent kinds of stderr line (unit, time, numbers and quotes left out)."""
    vdtu_stderr_tail: list[str]
    vdtu_exit_status: int | None
    """After SIGINT; 0 is a clean stop, None means it had to be killed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    """One unit count on one broker."""

    units: int
    broker: str
    connect: Connect | None
    """None when the run failed before every unit had its chance to connect."""
    kinds: list[KindResult]
    """Each kind that got samples (all three unless the run failed)."""
    trouble: Trouble
    ratios: dict[str, float]
    """``<kind>_p50`` / ``<kind>_p99``: vdtu over the baseline."""
    failure: str | None
    """Why the run stopped early (None: it did not)."""

    def kind(self, kind: Kind) -> KindResult | None:
        """The result of one kind, if it has one."""
        return next((k for k in self.kinds if k.kind == kind.value), None)


# -- the client's side of one unit ----------------------------------------------------------------


@dataclass(slots=True, eq=False)
class Pending:
    """The sample in flight: which arrival is timed and how many parts are still awaited."""

    kind: Kind
    seq: int
    unit: UnitPort | None
    done: asyncio.Future[None]
    parts: int = 2
    start_ns: int = 0
    arrived_ns: int = 0
    mid: int | None = None

    def timed(self, now_ns: int) -> None:
        """The timed arrival came at ``now_ns``."""
        if not self.arrived_ns:
            self.arrived_ns = now_ns
            self.part()

    def part(self) -> None:
        """One awaited part came."""
        self.parts -= 1
        if self.parts == 0 and not self.done.done():
            self.done.set_result(None)


@dataclass(slots=True, eq=False)
class UnitPort:
    """The host's end of one unit's uart, and what it has notified."""

    index: int
    imei: str
    fd: int
    down_topic: str
    states: dict[str, int] = field(default_factory=dict)
    """perf_counter_ns of the first notification of each DTU state."""
    state: str = "none"
    """The last DTU state notified."""
    buffer: bytearray = field(default_factory=bytearray)


class Tally:
    """Latencies, losses and CPU time of each kind, as the blocks add them."""

    def __init__(self) -> None:
        self.durations: dict[Kind, list[int]] = {kind: [] for kind in Kind}
        self.lost = dict.fromkeys(Kind, 0)
        self.cpu = {kind: [0.0, 0.0, 0.0] for kind in Kind}
        """(vdtu, broker, client) CPU seconds over the kind's blocks."""

    def add(self, kind: Kind, duration_ns: int | None) -> None:
        """One sample: its latency, or None when it was lost."""
        if duration_ns is None:
            self.lost[kind] += 1
        else:
            self.durations[kind].append(duration_ns)

    def add_cpu(
        self, kind: Kind, before: tuple[float, float, float], after: tuple[float, float, float]
    ) -> None:
        """The CPU meter's readings around one block of ``kind``."""
        for slot, (start, end) in enumerate(zip(before, after, strict=True)):
            self.cpu[kind][slot] += end - start

    def lost_total(self) -> int:
        """Samples lost so far, over every kind."""
        return sum(self.lost.values())

    def results(self, *, broker: bool) -> list[KindResult]:
        """One result per kind that got samples; ``broker``: a broker process was metered."""
        results = []
        for kind in Kind:
            durations = self.durations[kind]
            sent = len(durations) + self.lost[kind]
            if not sent:
                continue
            vdtu_s, broker_s, client_s = self.cpu[kind]
            results.append(
                KindResult(
                    kind=kind.value,
                    latency=Latency.of(durations) if durations else None,
                    lost=self.lost[kind],
                    vdtu_cpu_us=vdtu_s / sent * 1e6,
                    broker_cpu_us=broker_s / sent * 1e6 if broker else None,
                    client_cpu_us=client_s / sent * 1e6,
                )
            )
        return results


# -- one run --------------------------------------------------------------------------------------


class CpuMeter:
    """CPU seconds of vdtu, of the broker child (if any) and of this process."""

    def __init__(self, vdtu_pid: int, broker_pid: int | None) -> None:
        self.vdtu = psutil.Process(vdtu_pid)
        self.broker = psutil.Process(broker_pid) if broker_pid is not None else None
        self.client = psutil.Process()

    def read(self) -> tuple[float, float, float]:
        """(vdtu, broker, client) CPU seconds so far; broker 0 when there is none."""
        broker = cpu_seconds(self.broker) if self.broker is not None else 0.0
        return cpu_seconds(self.vdtu), broker, cpu_seconds(self.client)


class CloudBench:
    """One ``vdtu up`` on one broker, the client's ports and links, and the measurement.

    Args:
        units: how many units ``vdtu up`` starts.
        broker: ``amqtt`` (embedded in vdtu) or ``mosquitto``.
        workdir: a temporary directory of this run.
        settings: how the run is done.
    """

    def __init__(self, *, units: int, broker: str, workdir: Path, settings: Settings) -> None:
        self.units_asked = units
        self.broker_name = broker
        self.workdir = workdir
        self.pty_dir = workdir / "pty"
        self.stderr_path = workdir / "vdtu.stderr"
        self.settings = settings
        self.loop = asyncio.get_running_loop()
        self.mosquitto: Mosquitto | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.console: Console | None = None
        self.baseline_pub: MqttLink | None = None
        self.baseline_sub: MqttLink | None = None
        self.ports: list[UnitPort] = []
        self.by_imei: dict[str, UnitPort] = {}
        self.active: list[UnitPort] = []
        """The units that connected: samples go round-robin over these."""
        self.online: dict[str, int] = {}
        """IMEI -> perf_counter_ns of its first online state."""
        self.cloud_state: dict[str, str] = {}
        """IMEI -> the last state it published (online, or offline: its will)."""
        self.project = ""
        self.pending: Pending | None = None
        self.seq = itertools.count(1)
        self.measuring = False
        self.went_offline = 0
        self.disconnects = 0
        self.late = 0
        self.refused_uplinks = 0
        self.other_lines = 0
        self.failure: str | None = None
        """Why measuring stopped early."""
        self.faults: list[str] = []
        """What went wrong inside a loop callback (raised by the next wait, not lost in a log)."""
        self.spawned_ns = 0

    # -- start-up -----------------------------------------------------------------------------

    async def start(self) -> int:
        """Broker, vdtu, ports and links; returns perf_counter_ns of the last JSON line."""
        broker_url: str | None = None
        if self.broker_name == "mosquitto":
            self.mosquitto = Mosquitto()
            self.mosquitto.start()
            broker_url = f"mqtt://127.0.0.1:{self.mosquitto.port}"
        argv = vdtu_up_argv(self.units_asked, self.pty_dir)
        if broker_url is not None:
            argv += ["--broker", broker_url]
        self.spawned_ns = time.perf_counter_ns()
        with self.stderr_path.open("wb") as stderr:
            # A few ms of blocking before anything is timed; asyncio's own subprocess
            # support would add a child-watcher thread.
            self.process = subprocess.Popen(  # noqa: ASYNC220
                argv, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, cwd=REPO_ROOT
            )
        listed_ns = await self._read_listing()
        target = find_target(
            broker=broker_url, ca_file=None, project=self.project, pty_dir=self.pty_dir
        )
        self.console = Console(target)
        await self.console.connect()
        link = self.console.link
        link.on_message = self._cloud_message
        link.on_published = self._published
        up_filter = f"{TOPIC_ROOT}/{self.project}/+/{Channel.UP.value}"
        filters = [up_filter, self.state_filter] if self.settings.watch_connects else [up_filter]
        await self._subscribe(link, filters)
        self.baseline_pub = self._link(target.broker, "pub")
        self.baseline_sub = self._link(target.broker, "sub")
        self.baseline_pub.on_published = self._published
        self.baseline_sub.on_message = self._baseline_message
        await asyncio.gather(self._connect(self.baseline_pub), self._connect(self.baseline_sub))
        await self._subscribe(self.baseline_sub, [BASELINE_TOPIC])
        return listed_ns

    @property
    def state_filter(self) -> str:
        """Every unit's state topic."""
        return f"{TOPIC_ROOT}/{self.project}/+/{Channel.STATE.value}"

    def _link(self, url: BrokerUrl, role: str) -> MqttLink:
        assert self.console is not None
        return MqttLink(
            self.console.hub,
            client_id=f"bench-baseline-{role}-{os.getpid()}",
            host=url.host,
            port=url.port,
            username=url.username,
            password=url.password,
            keepalive=30,
        )

    @staticmethod
    async def _connect(link: MqttLink) -> None:
        reason = await connect_and_wait(link, CONNECT_TIMEOUT_S + 1)
        if reason is not None:
            raise RuntimeError(f"baseline link {link.client_id} cannot connect: {reason}")

    async def _subscribe(self, link: MqttLink, filters: Sequence[str]) -> None:
        granted: dict[str, int | None] = {}
        complete: asyncio.Future[None] = self.loop.create_future()

        def subscribed(topic: str, qos: int | None) -> None:
            granted[topic] = qos
            if len(granted) == len(filters) and not complete.done():
                complete.set_result(None)

        link.on_subscribed = subscribed
        for topic in filters:
            link.subscribe(topic, qos=1)
        try:
            await asyncio.wait_for(complete, SUBSCRIBE_TIMEOUT_S)
        except TimeoutError:
            raise TimeoutError(
                f"{link.client_id}: no SUBACK for {list(filters)} in {SUBSCRIBE_TIMEOUT_S:g} s"
            ) from None
        refused = [topic for topic, qos in granted.items() if qos is None]
        if refused:
            raise RuntimeError(f"{link.client_id}: the broker refused {refused}")

    async def _read_listing(self) -> int:
        """Read the JSON lines, opening each unit's port; perf_counter_ns of the last one."""
        process = self._running()
        assert process.stdout is not None
        stdout = process.stdout.fileno()
        os.set_blocking(stdout, False)
        pending = bytearray()
        complete: asyncio.Future[int] = self.loop.create_future()

        def readable() -> None:
            data = os.read(stdout, 65536)
            if not data:
                if not complete.done():
                    complete.set_exception(RuntimeError(self._failure("exited before listing")))
                self.loop.remove_reader(stdout)
                return
            pending.extend(data)
            while (end := pending.find(b"\n")) >= 0:
                self._add_unit(json.loads(pending[:end]))
                del pending[: end + 1]
            if len(self.ports) >= self.units_asked and not complete.done():
                complete.set_result(time.perf_counter_ns())
                self.loop.remove_reader(stdout)

        self.loop.add_reader(stdout, readable)
        try:
            return await asyncio.wait_for(complete, LIST_TIMEOUT_S)
        except TimeoutError:
            raise TimeoutError(self._failure(f"not listed in {LIST_TIMEOUT_S} s")) from None
        finally:
            self.loop.remove_reader(stdout)

    def _add_unit(self, described: dict[str, Any]) -> None:
        self.project = described["project"]
        imei = described["imei"]
        port = UnitPort(
            index=described["unit"],
            imei=imei,
            fd=open_host_port(described["ports"]["uart"]),
            down_topic=device_topic(self.project, imei, Channel.DOWN),
        )
        self.ports.append(port)
        self.by_imei[imei] = port
        self.loop.add_reader(port.fd, self._readable, port)

    async def wait_connected(self, listed_ns: int) -> Connect:
        """Until every unit is connected (or the timeout); then RSS and idle CPU.

        A unit is connected once it has notified mqtt-connected on its PTY and its online
        state has been seen on the broker. Without ``watch_connects`` the state topics are
        subscribed to once every unit has notified (their retained states then arrive).
        """
        watch = self.settings.watch_connects
        timeout_s = self.settings.connect_timeout_s
        await self._until(lambda port: self._connected(port, online=watch), timeout_s)
        if not watch:
            assert self.console is not None
            try:
                await self._subscribe(self.console.link, [self.state_filter])
            except TimeoutError as exc:
                progress(f"the units' states cannot be read: {exc}")
            else:
                await self._until(lambda port: self._connected(port, online=True), SAMPLE_TIMEOUT_S)
        self.active = [port for port in self.ports if self._connected(port, online=True)]
        missing = len(self.ports) - len(self.active)
        if missing:
            states: dict[str, int] = {}
            for port in self.ports:
                if not self._connected(port, online=True):
                    last = (
                        f"{port.state}, {self.cloud_state.get(port.imei, 'no state')} on the broker"
                    )
                    states[last] = states.get(last, 0) + 1
            progress(
                f"{missing} units not connected after {timeout_s:g} s; their last states: {states}"
            )
        await asyncio.sleep(QUIET_S)
        process = self._running()
        broker_pid = mosquitto_pid() if self.mosquitto is not None else None
        meter = CpuMeter(process.pid, broker_pid)
        before = meter.read()
        await asyncio.sleep(IDLE_WINDOW_S)
        after = meter.read()
        connected_at = [port.states["mqtt-connected"] for port in self.active]
        per_unit = [
            port.states["mqtt-connected"] - port.states["init-ok"]
            for port in self.active
            if "init-ok" in port.states
        ]
        everyone = not missing
        watched = everyone and watch
        broker_rss = rss_mb(psutil.Process(broker_pid)) if broker_pid is not None else None
        return Connect(
            units=len(self.ports),
            connected=len(self.active),
            connected_on_pty=sum(self._connected(port, online=False) for port in self.ports),
            ever_connected=sum("mqtt-connected" in port.states for port in self.ports),
            listed_s=(listed_ns - self.spawned_ns) / 1e9,
            all_connected_s=(max(connected_at) - self.spawned_ns) / 1e9 if everyone else None,
            all_online_s=(max(self.online.values()) - self.spawned_ns) / 1e9 if watched else None,
            per_unit=Latency.of(per_unit) if per_unit else None,
            vdtu_rss_mb=rss_mb(psutil.Process(process.pid)),
            broker_rss_mb=broker_rss,
            vdtu_idle_cpu_percent=100 * (after[0] - before[0]) / IDLE_WINDOW_S,
            broker_idle_cpu_percent=(
                100 * (after[1] - before[1]) / IDLE_WINDOW_S if broker_pid is not None else None
            ),
        )

    async def _until(self, done: Callable[[UnitPort], bool], timeout_s: float) -> None:
        """Poll until ``done`` holds for every unit, or ``timeout_s`` has passed."""
        deadline = time.monotonic() + timeout_s
        while not all(done(port) for port in self.ports) and time.monotonic() < deadline:
            self._raise_faults()
            if self._running().poll() is not None:
                raise RuntimeError(self._failure("exited while the units connected"))
            await asyncio.sleep(POLL_S)

    def _connected(self, port: UnitPort, *, online: bool) -> bool:
        """Whether the unit notified mqtt-connected (and, if ``online``, was seen online)."""
        connected = port.state == "mqtt-connected"
        return connected and (not online or self.cloud_state.get(port.imei) == "online")

    def _fault(self, text: str) -> None:
        """Record a failure seen in a callback; the sample in flight ends with it."""
        self.faults.append(text)
        pending = self.pending
        if pending is not None and not pending.done.done():
            pending.done.set_exception(RuntimeError(text))

    def _raise_faults(self) -> None:
        if self.faults:
            raise RuntimeError(f"{len(self.faults)} failures, the first: {self.faults[0]}")

    # -- arrivals -----------------------------------------------------------------------------

    def _readable(self, port: UnitPort) -> None:
        try:
            data = os.read(port.fd, READ_SIZE)
        except BlockingIOError:
            return
        now = time.perf_counter_ns()
        buffer = port.buffer
        buffer += data
        while (end := buffer.find(b"\n")) >= 0:
            line = bytes(buffer[: end + 1])
            del buffer[: end + 1]
            self._line(port, line, now)

    def _line(self, port: UnitPort, line: bytes, now: int) -> None:
        if line.startswith(DOWNLINK_PREFIX):
            frame = self._frame(port, line)
            content = (frame.content if frame is not None else None) or ""
            if frame is None or frame.sn != port.imei or not content.startswith("seq:"):
                self._fault(f"unit {port.index}: unexpected DATA_PACK {line!r}")
                return
            self._arrived(Kind.DOWN, int(content[4:]), port, now)
        elif line.startswith(UPLINK_ACK_PREFIX):
            frame = self._frame(port, line)
            pending = self.pending
            if frame is None or frame.content != "ok":
                self.refused_uplinks += 1
                progress(f"unit {port.index}: DATA_PACK answered {line!r}")
            elif pending is not None and pending.kind is Kind.UP and pending.unit is port:
                pending.part()
        elif line.startswith(STATE_PREFIX):
            frame = self._frame(port, line)
            state = (frame.content if frame is not None else None) or ""
            port.states.setdefault(state, now)
            port.state = state
            if state in ("mqtt-disconnected", "get-mqtt-info-fail"):
                self.disconnects += 1
                progress(f"unit {port.index} notified {state}")
        elif self.measuring:
            self.other_lines += 1

    def _frame(self, port: UnitPort, line: bytes) -> Frame | None:
        """The frame of a line, or None (and a fault) when it is malformed or its code wrong."""
        parsed = parse_frame(line.rstrip(b"\n"))
        if not isinstance(parsed, FrameReceived) or not parsed.code_ok:
            self._fault(f"unit {port.index}: a bad frame on the PTY: {line!r} ({parsed})")
            return None
        return parsed.frame

    def _cloud_message(self, topic: str, data: bytes) -> None:
        now = time.perf_counter_ns()
        parsed = parse_topic(topic)
        if parsed is None:
            return
        _project, imei, channel = parsed
        try:
            value = json.loads(data)
            if channel is Channel.UP:
                self._arrived(Kind.UP, int(value["seq"]), self.by_imei.get(imei), now)
                return
            state = value["state"] if channel is Channel.STATE else None
        except (ValueError, KeyError, TypeError) as exc:
            self._fault(f"unexpected message on {topic}: {data!r} ({exc!r})")
            return
        if state == "online":
            self.online.setdefault(imei, now)
            self.cloud_state[imei] = state
        elif state == "offline":
            self.cloud_state[imei] = state
            self.went_offline += 1
            progress(f"{imei} went offline")

    def _baseline_message(self, topic: str, data: bytes) -> None:
        now = time.perf_counter_ns()
        try:
            seq = int(json.loads(data)["seq"])
        except (ValueError, KeyError, TypeError) as exc:
            self._fault(f"unexpected message on {topic}: {data!r} ({exc!r})")
            return
        self._arrived(Kind.BASELINE, seq, None, now)

    def _arrived(self, kind: Kind, seq: int, port: UnitPort | None, now: int) -> None:
        pending = self.pending
        if pending is not None and (pending.kind, pending.seq, pending.unit) == (kind, seq, port):
            pending.timed(now)
        elif self.measuring:
            self.late += 1

    def _published(self, mid: int) -> None:
        pending = self.pending
        if pending is not None and pending.kind is not Kind.UP and pending.mid == mid:
            pending.part()

    # -- samples ------------------------------------------------------------------------------

    async def sample(self, kind: Kind, index: int) -> int | None:
        """One message of ``kind`` (to unit ``index`` round-robin); its latency in ns, or None
        when it was lost."""
        seq = next(self.seq)
        unit = self.active[index % len(self.active)] if kind is not Kind.BASELINE else None
        pending = Pending(kind=kind, seq=seq, unit=unit, done=self.loop.create_future())
        self.pending = pending
        if kind is Kind.UP:
            assert unit is not None
            frame = uplink_frame(seq)
            pending.start_ns = time.perf_counter_ns()
            write_all(unit.fd, frame)
        else:
            if kind is Kind.DOWN:
                assert unit is not None
                assert self.console is not None
                link, topic = self.console.link, unit.down_topic
            else:
                assert self.baseline_pub is not None
                link, topic = self.baseline_pub, BASELINE_TOPIC
            message = payload(seq)
            pending.start_ns = time.perf_counter_ns()
            pending.mid = link.publish(topic, message, qos=1)
            if pending.mid is None:
                self.pending = None
                raise RuntimeError(f"{link.client_id} is not connected ({link.state})")
        try:
            async with asyncio.timeout(SAMPLE_TIMEOUT_S):
                await pending.done
        except TimeoutError:
            progress(
                f"{kind} seq {seq}"
                + (f" (unit {unit.index})" if unit is not None else "")
                + f": not complete after {SAMPLE_TIMEOUT_S:g} s "
                + ("(the message never came)" if not pending.arrived_ns else "(no ack)")
            )
            return None
        finally:
            self.pending = None
        self._raise_faults()
        return pending.arrived_ns - pending.start_ns

    async def measure(self) -> list[KindResult]:
        """Warm-up, then the timed samples of each kind in rotating blocks.

        A failure stops measuring; what was measured until then is returned, and the
        reason kept in ``failure``.
        """
        if not self.active:
            raise RuntimeError("no unit connected: nothing to measure")
        assert self.process is not None
        meter = CpuMeter(self.process.pid, mosquitto_pid() if self.mosquitto is not None else None)
        tally = Tally()
        try:
            await self._run_blocks(tally, meter)
        except (RuntimeError, TimeoutError) as exc:
            self.failure = f"measuring stopped: {exc}"
            progress(self.failure)
        finally:
            self.measuring = False
        return tally.results(broker=self.mosquitto is not None)

    async def _run_blocks(self, tally: Tally, meter: CpuMeter) -> None:
        samples, block_size = self.settings.samples, self.settings.block
        kinds = list(Kind)
        warmup_lost = 0
        for kind in kinds:
            for index in range(self.settings.warmup):
                warmup_lost += await self.sample(kind, index) is None
                if warmup_lost > MAX_LOST:
                    raise RuntimeError(f"more than {MAX_LOST} warm-up samples lost")
        self.measuring = True
        with gc_paused():
            for block, first in enumerate(range(0, samples, block_size)):
                shift = block % len(kinds)
                for kind in kinds[shift:] + kinds[:shift]:
                    before = meter.read()
                    for index in range(first, min(first + block_size, samples)):
                        tally.add(kind, await self.sample(kind, index))
                    tally.add_cpu(kind, before, meter.read())
                if tally.lost_total() > MAX_LOST:
                    raise RuntimeError(f"more than {MAX_LOST} samples lost")

    # -- the end ------------------------------------------------------------------------------

    def trouble(self, exit_status: int | None) -> Trouble:
        """What went wrong while measuring (see ``Trouble``)."""
        lines = self.stderr_path.read_text(errors="replace").splitlines()
        if self.settings.logs is not None:
            self.settings.logs.mkdir(parents=True, exist_ok=True)
            name = f"vdtu-{self.units_asked}-{self.broker_name}.stderr"
            shutil.copyfile(self.stderr_path, self.settings.logs / name)
        kinds: dict[str, int] = {}
        for line in lines:
            kind = stderr_kind(line)
            kinds[kind] = kinds.get(kind, 0) + 1
        frequent = sorted(kinds.items(), key=lambda item: -item[1])[:10]
        return Trouble(
            went_offline=self.went_offline,
            disconnects=self.disconnects,
            late=self.late,
            refused_uplinks=self.refused_uplinks,
            other_lines=self.other_lines,
            vdtu_stderr_lines=len(lines),
            vdtu_stderr_kinds=dict(frequent),
            vdtu_stderr_tail=lines[-5:],
            vdtu_exit_status=exit_status,
        )

    async def stop(self) -> int | None:
        """Close the links and ports, SIGINT vdtu and wait, stop mosquitto.

        Returns vdtu's exit status (None if it ignored SIGINT and was killed).
        """
        status: int | None = None
        try:
            if self.console is not None:
                self.console.close()  # also closes the baseline links on its hub
                self.console = None
            for port in self.ports:
                self.loop.remove_reader(port.fd)
                os.close(port.fd)
            self.ports.clear()
            process, self.process = self.process, None
            if process is not None:
                if process.poll() is None:
                    process.send_signal(signal.SIGINT)
                status = await self._exit_status(process, STOP_TIMEOUT_S)
                if status is None:
                    process.kill()
                    process.wait()
                if process.stdout is not None:
                    process.stdout.close()
        finally:
            if self.mosquitto is not None:
                self.mosquitto.stop()
                self.mosquitto = None
        return status

    async def _exit_status(self, process: subprocess.Popen[bytes], timeout_s: float) -> int | None:
        """Wait on the loop (a pidfd, no thread) for ``process`` to exit; None on timeout."""
        if process.poll() is not None:
            return process.returncode
        pidfd = os.pidfd_open(process.pid)
        exited: asyncio.Future[None] = self.loop.create_future()

        def readable() -> None:
            if not exited.done():
                exited.set_result(None)

        self.loop.add_reader(pidfd, readable)
        try:
            async with asyncio.timeout(timeout_s):
                await exited
        except TimeoutError:
            return None
        finally:
            self.loop.remove_reader(pidfd)
            os.close(pidfd)
        return process.wait()

    def _running(self) -> subprocess.Popen[bytes]:
        if self.process is None:
            raise RuntimeError("vdtu up is not running")
        return self.process

    def _failure(self, what: str) -> str:
        tail = self.stderr_path.read_text(errors="replace").splitlines()[-5:]
        return f"vdtu up: {what}; its stderr ends with {tail}"


async def run_one(units: int, broker: str, settings: Settings) -> RunResult:
    """Start, connect, measure and stop one unit count on one broker.

    A failure (vdtu exits, a link drops, too many samples lost) ends the run with what
    was measured so far and the reason, so the other runs still happen.
    """
    with tempfile.TemporaryDirectory(prefix="vdtu-cloud-bench-") as tmp:
        bench = CloudBench(units=units, broker=broker, workdir=Path(tmp), settings=settings)
        connect: Connect | None = None
        kinds: list[KindResult] = []
        try:
            progress(f"{units} units on {broker}: starting")
            listed_ns = await bench.start()
            progress(f"{units} units on {broker}: listed; waiting until connected")
            connect = await bench.wait_connected(listed_ns)
            progress(
                f"{units} units on {broker}: {connect.connected} connected; measuring "
                f"{settings.samples} samples of each kind"
            )
            kinds = await bench.measure()
        except (RuntimeError, TimeoutError, OSError, VdtuError) as exc:
            bench.failure = f"{type(exc).__name__}: {exc}"
            progress(f"{units} units on {broker}: failed: {bench.failure}")
        finally:
            status = await bench.stop()
        trouble = bench.trouble(status)
    return RunResult(
        units=units,
        broker=broker,
        connect=connect,
        kinds=kinds,
        trouble=trouble,
        ratios=ratios(kinds),
        failure=bench.failure,
    )


def ratios(kinds: Sequence[KindResult]) -> dict[str, float]:
    """vdtu over the baseline, p50 and p99, for each direction that has figures."""
    by_kind = {k.kind: k.latency for k in kinds}
    baseline = by_kind.get(Kind.BASELINE.value)
    found: dict[str, float] = {}
    for kind in (Kind.DOWN, Kind.UP):
        measured = by_kind.get(kind.value)
        if measured is not None and baseline is not None:
            found[f"{kind.value}_p50"] = measured.p50_us / baseline.p50_us
            found[f"{kind.value}_p99"] = measured.p99_us / baseline.p99_us
    return found


# -- the report -----------------------------------------------------------------------------------


def print_report(results: Sequence[RunResult], settings: Settings) -> None:
    """The human-readable report (Markdown tables)."""
    watch = "before" if settings.watch_connects else "after"
    print(
        f"{machine_line()}; {settings.samples} samples of each kind per run; state topics "
        f"subscribed {watch} the units connected\n"
    )
    print(
        "Latency, one message in flight, round-robin over the units (ms); ratio = vdtu/baseline;"
        "\nlost = vdtu samples lost + baseline samples lost:\n"
    )
    print(markdown_table(*latency_table(results)))
    print(
        "\nConnect: spawn of vdtu up to the last JSON line (listed), to the last mqtt-connected "
        "on a PTY,\nto the last live online state on the broker; per unit: its init-ok to its "
        "mqtt-connected (ms);\nRSS and idle CPU (% of one core) once all are connected:\n"
    )
    print(markdown_table(*connect_table(results)))
    print(
        "\nCPU time per message (µs) over each kind's blocks; with amqtt the broker is "
        "inside vdtu:\n"
    )
    head = ["units", "broker", "kind", "vdtu", "mosquitto", "client"]
    rows = [
        [
            str(r.units),
            r.broker,
            k.kind,
            f"{k.vdtu_cpu_us:.0f}",
            "-" if k.broker_cpu_us is None else f"{k.broker_cpu_us:.0f}",
            f"{k.client_cpu_us:.0f}",
        ]
        for r in results
        for k in r.kinds
    ]
    print(markdown_table(head, rows))
    print(
        "\nTrouble (all 0 in a clean run): offline wills and disconnect notifications over the "
        "whole run;\nlate arrivals, refused uplinks and other PTY lines while measuring:\n"
    )
    head = ["units", "broker", "offline", "disconnects", "late", "refused", "other lines"]
    head += ["vdtu stderr lines", "vdtu exit"]
    rows = []
    for r in results:
        t = r.trouble
        counts = (t.went_offline, t.disconnects, t.late, t.refused_uplinks, t.other_lines)
        rows.append(
            [
                str(r.units),
                r.broker,
                *(str(x) for x in (*counts, t.vdtu_stderr_lines)),
                "killed" if t.vdtu_exit_status is None else str(t.vdtu_exit_status),
            ]
        )
    print(markdown_table(head, rows))
    for r in results:
        c = r.connect
        if c is not None and c.connected < c.units:
            print(
                f"\n{r.units} units on {r.broker}: only {c.connected} connected and seen online "
                f"after {settings.connect_timeout_s:g} s; {c.connected_on_pty} had notified "
                f"mqtt-connected last, {c.ever_connected} had notified it at some time"
            )
        if r.failure is not None:
            print(f"\n{r.units} units on {r.broker} FAILED: {r.failure}")
        if r.trouble.vdtu_stderr_lines:
            print(f"\n{r.units} units on {r.broker}: vdtu's stderr, most frequent lines:")
            for kind, count in r.trouble.vdtu_stderr_kinds.items():
                print(f"    {count:8d}  {kind}")


def latency_table(results: Sequence[RunResult]) -> tuple[list[str], list[list[str]]]:
    """Head and rows of the latency table: one row per run and direction."""
    head = ["units", "broker", "direction", "vdtu p50", "vdtu p99", "vdtu max"]
    head += ["baseline p50", "baseline p99", "ratio p50", "ratio p99", "lost"]
    rows = []
    for r in results:
        base = r.kind(Kind.BASELINE)
        blat = base.latency if base is not None else None
        for kind in (Kind.DOWN, Kind.UP):
            k = r.kind(kind)
            lat = k.latency if k is not None else None
            lost = f"{k.lost if k else '-'}+{base.lost if base else '-'}"
            rows.append(
                [
                    str(r.units),
                    r.broker,
                    kind.value,
                    us_as_ms(lat.p50_us if lat else None),
                    us_as_ms(lat.p99_us if lat else None),
                    us_as_ms(lat.max_us if lat else None),
                    us_as_ms(blat.p50_us if blat else None),
                    us_as_ms(blat.p99_us if blat else None),
                    opt(r.ratios.get(f"{kind.value}_p50"), ".2f"),
                    opt(r.ratios.get(f"{kind.value}_p99"), ".2f"),
                    lost,
                ]
            )
    return head, rows


def connect_table(results: Sequence[RunResult]) -> tuple[list[str], list[list[str]]]:
    """Head and rows of the connect table: one row per run that got that far."""
    head = ["units", "broker", "connected", "listed s", "all connected s", "all online s"]
    head += ["unit p50 ms", "unit p99 ms", "unit max ms", "vdtu RSS MB", "broker RSS MB"]
    head += ["vdtu idle %", "broker idle %"]
    rows = []
    for r in results:
        c = r.connect
        if c is None:
            rows.append([str(r.units), r.broker, "failed", *["-"] * (len(head) - 3)])
            continue
        rows.append(
            [
                str(r.units),
                r.broker,
                f"{c.connected}/{c.units}",
                f"{c.listed_s:.2f}",
                opt(c.all_connected_s, ".2f"),
                opt(c.all_online_s, ".2f"),
                us_as_ms(c.per_unit.p50_us if c.per_unit else None),
                us_as_ms(c.per_unit.p99_us if c.per_unit else None),
                us_as_ms(c.per_unit.max_us if c.per_unit else None),
                f"{c.vdtu_rss_mb:.1f}",
                "-" if c.broker_rss_mb is None else f"{c.broker_rss_mb:.1f}",
                f"{c.vdtu_idle_cpu_percent:.1f}",
                "-" if c.broker_idle_cpu_percent is None else f"{c.broker_idle_cpu_percent:.1f}",
            ]
        )
    return head, rows


# -- the command ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.cloud_latency",
        description="cloud -> PTY and PTY -> cloud latency of vdtu units, against bare MQTT.",
    )
    parser.add_argument(
        "--units", default="1,100,1000", help="unit counts, comma-separated (default 1,100,1000)"
    )
    parser.add_argument(
        "--brokers",
        default=",".join(BROKERS),
        help=f"brokers, comma-separated, of {', '.join(BROKERS)} (default both)",
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=2000,
        help="timed samples of each kind per run (default 2000)",
    )
    parser.add_argument(
        "--connect-timeout",
        type=float,
        default=300.0,
        help="seconds to wait for every unit to connect (default 300)",
    )
    parser.add_argument(
        "--watch-connects",
        action="store_true",
        help="subscribe to the units' state topics before they connect, as a running "
        "'vdtu cloud watch' would (default: once all have notified mqtt-connected)",
    )
    parser.add_argument(
        "--logs",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep each run's vdtu standard error in DIR (vdtu-<units>-<broker>.stderr)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser


def parse_brokers(text: str) -> list[str]:
    """``amqtt,mosquitto`` -> ``["amqtt", "mosquitto"]``."""
    brokers: list[str] = parse_list(text, option="--brokers", parse=str)
    unknown = [b for b in brokers if b not in BROKERS]
    if unknown:
        raise ValueError(f"--brokers takes {', '.join(BROKERS)}, not {unknown!r}")
    return brokers


def combinations(counts: Sequence[int], brokers: Sequence[str]) -> Iterator[tuple[int, str]]:
    """Every (units, broker), by unit count first."""
    for units in counts:
        for broker in brokers:
            yield units, broker


async def run_all(
    counts: Sequence[int], brokers: Sequence[str], settings: Settings
) -> list[RunResult]:
    """Every combination, one after the other."""
    return [
        await run_one(units, broker, settings) for units, broker in combinations(counts, brokers)
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        counts = parse_counts(args.units, option="--units", top=MAX_UNITS)
        brokers = parse_brokers(args.brokers)
    except ValueError as exc:
        parser.error(str(exc))
    if args.samples < 1 or args.connect_timeout <= 0:
        parser.error(
            f"--samples must be >= 1 and --connect-timeout > 0, "
            f"not {args.samples} and {args.connect_timeout}"
        )
    settings = Settings(
        samples=args.samples,
        connect_timeout_s=args.connect_timeout,
        watch_connects=args.watch_connects,
        logs=args.logs,
    )
    results = asyncio.run(run_all(counts, brokers, settings))
    if args.json:
        report = {
            "machine": machine(),
            "settings": asdict(settings),
            "results": [asdict(r) for r in results],
        }
        print(json.dumps(report, indent=2, default=str))  # default: the --logs Path
    else:
        print_report(results, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
