"""The scenario screen: a scenario run's timeline, its current step, each expectation.

It reads ``GET /v1/scenario`` in its own worker: once a second, and at once when a
``scenario`` event (a step started or ended, an expectation decided, the run winding
down or finished) comes through the app's event stream (``poke``). The timeline is a
table of the steps (when, what, which units, state, detail) with the current ones
marked; the expectations table shows pass, fail or pending with the evidence, and for
a pending one how it stands now (``so far``); the focused table's highlighted row's whole
text is under the tables. Both tables keep their rows and update
the cells that changed, by key. A fleet that runs no scenario answers 404: the screen
says so and keeps asking (nothing else changes that). When the run goes away (it ended),
the last reading stays, marked as not read again.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, ClassVar

from rich.markup import escape
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Footer, Header, Static

from tui.client import ApiError, Json
from tui.screens.base import DashScreen
from tui.widgets.status import StatusLine

STEP_COLUMNS = (("mark", " ", 1), ("index", "#", 3), ("when", "when", 12),
                ("what", "what", 38), ("select", "units", 12), ("state", "state", 10),
                ("detail", "detail", 60))  # fmt: skip
CHECK_COLUMNS = (("status", "status", 7), ("name", "expectation", 44), ("evidence", "evidence", 60))
STEP_STYLES = {"pending": "dim", "running": "bold yellow", "done": "green", "failed": "bold red"}
STATUS_STYLES = {"pending": "yellow", "pass": "bold green", "fail": "bold red"}


def clock(seconds: float) -> str:
    """Sim time as ``H:MM:SS``."""
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def step_cells(step: Json, current: set[int]) -> tuple[str, ...]:
    """A step's row."""
    state = str(step["state"])
    runs = f" x{step['runs']}" if step["runs"] > 1 else ""
    return (
        "[bold yellow]▶[/]" if step["index"] in current else " ",
        str(step["index"]),
        escape(str(step["when"])),
        escape(str(step["what"])),
        escape(str(step["select"])),
        f"[{STEP_STYLES.get(state, 'default')}]{state}[/]{runs}",
        escape(str(step["detail"]) or "-"),
    )


def evidence(check: Json) -> str:
    """An expectation's evidence, or how it stands so far."""
    if check["status"] == "pending":
        holds = "holds" if check.get("holds_so_far") else "not yet"
        return f"so far ({holds}): {check.get('so_far', '')}"
    return str(check["evidence"])


def check_cells(check: Json) -> tuple[str, ...]:
    """An expectation's row: its verdict and evidence, or how it stands so far."""
    status = str(check["status"])
    return (
        f"[{STATUS_STYLES.get(status, 'default')}]{status}[/]",
        escape(str(check["name"])),
        escape(evidence(check)),
    )


def headline(view: Json) -> str:
    """The run in one line: name, seed, sim time of the duration, phase or verdict."""
    phase = str(view["phase"])
    if view.get("passed") is not None:
        phase = f"{phase}: {'[bold green]PASSED[/]' if view['passed'] else '[bold red]FAILED[/]'}"
    checks = view["expectations"]
    counts = {status: sum(c["status"] == status for c in checks) for status in STATUS_STYLES}
    return (
        f"[b]{escape(str(view['name']))}[/] · seed {view['seed']} · sim "
        f"{clock(float(view['sim_time']))} of {clock(float(view['duration']))} · {phase} · "
        f"{counts['pass']} pass, {counts['fail']} fail, {counts['pending']} pending"
    )


class ScenarioScreen(DashScreen):
    """Where the scenario run stands, read again every second."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "back", "Back")]

    def __init__(self, *, live: bool = True, every_s: float = 1.0) -> None:
        super().__init__()
        self.live = live
        self.every_s = every_s
        self.view: Json | None = None
        self.ready = False
        self._wake = asyncio.Event()
        self._steps: dict[str, tuple[str, ...]] = {}
        self._checks: dict[str, tuple[str, ...]] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("reading the scenario…", id="scenario-title")
        yield Static("Timeline", classes="section")
        yield DataTable(id="steps", cursor_type="row", zebra_stripes=True)
        yield Static("Expectations", classes="section")
        yield DataTable(id="checks", cursor_type="row", zebra_stripes=True)
        yield Static(id="scenario-detail")
        yield StatusLine(id="status")
        yield Footer()

    def on_mount(self) -> None:
        for table_id, columns in (("#steps", STEP_COLUMNS), ("#checks", CHECK_COLUMNS)):
            table = self.query_one(table_id, DataTable)
            for key, heading, width in columns:
                table.add_column(heading, key=key, width=width)
        self.query_one("#steps", DataTable).focus()
        self.ready = True
        self.follow()

    def poke(self) -> None:
        """Read the run again now (a ``scenario`` event came)."""
        self._wake.set()

    @work(exclusive=True, group="scenario")
    async def follow(self) -> None:
        """Read ``GET /v1/scenario`` now, then every ``every_s`` or when poked (live)."""
        while True:
            try:
                view = await self.dash.api.scenario()
            except ApiError as exc:
                if self.gone:
                    return
                failed = escape(str(exc))
                if self.view is not None:  # keep what was read last (a finished run's verdict)
                    failed = f"{headline(self.view)} · [red]not read again: {failed}[/]"
                self.query_one("#scenario-title", Static).update(failed)
            else:
                if self.gone:
                    return
                self.show(view)
            if not self.live:
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.every_s)

    def show(self, view: Json) -> None:
        """Draw ``view``: the headline, and the cells that changed in both tables."""
        self.view = view
        self.query_one("#scenario-title", Static).update(headline(view))
        current = {int(index) for index in view["current"]}
        steps = {str(step["index"]): step_cells(step, current) for step in view["steps"]}
        checks = {str(check["index"]): check_cells(check) for check in view["expectations"]}
        self._update("#steps", STEP_COLUMNS, self._steps, steps)
        self._update("#checks", CHECK_COLUMNS, self._checks, checks)
        focused = self.focused
        if isinstance(focused, DataTable):
            self._detail(focused)

    def _update(
        self,
        table_id: str,
        columns: tuple[tuple[str, str, int], ...],
        shown: dict[str, tuple[str, ...]],
        rows: dict[str, tuple[str, ...]],
    ) -> None:
        table: DataTable[Any] = self.query_one(table_id, DataTable)
        for key, cells in rows.items():
            old = shown.get(key)
            if old is None:
                table.add_row(*cells, key=key)
            else:
                for (column, _, _), before, after in zip(columns, old, cells, strict=True):
                    if before != after:
                        table.update_cell(key, column, after)
            shown[key] = cells

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.has_focus:
            self._detail(event.data_table)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        if isinstance(event.widget, DataTable):
            self._detail(event.widget)

    def _detail(self, table: DataTable[Any]) -> None:
        """The whole text of the step or expectation under ``table``'s cursor, below."""
        view = self.view
        if view is None or not table.row_count:
            return
        key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
        if key is None:
            return
        if table.id == "steps":
            step = view["steps"][int(key)]
            text = f"step {key}: {step['when']}, {step['what']} on {step['select']}"
            text += f" — {step['detail']}" if step["detail"] else ""
        else:
            check = view["expectations"][int(key)]
            text = f"{check['name']} ({check['kind']}): {evidence(check)}"
        self.query_one("#scenario-detail", Static).update(escape(text))

    def action_back(self) -> None:
        self.dismiss()
