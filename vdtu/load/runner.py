"""One load-test process: a shard of headless units, their hosts, the verifier, the numbers.

``LoadRun.run`` starts the cloud side of a ``Fleet`` (the embedded broker, or the
broker the user named), connects the ``Verifier``, then powers units on as ``ramp``
says (``vdtu/load/ramp.py``: a rate, or stages that hold, spike and drop), each with
a simulated ``Host`` that starts sending once the unit has reached its cloud. One
timer follows the schedule: each time it fires it brings the count of units up to
the schedule's count at that moment, in one ``Clock.inject`` (units powered on in
fleet id order, lowest first; a drop takes the highest first), and is armed for the
next change. A unit the ramp drops has its host stop first and is powered off
``DROP_QUIET_S`` later, so an uplink its host wrote just before still reaches the
broker (a drop loads the broker with departures, it does not cut uplinks off); a unit
brought up again is powered on again and its host waits for the cloud once more.
The run lasts the ramp (its stages) plus ``duration`` seconds.
Units have no PTY unless ``pty`` is set, no flash files, and no wire pacing (the
hosts are simulated: pacing would only cost CPU).
Units run with their personality's load-test options (an XGC unit draws its first
reconnect after a loss within +/-20 % of 5 s), so a broker that drops every
connection at once is not met by the whole fleet in the same millisecond.

Every second it updates the figures: a progress line on ``out`` and, when
``metrics_port`` is set, ``GET /metrics`` in Prometheus' text format (on
``metrics_host``, 127.0.0.1 unless told otherwise). At the end
(or on ``stop``, e.g. Ctrl-C) the hosts stop sending, the run
waits up to ``grace`` seconds for what is still in flight, and the report is
made: a ``FleetReport`` (``vdtu/load/report.py``) with this shard's id; a run that
``stop`` ended before its time counts ``errors.stopped_early``.

Memory: every ``FREEZE_S`` (a tenth of a second) the objects alive so far are frozen
out of the garbage collector's view (``gc.freeze``): units live for the whole run, and a
full collection scanning 10 000 units' objects stops the loop for hundreds of ms, which
would show up as uplink latency that no broker caused. A collection runs just before
each freeze: it scans only what is younger than the last freeze, and a reference cycle
that is garbage by then would otherwise be frozen and never freed (paho leaves one per
message it dispatches, about 450 bytes: a leak of tens of MB an hour at 1500 uplinks a
second). The collection's cost is what was allocated since the last freeze: a ramp of
1000 units a second allocates some 140 000 tracked objects a second, which a collection
once a second took 40-90 ms over, in one loop turn; ten a second take a tenth each.
The collector's own automatic collections are off while the run goes on (``gc.disable``,
restored at its end): they would scan each of those objects again (generation 0 every
700 allocations, generation 1 every tenth of those, and a full one of everything not
frozen when enough has survived), and a cycle that is garbage waits at most ``FREEZE_S``
for the next collection anyway.

Connections per unit come from the personality interface: a unit is connected when
its firmware says it reaches its cloud; ``connect_failures`` and ``reconnects`` are
its ``Counters`` (attempts that did not come up; connections that came up after a
lost one), added up. A unit's first connection is noted when it happens, from its
``cloud`` event (``UnitLog.on_cloud``, one shared callback), not by looking at every
unit not yet connected: ``first_connected`` and ``on_first_connected``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import os
import resource
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TextIO

from vdtu.cloud.broker_url import BrokerUrl, parse_broker_url
from vdtu.cloud.http_server import HttpServer, Reply, Request
from vdtu.control.attach import ControlDir, FleetHandle, serve
from vdtu.control.server import ControlServer
from vdtu.firmware.registry import PERSONALITIES
from vdtu.fleet import Fleet, FleetConfig, default_pty_dir
from vdtu.histogram import LatencyHistogram
from vdtu.identity import Identity
from vdtu.load.delivery import DeliveryTracker
from vdtu.load.hosts import PROBE_KEY, Host
from vdtu.load.options import LoadOptions
from vdtu.load.progress import Progress, progress_line
from vdtu.load.prometheus import to_prometheus
from vdtu.load.ramp import Schedule, shard_stages
from vdtu.load.report import FleetReport
from vdtu.load.verifier import ProbeTarget, Verifier
from vdtu.log import LogLevel, LogRecord
from vdtu.storage import write_atomically
from vdtu.unit import UnitConfig

LOG_RECORDS = 20
"""Log records each unit keeps (WARNs and worse are counted in the report anyway)."""
TICK_S = 1.0
"""How often the figures are updated."""
FREEZE_S = 0.1
"""How often garbage is collected and the living frozen (see the module comment)."""
PROGRESS_EVERY_S = 5.0
"""How often a progress line is printed when ``out`` is not a terminal."""
DRAIN_POLL_S = 0.2
"""How often the wind-down looks whether everything in flight has arrived."""
ERASE_TO_END = "\x1b[K"
"""Ends the terminal's progress line: what a longer line before left on screen goes."""
DROP_QUIET_S = 1.0
"""Sim seconds between a dropped unit's host going quiet and the unit's power-off."""


