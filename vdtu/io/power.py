"""The DTU's backup battery and its external supply (``vbat`` and ``vbus`` in GET_BASE_INFO).

How it works: the state of charge (``soc``, 0..1) is integrated exactly over
sim time: it rises at ``charge_current_ma`` while external power (``vbus``) is
present and falls at ``load_current_ma`` otherwise, clamped to 0..1. The
integral is a straight line from the last settlement, and it is settled whenever
the rate changes (``set_vbus``, ``set_soc``, a drain). The voltage is measured
every 10 s (``UPDATE_PERIOD_S``, counted from the battery's making): the Li-ion
open-circuit voltage for the charge at that instant (about 3300 mV empty, 4200 mV
full) plus a little noise.

Nothing ticks: ``vbat_mv`` is the measurement of the last 10 s instant before the
read, computed when it is read, its noise drawn from ``keyed(key, k)`` for the
``k``-th instant (the key is one draw from the battery's own rng), so it is the same
whenever and however often it is read. Before anything changes the charge or the
rate, the last measurement is fixed (``_catch_up``), so a later read never computes
an instant that the change came after. The measurements taken outside the 10 s
instants (at making, ``set_soc``, ``reset``, the cut-off and its recovery) draw
from the rng itself.

Invariants: reading ``soc``, ``vbat_mv`` or ``snapshot()`` changes nothing and
never draws from the rng (a dashboard watching the battery must not change the
run); only ``set_soc``, ``reset`` and the cut-off and its recovery do. The cell is
physics: a power cycle of the DTU keeps its charge and only re-measures it.

The supply and its faults. The unit runs from ``vbus`` when it is present, else
from the cell. Without ``vbus`` the cell's voltage falls with its charge; at
``CUTOFF_MV`` the supply's undervoltage lockout (UVLO) switches the unit off and
the battery tells its ``on_cutoff`` listeners (the unit subscribes its
``power_off``). The supply comes back when ``vbus`` returns, or when the cell is
put back above ``RESTART_MV`` (``set_soc``; the gap is the lockout's hysteresis),
and the battery tells ``on_recover`` (the unit's ``power_on``). The moment of the
cut-off is computed, not polled: whenever the rate changes, one timer is set for
the instant the charge reaches the cut-off (none while ``vbus`` is present), and a
timer set before the last change does nothing when it fires.

``drain`` is the battery-drain fault: the cell loses charge at a fixed rate (or
linearly to a target charge over a time) whatever the charger and the load would
do, until ``stop_drain``; its record lives in the ``_drain`` slot, None on a
healthy battery. It is a condition of the cell, so it outlasts a power cycle.
Removing ``vbus`` is ``set_vbus(False)``. ``brown_out`` is a supply dip: the
unit is switched off for ``ms`` and on again (the flash keeps what it holds).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vdtu.checks import check_number, check_positive
from vdtu.clock.periods import periods_before
from vdtu.clock.rng import keyed

if TYPE_CHECKING:
    import simpy

    from vdtu.clock.rng import RandomSource

UPDATE_PERIOD_S = 10.0
"""How often the charge is settled and the voltage measured."""

OCV_CURVE_MV = (
    (0.00, 3300.0),
    (0.05, 3500.0),
    (0.10, 3600.0),
    (0.20, 3680.0),
    (0.30, 3740.0),
    (0.40, 3780.0),
    (0.50, 3820.0),
    (0.60, 3870.0),
    (0.70, 3930.0),
    (0.80, 4000.0),
    (0.90, 4080.0),
    (1.00, 4200.0),
)
"""A typical Li-ion open-circuit voltage by state of charge (piecewise linear)."""


def _check_soc(soc: float) -> None:
    if not (math.isfinite(soc) and 0.0 <= soc <= 1.0):
        raise ValueError(f"soc must be 0.0..1.0, not {soc!r}")


_OCV_SOCS = tuple(point[0] for point in OCV_CURVE_MV)
_OCV_MVS = tuple(point[1] for point in OCV_CURVE_MV)

CUTOFF_MV = 3400.0
"""The supply's undervoltage lockout: below this cell voltage (no ``vbus``) the unit is off."""
RESTART_MV = 3600.0
"""The lockout releases when the cell is back above this (its hysteresis)."""
MAX_DRAIN_PCT_PER_MIN = 100.0
"""The fastest drain: the whole charge in one minute."""
MAX_DIP_MS = 60_000.0
"""The longest brown-out dip (anything longer is a power cut)."""
_SOC_EPSILON = 1e-9
"""Rounding slack when the cut-off timer fires exactly at the cut-off charge."""


