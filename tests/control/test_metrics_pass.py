"""The once-a-second pass over a fleet's units goes a chunk of units a loop turn, and its
``metrics`` event, at the end, counts every unit."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from vdtu.control import attach
from vdtu.control.attach import FleetHandle
from vdtu.fleet import Fleet, FleetConfig


def test_the_metrics_pass_scans_a_chunk_a_loop_turn_and_counts_every_unit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(attach, "SCAN_CHUNK", 2)

    async def check() -> None:
        fleet = Fleet(
            asyncio.get_running_loop(),
            FleetConfig(units=5, state_dir=None, pty_dir=tmp_path, ports=(), profile="xgc"),
        )
        await fleet.start()
        handle = FleetHandle(fleet, observe=False)
        try:
            handle.start_metrics()
            kinds = [event.kind for event in handle.events.read(0).events]
            assert "metrics" not in kinds  # units 0 and 1 only, so far
            assert len(handle._seen) == 2
            for _ in range(2):  # units 2-3, then 4 and the event
                await asyncio.sleep(0)
            metrics = [e.data for e in handle.events.read(0).events if e.kind == "metrics"]
            assert len(handle._seen) == 5
            assert len(metrics) == 1
            assert metrics[0]["units"] == 5
            assert metrics[0]["powered"] == 5
            assert metrics[0]["faulted"] == 0
        finally:
            handle.close()
            await fleet.close()

    asyncio.run(check())
