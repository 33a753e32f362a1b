"""SplitMix64: the reference outputs, repeatability, independence, and each draw's range."""

from __future__ import annotations

import math
import random
import statistics
import sys
from collections import Counter
from collections.abc import Callable

import pytest

from vdtu.clock import VirtualClock
from vdtu.clock.periods import periods_before
from vdtu.clock.rng import RandomSource, SplitMix64, keyed, randints
from vdtu.identity import Identity
from vdtu.unit import Unit, UnitConfig


def test_outputs_match_the_reference_splitmix64_sequence() -> None:
    """The published test vector of splitmix64.c for state 1234567."""
    rng = SplitMix64(1234567)
    assert [rng.next64() for _ in range(5)] == [
        6457827717110365317,
        3203168211198807973,
        9817491932198370423,
        4593380528125082431,
        16408922859458223821,
    ]


def test_the_same_seed_gives_the_same_draws_and_another_seed_other_draws() -> None:
    first, second, other = SplitMix64("0:1:modem"), SplitMix64("0:1:modem"), SplitMix64("0:2:modem")
    drawn = [first.random() for _ in range(20)]
    assert drawn == [second.random() for _ in range(20)]
    assert drawn != [other.random() for _ in range(20)]


def test_a_source_is_small() -> None:
    assert sys.getsizeof(SplitMix64("0:1:signal")) < 100
    assert sys.getsizeof(random.Random("0:1:signal")) > 2000


def test_random_is_in_the_unit_interval_with_the_expected_mean() -> None:
    rng = SplitMix64("mean")
    values = [rng.random() for _ in range(20000)]
    assert all(0.0 <= value < 1.0 for value in values)
    assert abs(statistics.fmean(values) - 0.5) < 0.01


def test_uniform_stays_between_its_bounds() -> None:
    rng = SplitMix64("uniform")
    values = [rng.uniform(-5.0, 5.0) for _ in range(5000)]
    assert -5.0 <= min(values) < -4.9
    assert 4.9 < max(values) <= 5.0


def test_randint_gives_every_value_of_the_closed_range_about_equally() -> None:
    rng = SplitMix64("randint")
    counts = Counter(rng.randint(-1, 1) for _ in range(30000))
    assert set(counts) == {-1, 0, 1}
    assert all(abs(count - 10000) < 500 for count in counts.values())


@pytest.mark.parametrize(("low", "high"), [(-1, 1), (0, 0), (3, 9), (0, (1 << 64) - 1)])
def test_randints_makes_the_draws_of_as_many_randint_calls(low: int, high: int) -> None:
    one_by_one, at_once = SplitMix64("randints"), SplitMix64("randints")
    expected = [one_by_one.randint(low, high) for _ in range(500)]
    assert at_once.randints(low, high, 300) + randints(at_once, low, high, 200) == expected
    assert at_once.random() == one_by_one.random()  # both sources left in the same place
    assert at_once.randints(low, high, 0) == []


def test_randints_draws_one_by_one_from_another_source() -> None:
    source = random.Random(5)
    assert randints(random.Random(5), 0, 9, 20) == [source.randint(0, 9) for _ in range(20)]