def rss_mb() -> float:
    """This process's resident memory, MiB."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def cpu_s() -> float:
    """CPU time (user + system) this process has used."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class LoadRun:
    """One shard of a load test.

    Args:
        loop: the running loop.
        options: what to run.
        out: where the progress line goes.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, options: LoadOptions, out: TextIO) -> None:
        self.loop = loop
        self.options = options
        self.out = out
        self.block = options.shard.block(options.units)
        self.tracker = DeliveryTracker()
        self.hosts: dict[int, Host] = {}
        self.first_connected: dict[int, float] = {}
        """When each unit first reached its cloud, seconds after ``started_at``."""
        self.on_first_connected: Callable[[int], None] = _ignore
        """Called with a unit's id when it first reaches its cloud (in sim time)."""
        self._not_yet_connected: dict[str, int] = {}
        """Units with a host that have not reached their cloud yet, by name."""
        self._on_cloud = self._cloud_changed
        """The one bound method every unit's log calls (``UnitLog.on_cloud``)."""
        self.errors: dict[str, int] = {}
        self.started_at = 0.0
        self.schedule = Schedule(
            shard_stages(
                options.ramp,
                block=self.block,
                shards=options.shard.count,
                index=options.shard.index,
            )
        )
        self.up = 0
        """Units the ramp has brought up: the first ``up`` of the block (in sim time)."""
        self._ramp_at = 0.0
        self._pacer: asyncio.TimerHandle | None = None
        self._freezer: asyncio.TimerHandle | None = None
        self.fleet = Fleet(loop, self._fleet_config(), sink=self._count_warning)
        self.verifier: Verifier | None = None
        self.metrics: HttpServer | None = None
        self._progress = Progress()
        self._last_line = 0.0
        self._stopping = False
        self.control_dir = ControlDir(options.control_dir, default=default_pty_dir() / "fleet")
        self.control: tuple[ControlServer, FleetHandle] | None = None
        """The control API (units added through it get no simulated host)."""

    def _fleet_config(self) -> FleetConfig:
        options = self.options
        template = UnitConfig(
            identity=Identity.for_unit(options.seed, 0),
            pacing=options.pty,
            slaves=(),  # no host polls the bus; a demo slave's dynamics would cost an event/s
        )
        broker = options.broker
        return FleetConfig(
            units=len(self.block),
            first_unit=self.block.start,
            seed=options.seed,
            pty_dir=default_pty_dir() / f"fleet-{os.getpid()}",
            state_dir=None,
            ports=("uart",) if options.pty else (),
            broker=None if broker is None else parse_broker_url(broker, ca_file=options.ca_file),
            profile=options.profile,
            template=template,
            options={
                entry.name: entry.load_test_options
                for entry in PERSONALITIES.values()
                if entry.load_test_options is not None
            },
            log_records=LOG_RECORDS,
            direct_logins=options.platform_login == "direct",
        )

    def _count_warning(self, _unit: str, record: LogRecord) -> None:
        if record.level >= LogLevel.WARN:
            key = f"unit_{record.level.name.lower()}s"
            self.errors[key] = self.errors.get(key, 0) + 1

    # -- the run -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> FleetReport:
        """Run until ``duration`` has passed or ``stop`` is set; returns the report."""
        fleet = self.fleet

        def crashed(exc: Exception) -> None:
            trace = "".join(traceback.format_exception(exc))
            print(f"vdtu: the simulation crashed:\n{trace}", file=self.out, flush=True)
            self.errors["simulation_crashed"] = 1
            stop.set()

        fleet.clock.on_crash.append(crashed)
        await fleet.start(units=False)
        collecting = gc.isenabled()
        gc.disable()  # _freeze collects instead (see the module comment)
        try:
            discovery = self.control_dir.take()
            self.control = await serve(
                fleet, port=self.options.control_port, discovery=discovery, observe=False
            )
            if self.options.progress:
                print(
                    f"vdtu fleet: control API: vdtu ctl --pty-dir {self.control_dir.directory} "
                    "units",
                    file=self.out,
                    flush=True,
                )
            self.verifier = Verifier(
                fleet.hub, self._verify_url(), self.tracker, self.block, self._uplink_topics()
            )
            await self.verifier.connect()
            if self.options.metrics_port is not None:
                self.metrics = HttpServer({("GET", "/metrics"): self._metrics})
                await self.metrics.start(
                    host=self.options.metrics_host, port=self.options.metrics_port
                )
            if self.options.pty:
                where = self.fleet.config.pty_dir
                print(f"vdtu fleet: each unit's uart is {where}/dtu<N>/uart", file=self.out)
            self.started_at = time.monotonic()
            self._ramp_at = self.loop.time()
            self._pace(0.0)
            self._freeze()
            self.verifier.start_probe(self._probe_targets(), self.options.probe_rate)
            deadline = self.started_at + self.schedule.total_s + self.options.duration
            while time.monotonic() < deadline and not stop.is_set():
                await _wait(stop, min(TICK_S, deadline - time.monotonic()))
                self._tick()
            if stop.is_set():  # a signal ended the run before its time
                self.errors["stopped_early"] = 1
            await self._wind_down(stop)
            return self.report(final=True)
        finally:
            await self._close()
            if collecting:
                gc.enable()

    def _verify_url(self) -> BrokerUrl:
        url = self.fleet.console_login()
        login = self.options.verify_login
        if login is None:
            return url
        user, _, password = login.partition(":")
        return replace(url, username=user, password=password)

    def _uplink_topics(self) -> list[str] | None:
        """A shard's verifier reads its own units' uplink topics only (see ``Verifier``)."""
        if self.options.shard.count == 1:
            return None
        seed = self.options.seed
        return [
            self.fleet.side_of(unit_id).unit_uplink_topic(Identity.for_unit(seed, unit_id).imei)
            for unit_id in self.block
        ]

    def _pace(self, due_s: float) -> None:
        """Bring the count of units up to the schedule's now; arm for its next change."""
        self._pacer = None
        if self._stopping:
            return
        now_s = max(due_s, self.loop.time() - self._ramp_at)
        count = self.schedule.count_at(now_s)
        if count != self.up:
            self.fleet.clock.inject(self._follow, count)
        next_s = self.schedule.next_change(now_s)
        if next_s is not None:
            self._pacer = self.loop.call_at(self._ramp_at + next_s, self._pace, next_s)

    def _follow(self, count: int) -> None:
        """In sim time: power on or drop units until ``count`` of the block are up."""
        if self._stopping:
            return
        while self.up < count:
            unit_id = self.block[self.up]
            self.up += 1
            host = self.hosts.get(unit_id)
            if host is None:
                self._add_unit(unit_id)
            else:
                host.unit.power_on()
                host.start()
        while self.up > count:
            self.up -= 1
            host = self.hosts[self.block[self.up]]
            host.stop()
            self.fleet.clock.env.call_later(DROP_QUIET_S, partial(self._drop, self.up))

    def _drop(self, index: int, _event: object) -> None:
        """Power off the block's unit ``index`` unless the ramp has brought it up again."""
        if index >= self.up:
            self.hosts[self.block[index]].unit.power_off()

    def _add_unit(self, unit_id: int) -> None:
        unit = self.fleet.start_unit(unit_id)
        host = Host(
            unit,
            unit_index=unit_id,
            rng=unit.host_rng(),
            interval_s=self.options.interval,
            payload_size=self.options.payload,
            epoch_s=self.fleet.clock.epoch_s,
            published=self.tracker.published,
        )
        self.hosts[unit_id] = host
        self._not_yet_connected[unit.name] = unit_id
        unit.log.on_cloud = self._on_cloud
        host.start()

    def _cloud_changed(self, name: str, up: bool) -> None:
        """A unit's cloud connection came up or went: note its first."""
        unit_id = self._not_yet_connected.pop(name, None) if up else None
        if unit_id is not None:
            self.first_connected[unit_id] = time.monotonic() - self.started_at
            self.on_first_connected(unit_id)

    def _probe_targets(self) -> list[ProbeTarget]:
        step = max(1, len(self.block) // self.options.probe_units)
        targets = []
        for unit_id in self.block[::step][: self.options.probe_units]:
            imei = Identity.for_unit(self.options.seed, unit_id).imei
            probe = self.fleet.side_of(unit_id).probe(imei, PROBE_KEY)
            targets.append(ProbeTarget(probe=probe, ready=partial(self._connected, unit_id)))
        return targets

    def _connected(self, unit_id: int) -> bool:
        host = self.hosts.get(unit_id)
        return host is not None and host.cloud_connected()

    def _freeze(self) -> None:
        """Collect garbage, freeze the living out of the collector's scans (see the module
        comment: garbage goes first, or it is frozen for good); again in ``FREEZE_S``."""
        gc.collect()
        gc.freeze()
        self._freezer = self.loop.call_later(FREEZE_S, self._freeze)

    def _tick(self) -> None:
        if not self.options.progress:
            # Nobody reads a report this second: a pass over every unit would only stop
            # the loop (16 ms or more at 15 000 units).
            return
        report = self.report()
        now = time.monotonic()
        rates = self._progress.update(report, now)
        line = progress_line(report, rates)
        if self.out.isatty():
            print("\r" + line + ERASE_TO_END, end="", file=self.out, flush=True)
        elif now - self._last_line >= PROGRESS_EVERY_S:
            print(line, file=self.out, flush=True)
            self._last_line = now

    async def _wind_down(self, stop: asyncio.Event) -> None:
        """Stop sending; wait for what is in flight (at most ``grace`` s); count the rest."""
        self._stopping = True
        self.fleet.clock.inject(self._stop_hosts)
        self._tick()
        for _ in range(math.ceil(self.options.grace / DRAIN_POLL_S)):
            if not self.tracker.totals().pending:
                break
            await asyncio.sleep(DRAIN_POLL_S)
        assert self.verifier is not None  # run() made it
        self.verifier.finish()
        self.tracker.finish()
        if self.options.progress and self.out.isatty():
            print(file=self.out)
        del stop

    def _stop_hosts(self) -> None:
        for host in self.hosts.values():
            host.stop()

    async def _close(self) -> None:
        self._stopping = True
        if self._pacer is not None:
            self._pacer.cancel()
        if self._freezer is not None:
            self._freezer.cancel()
        if self.control is not None:
            server, handle = self.control
            handle.close()
            await server.stop()
        self.control_dir.release()
        if self.verifier is not None:
            self.verifier.close()
        if self.metrics is not None:
            await self.metrics.stop()
        await self.fleet.close()

    # -- the figures ---------------------------------------------------------------------

    def report(self, *, final: bool = False) -> FleetReport:
        """This shard's figures now (one pass over the units); ``final`` adds to ``errors``
        the units that never connected (``never_connected``) and those the run ended before
        powering on (``never_powered_on``)."""
        failures = reconnects = connected = 0
        for host in self.hosts.values():
            counters = host.unit.firmware.counters()
            failures += counters.connect_failures
            reconnects += counters.reconnects
            if host.cloud_connected():
                connected += 1
        verifier = self.verifier
        errors = dict(self.errors)
        if verifier is not None:
            found = {
                "probe_timeouts": verifier.probe_timeouts,
                "foreign_uplinks": verifier.foreign,
                "verifier_redials": verifier.redials,
            }
            errors |= {key: count for key, count in found.items() if count}
        if final:
            ended = {
                "never_connected": len(self.hosts.keys() - self.first_connected.keys()),
                "never_powered_on": len(self.block) - len(self.hosts),
            }
            errors |= {key: count for key, count in ended.items() if count}
        connect_s = max(self.first_connected.values(), default=0.0)
        return FleetReport.collect(
            tracker=self.tracker,
            command_rtt=verifier.command_rtt if verifier is not None else LatencyHistogram(),
            shard=str(self.options.shard),
            profile=self.options.profile,
            broker=str(self.fleet.broker_url or ""),
            units=len(self.block),
            connected=connected,
            powered_off=len(self.hosts) - self.up,
            connect_failures=failures,
            connect_s=connect_s,
            reconnects=reconnects,
            duration_s=time.monotonic() - self.started_at if self.started_at else 0.0,
            rss_mb=rss_mb(),
            cpu_s=cpu_s(),
            errors=errors,
        )

    def _metrics(self, _request: Request) -> Reply:
        return Reply(
            status=200,
            body=to_prometheus(self.report()).encode(),
            headers=(("content-type", "text/plain; version=0.0.4"),),
        )


def _ignore(_unit_id: int) -> None:
    """The default ``on_first_connected``."""


async def _wait(event: asyncio.Event, timeout_s: float) -> None:
    try:
        await asyncio.wait_for(event.wait(), max(0.0, timeout_s))
    except TimeoutError:
        return


def write_report(path: Path, report: FleetReport) -> None:
    """Write the report as JSON, atomically."""
    write_atomically(path, json.dumps(report.to_json(), indent=1) + "\n")
