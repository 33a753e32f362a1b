"""Every screen and its main actions, driven with the Pilot, against a real fleet serving
the control API in this process (tests/tui/live.py): what the user does on screen must
reach the units, and what the units do must reach the screen."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text
from textual.coordinate import Coordinate
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, OptionList, RichLog, Select, Static, Switch

from tests.tui.live import run_live, until, until_api
from tui.app import DashboardApp
from tui.client import HttpApi
from tui.screens.faults import FaultsScreen
from tui.screens.fleet import FleetScreen
from tui.screens.spawn import SpawnScreen
from tui.screens.unit import UnitScreen
from vdtu.fleet import Fleet


def table(app: DashboardApp) -> DataTable[Any]:
    screen = app.screen
    assert isinstance(screen, FleetScreen)
    return screen.table


def shown(app: DashboardApp) -> list[str]:
    """The unit ids the fleet table shows, top to bottom."""
    units = table(app)
    return [
        str(units.coordinate_to_cell_key(Coordinate(row, 0)).row_key.value)
        for row in range(units.row_count)
    ]


def cell(app: DashboardApp, unit: int, column: str) -> str:
    """The text a cell shows (its markup rendered)."""
    return Text.from_markup(str(table(app).get_cell(str(unit), column))).plain


def text_of(widget: Static) -> str:
    """What a Static shows, as plain text (a Rich table or text alike)."""
    console = Console(width=200, file=io.StringIO(), record=True)
    console.print(widget.content)
    return console.export_text()


def log_text(app: DashboardApp, selector: str) -> str:
    return "\n".join(line.text for line in app.screen.query_one(selector, RichLog).lines)


async def pick_kind(pilot: Pilot[Any], app: DashboardApp, kind: str) -> None:
    """Highlight ``kind`` in the faults screen's list and open its form."""
    screen = app.screen
    assert isinstance(screen, FaultsScreen)
    await until(pilot, lambda: screen.kinds, "the catalogue")
    options = screen.query_one("#kinds", OptionList)
    options.highlighted = next(i for i, k in enumerate(screen.kinds) if k["kind"] == kind)
    await until(pilot, lambda: screen.kind is not None and screen.kind["kind"] == kind, kind)
    await pilot.pause()


async def fill(pilot: Pilot[Any], app: DashboardApp, selector: str, text: str) -> None:
    field = app.screen.query_one(selector, Input)
    field.value = text
    field.focus()
    await pilot.pause()


def test_the_fleet_table_shows_filters_sorts_and_selects_the_units(tmp_path: Path) -> None:
    async def body(app: DashboardApp, pilot: Pilot[Any], fleet: Fleet, probe: HttpApi) -> None:
        await until(pilot, lambda: len(shown(app)) == 3, "three rows")
        assert shown(app) == ["0", "1", "2"]
        assert [cell(app, unit, "imei") for unit in range(3)] == [u.imei for u in fleet.units]
        await pilot.press("slash", *fleet.units[1].imei[-4:])
        assert shown(app) == ["1"]
        app.screen.query_one("#filter", Input).value = ""
        await pilot.press("escape")
        assert shown(app) == ["0", "1", "2"]

        await pilot.press("S")
        assert shown(app) == ["2", "1", "0"]
        fleet_screen = app.screen
        assert isinstance(fleet_screen, FleetScreen)
        assert fleet_screen.cursor_unit() == 1  # the cursor stays on the unit it was on
        table(app).move_cursor(row=0)
        await pilot.press("space", "space")
        assert app.model.selected == {2, 1}
        assert cell(app, 2, "sel") == "●"
        assert app.default_target() == "1-2"
        await pilot.press("A")
        assert app.model.selected == set()
        await pilot.press("a")
        assert app.model.selected == {0, 1, 2}
        await pilot.press("A")

        await probe.poke("2", "power-off", {})
        await pilot.press("t")  # the first state: off
        await until(pilot, lambda: shown(app) == ["2"], "only the powered-off unit")
        assert cell(app, 2, "state").startswith("off")
        assert "units 3" in text_of(app.screen.query_one("#headline", Static))

    run_live(tmp_path, body)


