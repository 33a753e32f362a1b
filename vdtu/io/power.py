"""The DTU's backup battery and its external supply (``vbat`` and ``vbus`` in GET_BASE_INFO).

How it works: the state of charge (``soc``, 0..1) is integrated exactly over
sim time: it rises at ``charge_current_ma`` while external power (``vbus``) is
present and falls at ``load_current_ma`` otherwise, clamped to 0..1. The
integral is settled whenever the rate changes (``set_vbus``, ``set_soc``) and
by a timer every 10 s (a SimPy timeout whose callback sets the next one), which
also takes a new voltage
measurement: the Li-ion open-circuit voltage for the charge (about 3300 mV
empty, 4200 mV full) plus a little noise from the battery's own rng.

Invariants: reading ``soc``, ``vbat_mv`` or ``snapshot()`` changes nothing and
never draws from the rng (a dashboard watching the battery must not change the
run); only the measurement timer, ``set_soc`` and ``reset`` do. The cell is
physics: a power cycle of the DTU keeps its charge and only re-measures it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

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


def open_circuit_mv(soc: float) -> float:
    """The open-circuit voltage (mV) of a cell at state of charge ``soc``.

    Raises:
        ValueError: ``soc`` outside 0..1.
    """
    _check_soc(soc)
    upper = min(max(bisect.bisect_left(_OCV_SOCS, soc), 1), len(_OCV_SOCS) - 1)
    (soc0, mv0), (soc1, mv1) = OCV_CURVE_MV[upper - 1], OCV_CURVE_MV[upper]
    return mv0 + (mv1 - mv0) * (soc - soc0) / (soc1 - soc0)


@dataclass(frozen=True, slots=True, kw_only=True)
class BatterySnapshot:
    """A copy of the battery state."""

    soc: float
    """State of charge, 0..1."""
    vbat_mv: int
    """Last measured battery voltage."""
    vbus: bool
    """External power present (charging)."""


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
        "_settled_at",
        "_soc",
        "_vbat_mv",
        "_vbus",
        "capacity_mah",
        "charge_current_ma",
        "env",
        "load_current_ma",
        "noise_mv",
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
        self.on_vbus_change: list[Callable[[bool], None]] = []
        """Called as ``listener(present)`` when external power comes or goes."""
        self._soc = soc
        self._vbus = vbus
        self._settled_at = float(env.now)
        self._vbat_mv = self._measure()
        self._arm()

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
        return self._vbat_mv

    def set_vbus(self, present: bool) -> None:
        """Connect or remove external power; a change notifies ``on_vbus_change``."""
        if present == self._vbus:
            return
        self._settle()
        self._vbus = present
        for listener in tuple(self.on_vbus_change):
            listener(present)

    def set_soc(self, soc: float) -> None:
        """Put the cell at state of charge ``soc`` (0..1) and re-measure.

        Raises:
            ValueError: ``soc`` outside 0..1.
        """
        _check_soc(soc)
        self._settle()
        self._soc = soc
        self._vbat_mv = self._measure()

    def reset(self) -> None:
        """Power cycle of the unit: the charge is kept, the voltage is measured afresh."""
        self._settle()
        self._vbat_mv = self._measure()

    def snapshot(self) -> BatterySnapshot:
        """A copy of the charge, the last measurement and the supply state."""
        return BatterySnapshot(soc=self._soc_now(), vbat_mv=self._vbat_mv, vbus=self._vbus)

    def _arm(self) -> None:
        self.env.timeout(UPDATE_PERIOD_S).callbacks.append(self._track_charge)

    def _track_charge(self, _timer: simpy.Event) -> None:
        """Every 10 s (for the life of the model): settle the charge, measure the voltage."""
        self._settle()
        self._vbat_mv = self._measure()
        self._arm()

    def _soc_now(self) -> float:
        """The charge integrated from the last settlement to now (no state change)."""
        current_ma = self.charge_current_ma if self._vbus else -self.load_current_ma
        elapsed_h = (float(self.env.now) - self._settled_at) / 3600.0
        return min(max(self._soc + current_ma * elapsed_h / self.capacity_mah, 0.0), 1.0)

    def _settle(self) -> None:
        """Fold the charge integrated so far into the state (before the rate changes)."""
        self._soc = self._soc_now()
        self._settled_at = float(self.env.now)

    def _measure(self) -> int:
        noise = self.rng.uniform(-self.noise_mv, self.noise_mv)
        return round(open_circuit_mv(self._soc) + noise)
