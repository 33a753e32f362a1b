"""The dashboard application: one API client, one fleet model, the screens over them.

Two workers do all the API traffic of the fleet view: ``poll_fleet`` reads the fleet's
figures and its units' rows (in chunks of ``CHUNK`` units, one request each, so that no
single JSON document of 10 000 rows is parsed in one go on the UI loop) every
``poll_s``; ``follow_events`` reads the event stream into a pending list, and takes at
most ``EVENT_BUDGET`` events a second: past that it stops reading for the rest of the
second, the server's ring drops what the dashboard could not take, and the stream's
``missed`` line says how many (shown in the status line, never hidden). Nothing touches
the widgets from there: a timer (``flush_s``, four times a second) hands the pending
events to the model, routes each open unit screen its unit's events, and lets the fleet
screen redraw the rows the model marked dirty. Another timer samples the charts once a
second. Screens do their own requests (a unit's snapshot, a fault, a poke) in their own
workers; a failed request is a message on screen, never an exception out of the app.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.screen import Screen

from tui.client import Api, ApiError, Json
from tui.model import FleetModel, compact
from tui.screens.faults import FaultsScreen
from tui.screens.fleet import FleetScreen
from tui.screens.help import HelpScreen
from tui.screens.scenario import ScenarioScreen
from tui.screens.spawn import SpawnScreen
from tui.screens.unit import UnitScreen
from tui.widgets.status import StatusLine

CHUNK = 1000
"""Units per ``GET /v1/units`` request when the whole fleet is read."""

EVENT_BUDGET = 4000
"""Events a second the dashboard reads at most (the server counts the rest as missed)."""

RETRY_S = 2.0
"""How long to wait before asking again after the API failed."""


class DashboardApp(App[None]):
    """``vdtu tui``: the fleet, a unit, faults, spawning and a scenario run, over the control
    API."""

    CSS_PATH = "dashboard.tcss"
    TITLE = "vdtu"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help"),
        Binding("x", "faults", "Faults"),
        Binding("n", "spawn", "Spawn/power"),
        Binding("r", "scenario", "Scenario"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        api: Api,
        *,
        live: bool = True,
        poll_s: float = 1.0,
        flush_s: float = 0.25,
        pty_dir: Path | None = None,
        owned: bool = False,
    ) -> None:
        """Args:
        api: the fleet's control API.
        live: poll and follow the fleet (tests of fixed data turn it off and call
            ``sync_once`` and ``take_events`` themselves).
        poll_s: how often the units' rows are read.
        flush_s: how often what arrived is drawn.
        pty_dir: where the fleet's PTY links are, when known (shown on a unit's screen).
        owned: whether quitting stops the fleet (``vdtu tui`` started it).
        """
        super().__init__()
        self.api = api
        self.model = FleetModel()
        self.live = live
        self.poll_s = poll_s
        self.flush_s = flush_s
        self.pty_dir = pty_dir
        self.owned = owned
        self.kinds: list[Json] | None = None
        self.last_error: str | None = None
        self.last_seq: int | None = None
        self._pending: list[Json] = []
        self.sub_title = api.url + ("  (started by the dashboard)" if owned else "  (attached)")

    def on_mount(self) -> None:
        self.push_screen(FleetScreen())
        if self.live:
            self.poll_fleet()
            self.follow_events()
            self.set_interval(self.flush_s, self.flush)
            self.set_interval(1.0, self.model.sample)

    # -- the fleet's data --------------------------------------------------------------

    @work(exclusive=True, group="poll")
    async def poll_fleet(self) -> None:
        """Read the fleet's figures and rows every ``poll_s`` until the app ends."""
        while True:
            try:
                await self.sync_once()
            except ApiError as exc:
                self.last_error = str(exc)
                await asyncio.sleep(RETRY_S)
                continue
            self.last_error = None
            await asyncio.sleep(self.poll_s)

    async def sync_once(self) -> None:
        """One read of ``GET /v1/fleet`` and of every unit's row."""
        summary = await self.api.fleet()
        self.model.set_summary(summary)
        count = int(summary.get("units", 0))
        for start in range(0, count, CHUNK):
            end = min(start + CHUNK, count) - 1
            self.model.apply_rows(await self.api.units(f"{start}-{end}"))

    @work(exclusive=True, group="events")
    async def follow_events(self) -> None:
        """Read the event stream into the pending list, within ``EVENT_BUDGET`` a second."""
        while True:
            try:
                await self._read_events()
            except ApiError as exc:
                self.last_error = str(exc)
            await asyncio.sleep(RETRY_S)

    async def _read_events(self) -> None:
        window_at = time.monotonic()
        taken = 0
        async for event in self.api.events("all", after=self.last_seq):
            self._pending.append(event)
            if event["kind"] != "missed":
                self.last_seq = int(event["seq"])
            taken += 1
            if taken >= EVENT_BUDGET:
                rest = window_at + 1.0 - time.monotonic()
                if rest > 0:
                    await asyncio.sleep(rest)
                window_at, taken = time.monotonic(), 0
            elif taken % 200 == 0:
                await asyncio.sleep(0)

    def take_events(self, events: Iterable[Json]) -> None:
        """Queue events as if they came from the stream (the next ``flush`` draws them)."""
        self._pending.extend(events)

    def flush(self) -> None:
        """Draw what arrived: the model takes the events, the screens their part."""
        events, self._pending = self._pending, []
        if events:
            self.model.apply_events(events)
        try:
            for screen in self.screen_stack:
                if not getattr(screen, "ready", False):
                    continue  # not mounted yet: it draws everything when it is
                if isinstance(screen, UnitScreen) and events:
                    screen.take_events([e for e in events if e.get("unit") == screen.unit])
                if isinstance(screen, ScenarioScreen) and any(
                    event["kind"] == "scenario" for event in events
                ):
                    screen.poke()
                if isinstance(screen, FleetScreen):
                    screen.redraw(self.model.take_dirty())
            for line in self.screen.query(StatusLine):
                line.show(self.status_text())
        except NoMatches:
            # A screen being taken down (the app ending) has lost its widgets before it
            # leaves the stack: there is nothing to draw into, and the next tick (if the
            # app goes on) draws what this one did not.
            return

    def status_text(self) -> str:
        """The status line: where the API is, missed events, the last failure."""
        parts = [f"{len(self.model.units)} units", f"{self.model.events} events read"]
        if self.model.missed:
            parts.append(f"missed {self.model.missed} events (the dashboard fell behind)")
        if self.model.selected:
            parts.append(f"{len(self.model.selected)} selected")
        if self.last_error:
            parts.append(f"API: {self.last_error}")
        return "  ·  ".join(parts)

    async def fault_kinds(self) -> list[Json]:
        """The fault catalogue, read once."""
        if self.kinds is None:
            self.kinds = await self.api.kinds()
        return self.kinds

    def default_target(self) -> str:
        """A selector for the dashboard's selection, else the unit under the fleet cursor."""
        if self.model.selected:
            try:
                return compact(self.model.selected)
            except ValueError:
                return ""
        for screen in reversed(self.screen_stack):
            if isinstance(screen, UnitScreen):
                return str(screen.unit)
            if isinstance(screen, FleetScreen):
                unit = screen.cursor_unit()
                return "" if unit is None else str(unit)
        return ""

    # -- navigation --------------------------------------------------------------------

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_faults(self) -> None:
        self._open(FaultsScreen(target=self.default_target()))

    def action_spawn(self) -> None:
        self._open(SpawnScreen(target=self.default_target()))

    def action_scenario(self) -> None:
        self._open(ScenarioScreen(live=self.live))

    def open_unit(self, unit: int) -> None:
        """Show one unit's screen."""
        self._open(UnitScreen(unit, live=self.live))

    def _open(self, screen: Screen[Any]) -> None:
        """Push a screen, replacing one of the same kind already on top."""
        if type(self.screen) is type(screen):
            self.pop_screen()
        self.push_screen(screen)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Faults", "Apply or clear a fault (x)", self.action_faults)
        yield SystemCommand("Spawn and power", "Add units, power off/on (n)", self.action_spawn)
        yield SystemCommand(
            "Scenario", "The scenario run's timeline and expectations (r)", self.action_scenario
        )
        yield SystemCommand("Keys", "Every key of every screen (?)", self.action_help)
        yield SystemCommand(
            "Select all shown", "Select every unit the table shows", self._select_shown
        )
        yield SystemCommand(
            "Select none", "Clear the selection", lambda: self._select_all_shown(on=False)
        )
        yield SystemCommand(
            "Clear every fault", "Clear the faults of every unit and the fleet", self._clear_all
        )
        for unit in sorted(self.model.units)[:50]:
            yield SystemCommand(f"Unit {unit}", "Open the unit's screen", self._opener(unit), False)

    def _opener(self, unit: int) -> Any:
        return lambda: self.open_unit(unit)

    def _select_shown(self) -> None:
        self._select_all_shown(on=True)

    def _select_all_shown(self, *, on: bool) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, FleetScreen):
                screen.select_shown(on=on)

    @work(group="actions")
    async def _clear_all(self) -> None:
        try:
            answer = await self.api.clear_faults("all", None)
        except ApiError as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify(f"cleared the faults of {len(answer['cleared'])} (units and fleet)")

    async def on_unmount(self) -> None:
        await self.api.close()
