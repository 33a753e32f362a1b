"""End to end: the dashboard attached over the API to a real ``vdtu up`` child process
(found through its up.json, as ``vdtu tui --attach`` finds it), and the fleet
``vdtu tui`` starts itself. What issue 14 asks of it: pulling a unit's SIM from the
dashboard shows on the unit's serial view and in the fleet table; a line typed at the
prompt reaches the host's PTY; quitting leaves an attached fleet running as it was."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import serial
from textual.pilot import Pilot
from textual.widgets import Input

from tests.e2e.running import link, vdtu_up
from tests.tui.live import SIZE, until
from tests.tui.test_dashboard import cell, log_text, pick_kind
from tui.app import DashboardApp
from tui.client import HttpApi, locate
from tui.local import LocalFleet
from tui.screens.faults import FaultsScreen
from tui.screens.unit import UnitScreen

pytestmark = [pytest.mark.realtime, pytest.mark.pty]


async def read_until(
    port: serial.Serial, pilot: Pilot[Any], text: bytes, timeout_s: float
) -> bytes:
    """What the host reads on its PTY until ``text`` came (the app runs meanwhile)."""
    seen = b""
    deadline = time.monotonic() + timeout_s
    while text not in seen:
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} never reached the host; it read {seen[-200:]!r}")
        seen += port.read(port.in_waiting or 1)
        await pilot.pause(0.02)
    return seen


def test_an_attached_dashboard_pulls_a_sim_shows_it_and_leaves_the_fleet_running(
    tmp_path: Path,
) -> None:
    pty_dir = tmp_path / "pty"
    with vdtu_up("--pty-dir", str(pty_dir), "--no-state", units=1) as fleet:
        url, token = locate(pty_dir, None, None)
        host = serial.Serial(str(link(fleet, "uart")), 115200, timeout=0)

        async def main() -> None:
            app = DashboardApp(HttpApi(url, token), pty_dir=pty_dir, poll_s=0.3, flush_s=0.1)
            async with app.run_test(size=SIZE) as pilot:
                await until(pilot, lambda: 0 in app.model.units, "unit 0's row")
                await pilot.press("enter")
                unit = app.screen
                assert isinstance(unit, UnitScreen)
                connected = lambda: (unit.snapshot or {}).get("phase") == "connected"  # noqa: E731
                await until(pilot, connected, "unit 0 connected", timeout_s=25)

                await pilot.press("x")
                assert isinstance(app.screen, FaultsScreen)
                assert app.screen.query_one("#target", Input).value == "0"
                await pick_kind(pilot, app, "sim-pull")
                await pilot.press("enter", "enter")  # the kind, then apply from its form
                applied = "sim-pull on 0: applied to 1"
                await until(pilot, lambda: applied in log_text(app, "#results"), "the fault")
                await pilot.press("escape", "3")
                assert isinstance(app.screen, UnitScreen)
                told = lambda: "mqtt-disconnected" in log_text(app, "#serial-log")  # noqa: E731
                await until(pilot, told, "the unit telling its host", timeout_s=20)

                imei = str((unit.snapshot or {})["imei"])
                await pilot.press("i", *"GET_IMEI", "enter")  # sent as the host, framed
                answer = f"#GET_IMEI#{imei}#0#{imei}&#".encode()
                assert answer in await read_until(host, pilot, answer, 5.0)

                await pilot.press("escape", "escape")
                await until(pilot, lambda: cell(app, 0, "sim") == "ABSENT", "SIM ABSENT in table")
                assert cell(app, 0, "faults") == "sim-pull"
                await pilot.press("q")

        try:
            asyncio.run(main())
        finally:
            host.close()

        async def after() -> tuple[dict[str, Any], dict[str, Any]]:
            api = HttpApi(url, token)
            try:
                return await api.fleet(), await api.unit("0")
            finally:
                await api.close()

        assert fleet.process.poll() is None, "quitting the dashboard stopped the fleet"
        summary, unit0 = asyncio.run(after())
        assert summary["units"] == 1
        assert [fault["kind"] for fault in unit0["active_faults"]] == ["sim-pull"]


def test_vdtu_tui_starts_its_own_vdtu_up_and_stops_it() -> None:
    local = LocalFleet(units=2, profile="mix")
    local.spawn()
    try:

        async def check() -> dict[str, Any]:
            api = HttpApi(*await local.ready())
            try:
                return await api.fleet()
            finally:
                await api.close()

        assert asyncio.run(check())["units"] == 2
        assert (local.pty_dir / "dtu1" / "uart").exists()
    finally:
        local.stop()
    assert local.process is not None
    assert local.process.returncode == 0
    assert not local.pty_dir.exists()
