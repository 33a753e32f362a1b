"""A scenario on the wall clock: real PTYs, a real broker, and the user's own host code.

``RealtimeWorld`` starts a ``Fleet`` (the embedded broker, or ``--broker URL``) without
units, then starts each unit with its group's personality and settings, so every unit has
its PTYs (``<pty-dir>/dtu<N>/<port>``) for a host-MCU developer's code (``host:
external``) while the simulated hosts of the other groups write on their units' lines as
in virtual time. The cloud's side of the steps goes through one console connection to
the broker (``vdtu.console.Console``): downlinks and jobs are published as ``vdtu cloud``
publishes them, and what the units publish is read back from each personality's watch
topic and handed to the world in sim time. ``broker-stop`` pauses and resumes the
embedded broker. Timing is the wall clock's: a scenario of ten minutes takes ten.
``serve`` gives the fleet the control API of ``vdtu up`` (named in ``<pty-dir>/up.json``)
with the run's progress: ``GET /v1/scenario`` and ``scenario`` events.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from paho.mqtt.client import topic_matches_sub

from vdtu.console import Console, Target
from vdtu.control.attach import FleetHandle, serve
from vdtu.control.server import ControlServer
from vdtu.fleet import MIX, Fleet, FleetConfig
from vdtu.links.side import SideEntry
from vdtu.links.sides import SIDES
from vdtu.scenario.schema import Scenario
from vdtu.scenario.world import Transcript, World
from vdtu.unit import Unit

if TYPE_CHECKING:
    from vdtu.scenario.run import ScenarioRun


class RealSide:
    """One personality's cloud on the fleet's broker (``CloudSide``)."""

    def __init__(self, entry: SideEntry, world: RealtimeWorld) -> None:
        self.entry = entry
        self.world = world
        self.on_message: list[Callable[[str, str, bytes], None]] = []

    def is_uplink(self, topic: str) -> bool:
        return bool(topic_matches_sub(self.entry.uplink_topic, topic))

    def downlink(self, imei: str, payload: bytes) -> int:
        console = self.world.console
        if console is None:
            raise ValueError("the console is not connected: the downlink is lost")
        self.world.publish(self.entry.console.downlink_topic(console, imei), payload)
        return 1

    def push_config(self, imei: str, config: Mapping[str, object]) -> None:
        self._push(imei, "config", config)

    def push_ota(self, imei: str, job: Mapping[str, str]) -> None:
        self._push(imei, "ota", job)

    def _push(self, imei: str, kind: str, fields: Mapping[str, object]) -> None:
        now_ms = round(self.world.clock.unix_time() * 1000)
        project = self.world.fleet.project_id
        topic, payload = self.entry.console.job(project, imei, kind, fields, now_ms)
        self.world.publish(topic, payload)


class RealtimeWorld(World):
    """A scenario's world in real time (``start`` it with ``open`` first, ``close`` it after).

    Args:
        config: the fleet's settings (its ``units`` and ``profile`` are the scenario's).
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        seed: int,
        transcript: Transcript,
        loop: asyncio.AbstractEventLoop,
        config: FleetConfig,
        failures: Callable[[str], None],
    ) -> None:
        profiles = {group.profile for group in scenario.units}
        profile = next(iter(profiles)) if len(profiles) == 1 else MIX
        fleet_config = replace(config, units=scenario.unit_count, seed=seed, profile=profile)
        self.fleet = Fleet(loop, fleet_config)
        super().__init__(scenario, seed=seed, transcript=transcript, clock=self.fleet.clock)
        self.loop = loop
        self.failures = failures
        self.console: Console | None = None
        self.sides = {name: RealSide(SIDES[name], self) for name in profiles}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._served: tuple[ControlServer, FleetHandle] | None = None

    async def serve(self, run: ScenarioRun, *, port: int = 0) -> ControlServer:
        """Serve the control API for the fleet (after ``open``), with ``run``'s progress;
        ``close`` stops it."""
        server, handle = await serve(self.fleet, port=port, scenario=run.view)
        self._served = (server, handle)
        events, clock = handle.events, self.clock
        run.progress.listeners.append(lambda data: events.emit(clock.now, None, "scenario", data))
        return server

    async def open(self) -> None:
        """Start the broker and every unit (the groups not powered at the start are
        switched off at once), connect the console and watch what the units publish."""
        fleet = self.fleet
        await fleet.start(units=False)
        self.clock.call(self._start_units)  # in sim time, so the clock wakes for their events
        console = Console(
            Target(
                broker=fleet.console_login(),
                project=fleet.project_id,
                units={unit.imei: unit.profile for unit in self.units},
            )
        )
        await console.connect()
        console.listen(self._received)
        for name in self.sides:
            await console.subscribe(SIDES[name].watch_topic)
        self.console = console

    def _start_units(self) -> None:
        unit_id = 0
        for group in self.scenario.units:
            for _ in range(group.count):
                unit = self.fleet.start_unit(
                    unit_id,
                    profile=group.profile,
                    options=group.firmware_options(),
                    settings=self.unit_settings(group),
                    config=group.config,
                )
                if not group.powered:
                    unit.power_off()
                self.add(unit, group)
                unit_id += 1

    def _received(self, topic: str, payload: bytes) -> None:
        for name in self.sides:
            watched = SIDES[name].console.watched(topic, payload)
            if watched is not None:
                self.clock.inject(self.message, watched.imei, topic, payload)
                return

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish as the cloud, from sim time (a failure is reported, not raised)."""
        console = self.console
        if console is None:
            raise ValueError("the console is not connected")
        self._spawn(console.publish(topic, payload), f"publish to {topic}")

    def broker_stop(self) -> None:
        self._spawn(self.fleet.host.pause_broker(), "broker-stop")

    def broker_start(self) -> None:
        self._spawn(self.fleet.host.resume_broker(), "broker restart")

    def _spawn(self, work: Coroutine[Any, Any, None], what: str) -> None:
        task = self.loop.create_task(work)
        self._tasks.add(task)

        def done(finished: asyncio.Task[Any]) -> None:
            self._tasks.discard(finished)
            if not finished.cancelled() and finished.exception() is not None:
                self.failures(f"{what}: {finished.exception()}")

        task.add_done_callback(done)

    def ports(self) -> list[tuple[Unit, dict[str, str]]]:
        """Each unit and its ports' PTY links, for the user's own host code."""
        return [
            (unit, {port: endpoint.device for port, endpoint in endpoints.items()})
            for unit, endpoints in zip(self.units, self.fleet.endpoints, strict=True)
        ]

    async def close(self) -> None:
        if self._served is not None:
            server, handle = self._served
            handle.close()
            await server.stop()
        for task in list(self._tasks):
            task.cancel()
        if self.console is not None:
            self.console.close()
        await self.fleet.close()
