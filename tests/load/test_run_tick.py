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


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_terminal_progress_line_rewrites_itself_and_erases_what_a_longer_one_left() -> None:
    """On a terminal each second's line starts at the line's start and ends with erase to end
    of line, so a shorter line (a rate that went from 1000/s to 0/s) leaves no old digits."""

    async def check() -> str:
        out = _Terminal()
        run = LoadRun(asyncio.get_running_loop(), build_options({"units": 2}), out)
        try:
            run.started_at = time.monotonic()
            run._tick()
            run._tick()
        finally:
            await run.fleet.close()
        return out.getvalue()

    written = asyncio.run(check())
    lines = written.split("\r")[1:]
    assert len(lines) == 2, written
    assert all(line.startswith("conn 0/2 ") and line.endswith("\x1b[K") for line in lines)
    assert "\n" not in written