def open_circuit_mv(soc: float) -> float:
    """The open-circuit voltage (mV) of a cell at state of charge ``soc``.

    Raises:
        ValueError: ``soc`` outside 0..1.
    """
    _check_soc(soc)
    upper = min(max(bisect.bisect_left(_OCV_SOCS, soc), 1), len(_OCV_SOCS) - 1)
    (soc0, mv0), (soc1, mv1) = OCV_CURVE_MV[upper - 1], OCV_CURVE_MV[upper]
    return mv0 + (mv1 - mv0) * (soc - soc0) / (soc1 - soc0)


def soc_at_mv(mv: float) -> float:
    """The state of charge at which the open-circuit voltage is ``mv`` (the curve inverted).

    Raises:
        ValueError: ``mv`` outside the curve, 3300..4200 mV.
    """
    low, high = _OCV_MVS[0], _OCV_MVS[-1]
    check_number("mv", mv, low, high)
    upper = min(max(bisect.bisect_left(_OCV_MVS, mv), 1), len(_OCV_MVS) - 1)
    (soc0, mv0), (soc1, mv1) = OCV_CURVE_MV[upper - 1], OCV_CURVE_MV[upper]
    return soc0 + (soc1 - soc0) * (mv - mv0) / (mv1 - mv0)


CUTOFF_SOC = soc_at_mv(CUTOFF_MV)
"""The charge at ``CUTOFF_MV`` (0.025)."""
RESTART_SOC = soc_at_mv(RESTART_MV)
"""The charge at ``RESTART_MV`` (0.10)."""


def check_drain_rate(pct_per_min: float) -> float:
    """``pct_per_min`` if it is a drain rate, > 0 and <= 100 (% of the capacity a minute)."""
    return check_positive("pct_per_min", pct_per_min, MAX_DRAIN_PCT_PER_MIN)


def check_dip_ms(ms: float) -> float:
    """``ms`` if it is a brown-out's length, 1..60000 ms."""
    return check_number("ms", ms, 1.0, MAX_DIP_MS)


def brown_out(
    env: simpy.Environment,
    *,
    ms: float,
    power_off: Callable[[], None],
    power_on: Callable[[], None],
) -> simpy.Event:
    """A supply dip of ``ms``: ``power_off`` now, ``power_on`` when the supply is back.

    The MCU and the modem reset as after a power cut; what the flash holds survives,
    and the boot sequence runs again. The unit calls this with its own ``power_off``
    and ``power_on``, inside its failure domain (the restoring timer belongs to it).

    Args:
        env: the SimPy environment.
        ms: the dip's length, 1..60000 ms.
        power_off: switches the unit off.
        power_on: switches it on again.

    Returns:
        The timer at whose end ``power_on`` is called.

    Raises:
        ValueError: ``ms`` out of range (nothing is switched).
    """
    dip_s = check_dip_ms(ms) / 1000.0
    power_off()
    timer = env.timeout(dip_s)
    timer.callbacks.append(lambda _event: power_on())
    return timer


class _Drain:
    """The battery-drain fault: the charge falls at ``rate_per_h`` down to ``floor``."""

    __slots__ = ("floor", "pct_per_min", "rate_per_h")

    def __init__(self, pct_per_min: float, floor: float) -> None:
        self.pct_per_min = pct_per_min
        self.rate_per_h = pct_per_min * 60.0 / 100.0
        """Charge lost per hour, as a fraction of the capacity."""
        self.floor = floor
        """Where the drain stops and the charge stays (0 for a rate without a target)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BatterySnapshot:
    """A copy of the battery state."""

    soc: float
    """State of charge, 0..1."""
    vbat_mv: int
    """Last measured battery voltage."""
    vbus: bool
    """External power present (charging)."""
    cut_off: bool = False
    """The undervoltage lockout holds the unit off (no ``vbus``, cell below cut-off)."""
    drain_pct_per_min: float | None = None
    """The battery-drain fault's rate, or None while the battery is healthy."""


