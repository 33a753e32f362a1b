"""Reconnect delays as devices space them: exponential, capped, with jitter.

``delay_s(attempts)`` is ``base_s * 2**attempts`` capped at ``max_s``, times a
uniform factor in 0.8..1.2 from the unit's own random source, so a fleet that
lost its broker at one instant does not come back in one synchronized stampede.
Shared by the XGC cloud session and the QuecPython channel drivers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vdtu.clock.rng import RandomSource

JITTER = 0.2
"""The delay is drawn uniformly within +/- this fraction of the nominal value."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """The reconnect policy: the first retry after ``base_s``, doubling up to ``max_s``."""

    base_s: float
    max_s: float

    def __post_init__(self) -> None:
        if not 0 < self.base_s <= self.max_s:
            raise ValueError(
                f"need 0 < base_s <= max_s, not base_s={self.base_s} max_s={self.max_s}"
            )

    def delay_s(self, attempts: int, rng: RandomSource) -> float:
        """The wait before the next try, after ``attempts`` failed tries in a row."""
        nominal = min(self.max_s, self.base_s * float(2 ** max(0, min(attempts, 30))))
        return nominal * rng.uniform(1 - JITTER, 1 + JITTER)
