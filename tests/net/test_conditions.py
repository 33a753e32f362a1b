"""The link and platform conditions: checked parameters and the pacing arithmetic."""

from __future__ import annotations

import random
import re

import pytest

from vdtu.net.conditions import LinkConditions, Pacer, PlatformConditions


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"latency_ms": -1}, "ms must be 0..600000 ms, not -1"),
        ({"latency_ms": float("nan")}, "ms must be a number of milliseconds"),
        ({"latency_ms": 10, "jitter_ms": 20}, "jitter must be 0..ms (10)"),
        ({"bandwidth_kbps": 0}, "kbps must be a number 0.1..1e+07, not 0"),
    ],
)
def test_a_bad_parameter_is_refused_naming_it_and_its_range(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        LinkConditions(**fields)  # type: ignore[arg-type]


def test_a_slow_platform_is_refused_beyond_an_hour() -> None:
    with pytest.raises(ValueError, match=r"ms must be 0\.\.3\.6e"):
        PlatformConditions(delay_ms=4_000_000)


def test_nothing_set_is_a_healthy_link() -> None:
    assert LinkConditions().normalized() is None
    latency = LinkConditions(latency_ms=100).with_changes(blackhole=True)
    assert latency == LinkConditions(latency_ms=100, blackhole=True)
    assert latency is not None
    assert latency.with_changes(latency_ms=0, blackhole=False) is None


def test_the_pacer_never_reorders_whatever_the_jitter_draws() -> None:
    conditions = LinkConditions(latency_ms=100, jitter_ms=100)
    pacer, rng = Pacer(), random.Random(3)
    arrivals = [pacer.arrival_at(n * 0.001, 10, conditions, rng) for n in range(200)]
    assert arrivals == sorted(arrivals)
    assert all(0 <= at - n * 0.001 <= 0.2 for n, at in enumerate(arrivals))


def test_the_pacer_serialises_bursts_at_the_bandwidth_cap() -> None:
    """8 kbit/s: 1000 bytes a second; three 500-byte bursts sent at once take 1.5 s."""
    conditions = LinkConditions(bandwidth_kbps=8)
    pacer, rng = Pacer(), random.Random(3)
    assert [pacer.arrival_at(0.0, 500, conditions, rng) for _ in range(3)] == [0.5, 1.0, 1.5]


def test_a_flag_that_is_not_a_bool_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"^blackhole must be True or False, not 1$"):
        LinkConditions(blackhole=1)  # type: ignore[arg-type]
