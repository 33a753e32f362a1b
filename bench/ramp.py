"""Connect rate: vdtu units ramping at a target rate against bare paho clients at the same rate.

Run ``python -m bench.ramp [--base 2000] [--units 12000] [--rate 1000] [--interval 10]
[--payload 64] [--seed 0] [--platform-login direct|http] [--json]`` (about 2 minutes; wrap
it in ``flock /tmp/vdtu-bench.lock``).

One process, one asyncio loop, two phases, each against a private mosquitto started for it
(``Mosquitto(max_queued_messages=0)``, anonymous), each once the machine's TCP sockets in
TIME_WAIT are at most ``TIME_WAIT_QUIET`` (``quiet_tcp``: the previous phase's or run's
close leaves thousands for a minute, and they make every ``connect()`` dearer):

1. **The units.** ``vdtu.load.runner.LoadRun`` (what ``vdtu fleet --broker URL`` runs, probe
   off) with the ramp as stages: ``--base`` XGC units come up at ``BASE_RATE`` a second and
   are held ``HOLD_S`` so every one is connected and sending (an uplink every ``--interval``
   s, +/-20 %); then ``--units`` more are powered on at ``--rate`` a second (the spike), and
   the run holds until they are connected. Each unit boots, registers with the simulated
   network (4 to 12 s), gets its login from the run's platform and connects.
2. **The baseline.** The same counts of bare ``MqttLink``s (``bench/bare.py``: no device,
   no sim time) publishing the same bytes on the same topics and pattern: ``--base`` dialled
   at ``BASE_RATE`` a second and held, then ``--units`` dialled at ``--rate`` a second.

Measured in each phase:

* **Connect rate.** Units register for 4 to 12 s after power-on, so even a process with no
  cost would spread a ramp's connections over the ramp plus 8 s. Between 12 s after the
  spike's first power-on and 4 s after its last, every unit that connects was powered on
  during the spike, and a process that keeps up connects ``--rate`` a second there: that
  window's connections per second are the units' achieved rate (it needs a spike of more
  than 8 s). A bare client connects when dialled, so its rate is its connections over the
  time from the first dial to the last CONNACK. Connection times are taken when they
  happen: a unit's first ``cloud`` event (``LoadRun.on_first_connected``), a bare
  client's CONNACK; the measured loop runs no poll of the harness's own.
* **The connected clients' latency during the ramp**: every uplink delivered between the
  spike's first power-on (dial) and the last new connection, of the ``--base`` clients that
  were connected before it (``base``) and of all (``all``): p50, p99, max. The verifier is
  the same class in both phases.
* **CPU per connect**: this process's CPU (user + system) over the ramp window, less what
  the held clients cost in the ``STEADY_S`` before the spike at the same rate, over the
  connections made. For units this covers boot, registration, login and connect.

The phases run one after the other, not interleaved, on a machine other jobs may share:
compare CPU figures, pair runs, and give the machine's load with the results.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from dataclasses import asdict, dataclass

import psutil

from bench.bare import BareClient, freezing, unit_topic
from bench.common import cpu_seconds, machine, machine_line, markdown_table, opt, progress
from vdtu.cloud.mosquitto import Mosquitto
from vdtu.histogram import LatencyHistogram
from vdtu.links.xgc_stack import default_project
from vdtu.load.command import registration_s
from vdtu.load.delivery import DeliveryTracker, Outcome
from vdtu.load.options import PLATFORM_LOGINS, build_options
from vdtu.load.payload import Uplink
from vdtu.load.ports import time_wait_sockets
from vdtu.load.runner import LoadRun
from vdtu.load.verifier import Verifier
from vdtu.net.mqtt import MqttHub

BASE_RATE = 500.0
"""Units (bare clients) a second brought up before the spike."""
HOLD_S = 16.0
"""How long the base is held before the spike: the last base unit registers within 12 s."""
STEADY_S = 3.0
"""The window before the spike whose CPU is the held clients' cost."""
SETTLE_S = 14.0
"""How long the units' run goes on after the spike's last power-on (12 s registration)."""
CONNECT_LIMIT_S = 30.0
"""How long after the spike's last power-on (dial) connections are waited for."""
POLL_S = 0.25
GRACE_S = 5.0
TIME_WAIT_QUIET = 2000
"""TCP sockets in TIME_WAIT a phase starts with at most (``quiet_tcp``)."""
TIME_WAIT_S = 60.0
"""How long Linux keeps a socket in TIME_WAIT (``TCP_TIMEWAIT_LEN``, not tunable)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    base: int
    units: int
    rate: float
    interval: float
    payload: int
    seed: int
    platform_login: str

    @property
    def ramp_s(self) -> float:
        return self.units / self.rate


@dataclass(frozen=True, slots=True, kw_only=True)
class Phase:
    """One phase's figures."""

    kind: str
    connected: int
    """Of the ``--units`` brought up in the spike."""
    rate_per_s: float | None
    """Connections a second (see the module comment)."""
    span_s: float | None
    """From the spike's first power-on (dial) to its last connection."""
    cpu_ms_per_connect: float | None
    cpu_pct: float
    """This process's CPU over the ramp window, % of one core."""
    steady_cpu_pct: float
    """The same over ``STEADY_S`` before the spike."""
    base: dict[str, float | None]
    """Latency (ms) of the held clients' uplinks in the ramp window."""
    everyone: dict[str, float | None]
    base_uplinks: int
    lost: int
    failures: int
    """Units: spike units not connected by the end of the units' run (its hosts stop 14 s
    after the last power-on, the fleet closes after a 5 s grace); bare clients: attempts that
    failed and connections lost."""
    time_wait: int
    """The machine's TCP sockets in TIME_WAIT when the phase began (``quiet_tcp``)."""


