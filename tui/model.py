"""What the dashboard knows of a fleet, kept apart from how it is drawn (no Textual here).

The fleet screen's table must stay cheap with 10 000 units, so the model does the work
once per change, not once per frame: rows from ``GET /v1/units`` and events from the
stream land here, each unit's display cells are computed and compared with the last ones
shown, and only the units whose cells differ go into ``dirty``. The screen takes
``dirty`` a few times a second and updates those rows by key, cell by cell. Per unit the
model keeps the last row, its cells, an uplink count and the wall time of its last event
(what "uplinks" and "last seen" mean: since the dashboard attached). Fleet figures are
sampled once a second into bounded histories for the charts, among them the p50 and p99
of the units' uplinks' publish-to-PUBACK times over the last second.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from vdtu.control.selector import MAX_SELECTOR

Json = dict[str, Any]

COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("sel", " ", 1),
    ("unit", "unit", 5),
    ("profile", "profile", 7),
    ("imei", "IMEI", 15),
    ("state", "state", 28),
    ("csq", "CSQ", 3),
    ("sim", "SIM", 10),
    ("faults", "faults", 16),
    ("uplinks", "uplinks", 7),
    ("seen", "last seen", 9),
)
"""The fleet table's columns: key, heading and width (fixed: a column sized to its content
is measured again, row by row, whenever one of its cells changes; at 10 000 rows that is
seconds per update)."""

PHASES = ("off", "booting", "no-cloud", "connecting", "connected")
"""A unit's common phases, in the order a unit goes through them."""

HISTORY = 120
"""Samples kept per chart (one a second: two minutes)."""

CHARTS = ("connected", "messages/s", "faulted", "ack p50 ms", "ack p99 ms")
"""The charts: the last two are the units' uplinks' publish-to-PUBACK times over the last
second (``ack_ms_recent``; 0 in a second without one)."""

Cells = tuple[str, ...]


def seen_text(wall: float | None) -> str:
    """The local time of a unit's last event, ``-`` before the first."""
    return "-" if wall is None else time.strftime("%H:%M:%S", time.localtime(wall))


ROW_FACTS = ("profile", "imei", "phase", "state", "csq", "sim")


def slim(row: Json) -> Json:
    """What the table needs of a ``GET /v1/units`` row, all scalars (faults joined): a dict
    of scalars is not tracked by the garbage collector, so 10 000 of them, renewed every
    poll, do not make its full collections (hundreds of ms at this size) come round."""
    facts = {key: row.get(key) for key in ROW_FACTS}
    facts["faults"] = ",".join(row.get("faults") or ())
    return facts


@dataclass(slots=True)
class UnitRecord:
    """One unit as the dashboard last saw it."""

    row: Json
    """The unit's facts (``slim``)."""
    uplinks: int = 0
    seen: float | None = None
    cells: Cells = ()


