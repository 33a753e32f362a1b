"""The temperature and humidity sensor."""

from __future__ import annotations

import random
import re

import pytest

from vdtu.clock import VirtualClock
from vdtu.io.sensor import TempHumiditySensor


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


def sensor(clock: VirtualClock, seed: int = 2, **kwargs: float) -> TempHumiditySensor:
    return TempHumiditySensor(clock.env, random.Random(seed), **kwargs)


def test_reads_the_initial_values(clock: VirtualClock) -> None:
    """Before any drift the reading is the configured air, rounded to 0.1."""
    assert sensor(clock, temperature_c=21.44, humidity_pct=63.06).read() == (21.4, 63.1)


def test_drift_is_slow_and_bounded(clock: VirtualClock) -> None:
    """Over a day the air wanders, never more than 1.5 °C / 5 % from the set point."""
    air = sensor(clock)
    temperatures, humidities = set(), set()
    for _ in range(2880):
        clock.run_for(30.0)
        temperature, humidity = air.read()
        assert 23.5 <= temperature <= 26.5
        assert 45.0 <= humidity <= 55.0
        temperatures.add(temperature)
        humidities.add(humidity)
    assert len(temperatures) > 5
    assert len(humidities) > 5


def test_drift_steps_once_per_period(clock: VirtualClock) -> None:
    """Nothing changes before the first period ends, and a step is at most 0.2 °C / 0.5 %."""
    air = sensor(clock, drift_period_s=60.0)
    clock.run_for(59.0)
    assert air.snapshot().temperature_c == 25.0
    clock.run_for(2.0)
    snap = air.snapshot()
    assert snap.temperature_c != 25.0
    assert abs(snap.temperature_c - 25.0) <= 0.2
    assert abs(snap.humidity_pct - 50.0) <= 0.5


def test_drift_replays_from_the_seed(clock: VirtualClock) -> None:
    """Two sensors with the same seed drift identically, however often one is read."""
    watched, quiet = sensor(clock, seed=4), sensor(clock, seed=4)
    for _ in range(100):
        clock.run_for(30.0)
        watched.read()
    assert watched.snapshot().temperature_c == quiet.snapshot().temperature_c
    assert watched.snapshot().humidity_pct == quiet.snapshot().humidity_pct


def test_the_drift_schedules_nothing(clock: VirtualClock) -> None:
    """No event is queued for the drift: it is taken when the air is read."""
    air = sensor(clock, drift_period_s=30.0)
    assert not clock.env._queue
    clock.run_for(3600.0)
    assert air.snapshot().temperature_c != 25.0


def test_drift_respects_the_sensor_range(clock: VirtualClock) -> None:
    """At the edge of the range the drift stays inside -40..125 °C and 0..100 %."""
    air = sensor(clock, temperature_c=125.0, humidity_pct=0.0)
    for _ in range(200):
        clock.run_for(30.0)
        temperature, humidity = air.read()
        assert temperature <= 125.0
        assert humidity >= 0.0


def test_set_moves_the_air(clock: VirtualClock) -> None:
    """set jumps to the new values, and the drift then stays around them."""
    air = sensor(clock)
    air.set(-10.0, 90.0)
    assert air.read() == (-10.0, 90.0)
    clock.run_for(3000.0)
    temperature, humidity = air.read()
    assert -11.5 <= temperature <= -8.5
    assert 85.0 <= humidity <= 95.0


@pytest.mark.parametrize(
    ("temperature", "humidity", "message"),
    [
        (-41.0, 50.0, "temperature_c must be -40..125 °C, not -41.0"),
        (126.0, 50.0, "temperature_c must be -40..125 °C, not 126.0"),
        (20.0, 100.5, "humidity_pct must be 0..100 %, not 100.5"),
        (20.0, float("nan"), "humidity_pct must be 0..100 %, not nan"),
    ],
)
def test_set_validates_ranges(
    clock: VirtualClock, temperature: float, humidity: float, message: str
) -> None:
    """Values outside the sensor's range raise ValueError with the range."""
    with pytest.raises(ValueError, match=re.escape(message)):
        sensor(clock).set(temperature, humidity)


def test_bad_construction(clock: VirtualClock) -> None:
    """A bad drift period or initial value is refused with the allowed range."""
    with pytest.raises(ValueError, match=re.escape("drift_period_s must be > 0, not 0.0")):
        sensor(clock, drift_period_s=0.0)
    with pytest.raises(ValueError, match=re.escape("temperature_c must be -40..125 °C, not 200.0")):
        sensor(clock, temperature_c=200.0)


def test_snapshot_and_reset(clock: VirtualClock) -> None:
    """The snapshot shows the air and the last reading; reset forgets only the reading."""
    air = sensor(clock)
    assert air.snapshot().last_read is None
    reading = air.read()
    snap = air.snapshot()
    assert snap.last_read == reading
    assert (snap.set_temperature_c, snap.set_humidity_pct) == (25.0, 50.0)
    air.reset()
    assert air.snapshot().last_read is None
    clock.run_for(31.0)
    assert air.snapshot().temperature_c != 25.0