async def quiet_tcp() -> int:
    """Wait (a minute at most) until the machine has at most ``TIME_WAIT_QUIET`` sockets in
    TIME_WAIT, and return how many it has then: a phase's connects cost what the kernel's
    free ports make them (``vdtu/load/ports.py``), so each phase starts from the same state
    and says which. -1: the machine does not say."""
    deadline = time.monotonic() + TIME_WAIT_S + 5
    count = time_wait_sockets()
    if count is not None and count > TIME_WAIT_QUIET:
        progress(f"waiting for {count} TCP sockets in TIME_WAIT to go (at most a minute)")
    while count is not None and count > TIME_WAIT_QUIET and time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        count = time_wait_sockets()
    return -1 if count is None else count


class GroupTracker(DeliveryTracker):
    """A ``DeliveryTracker`` that also puts each latency into the held clients' window or the
    new ones' while a window is open (fleet ids below ``base`` are held)."""

    def __init__(self, base: int) -> None:
        super().__init__()
        self.base = base
        self.windows: tuple[LatencyHistogram, LatencyHistogram] | None = None

    def delivered(self, uplink: Uplink, received_ms: float) -> Outcome:
        outcome = super().delivered(uplink, received_ms)
        if self.windows is not None and outcome in (Outcome.IN_ORDER, Outcome.REORDERED):
            held, new = self.windows
            (held if uplink.unit < self.base else new).add(max(0.0, received_ms - uplink.sent_ms))
        return outcome


class Ramp:
    """What one phase measures around its spike (the same code for units and bare clients)."""

    def __init__(self, settings: Settings, tracker: GroupTracker) -> None:
        self.settings = settings
        self.tracker = tracker
        self.connect_at: dict[int, float] = {}
        """Spike clients' connection times (monotonic)."""
        self.all_connected = asyncio.Event()
        self.spike_at = 0.0
        self.steady_cpu_s = 0.0

    def connected(self, client: int) -> None:
        """Client ``client`` has just connected (those below ``base`` are held ones)."""
        if client >= self.settings.base:
            self.connect_at[client] = time.monotonic()
            if len(self.connect_at) == self.settings.units:
                self.all_connected.set()

    async def steady(self, spike_at: float) -> None:
        """Sleep until the spike, measuring the CPU of the ``STEADY_S`` before it."""
        await asyncio.sleep(max(0.0, spike_at - STEADY_S - time.monotonic()))
        cpu, wall = cpu_seconds(), time.monotonic()
        await asyncio.sleep(max(0.0, spike_at - time.monotonic()))
        self.steady_cpu_s = (cpu_seconds() - cpu) / max(1e-9, time.monotonic() - wall) * STEADY_S
        self.spike_at = spike_at
        self.tracker.windows = (LatencyHistogram(), LatencyHistogram())

    def result(
        self,
        kind: str,
        cpu_s: float,
        window_s: float,
        rate: float | None,
        fails: int,
        *,
        time_wait: int,
    ) -> Phase:
        """The figures once the window has closed (``cpu_s`` over ``window_s``)."""
        assert self.tracker.windows is not None
        held, new = self.tracker.windows
        self.tracker.windows = None
        everyone = held.copy()
        everyone.merge(new)
        connects = len(self.connect_at)
        steady = self.steady_cpu_s / STEADY_S
        marginal = cpu_s - steady * window_s
        return Phase(
            kind=kind,
            connected=connects,
            rate_per_s=rate,
            span_s=max(self.connect_at.values()) - self.spike_at if connects else None,
            cpu_ms_per_connect=1000 * marginal / connects if connects else None,
            cpu_pct=100 * cpu_s / window_s if window_s > 0 else 0.0,
            steady_cpu_pct=100 * steady,
            base=held.summary().to_json(),
            everyone=everyone.summary().to_json(),
            base_uplinks=held.count,
            lost=self.tracker.totals().lost,
            failures=fails,
            time_wait=time_wait,
        )


