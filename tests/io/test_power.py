"""The battery: charge over sim time, measured voltage, external power."""

from __future__ import annotations

import random
import re
from typing import Any

import pytest

from vdtu.clock import VirtualClock
from vdtu.io.power import Battery, open_circuit_mv


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


def battery(clock: VirtualClock, seed: int = 1, **kwargs: Any) -> Battery:
    return Battery(clock.env, random.Random(seed), **kwargs)


def test_open_circuit_curve_endpoints_and_shape() -> None:
    """About 3300 mV empty, 4200 mV full, rising all the way, linear between points."""
    assert open_circuit_mv(0.0) == 3300.0
    assert open_circuit_mv(1.0) == 4200.0
    assert open_circuit_mv(0.85) == pytest.approx(4040.0)
    samples = [open_circuit_mv(i / 100) for i in range(101)]
    assert samples == sorted(samples)
    with pytest.raises(ValueError, match=re.escape("soc must be 0.0..1.0, not 1.5")):
        open_circuit_mv(1.5)


def test_defaults(clock: VirtualClock) -> None:
    """A new battery is at 80 % on external power, measuring about 4000 mV."""
    cell = battery(clock)
    assert (cell.soc, cell.vbus) == (0.8, True)
    assert 3995 <= cell.vbat_mv <= 4005


def test_charges_while_vbus_present(clock: VirtualClock) -> None:
    """500 mA into 2000 mAh adds 12.5 % in half an hour."""
    cell = battery(clock)
    clock.run_for(1800)
    assert cell.soc == pytest.approx(0.925)


def test_discharges_without_vbus_and_settles_at_the_switch(clock: VirtualClock) -> None:
    """Charging 30 min then running on the cell 30 min (120 mA) nets +12.5 % - 3 %."""
    cell = battery(clock)
    clock.run_for(1800)
    cell.set_vbus(False)
    clock.run_for(1800)
    assert cell.soc == pytest.approx(0.895)


def test_charge_is_clamped(clock: VirtualClock) -> None:
    """A full cell stays at 1.0 while charging; an empty one stays at 0.0 while discharging."""
    full = battery(clock, soc=1.0)
    empty = battery(clock, soc=0.001, vbus=False)
    clock.run_for(3600)
    assert (full.soc, empty.soc) == (1.0, 0.0)
    assert 3295 <= empty.vbat_mv <= 3305
    assert 4195 <= full.vbat_mv <= 4205


def test_voltage_is_measured_every_ten_seconds(clock: VirtualClock) -> None:
    """vbat_mv only changes when the 10 s measurement runs, and follows the curve within noise."""
    cell = battery(clock, soc=0.5, vbus=False, load_current_ma=20000.0, noise_mv=0.0)
    assert cell.vbat_mv == 3820
    clock.run_for(9.5)
    assert cell.vbat_mv == 3820
    clock.run_for(1.0)
    assert cell.soc == pytest.approx(0.5 - 20000 * 10.5 / 3600 / 2000)
    assert cell.vbat_mv == round(open_circuit_mv(0.5 - 20000 * 10 / 3600 / 2000))
    assert cell.vbat_mv < 3820


def test_vbus_listener_fires_on_change_only(clock: VirtualClock) -> None:
    """on_vbus_change gets False then True; repeating the same state fires nothing."""
    cell = battery(clock)
    log: list[bool] = []
    cell.on_vbus_change += (log.append,)
    cell.set_vbus(True)
    cell.set_vbus(False)
    cell.set_vbus(False)
    cell.set_vbus(True)
    assert log == [False, True]


def test_set_soc_remeasures(clock: VirtualClock) -> None:
    """set_soc moves the charge and the measured voltage at once."""
    cell = battery(clock)
    cell.set_soc(0.0)
    assert cell.soc == 0.0
    assert 3295 <= cell.vbat_mv <= 3305


def test_reset_keeps_the_charge(clock: VirtualClock) -> None:
    """A power cycle of the unit does not change the cell's charge or supply."""
    cell = battery(clock, vbus=False)
    clock.run_for(600)
    soc = cell.soc
    cell.reset()
    assert (cell.soc, cell.vbus) == (soc, False)
    assert abs(cell.vbat_mv - open_circuit_mv(soc)) <= 5.5


def test_watching_does_not_change_the_run(clock: VirtualClock) -> None:
    """Two cells with the same seed measure the same, however often one of them is read."""
    watched, quiet = battery(clock, seed=5), battery(clock, seed=5)
    for _ in range(100):
        clock.run_for(1.0)
        _ = (watched.soc, watched.vbat_mv, watched.snapshot())
    assert watched.snapshot() == quiet.snapshot()


def test_measurements_schedule_nothing_and_read_the_same_whenever_read(
    clock: VirtualClock,
) -> None:
    """No event is queued on the external supply; a cell read once reads what one read every
    second does, across a change of supply (the measurement before it is kept)."""
    watched, quiet = battery(clock, seed=6), battery(clock, seed=6)
    assert not clock.env._queue
    readings = []
    for step in range(100):
        clock.run_for(3.0)
        readings.append(watched.vbat_mv)
        if step == 40:
            watched.set_vbus(False)
            quiet.set_vbus(False)
    assert quiet.snapshot() == watched.snapshot()
    assert readings[-1] == quiet.vbat_mv
    assert len(set(readings)) > 3


def test_snapshot(clock: VirtualClock) -> None:
    """A snapshot carries the charge, the last measurement and the supply state."""
    cell = battery(clock, soc=0.5, vbus=False)
    snap = cell.snapshot()
    assert (snap.soc, snap.vbat_mv, snap.vbus) == (0.5, cell.vbat_mv, False)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"soc": -0.1}, "soc must be 0.0..1.0, not -0.1"),
        ({"capacity_mah": 0}, "capacity_mah must be > 0, not 0"),
        ({"charge_current_ma": -1.0}, "charge_current_ma must be >= 0, not -1.0"),
        ({"noise_mv": float("nan")}, "noise_mv must be >= 0, not nan"),
    ],
)
def test_bad_arguments(clock: VirtualClock, kwargs: dict[str, Any], message: str) -> None:
    """Out-of-range settings raise ValueError naming the value and the allowed range."""
    with pytest.raises(ValueError, match=re.escape(message)):
        battery(clock, **kwargs)


def test_set_soc_validates(clock: VirtualClock) -> None:
    """set_soc refuses a charge outside 0..1."""
    with pytest.raises(ValueError, match=re.escape("soc must be 0.0..1.0, not 2")):
        battery(clock).set_soc(2)