@dataclass(slots=True)
class FleetModel:
    """Every unit's row, the fleet's figures and their histories (see the module comment)."""

    units: dict[int, UnitRecord] = field(default_factory=dict)
    selected: set[int] = field(default_factory=set)
    dirty: set[int] = field(default_factory=set)
    summary: Json = field(default_factory=dict)
    missed: int = 0
    """Events the stream said we did not get (its ``missed`` lines, added up)."""
    events: int = 0
    history: dict[str, deque[float]] = field(
        default_factory=lambda: {name: deque(maxlen=HISTORY) for name in CHARTS}
    )
    samples: int = 0
    """How many times the charts were sampled (a screen redraws them when it changes)."""
    unmeasured: set[str] = field(default_factory=set)
    """Charts whose last point measured nothing (no acknowledgement in that second): their
    label says ``-``, not 0."""
    _messages: int = 0

    def apply_rows(self, rows: Iterable[Json]) -> None:
        """Take rows of ``GET /v1/units``; units whose cells changed become dirty."""
        for row in rows:
            unit = int(row["unit"])
            facts = slim(row)
            record = self.units.get(unit)
            if record is None:
                record = self.units[unit] = UnitRecord(facts)
            elif record.row == facts:
                continue
            else:
                record.row = facts
            self._refresh(unit, record)

    def apply_events(self, events: Iterable[Json]) -> None:
        """Count uplinks, note when each unit was last heard of, follow the figures."""
        for event in events:
            kind = event["kind"]
            self.events += 1
            if kind == "missed":
                self.missed += int(event["data"]["count"])
                continue
            if kind == "metrics":
                self.summary.update(event["data"])
                continue
            if kind in ("uplink", "downlink"):
                self._messages += 1
            unit = event.get("unit")
            record = None if unit is None else self.units.get(int(unit))
            if unit is None or record is None:
                continue
            record.seen = float(event["wall"])
            if kind == "uplink":
                record.uplinks += 1
            if kind == "state":
                record.row = {**record.row, "phase": event["data"]["phase"]}
                record.row["state"] = event["data"]["state"]
            self._refresh(int(unit), record)

    def set_summary(self, summary: Json) -> None:
        """Take ``GET /v1/fleet``."""
        self.summary.update(summary)

    def sample(self) -> None:
        """One second's point of each chart (messages/s: uplinks and downlinks seen)."""
        self.history["connected"].append(float(self.summary.get("connected", 0)))
        self.history["faulted"].append(float(self.summary.get("faulted", 0)))
        self.history["messages/s"].append(float(self._messages))
        self._messages = 0
        acks = self.summary.get("ack_ms_recent") or {}
        self.history["ack p50 ms"].append(float(acks.get("p50") or 0.0))
        self.history["ack p99 ms"].append(float(acks.get("p99") or 0.0))
        self.unmeasured = set() if acks.get("count") else {"ack p50 ms", "ack p99 ms"}
        self.samples += 1

    def take_dirty(self) -> set[int]:
        """The units whose cells changed since the last call."""
        dirty, self.dirty = self.dirty, set()
        return dirty

    def toggle(self, unit: int) -> None:
        """Select the unit, or unselect it."""
        if unit in self.selected:
            self.selected.discard(unit)
        else:
            self.selected.add(unit)
        if unit in self.units:
            self._refresh(unit, self.units[unit])

    def select(self, units: Iterable[int], *, on: bool = True) -> None:
        """Select (or unselect) many units at once."""
        for unit in units:
            if on:
                self.selected.add(unit)
            else:
                self.selected.discard(unit)
            if unit in self.units:
                self._refresh(unit, self.units[unit])

    def _refresh(self, unit: int, record: UnitRecord) -> None:
        cells = self.cells_of(unit, record)
        if cells != record.cells:
            record.cells = cells
            self.dirty.add(unit)

    def cells_of(self, unit: int, record: UnitRecord) -> Cells:
        """The table's cells for one unit, in ``COLUMNS`` order."""
        row = record.row
        csq = row.get("csq")
        return (
            "●" if unit in self.selected else " ",
            str(unit),
            str(row.get("profile", "")),
            str(row.get("imei", "")),
            f"{row.get('phase', '')} {row.get('state', '')}".strip(),
            "-" if csq is None else str(csq),
            str(row.get("sim", "")),
            str(row.get("faults") or "-"),
            str(record.uplinks),
            seen_text(record.seen),
        )

    def matches(self, unit: int, text: str, phase: str | None) -> bool:
        """Whether the unit passes the table's filters (text: any cell contains it)."""
        record = self.units[unit]
        if phase is not None and record.row.get("phase") != phase:
            return False
        if not text:
            return True
        needle = text.lower()
        return any(needle in cell.lower() for cell in record.cells[1:])

    def sort_key(self, unit: int, column: str) -> tuple[Any, ...]:
        """How the table orders units by a column (numbers as numbers, then by id)."""
        record = self.units[unit]
        if column in ("unit", "sel"):
            return (column == "sel" and unit not in self.selected, unit)
        if column == "csq":
            csq = record.row.get("csq")
            return (-1 if csq is None else int(csq), unit)
        if column == "uplinks":
            return (record.uplinks, unit)
        if column == "seen":
            return (record.seen or 0.0, unit)
        index = [key for key, _, _ in COLUMNS].index(column)
        return (record.cells[index], unit)

    def ordered(self, text: str, phase: str | None, column: str, reverse: bool) -> list[int]:
        """The units the table shows, in its order."""
        shown = [unit for unit in self.units if self.matches(unit, text, phase)]
        shown.sort(key=lambda unit: self.sort_key(unit, column), reverse=reverse)
        return shown


def compact(units: Iterable[int]) -> str:
    """A selector naming exactly these units: ``0-9,12,20-29``.

    Raises:
        ValueError: no units, or a selector longer than the API takes (1000 characters).
    """
    ordered = sorted(set(units))
    if not ordered:
        raise ValueError("no units selected (space selects the unit under the cursor)")
    parts: list[str] = []
    start = prev = ordered[0]
    for unit in [*ordered[1:], None]:
        if unit is not None and unit == prev + 1:
            prev = unit
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if unit is not None:
            start = prev = unit
    text = ",".join(parts)
    if len(text) > MAX_SELECTOR:
        raise ValueError(
            f"the {len(ordered)} selected units make a selector of {len(text)} characters "
            f"(the API takes {MAX_SELECTOR}); select ranges, or type a selector"
        )
    return text
