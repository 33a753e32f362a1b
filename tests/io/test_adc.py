"""The analog inputs."""

from __future__ import annotations

import random
import re
import statistics
from typing import Any

import pytest

from vdtu.clock import VirtualClock
from vdtu.io.adc import Adc


@pytest.fixture
def adc() -> Adc:
    return Adc(VirtualClock().env, random.Random(3))


def test_default_channels(adc: Adc) -> None:
    """Channel 0 reads about 1200 mV and channel 1 about 3300 mV."""
    assert adc.channels == (0, 1)
    assert abs(adc.read(0) - 1200) <= 10
    assert abs(adc.read(1) - 3300) <= 10


def test_noise_is_centred_and_seeded() -> None:
    """Readings scatter around the pin voltage with the configured spread; a seed replays them."""
    first = Adc(VirtualClock().env, random.Random(9), noise_mv=5.0)
    second = Adc(VirtualClock().env, random.Random(9), noise_mv=5.0)
    readings = [first.read(0) for _ in range(500)]
    assert readings == [second.read(0) for _ in range(500)]
    assert statistics.mean(readings) == pytest.approx(1200, abs=1.0)
    assert 4.0 <= statistics.stdev(readings) <= 6.0


def test_set_moves_the_pin_voltage(adc: Adc) -> None:
    """After set, readings follow the new voltage."""
    adc.set(1, 500.0)
    assert abs(adc.read(1) - 500) <= 10


def test_readings_are_clamped_to_full_scale() -> None:
    """Noise never takes a reading below 0 or above full scale."""
    adc = Adc(
        VirtualClock().env,
        random.Random(1),
        channels={0: 0.0, 1: 1000.0},
        noise_mv=50.0,
        full_scale_mv=1000.0,
    )
    low = [adc.read(0) for _ in range(200)]
    high = [adc.read(1) for _ in range(200)]
    assert min(low) == 0
    assert max(high) == 1000
    assert max(low) > 0
    assert min(high) < 1000


def test_no_noise_reads_exactly() -> None:
    """With noise_mv=0 a reading is the pin voltage, rounded to 1 mV."""
    adc = Adc(VirtualClock().env, random.Random(1), channels={4: 1234.4}, noise_mv=0.0)
    assert adc.read(4) == 1234


def test_unknown_channel_names_the_channels(adc: Adc) -> None:
    """Reading or setting a channel that does not exist lists the ones that do."""
    with pytest.raises(ValueError, match=re.escape("ADC channel must be one of 0, 1, not 2")):
        adc.read(2)
    with pytest.raises(ValueError, match=re.escape("ADC channel must be one of 0, 1, not 7")):
        adc.set(7, 1.0)


def test_voltage_outside_range_is_refused(adc: Adc) -> None:
    """A pin voltage outside 0..full scale raises ValueError with the range."""
    with pytest.raises(
        ValueError, match=re.escape("channel 0 voltage must be 0..5000 mV, not 6000.0")
    ):
        adc.set(0, 6000.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"channels": {}}, "channels must name at least one channel, not {}"),
        ({"channels": {-1: 0.0}}, "channel numbers must be >= 0, not -1"),
        ({"noise_mv": -1.0}, "noise_mv must be >= 0, not -1.0"),
        ({"full_scale_mv": 0.0}, "full_scale_mv must be > 0, not 0.0"),
        (
            {"channels": {0: 3300.0}, "full_scale_mv": 3000.0},
            "channel 0 voltage must be 0..3000 mV",
        ),
    ],
)
def test_bad_construction(kwargs: dict[str, Any], message: str) -> None:
    """Bad settings raise ValueError naming the value and the allowed range."""
    with pytest.raises(ValueError, match=re.escape(message)):
        Adc(VirtualClock().env, random.Random(1), **kwargs)


def test_snapshot_and_reset(adc: Adc) -> None:
    """The snapshot shows pin voltages and last conversions; reset forgets only the conversions."""
    assert adc.snapshot().last_read_mv == {0: None, 1: None}
    reading = adc.read(0)
    snap = adc.snapshot()
    assert snap.inputs_mv == {0: 1200.0, 1: 3300.0}
    assert snap.last_read_mv == {0: reading, 1: None}
    adc.set(1, 100.0)
    adc.reset()
    assert adc.snapshot().last_read_mv == {0: None, 1: None}
    assert adc.snapshot().inputs_mv[1] == 100.0
