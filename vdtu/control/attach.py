"""A running ``Fleet`` behind the control API: its events, its new units, its downlinks.

``FleetHandle`` is what ``FleetControl`` steers (``Controlled``) for a real-time fleet:
it observes every unit's events (through the unit log's observer, set on each unit as
the fleet builds it), scans the units' states every second (a ``state`` event for each
change: personality-neutral, two bytes per unit) and emits a ``metrics`` event (with the
last second's uplink acknowledgement times: the fleet's MQTT hub times each QoS 1/2
publish to its PUBACK into two histograms, since the start and since the last event).
The pass looks at ``SCAN_CHUNK`` units a loop turn, so a big fleet's pass does not hold
the loop (14 000 units in one turn: 25-35 ms, uplinks waiting meanwhile); the ``metrics``
event comes at its end. It also adds units after the last one, and publishes downlink
pokes through one console connection to the fleet's broker, opened on the first downlink.
``serve`` starts the API for a fleet and puts its address and token into the fleet's
discovery file (``up.json``, mode 0600).
"""

from __future__ import annotations

import asyncio
import os
from array import array
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from vdtu.clock import Clock
from vdtu.console import Console, Target
from vdtu.control.controller import FleetControl, ack_view, fleet_counts
from vdtu.control.events import EventLog
from vdtu.control.fleet_faults import FleetFaults
from vdtu.control.server import ControlServer, new_token
from vdtu.errors import ConfigError
from vdtu.faults.active import current_faults
from vdtu.fleet import Fleet, PtyDirLock, write_discovery
from vdtu.histogram import LatencyHistogram
from vdtu.links.discovery import DISCOVERY_FILE
from vdtu.links.sides import SIDES
from vdtu.unit import Unit

METRICS_S = 1.0
"""How often the fleet's figures go into the event stream."""
SCAN_CHUNK = 1000
"""Units the pass over the fleet looks at in one loop turn."""


class FleetHandle:
    """A ``Fleet`` as the controller sees it."""

    def __init__(
        self,
        fleet: Fleet,
        *,
        discovery: Path | None = None,
        observe: bool = True,
    ) -> None:
        self.fleet = fleet
        self.discovery_path = discovery
        self.observing = False
        """Whether the units' events are taken (from the start, or from the first reader)."""
        self.events = EventLog(fleet.loop)
        self._console: Console | None = None
        self._console_lock = asyncio.Lock()
        self._timer: asyncio.Handle | None = None
        """The next pass, or the running pass's next chunk."""
        self._seen = array("H")
        self._state_table: list[tuple[str, str]] = []
        self._state_codes: dict[tuple[str, str], int] = {}
        self.control_entry: dict[str, Any] = {}
        """What ``serve`` put into up.json: the API's ``url`` and ``token``."""
        self._acks = LatencyHistogram()
        self._acks_window = LatencyHistogram()
        self._acks_recent = LatencyHistogram()
        """The last whole interval's (``_acks_window`` fills meanwhile)."""
        fleet.hub.on_acked = self._acked
        fleet.on_unit.append(self._observe)
        if observe:
            self.start_observing()

    def start_observing(self) -> None:
        """Take every unit's events from now on (a load test starts on the first reader: a
        unit's frames and uplinks cost CPU to describe, which nobody may want)."""
        if not self.observing:
            self.observing = True
            for unit in self.fleet.units:
                self._observe(unit)

    @property
    def clock(self) -> Clock:
        return self.fleet.clock

    @property
    def units(self) -> list[Unit]:
        return self.fleet.units

    @property
    def seed(self) -> int:
        return self.fleet.config.seed

    def _observe(self, unit: Unit) -> None:
        if not self.observing:
            return
        unit.log.describe_frames = True  # the API's readers see each frame decoded
        first = unit.log.observer
        if first is None:
            unit.log.observer = self.events.unit_event
            return
        then = self.events.unit_event  # after the observer the unit had (a scenario's)

        def both(name: str, at: float, kind: str, data: dict[str, Any]) -> None:
            first(name, at, kind, data)
            then(name, at, kind, data)

        unit.log.observer = both

    def _scan_states(self, first: int, units: list[Unit]) -> None:
        """A ``state`` event for each of ``units`` (the fleet's from index ``first`` on)
        whose state changed since the last scan.

        The last state of each unit is two bytes: an index into the table of the
        (phase, state) pairs seen, which personalities keep to a few dozen.
        """
        faulted = [unit for unit in units if unit.active_faults is not None]
        if faulted:  # a fault something else ended leaves now, in one entry into sim time
            self.clock.call(_prune, faulted)
        seen, table, codes = self._seen, self._state_table, self._state_codes
        now = self.clock.now
        for index, unit in enumerate(units, start=first):
            pair = unit.states
            code = codes.get(pair)
            if code is None:
                code = codes[pair] = len(table)
                table.append(pair)
            if index >= len(seen):
                seen.append(code)
                continue
            if seen[index] != code:
                old = table[seen[index]]
                seen[index] = code
                self.events.emit(
                    now,
                    unit.config.unit_id,
                    "state",
                    {"phase": pair[0], "state": pair[1], "was": old[1]},
                )

    def start_metrics(self) -> None:
        """Emit ``state`` events and a ``metrics`` event every ``METRICS_S``."""
        self._scan_from(0, fleet_counts([]))

    def _scan_from(self, first: int, counts: dict[str, int]) -> None:
        """Scan ``SCAN_CHUNK`` units from index ``first``, adding them to ``counts``; the
        rest in the next loop turn, or, at the end, the ``metrics`` event."""
        units = self.fleet.units[first : first + SCAN_CHUNK]
        self._scan_states(first, units)
        for key, count in fleet_counts(units).items():
            counts[key] += count
        after = first + len(units)
        if after < len(self.fleet.units):
            self._timer = self.fleet.loop.call_soon(self._scan_from, after, counts)
            return
        self._acks_recent, self._acks_window = self._acks_window, self._acks_window.empty_like()
        figures = counts | {"ack_ms_recent": ack_view(self._acks_recent)}
        self.events.emit(self.clock.now, None, "metrics", figures)
        self._timer = self.fleet.loop.call_later(METRICS_S, self.start_metrics)

    @property
    def profiles(self) -> list[str]:
        return list(self.fleet.sides)

    def _acked(self, seconds: float) -> None:
        ms = seconds * 1000.0
        self._acks.add(ms)
        self._acks_window.add(ms)

    def acks(self) -> tuple[LatencyHistogram, LatencyHistogram]:
        return self._acks, self._acks_recent

    def add_unit(self, tags: tuple[str, ...] | None, profile: str | None) -> Unit:
        fleet = self.fleet
        next_id = max((unit.config.unit_id for unit in fleet.units), default=-1) + 1
        unit = fleet.start_unit(next_id, tags=tags, profile=profile)
        self.write_discovery()
        return unit

    def write_discovery(self) -> None:
        """(Re)write the discovery file, if this fleet has one."""
        if self.discovery_path is not None:
            write_discovery(self.discovery_path, self.discovery())

    def discovery(self) -> dict[str, Any]:
        """The fleet's discovery document with the API's address and token."""
        return self.fleet.discovery() | {"control": self.control_entry}

    async def downlink(self, unit: Unit, payload: bytes) -> str:
        console = await self._connected()
        side = SIDES[unit.config.profile].console
        try:
            topic = side.downlink_topic(console, unit.imei)
            await console.publish(topic, payload)
        except (ConfigError, TimeoutError) as exc:
            raise ValueError(f"downlink not sent: {exc or 'no acknowledgement'}") from None
        return topic

    async def _connected(self) -> Console:
        async with self._console_lock:
            if self._console is None:
                fleet = self.fleet
                target = Target(
                    broker=fleet.console_login(),
                    project=fleet.project_id,
                    units={unit.imei: unit.config.profile for unit in fleet.units},
                )
                console = Console(target)
                try:
                    await console.connect()
                except ConfigError as exc:
                    console.close()
                    raise ValueError(f"downlink not sent: {exc}") from None
                self._console = console
            return self._console

    def close(self) -> None:
        self.fleet.hub.on_acked = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._console is not None:
            self._console.close()
            self._console = None


