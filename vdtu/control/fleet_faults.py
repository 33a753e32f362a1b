"""Faults of the fleet's shared cloud (``broker-stop``): applied to the fleet, not to a unit.

A ``FleetFaultBook`` keeps what is in force, clears a fault when its duration has run
out (on the timer it is given: sim time for a fleet in this process, the wall clock in
the parent of ``--procs`` shards), and puts ``fault`` / ``fault-cleared`` events (unit
``None``) into the event stream. Such a fault takes the selector ``all`` only: it acts on
every unit at once, through the cloud they share.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from vdtu.control.errors import ControlError
from vdtu.control.events import EventLog


class FleetFaults(Protocol):
    """What applies and clears the fleet's faults (``BrokerFaults``: the embedded broker)."""

    async def apply(self, kind: str) -> None:
        """Apply fleet fault ``kind`` (ValueError: it cannot be, saying why)."""

    async def clear(self, kind: str) -> None:
        """Clear fleet fault ``kind`` (ValueError: it cannot be, saying why)."""


class FleetFaultBook:
    """The fleet faults in force.

    Args:
        faults: what applies them (None: this fleet's cloud is not vdtu's own).
        events: where the events go.
        now: the time the events carry.
        later: ``later(seconds, callback)`` calls back after that many seconds.
    """

    def __init__(
        self,
        faults: FleetFaults | None,
        events: EventLog,
        *,
        now: Callable[[], float],
        later: Callable[[float, Callable[[], None]], None],
    ) -> None:
        self.faults = faults
        self.events = events
        self.now = now
        self.later = later
        self.active: dict[str, dict[str, Any]] = {}
        self._tasks: set[asyncio.Task[bool]] = set()

    async def apply(self, text: str, kind: str, for_s: float | None) -> dict[str, Any]:
        _check_all(text, kind)
        if self.faults is None:
            raise ControlError(409, f"{kind}: this fleet's broker is not vdtu's own (--broker)")
        try:
            await self.faults.apply(kind)
        except ValueError as exc:
            raise ControlError(409, f"{kind}: {exc}") from None
        now = self.now()
        entry = {"kind": kind, "since": now, "until": None if for_s is None else now + for_s}
        self.active[kind] = entry
        self.events.emit(now, None, "fault", {"kind": kind, "for_s": for_s})
        if for_s is not None:
            self.later(for_s, lambda: self._expire(kind, entry))
        return {"kind": kind, "applied": ["fleet"], "refused": {}}

    def _expire(self, kind: str, entry: dict[str, Any]) -> None:
        if self.active.get(kind) is entry:
            task = asyncio.ensure_future(self._end(kind, "expired"))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def clear(self, text: str, kind: str | None) -> dict[str, list[str]]:
        """Clear ``kind`` (None: every fleet fault); returns ``{"fleet": [kinds]}`` or {}."""
        if kind is not None:
            _check_all(text, kind)
        elif text != "all":
            return {}
        kinds = [k for k in self.active if kind is None or k == kind]
        for name in kinds:
            if not await self._end(name, "cleared"):
                raise ControlError(409, f"{name} not cleared: see the fault-error event")
        return {"fleet": kinds} if kinds else {}

    async def _end(self, kind: str, why: str) -> bool:
        del self.active[kind]
        assert self.faults is not None
        try:
            await self.faults.clear(kind)
        except ValueError as exc:
            self.events.emit(self.now(), None, "fault-error", {"kind": kind, "error": str(exc)})
            return False
        self.events.emit(self.now(), None, "fault-cleared", {"kind": kind, "why": why})
        return True

    def view(self) -> list[dict[str, Any]]:
        return list(self.active.values())


def _check_all(text: str, kind: str) -> None:
    if text != "all":
        raise ControlError(400, f"{kind} acts on the whole fleet's cloud: use the selector all")
