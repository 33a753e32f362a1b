"""The app over the fixed fleet: help, the command palette's entries, missed events, an
API that fails, and the requests the screens send (tests/tui/fake_api.py records them)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, RichLog, Static

from tests.tui.fake_api import FakeApi, filled, fixed_app, unit_row
from tui.app import DashboardApp
from tui.client import ApiError, Json
from tui.screens.faults import FaultsScreen
from tui.screens.fleet import FleetScreen
from tui.screens.help import HelpScreen
from tui.screens.scenario import ScenarioScreen
from tui.screens.unit import UnitScreen
from tui.widgets.status import StatusLine
from vdtu.cli import main

SIZE = (120, 40)


def status(app: DashboardApp) -> str:
    return str(app.screen.query_one(StatusLine).content)


def test_help_opens_and_closes_and_the_palette_offers_the_screens() -> None:
    async def main() -> None:
        app = fixed_app()
        async with app.run_test(size=SIZE) as pilot:
            await filled(app)
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
            assert isinstance(app.screen, FleetScreen)
            titles = [command.title for command in app.get_system_commands(app.screen)]
            for title in (
                "Faults",
                "Spawn and power",
                "Scenario",
                "Keys",
                "Select all shown",
                "Unit 11",
            ):
                assert title in titles
            await pilot.press("ctrl+p")
            await pilot.pause()
            await pilot.press(*"Spawn", "enter")
            await pilot.pause()
            assert type(app.screen).__name__ == "SpawnScreen"

    asyncio.run(main())


def test_missed_events_are_shown_in_the_status_line() -> None:
    async def main() -> None:
        app = fixed_app()
        async with app.run_test(size=SIZE) as pilot:
            await filled(app)
            assert "missed" not in status(app)
            missed = {"seq": 0, "at": 1.0, "wall": 0.0, "unit": None, "kind": "missed",
                      "data": {"count": 1234}}  # fmt: skip
            app.take_events([missed])
            app.flush()
            await pilot.pause()
            assert "missed 1234 events (the dashboard fell behind)" in status(app)
            assert app.screen.query_one(StatusLine).has_class("-warning")

    asyncio.run(main())


class FailingApi(FakeApi):
    """A fleet that went away."""

    async def fleet(self) -> Json:
        raise ApiError("cannot reach the control API at http://127.0.0.1:1: refused")

    async def unit(self, unit: str) -> Json:
        raise ApiError("no unit 99 (the units: 0-11)")


def test_an_api_that_fails_is_a_message_not_a_crash() -> None:
    async def main() -> None:
        app = DashboardApp(FailingApi(), poll_s=0.05, flush_s=0.05)
        async with app.run_test(size=SIZE) as pilot:
            for _ in range(20):
                await pilot.pause(0.05)
                if "API: cannot reach" in status(app):
                    break
            assert "API: cannot reach the control API at http://127.0.0.1:1" in status(app)
            app.open_unit(99)
            await pilot.pause(0.2)
            title = str(app.screen.query_one("#unit-title", Static).content)
            assert "no unit 99 (the units: 0-11)" in title

    asyncio.run(main())


def test_the_screens_send_the_requests_a_user_means() -> None:
    async def main() -> None:
        api = FakeApi()
        app = DashboardApp(api, live=False)
        async with app.run_test(size=SIZE) as pilot:
            await filled(app)
            await pilot.press("enter")  # unit 0
            screen = app.screen
            assert isinstance(screen, UnitScreen)
            await app.workers.wait_for_complete()
            await pilot.press("4")
            field = screen.query_one("#downlink", Input)
            field.focus()
            await pilot.press(*'{"a":1}', "enter")
            await app.workers.wait_for_complete()
            cloud = "\n".join(line.text for line in screen.query_one("#cloud-log", RichLog).lines)
            assert '↑ uplink   xgc/p/867435059800763/up {"temp": 25.0}' in cloud
            await pilot.press("escape", "x")
            faults = app.screen
            assert isinstance(faults, FaultsScreen)
            await app.workers.wait_for_complete()
            await pilot.pause()
            faults.query_one("#target", Input).value = "3"
            await faults.show_kind("broker-stop")
            await pilot.press("ctrl+t", "enter")
            await app.workers.wait_for_complete()
            results = "\n".join(line.text for line in faults.query_one("#results", RichLog).lines)
            assert "broker-stop: broker-stop is a fleet fault: select all" in results
        calls: list[tuple[str, tuple[Any, ...]]] = api.calls
        assert ("poke", ("0", "downlink", {"payload": '{"a":1}'})) in calls
        assert ("fault", ("3", "broker-stop", {}, None)) in calls

    asyncio.run(main())


def test_vdtu_tui_without_a_fleet_to_attach_to_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tui", "--attach", "--pty-dir", str(tmp_path)]) == 2
    assert f"no running vdtu up or vdtu fleet in {tmp_path} (no up.json)" in capsys.readouterr().err
    assert main(["tui", "--url", "http://127.0.0.1:1", "--token", "t"]) == 2
    assert "--url and --token go with --attach" in capsys.readouterr().err
    assert main(["tui", "--attach", "--url", "http://127.0.0.1:1", "--token", "t"]) == 2
    assert "cannot reach the control API at http://127.0.0.1:1" in capsys.readouterr().err


class SlowApi(FakeApi):
    """A fleet that answers after a while."""

    async def poke(self, select: str, action: str, params: dict[str, Any]) -> Json:
        await asyncio.sleep(0.3)
        return await super().poke(select, action, params)

    async def apply_fault(
        self, select: str, kind: str, params: dict[str, str], for_s: float | None
    ) -> Json:
        await asyncio.sleep(0.3)
        return await super().apply_fault(select, kind, params, for_s)


def test_an_answer_that_comes_after_the_user_left_the_screen_is_dropped() -> None:
    async def main() -> None:
        api = SlowApi()
        app = DashboardApp(api, live=False)
        async with app.run_test(size=SIZE) as pilot:
            await filled(app)
            await pilot.press("enter")
            assert isinstance(app.screen, UnitScreen)
            await app.workers.wait_for_complete()
            await pilot.press("p", "escape")  # power off, and leave before the answer
            await pilot.press("x")
            await pilot.pause(0.1)
            assert isinstance(app.screen, FaultsScreen)
            await app.screen.show_kind("sim-pull")
            await pilot.press("ctrl+t", "enter", "escape")  # apply, and leave
            await pilot.pause(0.6)
            assert isinstance(app.screen, FleetScreen)
            assert app.is_running
        assert ("poke", ("0", "power-off", {})) in api.calls
        assert ("fault", ("0", "sim-pull", {}, None)) in api.calls

    asyncio.run(main())


def test_the_fleet_table_draws_updated_cells_and_renders_only_the_changed_rows_again() -> None:
    async def main() -> None:
        app = fixed_app()
        async with app.run_test(size=SIZE) as pilot:
            await filled(app)
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, FleetScreen)
            table = screen.table

            def drawn(row: int) -> str:
                return table.render_line(row + 1).text  # line 0 is the header

            assert "mqtt-connected" in drawn(0)
            rendered_before = drawn(5)
            counter = table._update_count
            app.model.apply_rows([{**unit_row(0), "phase": "off", "state": "powered-down"}])
            screen.redraw(app.model.take_dirty())
            await pilot.pause()
            assert "off powered-down" in drawn(0)
            assert "mqtt-connected" not in drawn(0)
            assert drawn(5) == rendered_before
            assert table._update_count == counter  # row order and offsets were kept
            cached = [key for key in table._cell_render_cache.keys() if key[0] == "0"]  # noqa: SIM118
            assert cached  # row 0 was rendered again, after its old cells were dropped

    asyncio.run(main())


class EndingRun(FakeApi):
    """A scenario run that answers once, then has ended."""

    answered = False

    async def scenario(self) -> Json:
        if self.answered:
            raise ApiError("cannot reach the control API at http://127.0.0.1:41235: refused")
        self.answered = True
        return await super().scenario()


def test_the_scenario_screen_keeps_the_last_reading_when_the_run_has_gone() -> None:
    async def main() -> None:
        app = DashboardApp(EndingRun(), poll_s=0.05, flush_s=0.05)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("r")
            screen = app.screen
            assert isinstance(screen, ScenarioScreen)
            screen.every_s = 0.05
            screen.poke()
            title = screen.query_one("#scenario-title", Static)
            for _ in range(40):
                await pilot.pause(0.05)
                if "not read again" in str(title.content):
                    break
            shown = str(title.content)
            assert "Quick check, short enough for real time" in shown
            assert "1 pass, 1 fail, 1 pending" in shown
            assert "not read again: cannot reach the control API" in shown

    asyncio.run(main())