def test_randrange_excludes_the_stop_and_accepts_one_argument() -> None:
    rng = SplitMix64("randrange")
    assert {rng.randrange(0x1000, 0x1004) for _ in range(400)} == {0x1000, 0x1001, 0x1002, 0x1003}
    assert {rng.randrange(3) for _ in range(300)} == {0, 1, 2}
    assert rng.randrange(7, 8) == 7
    assert 0 <= rng.randrange(1 << 64) < 1 << 64


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda rng: rng.randrange(5, 5), r"non-empty range, not range\(5, 5\)"),
        (lambda rng: rng.randrange(0), r"non-empty range, not range\(0, 0\)"),
        (lambda rng: rng.randint(2, 1), "a <= b, not a=2 b=1"),
        (lambda rng: rng.randints(2, 1, 5), "a <= b, not a=2 b=1"),
        (lambda rng: rng.randints(0, 1 << 64, 5), "wider than 2\\*\\*64"),
        (lambda rng: rng.randrange((1 << 64) + 1), "wider than 2\\*\\*64"),
    ],
)
def test_empty_or_too_wide_ranges_are_refused_by_name(
    call: Callable[[SplitMix64], object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        call(SplitMix64(1))


def test_a_seed_that_is_neither_text_nor_int_is_refused() -> None:
    with pytest.raises(TypeError, match=r"seed must be a str or an int, not 1\.5"):
        SplitMix64(1.5)  # type: ignore[arg-type]


def test_gauss_has_the_asked_mean_and_deviation() -> None:
    rng = SplitMix64("gauss")
    values = [rng.gauss(10.0, 2.0) for _ in range(20000)]
    assert all(math.isfinite(value) for value in values)
    assert abs(statistics.fmean(values) - 10.0) < 0.05
    assert abs(statistics.stdev(values) - 2.0) < 0.05


def test_choice_picks_every_element_and_refuses_an_empty_sequence() -> None:
    rng = SplitMix64("choice")
    assert {rng.choice("3578") for _ in range(200)} == set("3578")
    with pytest.raises(IndexError, match="empty sequence"):
        rng.choice([])


def test_random_random_is_a_random_source() -> None:
    source: RandomSource = random.Random(4)
    assert 0 <= source.randrange(10) < 10


def test_keyed_draws_are_a_function_of_the_key_and_the_indices() -> None:
    """The same key and indices give the same draws; another index or key, other draws."""
    drawn = [keyed(99, 3, k).random() for k in range(200)]
    assert drawn == [keyed(99, 3, k).random() for k in range(200)]
    assert len(set(drawn)) == 200
    assert drawn != [keyed(98, 3, k).random() for k in range(200)]
    assert drawn != [keyed(99, 4, k).random() for k in range(200)]
    assert abs(statistics.fmean(keyed(5, k).random() for k in range(20000)) - 0.5) < 0.01
    counts = Counter(keyed(5, k).randint(-1, 1) for k in range(30000))
    assert all(abs(count - 10000) < 500 for count in counts.values())


@pytest.mark.parametrize(
    ("start", "now", "period", "count"),
    [
        (0.0, 0.0, 1.0, 0),
        (0.0, 1.0, 1.0, 0),
        (0.0, 1.5, 1.0, 1),
        (0.0, 2.0, 1.0, 1),
        (0.0, 2.0000001, 1.0, 2),
        (5.0, 4.0, 1.0, 0),
        (0.1, 0.30000000000000004, 0.1, 1),
        (0.5, 10.5, 2.5, 3),
        (0.5, 10.6, 2.5, 4),
        (1e-9, 86400.0, 10.0, 8639),
    ],
)
def test_periods_before_counts_the_instants_strictly_before_now(
    start: float, now: float, period: float, count: int
) -> None:
    assert periods_before(start, now, period) == count


def _unit(config: UnitConfig) -> Unit:
    clock = VirtualClock()
    return Unit(clock.env, config, epoch_s=clock.epoch_s)


def test_unit_models_draw_independently_and_repeatably() -> None:
    """A unit's modem draws the same cell for the same seed and unit id, and a different one
    for another unit or another fleet seed; the signal's source is not the modem's."""
    identity = Identity.for_unit(0, 1)
    base = UnitConfig(unit_id=1, seed=7, identity=identity)
    first, again = _unit(base), _unit(base)
    assert (first.modem.lac, first.modem.ci) == (again.modem.lac, again.modem.ci)
    assert first.modem.serving_location == again.modem.serving_location
    other_unit = _unit(UnitConfig(unit_id=2, seed=7, identity=identity))
    other_fleet = _unit(UnitConfig(unit_id=1, seed=8, identity=identity))
    assert first.modem.serving_location != other_unit.modem.serving_location
    assert first.modem.serving_location != other_fleet.modem.serving_location
    assert first.signal.rng is not first.modem.rng
