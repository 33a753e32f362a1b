"""Radio signal strength at the unit's antenna, as ``AT+CSQ`` reports it.

The level is an RSSI index 0..31 (3GPP TS 27.007 ``+CSQ``: 0 is -113 dBm or
less, 31 is -51 dBm or more, 2 dBm a step); 99 means "not known or not
detectable", which is what a modem without coverage reads.

How it moves: a bounded random walk. Every ``drift_period_s`` the level takes a
step of -1, 0 or +1 (drawn from the unit's rng) and is clamped to
``base_rssi ± spread`` and to 0..31. ``set_level`` moves the base and puts the
level on it at once (a scenario that weakens the signal wants to see it now).
Coverage is a separate switch: without coverage ``rssi`` reads 99 while the
hidden level keeps walking, so coverage coming back finds a plausible value.

The signal belongs to the radio environment, not to the device, so it has no
``reset()``: a power cycle of the unit does not change it. Its one timer (a
SimPy timeout whose callback takes the step and sets the next one: no process)
fires once per ``drift_period_s``, which stays cheap for thousands of units.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import simpy

    from vdtu.clock.rng import RandomSource

RSSI_UNKNOWN = 99
"""The ``+CSQ`` value for "not known or not detectable"."""
BER_UNKNOWN = 99
"""The ``+CSQ`` bit error rate value for "not known or not detectable"."""


def _check_rssi(rssi: int) -> int:
    if isinstance(rssi, bool) or not isinstance(rssi, int) or not 0 <= rssi <= 31:
        raise ValueError(f"rssi must be an int in 0..31, not {rssi!r}")
    return rssi


class Signal:
    """Signal strength and coverage at one unit.

    Args:
        env: the SimPy environment.
        rng: the unit's random generator.
        base_rssi: the level the walk stays around (0..31).
        drift_period_s: seconds between steps of the walk (> 0).
        spread: how far (in RSSI steps, >= 0) the level may wander from the base.
    """

    __slots__ = (
        "base_rssi",
        "coverage",
        "drift_period_s",
        "env",
        "level",
        "on_coverage_change",
        "rng",
        "spread",
    )

    def __init__(
        self,
        env: simpy.Environment,
        rng: RandomSource,
        *,
        base_rssi: int = 26,
        drift_period_s: float = 10.0,
        spread: int = 4,
    ) -> None:
        if not drift_period_s > 0:
            raise ValueError(f"drift_period_s must be > 0, not {drift_period_s!r}")
        if not isinstance(spread, int) or spread < 0:
            raise ValueError(f"spread must be an int >= 0, not {spread!r}")
        self.env = env
        self.rng = rng
        self.drift_period_s = float(drift_period_s)
        self.spread = spread
        self.base_rssi = _check_rssi(base_rssi)
        """The centre of the walk."""
        self.level = self.base_rssi
        """The current level (0..31), kept walking even without coverage."""
        self.coverage = True
        """Whether a cell is in reach."""
        self.on_coverage_change: list[Callable[[bool], None]] = []
        """Called with the new coverage after every change."""
        self._arm()

    @property
    def rssi(self) -> int:
        """The ``+CSQ`` RSSI: the level, or 99 without coverage."""
        return self.level if self.coverage else RSSI_UNKNOWN

    @property
    def ber(self) -> int:
        """The ``+CSQ`` bit error rate: always 99 (not known), as LTE modems report it."""
        return BER_UNKNOWN

    @property
    def low(self) -> int:
        """The lowest level the walk can reach."""
        return max(0, self.base_rssi - self.spread)

    @property
    def high(self) -> int:
        """The highest level the walk can reach."""
        return min(31, self.base_rssi + self.spread)

    def set_level(self, rssi: int) -> None:
        """Move the base of the walk to ``rssi`` (0..31); the level jumps there at once.

        Raises:
            ValueError: ``rssi`` is not an int in 0..31.
        """
        self.base_rssi = _check_rssi(rssi)
        self.level = self.base_rssi

    def set_coverage(self, coverage: bool) -> None:
        """Switch coverage on or off; listeners run only when it changes."""
        if coverage == self.coverage:
            return
        self.coverage = coverage
        for listener in tuple(self.on_coverage_change):
            listener(coverage)

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able view of the signal."""
        return {
            "rssi": self.rssi,
            "ber": self.ber,
            "level": self.level,
            "base_rssi": self.base_rssi,
            "spread": self.spread,
            "coverage": self.coverage,
        }

    def _arm(self) -> None:
        self.env.timeout(self.drift_period_s).callbacks.append(self._drift)

    def _drift(self, _timer: simpy.Event) -> None:
        """One step of the random walk, then the timer for the next (forever)."""
        step = self.rng.randint(-1, 1)
        self.level = min(self.high, max(self.low, self.level + step))
        self._arm()
