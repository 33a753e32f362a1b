"""The real-time driver: SimPy advanced to the wall clock from an asyncio loop.

How it works: one ``loop.call_at`` timer is armed for the wall time of the next
sim event (``env.peek()``). When it fires, the environment is run up to the wall
clock and the timer is armed again. ``inject`` (called from fd readers on the
loop) first runs the environment up to the wall clock, queues the input as an
event at that instant and processes everything due, so an input is handled
within the same loop callback that read it (no extra task hop).

``advance_to(t)`` (``DomainEnvironment``: ``run(until=t)`` without its stop
event) processes every event before ``t``; ``run_due`` steps through every
event at ``now`` afterwards, so the next ``peek()`` is always in the future.
Lateness of a step is measured and kept as a statistic.

A crash inside the simulation (an exception out of a model or the firmware)
stops the clock and is handed to ``on_crash``: the run ends visibly, as SimPy's
own rule says, instead of the loop logging it and sim time silently freezing.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

from vdtu.clock._base import Clock
from vdtu.clock.domain import DomainEnvironment


class RealtimeClock(Clock):
    """Drive a SimPy environment in step with the wall clock.

    Args:
        loop: the asyncio loop that owns every fd of this process.
        factor: wall seconds per sim second (1.0 is real time).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, *, factor: float = 1.0) -> None:
        super().__init__(DomainEnvironment(), epoch_s=time.time())
        if factor <= 0:
            raise ValueError(f"factor must be > 0, not {factor}")
        self.loop = loop
        self.factor = factor
        self._loop_t0 = loop.time()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self.max_lateness_s = 0.0
        """The worst delay seen between an event's due time and its processing."""
        self.crashed: Exception | None = None
        """The exception that stopped the simulation, if one did."""
        self.on_crash: list[Callable[[Exception], None]] = []
        """Called once with the exception when the simulation crashes."""
        self._stopped = False

    def start(self) -> None:
        """Arm the timer for the first event."""
        self._stopped = False
        self._rearm()

    def stop(self) -> None:
        """Stop advancing sim time."""
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def wall_now(self) -> float:
        """Sim time that corresponds to the wall clock now."""
        return (self.loop.time() - self._loop_t0) / self.factor

    def _safely(self, step: Callable[[], None]) -> None:
        if self.crashed is not None:
            return
        try:
            step()
        except Exception as exc:  # any crash ends the run; it is reported, not swallowed
            self.crashed = exc
            self.stop()
            for listener in self.on_crash:
                listener(exc)

    def _catch_up(self) -> None:
        self._safely(self._advance)

    def _advance(self) -> None:
        target = self.wall_now()
        if target > self.env.now:
            next_at = self.env.peek()
            if next_at <= target:
                self.max_lateness_s = max(self.max_lateness_s, (target - next_at) * self.factor)
            self.env.advance_to(target)
        self.env.run_due()

    def _after_inject(self) -> None:
        self._safely(self.env.run_due)
        self._rearm()

    def _tick(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        if self._stopped:
            return
        self._catch_up()
        self._rearm()

    def _rearm(self) -> None:
        if self._stopped:
            return
        next_at = self.env.peek()
        if next_at == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = next_at
        if next_at != math.inf:
            self._timer = self.loop.call_at(self._loop_t0 + next_at * self.factor, self._tick)
