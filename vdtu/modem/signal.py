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

``fade_to(rssi, duration_s)`` moves the level in a straight line from where it is
to ``rssi`` over ``duration_s`` (a unit driving away from its cell, a mast
losing power): computed on read from the start and end, no timer of its own;
the walk pauses during the fade and carries on around the new base after it.
``cancel_fade`` (the clear) holds the level where the fade has got to; a
``set_level`` also ends it.

The signal belongs to the radio environment, not to the device, so it has no
``reset()``: a power cycle of the unit does not change it.

Nothing ticks: the walk's steps fall at ``drift_period_s``, ``2 * drift_period_s``, ...
after the signal was made, and they are taken when the level is next read or changed
(``_catch_up``; a step due exactly at the read is not yet taken, see
``vdtu.clock.periods``), in order, each with the draw it would have taken on time (the
signal's ``rng`` is its own). So the level at any time is the same whether it was
read every step, once, or never in between, and a unit whose signal nobody reads
costs nothing for it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vdtu.clock.periods import periods_before
from vdtu.clock.rng import randints

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
        "_fade",
        "_level",
        "_made_at",
        "_steps",
        "base_rssi",
        "coverage",
        "drift_period_s",
        "env",
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
        self._level = self.base_rssi
        """The level after the last step taken (``_steps``)."""
        self._made_at = float(env.now)
        """Step ``k`` of the walk falls at ``_made_at + k * drift_period_s``."""
        self._steps = 0
        """Steps of the walk taken so far (see ``_catch_up``)."""
        self._fade: tuple[float, float, int, int] | None = None
        """(start time, end time, start level, end level) of a fade in progress."""
        self.coverage = True
        """Whether a cell is in reach."""
        self.on_coverage_change: tuple[Callable[[bool], None], ...] = ()
        """Called with the new coverage after every change."""

    @property
    def level(self) -> int:
        """The current level (0..31), kept walking even without coverage."""
        self._catch_up()
        fade = self._fade
        if fade is None:
            return self._level
        start, end, start_level, end_level = fade
        now = float(self.env.now)
        if now >= end:
            self._level, self._fade = end_level, None
            return end_level
        return round(start_level + (end_level - start_level) * (now - start) / (end - start))

    @property
    def fading(self) -> bool:
        """Whether a fade is in progress."""
        return self._fade_now() is not None

    def _fade_now(self) -> tuple[float, float, int, int] | None:
        """The fade in progress, after ending one that is over."""
        _ = self.level
        return self._fade

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
        _check_rssi(rssi)
        self._catch_up()
        self.base_rssi = rssi
        self._level = self.base_rssi
        self._fade = None

    def fade_to(self, rssi: int, duration_s: float) -> None:
        """Move the level in a straight line to ``rssi`` (0..31) over ``duration_s`` (> 0).

        The base of the walk becomes ``rssi`` at once; the level gets there at the end.

        Raises:
            ValueError: ``rssi`` is not an int in 0..31, or ``duration_s`` is not > 0.
        """
        target = _check_rssi(rssi)
        if (
            isinstance(duration_s, bool)
            or not isinstance(duration_s, int | float)
            or not 0 < duration_s < float("inf")
        ):
            raise ValueError(f"duration_s must be a number of seconds > 0, not {duration_s!r}")
        now = float(self.env.now)
        self._fade = (now, now + float(duration_s), self.level, target)
        self.base_rssi = target

    def cancel_fade(self) -> None:
        """End a fade where it has got to: the level and the base of the walk stay there."""
        level = self.level  # catches up, ending a fade that is over
        if self._fade is None:
            return
        self._level, self._fade = level, None
        self.base_rssi = level

    def set_coverage(self, coverage: bool) -> None:
        """Switch coverage on or off; listeners run only when it changes."""
        if coverage == self.coverage:
            return
        self.coverage = coverage
        for listener in self.on_coverage_change:
            listener(coverage)

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able view of the signal."""
        fade = self._fade_now()
        return {
            "rssi": self.rssi,
            "ber": self.ber,
            "level": self.level,
            "base_rssi": self.base_rssi,
            "fade": None if fade is None else {"to": fade[3], "until": fade[1]},
            "spread": self.spread,
            "coverage": self.coverage,
        }

    def _catch_up(self) -> None:
        """Take the steps of the walk that have fallen due since the last one taken.

        Each step is what the walk's timer would have done at its time: a step during a
        fade draws nothing; the first step at or after the fade's end puts the level on
        its end and draws; every other step draws -1, 0 or +1 and clamps to ``low`` ..
        ``high`` (the base cannot have changed since the last step taken: every change
        catches up first).
        """
        period = self.drift_period_s
        due = periods_before(self._made_at, float(self.env.now), period)
        if due <= self._steps:
            return
        fade = self._fade
        if fade is not None:
            end = fade[1]
            after = max(self._steps + 1, math.ceil((end - self._made_at) / period))
            while after > self._steps + 1 and self._made_at + (after - 1) * period >= end:
                after -= 1
            while self._made_at + after * period < end:
                after += 1
            if after > due:
                self._steps = due
                return
            self._level, self._fade = fade[3], None
            self._steps = after - 1
        level, low, high = self._level, self.low, self.high
        for step in randints(self.rng, -1, 1, due - self._steps):
            level += step
            level = high if level > high else low if level < low else level
        self._level, self._steps = level, due
