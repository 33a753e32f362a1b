"""A real-time fleet in this process serving its control API on 127.0.0.1 (no PTYs unless
asked for), for the API's tests and the dashboard's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from vdtu.control.attach import serve
from vdtu.control.server import ControlServer
from vdtu.fleet import Fleet, FleetConfig


@asynccontextmanager
async def served_fleet(
    tmp_path: Path, *, units: int, profile: str = "xgc", ports: tuple[str, ...] = ()
) -> AsyncIterator[tuple[Fleet, ControlServer]]:
    """A started fleet of ``units`` of ``profile`` with PTYs on ``ports`` and its API server;
    both stopped at the end."""
    fleet = Fleet(
        asyncio.get_running_loop(),
        FleetConfig(units=units, state_dir=None, pty_dir=tmp_path, ports=ports, profile=profile),
    )
    await fleet.start()
    server, handle = await serve(fleet)
    try:
        yield fleet, server
    finally:
        handle.close()
        await server.stop()
        await fleet.close()
