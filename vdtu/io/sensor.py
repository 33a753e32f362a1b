"""A temperature and humidity sensor on the DTU board (SHT30-like).

How it works: the air around the unit has a set point (``set``, from a
scenario or the dashboard) and drifts slowly around it: every
``drift_period_s`` the temperature moves by up to
±0.2 °C and the humidity by up to ±0.5 %, drawn from the sensor's own rng,
never further than ±1.5 °C / ±5 % from the set point and never outside the
sensor's range. ``read`` is the firmware taking a measurement, rounded to 0.1;
the last one is kept for displays.

Nothing ticks: the drift's steps fall at ``drift_period_s``, ``2 * drift_period_s``,
... after the sensor was made, and they are taken when the air is next read or set
(``_catch_up``; a step due exactly at the read is not yet taken, see
``vdtu.clock.periods``), in order, each with the draws it would have taken on time (the
rng is the sensor's own). A sensor nobody reads costs nothing.

Invariants: temperature stays in -40..125 °C and humidity in 0..100 %; when, how
often or whether ``read`` and ``snapshot`` are called does not change the air (they
take the steps due, with the same draws, that would have been taken anyway); a power
cycle forgets the last measurement, not the air (the drift goes on).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vdtu.clock.periods import periods_before

if TYPE_CHECKING:
    import simpy

    from vdtu.clock.rng import RandomSource

TEMPERATURE_RANGE_C = (-40.0, 125.0)
HUMIDITY_RANGE_PCT = (0.0, 100.0)
TEMPERATURE_STEP_C = 0.2
HUMIDITY_STEP_PCT = 0.5
TEMPERATURE_SPAN_C = 1.5
"""How far the drift may take the temperature from its set point."""
HUMIDITY_SPAN_PCT = 5.0
"""How far the drift may take the humidity from its set point."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SensorSnapshot:
    """A copy of the sensor state."""

    temperature_c: float
    """The air temperature now (not rounded)."""
    humidity_pct: float
    """The relative humidity now (not rounded)."""
    set_temperature_c: float
    set_humidity_pct: float
    last_read: tuple[float, float] | None
    """The last measurement the firmware took (None: none since power-on)."""


def _check(name: str, value: float, bounds: tuple[float, float], unit: str) -> float:
    low, high = bounds
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{name} must be {low:g}..{high:g} {unit}, not {value!r}")
    return float(value)


def _walk(
    value: float, step: float, centre: float, span: float, bounds: tuple[float, float]
) -> float:
    low = max(centre - span, bounds[0])
    high = min(centre + span, bounds[1])
    return min(max(value + step, low), high)


class TempHumiditySensor:
    """Temperature and relative humidity with a slow random drift.

    Args:
        env: the SimPy environment.
        rng: the sensor's own random source (the drift).
        temperature_c: initial temperature and set point, -40..125 °C.
        humidity_pct: initial humidity and set point, 0..100 %.
        drift_period_s: how often the air drifts, > 0.

    Raises:
        ValueError: any argument out of range (the message names it).
    """

    __slots__ = (
        "_humidity_pct",
        "_last_read",
        "_made_at",
        "_set_humidity_pct",
        "_set_temperature_c",
        "_steps",
        "_temperature_c",
        "drift_period_s",
        "env",
        "rng",
    )

    def __init__(
        self,
        env: simpy.Environment,
        rng: RandomSource,
        *,
        temperature_c: float = 25.0,
        humidity_pct: float = 50.0,
        drift_period_s: float = 30.0,
    ) -> None:
        if not (math.isfinite(drift_period_s) and drift_period_s > 0):
            raise ValueError(f"drift_period_s must be > 0, not {drift_period_s!r}")
        self.env = env
        self.rng = rng
        self.drift_period_s = drift_period_s
        self._set_temperature_c = _check("temperature_c", temperature_c, TEMPERATURE_RANGE_C, "°C")
        self._set_humidity_pct = _check("humidity_pct", humidity_pct, HUMIDITY_RANGE_PCT, "%")
        self._temperature_c = self._set_temperature_c
        self._humidity_pct = self._set_humidity_pct
        self._last_read: tuple[float, float] | None = None
        self._made_at = float(env.now)
        """Step ``k`` of the drift falls at ``_made_at + k * drift_period_s``."""
        self._steps = 0
        """Steps of the drift taken so far (see ``_catch_up``)."""

    def read(self) -> tuple[float, float]:
        """Measure: ``(temperature °C, humidity %)``, each rounded to 0.1."""
        self._catch_up()
        reading = (round(self._temperature_c, 1), round(self._humidity_pct, 1))
        self._last_read = reading
        return reading

    def set(self, temperature_c: float, humidity_pct: float) -> None:
        """Move the air to new set points (the values jump there, then drift around them).

        Raises:
            ValueError: temperature outside -40..125 °C or humidity outside 0..100 %.
        """
        temperature = _check("temperature_c", temperature_c, TEMPERATURE_RANGE_C, "°C")
        humidity = _check("humidity_pct", humidity_pct, HUMIDITY_RANGE_PCT, "%")
        self._catch_up()
        self._set_temperature_c = self._temperature_c = temperature
        self._set_humidity_pct = self._humidity_pct = humidity

    def reset(self) -> None:
        """Power cycle: the last measurement is forgotten; the air keeps drifting."""
        self._last_read = None

    def snapshot(self) -> SensorSnapshot:
        """A copy of the air, the set points and the last measurement."""
        self._catch_up()
        return SensorSnapshot(
            temperature_c=self._temperature_c,
            humidity_pct=self._humidity_pct,
            set_temperature_c=self._set_temperature_c,
            set_humidity_pct=self._set_humidity_pct,
            last_read=self._last_read,
        )

    def _catch_up(self) -> None:
        """Take the steps of the drift due since the last one taken: each a bounded random
        step in temperature, then in humidity (the set points cannot have changed since the
        last step taken: ``set`` catches up first)."""
        due = periods_before(self._made_at, float(self.env.now), self.drift_period_s)
        if due <= self._steps:
            return
        rng = self.rng
        temperature, humidity = self._temperature_c, self._humidity_pct
        set_temperature, set_humidity = self._set_temperature_c, self._set_humidity_pct
        for _ in range(due - self._steps):
            temperature = _walk(
                temperature,
                rng.uniform(-TEMPERATURE_STEP_C, TEMPERATURE_STEP_C),
                set_temperature,
                TEMPERATURE_SPAN_C,
                TEMPERATURE_RANGE_C,
            )
            humidity = _walk(
                humidity,
                rng.uniform(-HUMIDITY_STEP_PCT, HUMIDITY_STEP_PCT),
                set_humidity,
                HUMIDITY_SPAN_PCT,
                HUMIDITY_RANGE_PCT,
            )
        self._temperature_c, self._humidity_pct, self._steps = temperature, humidity, due