def _prune(units: list[Unit]) -> None:
    for unit in units:
        with unit.env.entered(unit.domain):
            current_faults(unit)


class ControlDir:
    """A directory that names one run's control API in its ``up.json``, locked for that run
    and emptied when it ends. A directory the user named and another live run holds is
    refused (naming that run's pid); the default one, when held, gives way to one of this
    run's own (``<default>-<pid>``), so load tests can run side by side."""

    def __init__(self, directory: Path | None, *, default: Path) -> None:
        self.named = directory is not None
        self.directory = directory if directory is not None else default
        self.lock = PtyDirLock(self.directory)

    @property
    def discovery_path(self) -> Path:
        return self.directory / DISCOVERY_FILE

    def take(self) -> Path:
        """Lock the directory; returns the file's path.

        Raises:
            ConfigError: a live run holds the directory the user named.
        """
        try:
            self.lock.acquire()
        except ConfigError:
            if self.named:
                raise
            self.directory = self.directory.with_name(f"{self.directory.name}-{os.getpid()}")
            self.lock = PtyDirLock(self.directory)
            self.lock.acquire()
        return self.discovery_path

    def release(self) -> None:
        if self.lock.held:
            self.discovery_path.unlink(missing_ok=True)
        self.lock.release()


class BrokerFaults:
    """``broker-stop`` (``FleetFaults``) on an embedded broker, through its pause and resume."""

    def __init__(
        self, pause: Callable[[], Awaitable[None]], resume: Callable[[], Awaitable[None]]
    ) -> None:
        self.pause = pause
        self.resume = resume

    async def apply(self, kind: str) -> None:
        await self._run(self.pause)

    async def clear(self, kind: str) -> None:
        await self._run(self.resume)

    @staticmethod
    async def _run(step: Callable[[], Awaitable[None]]) -> None:
        try:
            await step()
        except ConfigError as exc:
            raise ValueError(str(exc)) from None


async def serve(
    fleet: Fleet,
    *,
    port: int = 0,
    discovery: Path | None = None,
    observe: bool = True,
    scenario: Callable[[], dict[str, Any]] | None = None,
) -> tuple[ControlServer, FleetHandle]:
    """Start the control API for ``fleet`` and name it in its discovery file.

    Args:
        fleet: a started fleet.
        port: the API's port on 127.0.0.1 (0: any free one).
        discovery: where the discovery file goes (None: the fleet's ``up.json`` when it
            holds its ``--pty-dir``, else nowhere).
        observe: take the units' events from the start (False: from the first reader).
        scenario: the progress of the scenario run ``fleet`` is part of
            (``GET /v1/scenario``; None: it is no scenario's).
    """
    if discovery is None and fleet.pty_dir_lock.held:
        discovery = fleet.discovery_path
    handle = FleetHandle(fleet, discovery=discovery, observe=observe)
    faults: FleetFaults | None = None
    if fleet.config.broker is None:
        faults = BrokerFaults(fleet.host.pause_broker, fleet.host.resume_broker)
    control = FleetControl(handle, fleet_faults=faults, scenario=scenario)
    server = ControlServer(control, token=new_token(), port=port)
    await server.start()
    handle.control_entry = {"url": server.url, "token": server.token}
    handle.start_metrics()
    handle.write_discovery()
    return server, handle