class Battery:
    """A Li-ion cell with a charger on the external supply.

    Args:
        env: the SimPy environment.
        rng: the battery's own random source (measurement noise).
        soc: initial state of charge, 0..1.
        vbus: external power present at start.
        capacity_mah: cell capacity, > 0.
        charge_current_ma: charging current while ``vbus`` is present, >= 0.
        load_current_ma: the unit's draw from the cell without ``vbus``, >= 0.
        noise_mv: half-width of the uniform measurement noise, >= 0.

    Raises:
        ValueError: any argument out of range (the message names it).
    """

    __slots__ = (
        "_cut_off",
        "_cutoff_timer",
        "_drain",
        "_made_at",
        "_measured",
        "_noise_key",
        "_settled_at",
        "_soc",
        "_vbat_mv",
        "_vbus",
        "capacity_mah",
        "charge_current_ma",
        "env",
        "load_current_ma",
        "noise_mv",
        "on_cutoff",
        "on_recover",
        "on_vbus_change",
        "rng",
    )

    def __init__(
        self,
        env: simpy.Environment,
        rng: RandomSource,
        *,
        soc: float = 0.8,
        vbus: bool = True,
        capacity_mah: float = 2000.0,
        charge_current_ma: float = 500.0,
        load_current_ma: float = 120.0,
        noise_mv: float = 5.0,
    ) -> None:
        _check_soc(soc)
        if not (math.isfinite(capacity_mah) and capacity_mah > 0):
            raise ValueError(f"capacity_mah must be > 0, not {capacity_mah!r}")
        for name, value in (
            ("charge_current_ma", charge_current_ma),
            ("load_current_ma", load_current_ma),
            ("noise_mv", noise_mv),
        ):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be >= 0, not {value!r}")
        self.env = env
        self.rng = rng
        self.capacity_mah = capacity_mah
        self.charge_current_ma = charge_current_ma
        self.load_current_ma = load_current_ma
        self.noise_mv = noise_mv
        self.on_vbus_change: tuple[Callable[[bool], None], ...] = ()
        """Called as ``listener(present)`` when external power comes or goes."""
        self.on_cutoff: tuple[Callable[[], None], ...] = ()
        """Called when the undervoltage lockout switches the unit off."""
        self.on_recover: tuple[Callable[[], None], ...] = ()
        """Called when the supply is back after a cut-off (``vbus``, or a recharged cell)."""
        self._soc = soc
        self._vbus = vbus
        self._settled_at = float(env.now)
        self._drain: _Drain | None = None
        """The battery-drain fault, None while healthy."""
        self._cut_off = False
        self._cutoff_timer: simpy.Event | None = None
        """The timer set for the instant the charge reaches the cut-off (None: no such
        instant at the current rate)."""
        self._vbat_mv = self._measure()
        self._noise_key = rng.randrange(1 << 64)
        """The key of the 10 s measurements' noise (see the module docstring)."""
        self._made_at = float(env.now)
        """The ``k``-th measurement instant is ``_made_at + k * UPDATE_PERIOD_S``."""
        self._measured = 0
        """The last measurement instant ``_vbat_mv`` is up to date with (0: none yet)."""
        self._check_supply()

    @property
    def soc(self) -> float:
        """State of charge now, 0..1."""
        return self._soc_now()

    @property
    def vbus(self) -> bool:
        """External power present (the battery is charging)."""
        return self._vbus

    @property
    def vbat_mv(self) -> int:
        """The last measured battery voltage in mV (new every 10 s)."""
        instant = self._instant()
        if instant > self._measured:
            return self._measure_at(instant)
        return self._vbat_mv

    @property
    def cut_off(self) -> bool:
        """True while the undervoltage lockout holds the unit off."""
        return self._cut_off

    def set_vbus(self, present: bool) -> None:
        """Connect or remove external power; a change notifies ``on_vbus_change``.

        Removing it with the cell at or below the cut-off switches the unit off at once
        (``on_cutoff``, after ``on_vbus_change``); bringing it back after a cut-off
        restores the supply (``on_recover``, after ``on_vbus_change``).
        """
        if present == self._vbus:
            return
        self._settle()
        self._vbus = present
        for listener in self.on_vbus_change:
            listener(present)
        self._check_supply()

    def set_soc(self, soc: float) -> None:
        """Put the cell at state of charge ``soc`` (0..1) and re-measure.

        Without ``vbus``, a charge at or below the cut-off switches the unit off; one
        above the restart level after a cut-off brings the supply back.

        Raises:
            ValueError: ``soc`` outside 0..1.
        """
        _check_soc(soc)
        self._settle()
        self._soc = soc
        self._vbat_mv = self._measure()
        self._check_supply()

    def drain(
        self,
        *,
        pct_per_min: float | None = None,
        to_soc: float | None = None,
        over_s: float | None = None,
    ) -> None:
        """The battery-drain fault: the cell loses charge whatever charges or loads it.

        Give either ``pct_per_min`` (the charge falls at that rate until the cell is
        empty) or ``to_soc`` and ``over_s`` (it falls linearly to ``to_soc`` in
        ``over_s`` seconds and stays there). While the drain lasts, the charger
        (``vbus``) does not raise the charge; with ``vbus`` present the unit stays on
        (it runs from ``vbus``), without it the unit goes off at the cut-off. A new
        drain replaces the one running. It outlasts a power cycle of the unit.

        Args:
            pct_per_min: % of the capacity lost a minute, > 0 and <= 100.
            to_soc: the charge to fall to, 0..1, below the charge now.
            over_s: how long the fall takes, seconds > 0.

        Raises:
            ValueError: a value out of range, ``to_soc`` not below the charge now, or
                neither or both forms given (nothing changes).
        """
        if pct_per_min is not None:
            if to_soc is not None or over_s is not None:
                raise ValueError("give either pct_per_min, or to_soc with over_s, not both")
            drain = _Drain(check_drain_rate(pct_per_min), 0.0)
        elif to_soc is not None and over_s is not None:
            target = check_number("to_soc", to_soc, 0.0, 1.0)
            span = check_positive("over_s", over_s, 30 * 86400.0)
            now_soc = self._soc_now()
            if not target < now_soc:
                raise ValueError(
                    f"to_soc must be below the charge now ({now_soc:.4f}), not {to_soc!r}"
                )
            drain = _Drain((now_soc - target) * 100.0 / (span / 60.0), target)
        else:
            raise ValueError("give either pct_per_min, or to_soc with over_s")
        self._settle()
        self._drain = drain
        self._check_supply()

    def stop_drain(self) -> None:
        """End the battery-drain fault: charger and load act on the cell again."""
        if self._drain is None:
            return
        self._settle()
        self._drain = None
        self._check_supply()

    def reset(self) -> None:
        """Power cycle of the unit: the charge is kept, the voltage is measured afresh."""
        self._settle()
        self._vbat_mv = self._measure()

    def snapshot(self) -> BatterySnapshot:
        """A copy of the charge, the last measurement, the supply state and the drain."""
        drain = self._drain
        return BatterySnapshot(
            soc=self._soc_now(),
            vbat_mv=self.vbat_mv,
            vbus=self._vbus,
            cut_off=self._cut_off,
            drain_pct_per_min=None if drain is None else drain.pct_per_min,
        )

    def _instant(self) -> int:
        """The index of the last measurement instant before now (0: none yet)."""
        return periods_before(self._made_at, float(self.env.now), UPDATE_PERIOD_S)

    def _measure_at(self, instant: int) -> int:
        """The measurement of instant ``instant`` (after the last settlement): the voltage
        for the charge then, and that instant's own noise."""
        soc = self._soc_at(self._made_at + instant * UPDATE_PERIOD_S)
        noise = keyed(self._noise_key, instant).uniform(-self.noise_mv, self.noise_mv)
        return round(open_circuit_mv(soc) + noise)

    def _catch_up(self) -> None:
        """Fix the last measurement before now in ``_vbat_mv``: called before anything
        changes the charge, the rate or the measurement."""
        instant = self._instant()
        if instant > self._measured:
            self._vbat_mv = self._measure_at(instant)
            self._measured = instant

    def _rate_per_h(self) -> float:
        """The charge gained per hour now (negative: lost), as a fraction of the capacity."""
        if self._drain is not None:
            return -self._drain.rate_per_h
        current_ma = self.charge_current_ma if self._vbus else -self.load_current_ma
        return current_ma / self.capacity_mah

    def _soc_now(self) -> float:
        """The charge integrated from the last settlement to now (no state change)."""
        return self._soc_at(float(self.env.now))

    def _soc_at(self, at: float) -> float:
        """The charge at ``at`` (no earlier than the last settlement) at the rate now."""
        elapsed_h = (at - self._settled_at) / 3600.0
        floor = 0.0 if self._drain is None else min(self._drain.floor, self._soc)
        return min(max(self._soc + self._rate_per_h() * elapsed_h, floor), 1.0)

    def _check_supply(self) -> None:
        """Switch the supply off at the cut-off, on again when it recovers; set the timer
        for the next cut-off. Called after every change of charge, rate or ``vbus``."""
        self._cutoff_timer = None
        soc = self._soc_now()
        if self._cut_off:
            if self._vbus or soc >= RESTART_SOC:
                self._cut_off = False
                self._vbat_mv = self._measure()
                for listener in self.on_recover:
                    listener()
            else:
                return
        if self._vbus:
            return
        if soc <= CUTOFF_SOC + _SOC_EPSILON:
            self._settle()
            self._cut_off = True
            self._vbat_mv = self._measure()
            for listener in self.on_cutoff:
                listener()
            return
        rate = self._rate_per_h()
        floor = 0.0 if self._drain is None else self._drain.floor
        if rate >= 0 or floor > CUTOFF_SOC:
            return
        timer = self.env.timeout((soc - CUTOFF_SOC) / -rate * 3600.0)
        self._cutoff_timer = timer
        timer.callbacks.append(self._cutoff_reached)

    def _cutoff_reached(self, timer: simpy.Event) -> None:
        if timer is self._cutoff_timer:
            self._check_supply()

    def _settle(self) -> None:
        """Fold the charge integrated so far into the state (before the rate changes)."""
        self._catch_up()
        self._soc = self._soc_now()
        self._settled_at = float(self.env.now)

    def _measure(self) -> int:
        """A measurement now, outside the 10 s instants (from the settled charge)."""
        noise = self.rng.uniform(-self.noise_mv, self.noise_mv)
        return round(open_circuit_mv(self._soc) + noise)
