"""The fleet's event stream: one bounded ring of events, read by any number of followers.

Units hand their events (state changes, notifications to the host, uplinks and
downlinks, faults applied and cleared) to ``EventLog.unit_event`` through their log's
observer; the fleet adds its own (units added, the broker stopped, metrics each
second). Each event gets the next sequence number and goes into a ring of
``capacity`` events: emitting is O(1) and never waits for a reader, so a slow reader
can never slow the units. A reader keeps its own cursor (the last sequence number it
saw) and asks for what came after it; if the ring has moved past the cursor, the
reader is told how many events it missed. Followers wait on one shared future that
is resolved at most once per loop turn, however many events arrive in it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

DEFAULT_CAPACITY = 10_000
"""Events the ring keeps: at 100 bytes to 1 KB each, a few MB at most."""


@dataclass(frozen=True, slots=True)
class Event:
    """One event: its sequence number, sim time, wall time, the unit (None: the fleet)."""

    seq: int
    at: float
    wall: float
    unit: int | None
    kind: str
    data: dict[str, Any]

    def view(self) -> dict[str, Any]:
        """JSON-able."""
        return {
            "seq": self.seq,
            "at": round(self.at, 6),
            "wall": round(self.wall, 3),
            "unit": self.unit,
            "kind": self.kind,
            "data": self.data,
        }


@dataclass(frozen=True, slots=True)
class Batch:
    """What a reader gets: events after its cursor, how many it missed, the new cursor."""

    events: list[Event]
    missed: int
    cursor: int


class EventLog:
    """A bounded ring of events with sequence numbers.

    Args:
        loop: the loop followers wait on (None: nobody can follow, e.g. virtual time).
        capacity: how many events are kept.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop | None, *, capacity: int = DEFAULT_CAPACITY
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, not {capacity}")
        self.loop = loop
        self._ring: deque[Event] = deque(maxlen=capacity)
        self.last_seq = 0
        self._waiting: asyncio.Future[None] | None = None
        self._wake_scheduled = False

    def unit_event(self, unit_name: str, at: float, kind: str, data: dict[str, Any]) -> None:
        """A ``UnitLog`` observer: the unit's name is ``dtu<id>``."""
        self.emit(at, int(unit_name.removeprefix("dtu")), kind, data)

    def emit(self, at: float, unit: int | None, kind: str, data: dict[str, Any]) -> None:
        """Add an event (O(1); never blocks)."""
        self.last_seq += 1
        self._ring.append(Event(self.last_seq, at, time.time(), unit, kind, data))
        if self._waiting is not None and not self._wake_scheduled and self.loop is not None:
            self._wake_scheduled = True
            self.loop.call_soon(self._wake)

    def _wake(self) -> None:
        self._wake_scheduled = False
        waiting, self._waiting = self._waiting, None
        if waiting is not None and not waiting.done():
            waiting.set_result(None)

    @property
    def first_seq(self) -> int:
        """The oldest sequence number still kept (``last_seq + 1`` when empty)."""
        return self._ring[0].seq if self._ring else self.last_seq + 1

    def read(self, cursor: int, *, limit: int = 1000) -> Batch:
        """Events after ``cursor``, at most ``limit``; ``missed`` counts those the ring lost."""
        first = self.first_seq
        missed = max(0, first - 1 - cursor)
        start = max(cursor + 1, first)
        offset = start - first
        events = [self._ring[i] for i in range(offset, min(len(self._ring), offset + limit))]
        return Batch(events, missed, events[-1].seq if events else max(cursor, start - 1))

    async def wait(self, cursor: int) -> None:
        """Return once there is an event after ``cursor``."""
        if self.loop is None:
            raise RuntimeError("this event log has no loop to wait on")
        while self.last_seq <= cursor:
            if self._waiting is None:
                self._waiting = self.loop.create_future()
            await asyncio.shield(self._waiting)
