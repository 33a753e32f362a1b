"""The radio signal: bounded random walk and coverage."""

from __future__ import annotations

import itertools
import random

import pytest

from vdtu.clock import VirtualClock
from vdtu.modem.signal import Signal


def walk(seed: int, *, steps: int = 500, **kwargs: int) -> list[int]:
    """The rssi read after each of ``steps`` drift periods."""
    clock = VirtualClock()
    signal = Signal(clock.env, random.Random(seed), drift_period_s=10.0, **kwargs)
    values = []
    for _ in range(steps):
        clock.run_for(10.0)
        values.append(signal.rssi)
    return values


def test_starts_at_base() -> None:
    """The level starts at the base, and ber is 99."""
    clock = VirtualClock()
    signal = Signal(clock.env, random.Random(1), base_rssi=20)
    assert signal.rssi == 20
    assert signal.ber == 99


@pytest.mark.parametrize(("base", "spread"), [(26, 4), (30, 4), (1, 3), (15, 0)])
def test_drift_stays_within_bounds(base: int, spread: int) -> None:
    """The walk never leaves base +/- spread, nor 0..31."""
    values = walk(7, base_rssi=base, spread=spread)
    low, high = max(0, base - spread), min(31, base + spread)
    assert min(values) >= low
    assert max(values) <= high


def test_drift_moves_by_at_most_one_step_and_does_move() -> None:
    """Each period changes the level by -1, 0 or +1, and the level does wander."""
    values = walk(3)
    assert all(abs(b - a) <= 1 for a, b in itertools.pairwise(values))
    assert len(set(values)) > 3


def test_drift_is_deterministic_for_a_seed() -> None:
    """Same seed, same walk; another seed, another walk."""
    assert walk(11) == walk(11)
    assert walk(11) != walk(12)


def test_the_walk_schedules_nothing_and_reads_the_same_whether_watched_or_not() -> None:
    """No event is queued for the walk; a signal read once at the end is where one read at
    every step is (the steps are taken on read with the draws they would have made)."""
    clock = VirtualClock()
    watched = Signal(clock.env, random.Random(8), drift_period_s=10.0)
    quiet = Signal(clock.env, random.Random(8), drift_period_s=10.0)
    assert not clock.env._queue
    for _ in range(300):
        clock.run_for(7.0)
        _ = watched.rssi
    assert quiet.rssi == watched.rssi
    assert quiet.snapshot() == watched.snapshot()


def test_drift_happens_every_period_only() -> None:
    """Between two period boundaries the level does not change."""
    clock = VirtualClock()
    signal = Signal(clock.env, random.Random(5), drift_period_s=10.0)
    clock.run_for(10.5)
    value = signal.rssi
    clock.run_for(9.0)
    assert signal.rssi == value


def test_set_level_moves_base_at_once() -> None:
    """set_level puts the level at the new base and the walk around it."""
    clock = VirtualClock()
    signal = Signal(clock.env, random.Random(2), spread=2)
    signal.set_level(10)
    assert signal.rssi == 10
    for _ in range(100):
        clock.run_for(10.0)
        assert 8 <= signal.rssi <= 12


@pytest.mark.parametrize("bad", [-1, 32, 99, True])
def test_set_level_rejects_out_of_range(bad: int) -> None:
    """Levels outside 0..31 are refused with the value in the message."""
    signal = Signal(VirtualClock().env, random.Random(1))
    with pytest.raises(ValueError, match=rf"0\.\.31, not {bad!r}"):
        signal.set_level(bad)


def test_constructor_validates() -> None:
    """Bad base, period or spread raise ValueError naming the value."""
    env = VirtualClock().env
    with pytest.raises(ValueError, match="40"):
        Signal(env, random.Random(1), base_rssi=40)
    with pytest.raises(ValueError, match="drift_period_s"):
        Signal(env, random.Random(1), drift_period_s=0)
    with pytest.raises(ValueError, match="spread"):
        Signal(env, random.Random(1), spread=-1)


def test_coverage_off_reads_99_and_fires_listeners_on_change() -> None:
    """Without coverage rssi is 99; listeners run only on changes."""
    clock = VirtualClock()
    signal = Signal(clock.env, random.Random(1))
    log: list[bool] = []
    signal.on_coverage_change += (log.append,)
    signal.set_coverage(False)
    signal.set_coverage(False)
    assert signal.rssi == 99
    clock.run_for(100)
    assert signal.rssi == 99
    signal.set_coverage(True)
    assert 22 <= signal.rssi <= 30
    assert log == [False, True]


# -- fade (issue 12) -----------------------------------------------------------


def test_fade_is_a_straight_line_computed_on_read() -> None:
    """fade_to(6, 100) from 26: 16 half-way, 6 at the end; the walk waits, then goes on."""
    clock = VirtualClock()
    signal = Signal(clock.env, random.Random(3), base_rssi=26, spread=0, drift_period_s=10.0)
    signal.fade_to(6, 100)
    assert signal.base_rssi == 6
    assert signal.fading
    assert signal.snapshot()["fade"] == {"to": 6, "until": 100.0}
    clock.run_for(25)
    assert signal.rssi == 21
    clock.run_for(25)
    assert signal.rssi == 16
    clock.run_for(60)
    assert signal.rssi == 6
    assert not signal.fading
    assert signal.snapshot()["fade"] is None


def test_fade_reads_the_same_whether_or_not_anyone_looked() -> None:
    """Nothing ticks for the fade: reading at the end alone gives the same level."""
    readings = []
    for look in (False, True):
        clock = VirtualClock()
        signal = Signal(clock.env, random.Random(3), base_rssi=20, spread=0)
        signal.fade_to(0, 40)
        for _ in range(4):
            clock.run_for(10.5)
            if look:
                _ = signal.rssi
        readings.append(signal.rssi)
    assert readings == [0, 0]


def test_cancel_fade_holds_the_level_and_set_level_ends_it() -> None:
    clock = VirtualClock()
    signal = Signal(clock.env, random.Random(3), base_rssi=30, spread=0, drift_period_s=1000.0)
    signal.fade_to(10, 20)
    clock.run_for(10)
    signal.cancel_fade()
    clock.run_for(100)
    assert signal.rssi == 20
    assert signal.base_rssi == 20
    signal.fade_to(0, 10)
    signal.set_level(25)
    clock.run_for(20)
    assert signal.rssi == 25


def test_coverage_loss_during_a_fade_reads_99() -> None:
    clock = VirtualClock()
    signal = Signal(clock.env, random.Random(3), base_rssi=30, spread=0)
    signal.fade_to(10, 20)
    signal.set_coverage(False)
    assert signal.rssi == 99
    clock.run_for(30)
    signal.set_coverage(True)
    assert signal.rssi == 10


@pytest.mark.parametrize(
    ("rssi", "duration", "message"),
    [
        (32, 10.0, "rssi must be an int in 0..31, not 32"),
        (5, 0, "duration_s .* not 0"),
        (5, float("nan"), "duration_s .* not nan"),
        (5, True, "duration_s .* not True"),
    ],
)
def test_fade_parameters_are_checked(rssi: int, duration: float, message: str) -> None:
    clock = VirtualClock()
    signal = Signal(clock.env, random.Random(3), base_rssi=30)
    with pytest.raises(ValueError, match=message):
        signal.fade_to(rssi, duration)
    assert not signal.fading
