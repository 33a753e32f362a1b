"""The fleet screen: headline figures, charts over time, and every unit in one table.

The table shows the units that pass the filters (text in any cell, a phase), in the
chosen order. It is kept, not redrawn: ``redraw`` gets the units whose cells changed
(``FleetModel.take_dirty``) and, for each, updates only the cells that differ, by row
and column key, in one ``KeyedTable.update_rows`` per draw (only those rows are
rendered again), adds a unit that now passes the filters and removes one that no longer
does. A changed row off screen is only marked (``_stale``) and updated when it scrolls
into view: with 10 000 units a few hundred rows change per draw. The rows are sorted
again (at most once a second) when a changed cell is in the sort column or rows were
added. A change of filter or order rebuilds the table once (for a large fleet, once
typing pauses). Columns have fixed widths: DataTable measures a whole auto-sized column
again on a cell update.
The row key is the unit id; ``_shown`` holds the cells each shown row has. The headline,
chart labels and the status line are redrawn only when their text changes, without a
layout pass (a layout pass repaints every widget on the screen).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, ClassVar, cast

from rich.markup import escape
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.coordinate import Coordinate
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, Input, Label, Select, Sparkline, Static

from tui.model import CHARTS, COLUMNS, PHASES, Cells, FleetModel
from tui.widgets.panels import PHASE_STYLES
from tui.widgets.status import StatusLine
from tui.widgets.table import KeyedTable

if TYPE_CHECKING:
    from tui.app import DashboardApp

SORT_EVERY_S = 1.0
"""Rows whose sort column changed are put in order again at most this often."""
DEBOUNCE_FROM = 2000
DEBOUNCE_S = 0.3
"""From this many units, the filter waits for typing to pause this long."""

COLUMN_KEYS = tuple(key for key, _, _ in COLUMNS)
STATE = COLUMN_KEYS.index("state")
FAULTS = COLUMN_KEYS.index("faults")
SORTABLE = tuple(key for key in COLUMN_KEYS if key != "sel")


def styled(cells: Cells, phase: str) -> list[str]:
    """The cells as the table draws them: the state by phase, faults in red. They stay
    strings (markup, the text escaped): 100 000 ``Text`` cells would be objects for the
    garbage collector to walk through, a string is not."""
    drawn = list(cells)
    drawn[STATE] = f"[{PHASE_STYLES.get(phase, 'default')}]{escape(cells[STATE])}[/]"
    drawn[FAULTS] = (
        escape(cells[FAULTS]) if cells[FAULTS] == "-" else (f"[bold red]{escape(cells[FAULTS])}[/]")
    )
    drawn[0] = f"[bold cyan]{cells[0]}[/]"
    for index in (
        COLUMN_KEYS.index("imei"),
        COLUMN_KEYS.index("profile"),
        COLUMN_KEYS.index("sim"),
    ):
        drawn[index] = escape(cells[index])
    return drawn


class FleetScreen(Screen[None]):
    """Every unit, its figures, and the selection the other screens act on."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter"),
        Binding("t", "next_phase", "State filter"),
        Binding("space", "toggle_unit", "Select"),
        Binding("a", "select_shown", "Select shown"),
        Binding("A", "select_none", "Select none"),
        Binding("s", "next_sort", "Sort"),
        Binding("S", "reverse", "Reverse", show=False),
        Binding("escape", "focus_table", "Table", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.text = ""
        self.phase: str | None = None
        self.sort_column = "unit"
        self.reverse = False
        self._shown: dict[int, Cells] = {}
        self.ready = False
        """Mounted, its table has its columns: the app may draw into it."""
        self._stale: set[int] = set()
        """Shown units whose row is behind the model (off screen when they changed)."""
        self._unsorted = False
        self._sorted_at = 0.0
        self._headline = ""
        self._samples = -1
        self._filter_timer: Timer | None = None

    @property
    def dash(self) -> DashboardApp:
        return cast("DashboardApp", self.app)

    @property
    def model(self) -> FleetModel:
        return self.dash.model

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="headline")
        with Horizontal(id="charts"):
            for name in CHARTS:
                with Vertical(classes="chart"):
                    yield Label(name, id=f"label-{_ident(name)}", classes="chart-label")
                    yield Sparkline([], id=f"chart-{_ident(name)}")
        with Horizontal(id="filters"):
            yield Input(
                placeholder="filter: id, IMEI, state, SIM, fault... (/)", id="filter", compact=True
            )
            yield Select(
                [(phase, phase) for phase in PHASES], prompt="any state", id="phase", compact=True
            )
        yield KeyedTable(id="units", cursor_type="row", zebra_stripes=True)
        yield StatusLine(id="status")
        yield Footer()

    def on_mount(self) -> None:
        table = self.table
        for key, heading, width in COLUMNS:
            table.add_column(heading, key=key, width=width)
        self._rebuild()
        table.focus()
        self.ready = True

    @property
    def table(self) -> KeyedTable:
        return self.query_one("#units", KeyedTable)

    # -- drawing -----------------------------------------------------------------------

    def redraw(self, dirty: set[int]) -> None:
        """Show what changed: the rows of ``dirty``, the headline and the charts.

        A row that comes into or goes out of the filters is added or removed at once; the
        cells of a shown row are updated if it is on screen, or when it scrolls into view
        (``_stale``). The rows are sorted again at most once a second.
        """
        table = self.table
        sort_index = COLUMN_KEYS.index(self.sort_column)
        for unit in sorted(dirty):
            record = self.model.units[unit]
            key = str(unit)
            shown = self._shown.get(unit)
            if not self.model.matches(unit, self.text, self.phase):
                if shown is not None:
                    table.remove_row(key)
                    del self._shown[unit]
                    self._stale.discard(unit)
                continue
            if shown is None:
                table.add_row(*styled(record.cells, str(record.row.get("phase", ""))), key=key)
                self._shown[unit] = record.cells
                self._unsorted = True
                continue
            if record.cells[sort_index] != shown[sort_index]:
                self._unsorted = True
            self._stale.add(unit)
        if self._stale:
            top = int(table.scroll_y)
            bottom = top + table.size.height
            changes: dict[str, dict[str, str]] = {}
            for unit in list(self._stale):
                if top <= table.get_row_index(str(unit)) < bottom:
                    changes[str(unit)] = self._push(unit)
            table.update_rows(changes)
        if self._unsorted and time.monotonic() - self._sorted_at >= SORT_EVERY_S:
            self._sort()
        self._figures()

    def _push(self, unit: int) -> dict[str, str]:
        """The unit's cells that changed since its row was drawn (column key -> drawn)."""
        self._stale.discard(unit)
        record = self.model.units[unit]
        shown = self._shown[unit]
        drawn = styled(record.cells, str(record.row.get("phase", "")))
        self._shown[unit] = record.cells
        return {
            COLUMN_KEYS[index]: drawn[index]
            for index, (old, new) in enumerate(zip(shown, record.cells, strict=True))
            if old != new
        }

    def _rebuild(self) -> None:
        table = self.table
        keep = self.cursor_unit()
        table.clear()
        self._shown = {}
        self._stale = set()
        for unit in self.model.ordered(self.text, self.phase, self.sort_column, self.reverse):
            record = self.model.units[unit]
            table.add_row(*styled(record.cells, str(record.row.get("phase", ""))), key=str(unit))
            self._shown[unit] = record.cells
        self.model.take_dirty()
        self._restore(keep)
        self._figures()

    def _sort(self) -> None:
        self._unsorted = False
        self._sorted_at = time.monotonic()
        keep = self.cursor_unit()
        model, column = self.model, self.sort_column
        self.table.sort(
            "unit", key=lambda cell: model.sort_key(int(cell), column), reverse=self.reverse
        )
        self._restore(keep)

    def _restore(self, unit: int | None) -> None:
        if unit is not None and unit in self._shown:
            self.table.move_cursor(row=self.table.get_row_index(str(unit)), animate=False)

    def _figures(self) -> None:
        """The headline and the charts, each redrawn only when it changed."""
        summary = self.model.summary
        figures = [f"{key} {summary.get(key, 0)}" for key in ("units", "powered", "connected")]
        faulted = f"faulted {summary.get('faulted', 0)}"
        fleet_faults = ", ".join(f["kind"] for f in summary.get("fleet_faults", ()))
        line = Text("  ·  ".join(figures) + "  ·  ")
        line.append(faulted, style="bold red" if summary.get("faulted") else "")
        if fleet_faults:
            line.append(f"  ·  fleet faults: {fleet_faults}", style="bold red")
        order = f"  ·  sorted by {self.sort_column}" + (" ↓" if self.reverse else "")
        line.append(f"  ·  shown {len(self._shown)}{order}")
        if line.plain != self._headline:
            self._headline = line.plain
            self.query_one("#headline", Static).update(line, layout=False)
        if self.model.samples == self._samples:
            return
        self._samples = self.model.samples
        for name in CHARTS:
            history = self.model.history[name]
            now = f" {history[-1]:g}" if history else ""
            if name in self.model.unmeasured:
                now = " -"
            self.query_one(f"#label-{_ident(name)}", Label).update(f"{name}{now}", layout=False)
            self.query_one(f"#chart-{_ident(name)}", Sparkline).data = list(history)

    # -- reading the table -------------------------------------------------------------

    def cursor_unit(self) -> int | None:
        """The unit under the table's cursor."""
        table = self.table
        if table.row_count == 0:
            return None
        row = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key
        return None if row.value is None else int(row.value)

    def select_shown(self, *, on: bool) -> None:
        """Select (or unselect) every unit the table shows."""
        self.model.select(list(self._shown), on=on)
        self.redraw(self.model.take_dirty())

    # -- the user ----------------------------------------------------------------------

    @on(DataTable.RowSelected, "#units")
    def _open(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.dash.open_unit(int(event.row_key.value))

    @on(DataTable.HeaderSelected, "#units")
    def _header(self, event: DataTable.HeaderSelected) -> None:
        column = str(event.column_key.value)
        if column not in SORTABLE:
            return
        self.reverse = not self.reverse if column == self.sort_column else False
        self.sort_column = column
        self._sort()
        self._figures()

    @on(Input.Changed, "#filter")
    def _filter(self, event: Input.Changed) -> None:
        """Filter as the user types; a large fleet's table is rebuilt once typing pauses."""
        self.text = event.value.strip()
        if self._filter_timer is not None:
            self._filter_timer.stop()
            self._filter_timer = None
        if len(self.model.units) < DEBOUNCE_FROM:
            self._rebuild()
        else:
            self._filter_timer = self.set_timer(DEBOUNCE_S, self._rebuild)

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.table.focus()

    @on(Select.Changed, "#phase")
    def _phase(self, event: Select.Changed) -> None:
        self.phase = None if event.value is Select.NULL else str(event.value)
        self._rebuild()

    def action_filter(self) -> None:
        self.set_focus(self.query_one("#filter", Input))

    def action_focus_table(self) -> None:
        self.table.focus()

    def action_next_phase(self) -> None:
        cycle: list[str | None] = [None, *PHASES]
        following = cycle[(cycle.index(self.phase) + 1) % len(cycle)]
        select: Select[str] = self.query_one("#phase", Select)
        select.value = Select.NULL if following is None else following

    def action_toggle_unit(self) -> None:
        unit = self.cursor_unit()
        if unit is None:
            return
        self.model.toggle(unit)
        self.redraw(self.model.take_dirty())
        if self.table.cursor_row < self.table.row_count - 1:
            self.table.move_cursor(row=self.table.cursor_row + 1)

    def action_select_shown(self) -> None:
        self.select_shown(on=True)

    def action_select_none(self) -> None:
        self.model.select(list(self.model.selected), on=False)
        self.redraw(self.model.take_dirty())

    def action_next_sort(self) -> None:
        self.sort_column = SORTABLE[(SORTABLE.index(self.sort_column) + 1) % len(SORTABLE)]
        self._sort()
        self._figures()

    def action_reverse(self) -> None:
        self.reverse = not self.reverse
        self._sort()
        self._figures()


def _ident(name: str) -> str:
    return name.replace("/", "-per-").replace(" ", "-")