def test_the_unit_screen_shows_the_snapshot_drives_inputs_and_writes_to_the_host(
    tmp_path: Path,
) -> None:
    async def body(app: DashboardApp, pilot: Pilot[Any], fleet: Fleet, probe: HttpApi) -> None:
        await until(pilot, lambda: len(shown(app)) == 2, "two rows")
        await pilot.press("down", "enter")
        screen = app.screen
        assert isinstance(screen, UnitScreen)
        assert screen.unit == 1
        await until(pilot, lambda: screen.snapshot is not None, "the snapshot")
        identity = text_of(screen.query_one("#identity", Static))
        assert fleet.units[1].imei in identity

        await pilot.press("2")
        await pilot.click("#in-3")
        assert screen.query_one("#in-3", Switch).value is True

        async def in3_high() -> bool:
            return bool((await probe.unit("1"))["gpio"]["inputs"]["in3"] == 1)

        await until_api(pilot, in3_high, "input 3 high on the unit")

        await pilot.press("i", *"HELLO", "enter")
        await until(pilot, lambda: "HELLO" in log_text(app, "#serial-log"), "HELLO on the host")
        assert "(written from the prompt)" in log_text(app, "#serial-log")

        screen.query_one("#serial-log", RichLog).focus()
        await pilot.press("p")

        async def off() -> bool:
            return (await probe.unit("1"))["powered"] is False

        await until_api(pilot, off, "unit 1 powered off")
        power = screen.query_one("#power", Static)
        await until(pilot, lambda: re.search(r"supply\s+off", text_of(power)), "the power panel")
        await pilot.press("escape")
        assert isinstance(app.screen, FleetScreen)

    run_live(tmp_path, body, units=2)


def test_faults_are_applied_to_the_selection_and_cleared_and_bad_input_is_told(
    tmp_path: Path,
) -> None:
    async def body(app: DashboardApp, pilot: Pilot[Any], fleet: Fleet, probe: HttpApi) -> None:
        await until(pilot, lambda: len(shown(app)) == 2, "two rows")
        await pilot.press("down", "space", "x")
        screen = app.screen
        assert isinstance(screen, FaultsScreen)
        assert screen.query_one("#target", Input).value == "1"

        await pick_kind(pilot, app, "sim-pull")
        await fill(pilot, app, "#for", "60")
        await pilot.press("enter")

        async def sim_absent() -> bool:
            return bool((await probe.unit("1"))["modem"]["sim"]["state"] == "ABSENT")

        await until_api(pilot, sim_absent, "unit 1's SIM pulled")
        await until(pilot, lambda: "sim-pull for 60 s" in log_text(app, "#results"), "the answer")

        await fill(pilot, app, "#target", "dtu1")
        await pilot.press("enter")
        assert "bad selector term 'dtu1'" in log_text(app, "#results")
        await pick_kind(pilot, app, "signal")
        await fill(pilot, app, "#target", "1")
        await fill(pilot, app, "#param-csq", "strong")
        await pilot.press("enter")
        assert "csq must be an integer in 0..31, not 'strong'" in log_text(app, "#results")
        await fill(pilot, app, "#param-csq", "99")
        await pilot.press("enter")
        await until(pilot, lambda: "csq must be" in log_text(app, "#results").split("'strong'")[-1],
                    "the server's refusal")  # fmt: skip

        await pilot.press("escape")
        await until(pilot, lambda: cell(app, 1, "faults") == "sim-pull", "sim-pull in the table")
        assert cell(app, 1, "sim") == "ABSENT"

        await pilot.press("x", "ctrl+l")

        async def cleared() -> bool:
            return not (await probe.unit("1"))["active_faults"]

        await until_api(pilot, cleared, "the fault cleared")
        await until(pilot, lambda: "1: cleared sim-pull" in log_text(app, "#results"), "answer")

    run_live(tmp_path, body, units=2)


def test_units_are_added_and_powered_off_from_the_spawn_screen(tmp_path: Path) -> None:
    async def body(app: DashboardApp, pilot: Pilot[Any], fleet: Fleet, probe: HttpApi) -> None:
        await until(pilot, lambda: len(app.model.units) == 2, "two units")
        await pilot.press("n")
        assert isinstance(app.screen, SpawnScreen)
        await fill(pilot, app, "#count", "many")
        await pilot.press("enter")
        assert "how many is a whole number in 1..10000, not 'many'" in log_text(app, "#results")
        await fill(pilot, app, "#count", "2")
        await pilot.press("enter")
        await until(pilot, lambda: len(app.model.units) == 4, "four units")
        assert len(fleet.units) == 4
        assert "added 2 units (2-3)" in log_text(app, "#results")
        app.screen.query_one("#profile", Select).value = "quec"
        await fill(pilot, app, "#count", "1")
        await pilot.press("enter")
        await until(pilot, lambda: len(app.model.units) == 5, "five units")
        assert [unit.config.profile for unit in fleet.units] == ["xgc", "quec", "xgc", "quec",
                                                                 "quec"]  # fmt: skip
        assert "added 1 quec units (4)" in log_text(app, "#results")
        await until(pilot, lambda: app.model.units[4].row["profile"] == "quec", "unit 4's row")

        await fill(pilot, app, "#power-target", "3")
        await pilot.press("ctrl+o")

        async def off() -> bool:
            return (await probe.unit("3"))["powered"] is False

        await until_api(pilot, off, "unit 3 off")
        await pilot.press("escape")
        await until(pilot, lambda: cell(app, 3, "state").startswith("off"), "unit 3 off in table")

    run_live(tmp_path, body, units=2, profile="mix")