async def units_phase(settings: Settings) -> Phase:
    """The vdtu units (see the module comment)."""
    base, units = settings.base, settings.units
    stages = f"{base / BASE_RATE}s:{base},{HOLD_S}s:{base},{settings.ramp_s}s:{base + units}"
    time_wait = await quiet_tcp()
    with Mosquitto(max_queued_messages=0) as mosquitto:
        options = build_options(
            {
                "units": base + units,
                "ramp": stages,
                "duration": SETTLE_S,
                "interval": settings.interval,
                "payload": settings.payload,
                "seed": settings.seed,
                "broker": str(mosquitto.url),
                "probe_rate": 0,
                "progress": False,
                "grace": GRACE_S,
                "platform_login": settings.platform_login,
            }
        )
        load = LoadRun(asyncio.get_running_loop(), options, sys.stderr)
        tracker = load.tracker = GroupTracker(base)
        ramp = Ramp(settings, tracker)
        load.on_first_connected = ramp.connected
        task = asyncio.create_task(load.run(asyncio.Event()))
        for _ in range(int(60 / POLL_S)):  # the broker link and the verifier come first
            if load.started_at or task.done():
                break
            await asyncio.sleep(POLL_S)
        progress(f"units: {base} held, then {units} at {settings.rate:g}/s")
        spike_at = load.started_at + base / BASE_RATE + HOLD_S
        await ramp.steady(spike_at)
        cpu = cpu_seconds()
        deadline = spike_at + settings.ramp_s + CONNECT_LIMIT_S
        all_connected = asyncio.create_task(ramp.all_connected.wait())
        await asyncio.wait(
            [all_connected, task],
            timeout=max(0.0, deadline - time.monotonic()),
            return_when=asyncio.FIRST_COMPLETED,
        )
        all_connected.cancel()
        window_s = time.monotonic() - spike_at
        cpu_s = cpu_seconds() - cpu
        low, high = registration_s()
        start, end = spike_at + high, spike_at + settings.ramp_s + low
        inside = sum(1 for at in ramp.connect_at.values() if start <= at < end)
        rate = inside / (end - start) if end > start else None
        phase = ramp.result(
            "vdtu units", cpu_s, window_s, rate, units - len(ramp.connect_at), time_wait=time_wait
        )
        report = await task
    progress(f"units: {phase.connected}/{units} connected, {report.connect_failures} failures")
    return phase


