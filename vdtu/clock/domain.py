"""Failure domains: an exception inside one unit resets that unit, never the process.

How it works: ``DomainEnvironment`` is a SimPy environment whose every scheduled
event remembers the ``FaultDomain`` that was current when it was scheduled (as
asyncio's callbacks remember their context). A unit's constructor, its control
calls and every outside input meant for it run inside its domain, so everything
its models and firmware schedule from there belongs to it too. ``step`` runs each
callback of an event inside the event's domain; an exception out of a callback, or
a process of that domain that fails with nobody waiting for it, goes to the
domain's handler (the unit's watchdog) and the run goes on. The other callbacks of
the same event still run. An exception outside any domain (the fleet's own code)
ends the run, as SimPy's rule says.

The cost is one more item in each queue entry and a domain switch per step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from heapq import heappop, heappush
from typing import TYPE_CHECKING

import simpy
from simpy.core import EmptySchedule, StopSimulation
from simpy.events import NORMAL, EventPriority

if TYPE_CHECKING:
    from simpy.core import SimTime
    from simpy.events import Event


class FaultDomain:
    """What a fault inside one unit is reported to.

    Args:
        name: the unit's name, for messages.
        handler: called with the exception, inside the domain, when code of the domain
            raises; it must not raise itself.
    """

    __slots__ = ("handler", "name")

    def __init__(self, name: str, handler: Callable[[BaseException], None]) -> None:
        self.name = name
        self.handler = handler

    def __repr__(self) -> str:
        return f"FaultDomain({self.name!r})"


class DomainEnvironment(simpy.Environment):
    """A SimPy environment that contains faults per domain (see the module comment)."""

    def __init__(self, initial_time: SimTime = 0) -> None:
        super().__init__(initial_time)
        self.domain: FaultDomain | None = None
        """The domain of the code running now (None: the fleet's own code)."""

    @contextmanager
    def entered(self, domain: FaultDomain | None) -> Iterator[None]:
        """Run a block inside ``domain``: what it schedules belongs to the domain."""
        previous, self.domain = self.domain, domain
        try:
            yield
        finally:
            self.domain = previous

    def call_soon(self, domain: FaultDomain | None, callback: Callable[[], None]) -> None:
        """Run ``callback`` at the current sim time, inside ``domain``."""
        event = self.event()
        event.callbacks.append(lambda _event: callback())
        with self.entered(domain):
            event.succeed()

    def schedule(self, event: Event, priority: EventPriority = NORMAL, delay: SimTime = 0) -> None:
        entry = (self._now + delay, priority, next(self._eid), event, self.domain)
        heappush(self._entries, entry)

    @property
    def _entries(self) -> list[tuple[SimTime, EventPriority, int, Event, FaultDomain | None]]:
        """The queue with the domain as each entry's fifth item."""
        return self._queue  # type: ignore[return-value]

    def step(self) -> None:
        try:
            self._now, _, _, event, domain = heappop(self._entries)
        except IndexError:
            raise EmptySchedule from None
        callbacks, event.callbacks = event.callbacks, None  # type: ignore[assignment]
        previous, self.domain = self.domain, domain
        try:
            for index, callback in enumerate(callbacks):
                try:
                    callback(event)
                except StopSimulation:
                    # As SimPy does: the rest of the callbacks run when the run resumes.
                    event.callbacks = callbacks[index + 1 :]
                    self.schedule(event, EventPriority(-1))
                    raise
                except Exception as exc:
                    if domain is None:
                        raise
                    domain.handler(exc)
            if not event._ok and not hasattr(event, "_defused"):
                failure = event._value
                if domain is None or not isinstance(failure, Exception):
                    crash = type(failure)(*failure.args)
                    crash.__cause__ = failure
                    raise crash
                domain.handler(failure)
        finally:
            self.domain = previous
