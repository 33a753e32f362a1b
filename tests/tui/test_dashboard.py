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

from tests.tui.live import run_live, run_scenario_live, until, until_api
from tui.app import DashboardApp
from tui.client import HttpApi
from tui.screens.faults import FaultsScreen
from tui.screens.fleet import FleetScreen
from tui.screens.scenario import ScenarioScreen
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


def cell_of(screen: ScenarioScreen, table_id: str, row: int, column: str) -> str:
    """The text a cell of one of the scenario screen's tables shows."""
    table: DataTable[Any] = screen.query_one(table_id, DataTable)
    return Text.from_markup(str(table.get_cell(str(row), column))).plain


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

        await pilot.press("i", *"GET_IMEI", "enter")  # the host sends it, framed
        await until(
            pilot,
            lambda: f"content {fleet.units[1].imei}" in log_text(app, "#serial-log"),
            "the unit's answer to GET_IMEI, decoded",
        )
        assert "action GET_IMEI" in log_text(app, "#serial-log")
        screen.query_one("#direction", Select).value = "write"
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
        await pilot.press("p")  # on again: the booting DTU notifies its host, frame by frame
        decoded = re.compile(r"XGC_ACK action GET_DTU_STATE · sn (\d+) · timestamp 0 ·\s+content "
                             r"init-ok  ✓ (\d+) \(expected [0-9A-F]+ hex, (\d+)\)")  # fmt: skip
        await until(pilot, lambda: decoded.search(log_text(app, "#serial-log")), "a decoded frame",
                    timeout_s=30)  # the boot to init-ok takes some 8 s of real time  # fmt: skip
        found = decoded.search(log_text(app, "#serial-log"))
        assert found is not None
        assert (found[1], found[2]) == (fleet.units[1].imei, found[3])
        await pilot.press("escape")
        assert isinstance(app.screen, FleetScreen)

    run_live(tmp_path, body, units=2, ports=("uart",))


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


RUN = """
name: two units, one switched off
seed: 3
duration: 4s
units:
  - {name: lab, count: 2, profile: xgc}
steps:
  - at: 1s
    select: "1"
    poke: power-off
  - after: 0s
    wait: {select: "1", state: "off", timeout: 2s}
  - at: 3s
    note: the end is near
expect:
  - name: unit 1 is off at 2s
    state: {select: "1", phase: "off", at: 2s}
  - name: unit 1 is off at the end
    state: {select: "1", phase: "off"}
  - name: unit 0 is off at the end
    state: {select: "0", phase: "off"}
"""


def test_the_scenario_screen_follows_a_real_time_run_to_its_verdicts(tmp_path: Path) -> None:
    async def body(app: DashboardApp, pilot: Pilot[Any], task: Any) -> None:
        await pilot.press("r")
        screen = app.screen
        assert isinstance(screen, ScenarioScreen)

        def state(step: int) -> str:
            return Text.from_markup(cell_of(screen, "#steps", step, "state")).plain

        def status(check: int) -> str:
            return Text.from_markup(cell_of(screen, "#checks", check, "status")).plain

        await until(pilot, lambda: screen.view is not None, "the first reading")
        title = screen.query_one("#scenario-title", Static)
        assert "two units, one switched off · seed 3 · sim 0:00:0" in text_of(title)
        assert [status(check) for check in range(3)] == ["pending"] * 3
        await until(pilot, lambda: state(0) == "done", "the power-off done")
        await until(pilot, lambda: state(1) == "done", "the wait done")
        assert "1 units reached state off within" in cell_of(screen, "#steps", 1, "detail")
        await until(pilot, lambda: status(0) == "pass", "the 2 s look decided")
        assert status(1) == "pending"
        assert "so far (holds): all 1 units are off" in cell_of(screen, "#checks", 1, "evidence")
        assert "so far (not yet): 1 of 1 units are not off" in cell_of(
            screen, "#checks", 2, "evidence"
        )
        await until(pilot, lambda: "finished" in text_of(title), "the end", timeout_s=15)
        assert "finished: FAILED · 2 pass, 1 fail, 0 pending" in text_of(title)
        assert [status(check) for check in range(3)] == ["pass", "pass", "fail"]
        assert [state(step) for step in range(3)] == ["done"] * 3
        told = [
            (data["what"], data.get("step", data.get("expectation")),
             data.get("state") or data.get("status") or data.get("phase"))
            async for event in app.api.events(follow=False)
            if event["kind"] == "scenario" and (data := event["data"])
        ]  # fmt: skip
        assert told == [
            ("step", 0, "running"), ("step", 0, "done"), ("step", 1, "running"),
            ("step", 1, "done"), ("expectation", 0, "pass"), ("step", 2, "running"),
            ("step", 2, "done"), ("phase", None, "grace"), ("expectation", 1, "pass"),
            ("expectation", 2, "fail"), ("phase", None, "finished"),
        ]  # fmt: skip
        report = await task
        assert [outcome["passed"] for outcome in report["expectations"]] == [True, True, True,
                                                                             False]  # fmt: skip

    run_scenario_live(tmp_path, body, RUN)


def test_the_scenario_screen_of_a_fleet_without_one_says_so(tmp_path: Path) -> None:
    async def body(app: DashboardApp, pilot: Pilot[Any], fleet: Fleet, probe: HttpApi) -> None:
        await pilot.press("r")
        title = app.screen.query_one("#scenario-title", Static)
        await until(pilot, lambda: "runs no scenario" in str(title.content), "the 404's reason")
        assert str(title.content) == (
            "this fleet runs no scenario (vdtu scenario run --realtime serves one)"
        )
        await pilot.press("escape")
        assert isinstance(app.screen, FleetScreen)

    run_live(tmp_path, body, units=1)
