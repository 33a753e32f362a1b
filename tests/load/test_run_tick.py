"""A run notes each unit's first connection when its ``cloud`` event says so; its
once-a-second tick without a progress line makes no report."""

from __future__ import annotations

import asyncio
import gc
import io
import time

import pytest

from vdtu.load.options import build_options
from vdtu.load.runner import LoadRun


def test_first_connections_are_noted_from_the_cloud_event_and_the_tick_makes_no_report(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def check() -> None:
        options = build_options({"units": 2, "profile": "xgc", "progress": False})
        run = LoadRun(asyncio.get_running_loop(), options, io.StringIO())

        def no_report(*, final: bool = False) -> None:
            raise AssertionError("the tick made a report that nobody reads")

        monkeypatch.setattr(run, "report", no_report)
        heard: list[int] = []
        run.on_first_connected = heard.append
        try:
            run.started_at = time.monotonic()
            run._add_unit(1)
            log = run.hosts[1].unit.log
            assert log.observer is None  # noted without observing the unit's other events
            run._tick()
            log.event(0.0, "cloud", {"up": False, "reason": "refused"})
            assert 1 not in run.first_connected
            log.event(0.0, "cloud", {"up": True})
            assert 0 <= run.first_connected[1] <= time.monotonic() - run.started_at
            first = run.first_connected[1]
            log.event(0.0, "cloud", {"up": False, "reason": "lost"})
            log.event(0.0, "cloud", {"up": True})
            run._tick()
            assert run.first_connected == {1: first}  # the first connection only
            assert heard == [1]
        finally:
            gc.unfreeze()
            await run.fleet.close()

    asyncio.run(check())