class BarePhase:
    """The bare clients (see the module comment); the owner ``BareClient`` needs."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = asyncio.get_running_loop()
        self.rng = random.Random(f"bench-ramp:{settings.seed}")
        self.hub = MqttHub(self.loop)
        self.port = 0
        self.tracker = GroupTracker(settings.base)
        self.sending = True
        self.interval_s = settings.interval
        self.payload = settings.payload
        self.project, _secret = default_project(settings.seed)
        self.ramp = Ramp(settings, self.tracker)
        self.failures = 0
        self.links: list[BareClient] = []

    def connected_one(self, unit: int) -> None:
        self.ramp.connected(unit)

    def connect_failed(self, _reason: str) -> None:
        self.failures += 1

    def disconnected(self, _reason: str) -> None:
        self.failures += 1

    def _dial(self, first: int, count: int, rate: float) -> None:
        start = self.loop.time()
        for index in range(count):
            topic, quec = unit_topic("xgc", self.settings.seed, self.project, first + index)
            client = BareClient(self, first + index, topic, quec=quec)
            self.links.append(client)
            self.loop.call_at(start + (index + 1) / rate, client.link.connect)

    async def run(self) -> Phase:
        settings = self.settings
        base, units = settings.base, settings.units
        time_wait = await quiet_tcp()
        with Mosquitto(max_queued_messages=0) as mosquitto:
            self.port = mosquitto.port
            verifier = Verifier(self.hub, mosquitto.url, self.tracker, range(base + units))
            freezer = self.loop.create_task(freezing())
            try:
                await verifier.connect()
                progress(f"bare: {base} held, then {units} at {settings.rate:g}/s")
                self._dial(0, base, BASE_RATE)
                spike_at = time.monotonic() + base / BASE_RATE + HOLD_S
                await self.ramp.steady(spike_at)
                cpu = cpu_seconds()
                self._dial(base, units, settings.rate)
                try:
                    async with asyncio.timeout(settings.ramp_s + CONNECT_LIMIT_S):
                        await self.ramp.all_connected.wait()
                except TimeoutError:
                    pass
                window_s = time.monotonic() - spike_at
                cpu_s = cpu_seconds() - cpu
                connects = self.ramp.connect_at.values()
                span = max(connects) - spike_at if connects else 0.0
                rate = len(connects) / span if span > 0 else None
                self.sending = False
                await asyncio.sleep(GRACE_S)
                verifier.finish()
                self.tracker.finish()
                phase = self.ramp.result(
                    "bare paho", cpu_s, window_s, rate, self.failures, time_wait=time_wait
                )
            finally:
                freezer.cancel()
                verifier.close()
                self.hub.close()
        progress(f"bare: {phase.connected}/{units} connected")
        return phase


def table(settings: Settings, phases: list[Phase]) -> str:
    """The results as Markdown."""
    rows = [
        [
            phase.kind,
            f"{phase.connected}/{settings.units}",
            opt(phase.rate_per_s, ".0f"),
            opt(phase.span_s, ".1f"),
            opt(phase.cpu_ms_per_connect, ".3f"),
            f"{phase.steady_cpu_pct:.0f} -> {phase.cpu_pct:.0f}",
            opt(phase.base["p50"], ".1f"),
            opt(phase.base["p99"], ".1f"),
            opt(phase.base["max"], ".1f"),
            opt(phase.everyone["p99"], ".1f"),
            str(phase.base_uplinks),
            str(phase.lost),
            str(phase.failures),
            str(phase.time_wait),
        ]
        for phase in phases
    ]
    head = [
        "kind", "connected", "rate/s", "span s", "CPU ms/connect", "CPU % held -> ramp",
        "held p50 ms", "held p99 ms", "held max ms", "all p99 ms", "held uplinks", "lost",
        "not up/failed", "TIME_WAIT at start",
    ]  # fmt: skip
    return markdown_table(head, rows)


async def measure(settings: Settings) -> list[Phase]:
    units = await units_phase(settings)
    bare = await BarePhase(settings).run()
    return [units, bare]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ramp", description=__doc__)
    parser.add_argument("--base", type=int, default=2000, help="clients held before the spike")
    parser.add_argument("--units", type=int, default=12000, help="clients in the spike")
    parser.add_argument("--rate", type=float, default=1000.0, help="the spike's rate, per second")
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--payload", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--platform-login", choices=PLATFORM_LOGINS, default="direct")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.units / args.rate <= registration_s()[1] - registration_s()[0]:
        parser.error("--units / --rate must exceed 8 s: the connect rate is read in between")
    settings = Settings(
        base=args.base,
        units=args.units,
        rate=args.rate,
        interval=args.interval,
        payload=args.payload,
        seed=args.seed,
        platform_login=args.platform_login,
    )
    load = psutil.getloadavg()
    phases = asyncio.run(measure(settings))
    load_after = psutil.getloadavg()
    if args.json:
        found = {
            "machine": machine(),
            "settings": asdict(settings),
            "load": [load, load_after],
            "phases": [asdict(phase) for phase in phases],
        }
        print(json.dumps(found))
        return 0
    print(
        f"{machine_line()}; load average "
        f"{load[0]:.2f} before, {load_after[0]:.2f} after; {settings.base} held, "
        f"{settings.units} at {settings.rate:g}/s, interval {settings.interval:g} s, "
        f"login {settings.platform_login}"
    )
    print(table(settings, phases))
    return 0


if __name__ == "__main__":
    sys.exit(main())
