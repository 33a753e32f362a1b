"""The run's once-a-second tick without a progress line: first connections noted, no report."""

from __future__ import annotations

import asyncio
import gc
import io
import time
from typing import cast

import pytest

from vdtu.load.hosts import Host
from vdtu.load.options import build_options
from vdtu.load.runner import LoadRun


class _Host:
    """A unit's host as the tick sees it: whether the unit reaches its cloud."""

    def __init__(self) -> None:
        self.up = False
        self.asked = 0

    def cloud_connected(self) -> bool:
        self.asked += 1
        return self.up


def test_without_a_progress_line_the_tick_notes_first_connections_and_makes_no_report(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def check() -> None:
        options = build_options({"units": 2, "profile": "xgc", "progress": False})
        run = LoadRun(asyncio.get_running_loop(), options, io.StringIO())

        def no_report(*, final: bool = False) -> None:
            raise AssertionError("the tick made a report that nobody reads")

        monkeypatch.setattr(run, "report", no_report)
        try:
            host = _Host()
            run.hosts[7] = cast("Host", host)
            run._not_yet_connected.add(7)
            run.started_at = time.monotonic()
            run._tick()
            assert 7 not in run.first_connected
            host.up = True
            run._tick()
            assert 0 <= run.first_connected[7] <= time.monotonic() - run.started_at
            asked = host.asked
            run._tick()
            assert host.asked == asked  # a unit once noted is not looked at again
        finally:
            gc.unfreeze()
            await run.fleet.close()

    asyncio.run(check())
