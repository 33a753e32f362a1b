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

from collections.abc import Callable
from heapq import heappop, heappush
from typing import TYPE_CHECKING

import simpy
from simpy.core import EmptySchedule, StopSimulation
from simpy.events import NORMAL, Event, EventPriority

if TYPE_CHECKING:
    from simpy.core import SimTime


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


class _Entered:
    """The context of ``DomainEnvironment.entered`` (a class: it runs on every host write)."""

    __slots__ = ("_domain", "_env", "_previous")

    def __init__(self, env: DomainEnvironment, domain: FaultDomain | None) -> None:
        self._env = env
        self._domain = domain
        self._previous: FaultDomain | None = None

    def __enter__(self) -> None:
        self._previous, self._env.domain = self._env.domain, self._domain

    def __exit__(self, *_exc: object) -> None:
        self._env.domain = self._previous


class DomainEnvironment(simpy.Environment):
    """A SimPy environment that contains faults per domain (see the module comment)."""

    def __init__(self, initial_time: SimTime = 0) -> None:
        super().__init__(initial_time)
        self.domain: FaultDomain | None = None
        """The domain of the code running now (None: the fleet's own code)."""
        self._entries: list[tuple[SimTime, EventPriority, int, Event, FaultDomain | None]]
        self._entries = self._queue  # type: ignore[assignment]
        """SimPy's queue, with the domain as each entry's fifth item."""

    def entered(self, domain: FaultDomain | None) -> _Entered:
        """Run a ``with`` block inside ``domain``: what it schedules belongs to the domain."""
        return _Entered(self, domain)

    def call_soon(
        self, domain: FaultDomain | None, callback: Callable[..., None], *args: object
    ) -> None:
        """Run ``callback(*args)`` at the current sim time, inside ``domain`` (one event, as
        ``succeed`` would schedule it; this is the path of every outside input)."""
        event = Event(self)
        event.callbacks.append(lambda _event: callback(*args))
        event._ok = True
        event._value = None
        heappush(self._entries, (self._now, NORMAL, next(self._eid), event, domain))

    def call_later(self, delay: SimTime, callback: Callable[[Event], None]) -> Event:
        """Run ``callback(event)`` ``delay`` from now, in the current domain: what
        ``timeout(delay).callbacks.append(callback)`` does, without building a ``Timeout`` (the
        path of every model's timer: a line's delivery, a host's tick, a cloud's latency).

        Raises:
            ValueError: ``delay`` is negative.
        """
        if delay < 0:
            raise ValueError(f"Negative delay {delay}")
        event = Event(self)
        event.callbacks.append(callback)
        event._ok = True
        event._value = None
        heappush(self._entries, (self._now + delay, NORMAL, next(self._eid), event, self.domain))
        return event

    def advance_to(self, until: float) -> None:
        """Process every event due before ``until``, then stand at ``until`` (what
        ``run(until=until)`` does, without the stop event and the exception that end a
        ``run``: the real-time clock advances on every outside input and timer).

        Raises:
            ValueError: ``until`` is not after now.
        """
        if not until > self._now:
            raise ValueError(f"until ({until}) must be after now ({self._now})")
        entries = self._entries
        while entries and entries[0][0] < until:
            self.step()
        self._now = until

    def run_due(self) -> None:
        """Process every event due now (at ``now``: the ones it schedules for now too), so
        that the next event, if any, is in the future."""
        entries = self._entries
        while entries and entries[0][0] <= self._now:
            self.step()

    def schedule(self, event: Event, priority: EventPriority = NORMAL, delay: SimTime = 0) -> None:
        heappush(self._entries, (self._now + delay, priority, next(self._eid), event, self.domain))

    def step(self) -> None:
        try:
            self._now, _, _, event, domain = heappop(self._entries)
        except IndexError:
            raise EmptySchedule from None
        callbacks, event.callbacks = event.callbacks, None  # type: ignore[assignment]
        previous, self.domain = self.domain, domain
        try:
            for callback in callbacks:
                try:
                    callback(event)
                except StopSimulation:
                    # As SimPy does: the rest of the callbacks run when the run resumes.
                    event.callbacks = callbacks[callbacks.index(callback) + 1 :]
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
