"""SVG snapshots of every screen over the fixed fleet (tests/tui/fake_api.py).

Nothing here reads a clock or a seed: the fleet, its events and their wall times are
fixed, times are drawn in UTC (conftest), the input cursor does not blink. Update the
pictures after a deliberate change with ``pytest tests/tui --snapshot-update`` and look
at them (``__snapshots__/``) before committing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input, OptionList

from tests.tui.fake_api import filled, fixed_app
from tui.app import DashboardApp
from tui.screens.unit import UnitScreen

SIZE = (120, 40)
SnapCompare = Callable[..., bool]


async def settled(pilot: Pilot[Any]) -> None:
    """Let the workers finish and the screen redraw; stop every cursor blinking."""
    app = pilot.app
    assert isinstance(app, DashboardApp)
    await app.workers.wait_for_complete()
    app.flush()
    await pilot.pause()
    for field in app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause()


def app_with(action: Callable[[DashboardApp], None] | None = None) -> tuple[DashboardApp, Any]:
    app = fixed_app()

    async def before(pilot: Pilot[Any]) -> None:
        await filled(app)
        if action is not None:
            action(app)
        await settled(pilot)

    return app, before


def test_fleet_screen(snap_compare: SnapCompare) -> None:
    app, before = app_with()
    assert snap_compare(app, terminal_size=SIZE, run_before=before)


def test_fleet_screen_with_selection_and_a_state_filter(snap_compare: SnapCompare) -> None:
    app, before = app_with(lambda app: app.model.select([0, 1, 6]))
    assert snap_compare(app, press=["t", "t", "t", "t", "t", "_"], terminal_size=SIZE,
                        run_before=before)  # fmt: skip


def test_unit_screen_overview(snap_compare: SnapCompare) -> None:
    app, before = app_with(lambda app: app.open_unit(0))
    assert snap_compare(app, terminal_size=SIZE, run_before=before)


def test_unit_screen_serial_traffic(snap_compare: SnapCompare) -> None:
    app, before = app_with(lambda app: app.open_unit(0))

    async def serial(pilot: Pilot[Any]) -> None:
        await before(pilot)
        assert isinstance(app.screen, UnitScreen)
        await pilot.press("3")
        await settled(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=serial)


def test_unit_screen_gpio(snap_compare: SnapCompare) -> None:
    app, before = app_with(lambda app: app.open_unit(0))
    assert snap_compare(app, press=["2", "_"], terminal_size=SIZE, run_before=before)


def test_faults_screen(snap_compare: SnapCompare) -> None:
    app, before = app_with(lambda app: app.model.select([2]))

    async def faults(pilot: Pilot[Any]) -> None:
        await before(pilot)
        app.action_faults()
        await settled(pilot)
        assert app.screen.query_one(OptionList).option_count == 5
        await settled(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=faults)


def test_spawn_screen(snap_compare: SnapCompare) -> None:
    app, before = app_with(lambda app: app.model.select([0, 1, 2, 3]))
    assert snap_compare(app, press=["n", "_"], terminal_size=SIZE, run_before=before)


def test_help_screen(snap_compare: SnapCompare) -> None:
    app, before = app_with()
    assert snap_compare(app, press=["question_mark", "_"], terminal_size=SIZE, run_before=before)


def test_scenario_screen(snap_compare: SnapCompare) -> None:
    app, before = app_with(lambda app: app.action_scenario())
    assert snap_compare(app, press=["down", "down", "_"], terminal_size=SIZE, run_before=before)
