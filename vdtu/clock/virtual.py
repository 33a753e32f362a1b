"""The virtual-time driver: the environment runs as fast as the CPU allows.

Injected inputs happen at the current sim time and are processed by the next
``run``/``run_for`` call, so a test can script outside input precisely.
"""

from __future__ import annotations

from vdtu.clock._base import Clock
from vdtu.clock.domain import DomainEnvironment

DEFAULT_EPOCH_S = 1_692_157_152.787
"""2023-08-16 03:39:12.787 UTC: the network time of the GET_NOW example (docs/spec/xgc.md#5.8)."""


class VirtualClock(Clock):
    """Drive a SimPy environment in virtual time."""

    def __init__(self, *, epoch_s: float = DEFAULT_EPOCH_S) -> None:
        super().__init__(DomainEnvironment(), epoch_s=epoch_s)

    def run_for(self, duration_s: float) -> None:
        """Advance sim time by ``duration_s`` seconds, processing every event due."""
        if duration_s <= 0:
            raise ValueError(f"duration_s must be > 0, not {duration_s}")
        self.env.run(until=self.env.now + duration_s)

    def run_until(self, at: float) -> None:
        """Advance sim time to ``at`` (absolute sim seconds)."""
        self.env.run(until=at)

    def _catch_up(self) -> None:
        """Virtual time does not move on its own."""

    def _after_inject(self) -> None:
        """The event waits in the queue for the next run call."""
