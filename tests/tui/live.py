"""A dashboard over a real fleet in this process, serving its control API, for Pilot tests.

The fleet is ``vdtu up``'s (real time, the embedded broker) without PTYs; the dashboard
reaches it over HTTP on 127.0.0.1 like any client. ``until`` waits for what the dashboard
shows, pausing the Pilot so the app's workers and timers run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from tests.control.served import served_fleet
from tui.app import DashboardApp
from tui.client import HttpApi
from vdtu.fleet import Fleet, FleetConfig
from vdtu.scenario.load import parse_scenario
from vdtu.scenario.realtime import RealtimeWorld
from vdtu.scenario.run import ScenarioRun
from vdtu.scenario.world import Transcript

SIZE = (120, 40)
Body = Callable[[DashboardApp, Pilot[Any], Fleet, HttpApi], Awaitable[None]]


def run_live(
    tmp_path: Path,
    body: Body,
    *,
    units: int = 3,
    profile: str = "xgc",
    ports: tuple[str, ...] = (),
) -> None:
    """Start a fleet of ``units`` of ``profile`` (PTYs on ``ports``) and its API, run
    ``body`` against a dashboard over it."""

    async def main() -> None:
        served = served_fleet(tmp_path, units=units, profile=profile, ports=ports)
        async with served as (fleet, server):
            probe = HttpApi(server.url, server.token)
            try:
                app = DashboardApp(HttpApi(server.url, server.token), poll_s=0.2, flush_s=0.1)
                async with app.run_test(size=SIZE) as pilot:
                    await body(app, pilot, fleet, probe)
            finally:
                await probe.close()

    asyncio.run(main())


ScenarioBody = Callable[[DashboardApp, Pilot[Any], "asyncio.Task[dict[str, Any]]"], Awaitable[None]]


def run_scenario_live(tmp_path: Path, body: ScenarioBody, text: str) -> None:
    """Run the scenario ``text`` in real time in this process (no PTYs), serving the
    control API as ``vdtu scenario run --realtime`` does; run ``body`` against a dashboard
    over it, with the run's task (its report when done)."""

    async def main() -> None:
        scenario = parse_scenario(text, "live.yaml")
        config = FleetConfig(state_dir=None, pty_dir=tmp_path, ports=())
        world = RealtimeWorld(scenario, seed=scenario.seed, transcript=Transcript(None),
                              loop=asyncio.get_running_loop(), config=config,
                              failures=lambda reason: None)  # fmt: skip
        stop = asyncio.Event()
        try:
            await world.open()
            run = ScenarioRun(scenario, world=world)
            server = await world.serve(run)
            task = asyncio.ensure_future(run.run_realtime(stop, grace_s=0.2))
            app = DashboardApp(HttpApi(server.url, server.token), poll_s=0.2, flush_s=0.1)
            async with app.run_test(size=SIZE) as pilot:
                await body(app, pilot, task)
            stop.set()
            await task
        finally:
            await world.close()

    asyncio.run(main())


async def until(
    pilot: Pilot[Any], condition: Callable[[], object], what: str, *, timeout_s: float = 10.0
) -> None:
    """Pause the app until ``condition()`` holds; fail naming ``what`` after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        await pilot.pause(0.05)


async def until_api(
    pilot: Pilot[Any],
    check: Callable[[], Awaitable[bool]],
    what: str,
    *,
    timeout_s: float = 10.0,
) -> None:
    """Like ``until``, with a condition that asks the API itself (not the dashboard)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        await pilot.pause(0.1)
