"""Latency histograms: percentiles within 1 %, the layout checked, exact merging, JSON."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vdtu.histogram import LatencyHistogram, Percentiles, ReportFormatError

latencies = st.floats(min_value=0.0, max_value=120_000.0, allow_nan=False)


def exact_percentile(values: list[float], p: float) -> float:
    """Nearest rank, as the histogram defines it."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def filled(values: list[float]) -> LatencyHistogram:
    histogram = LatencyHistogram()
    for value in values:
        histogram.add(value)
    return histogram


def test_empty_histogram_has_no_percentiles() -> None:
    histogram = LatencyHistogram()
    assert histogram.count == 0
    assert histogram.percentile(50) is None
    assert histogram.summary() == Percentiles(p50=None, p95=None, p99=None, max=None)
    assert histogram.summary().to_json() == {"p50": None, "p95": None, "p99": None, "max": None}


def test_counts_sum_min_and_max_are_exact() -> None:
    histogram = filled([3.0, 0.25, 12.5])
    assert histogram.count == 3
    assert histogram.sum_ms == pytest.approx(15.75)
    assert (histogram.min, histogram.max) == (0.25, 12.5)
    assert histogram.percentile(100) == 12.5


@settings(max_examples=200)
@given(st.lists(st.floats(min_value=0.1, max_value=60_000.0), min_size=1, max_size=300))
def test_percentiles_are_within_one_percent_of_the_exact_nearest_rank(values: list[float]) -> None:
    histogram = filled(values)
    for p in (0, 1, 50, 95, 99, 99.9, 100):
        estimate = histogram.percentile(p)
        assert estimate is not None
        assert estimate == pytest.approx(exact_percentile(values, p), rel=0.0101)


def test_values_below_the_floor_or_above_the_ceiling_land_in_one_bucket_each() -> None:
    histogram = filled([0.01, 0.02, 90_000.0, 100_000.0])
    low = histogram.percentile(25)
    assert low is not None
    assert 0.01 <= low < histogram.floor_ms
    assert histogram.percentile(50) == low
    assert histogram.percentile(75) == 100_000.0
    assert histogram.max == 100_000.0


def test_zero_latency_is_counted() -> None:
    histogram = filled([0.0, 0.0])
    assert histogram.percentile(50) == 0.0


@pytest.mark.parametrize("bad", [-0.001, math.nan, math.inf])
def test_add_rejects_a_latency_that_is_not_a_finite_non_negative_number(bad: float) -> None:
    with pytest.raises(ValueError, match="latency must be a finite number of ms >= 0"):
        LatencyHistogram().add(bad)


@pytest.mark.parametrize("p", [-1, 100.5])
def test_percentile_rejects_p_outside_0_to_100(p: float) -> None:
    with pytest.raises(ValueError, match=r"percentile must be in 0\.\.100"):
        filled([1.0]).percentile(p)


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({"floor_ms": 0.0}, "floor_ms must be a finite number > 0"),
        ({"ceiling_ms": 0.05}, "ceiling_ms must be finite and > floor_ms"),
        ({"growth": 1.0}, r"growth must be in \(1, 2\]"),
        ({"growth": 3.0}, r"growth must be in \(1, 2\]"),
    ],
)
def test_layout_is_checked(layout: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LatencyHistogram(**layout)


@settings(max_examples=100)
@given(st.lists(latencies, max_size=200), st.lists(latencies, max_size=200))
def test_merged_histograms_equal_one_fed_everything(left: list[float], right: list[float]) -> None:
    merged = filled(left)
    merged.merge(filled(right))
    whole = filled(left + right)
    assert merged == whole
    assert merged.count == whole.count
    assert merged.summary() == whole.summary()


def test_merge_rejects_a_different_layout() -> None:
    with pytest.raises(ValueError, match="cannot merge histogram layout"):
        LatencyHistogram().merge(LatencyHistogram(growth=1.05))


def test_copy_is_independent() -> None:
    original = filled([1.0])
    twin = original.copy()
    twin.add(2.0)
    assert original.count == 1
    assert twin.count == 2
    assert original != twin


@given(st.lists(latencies, max_size=100))
def test_json_round_trip_keeps_every_bucket(values: list[float]) -> None:
    histogram = filled(values)
    assert LatencyHistogram.from_json(histogram.to_json()) == histogram


def test_json_lists_only_non_empty_buckets() -> None:
    data = filled([5.0, 5.0, 50.0]).to_json()
    assert [count for _, count in data["buckets"]] == [2, 1]
    assert data["count"] == 3


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"growth": "1.02"}, "histogram growth must be a number"),
        ({"growth": 7.0}, "histogram layout: growth must be in"),
        ({"buckets": {}}, "histogram buckets must be a list"),
        ({"buckets": [[99999, 1]]}, "histogram bucket must be"),
        ({"buckets": [[1, 0]]}, "histogram bucket must be"),
        ({"buckets": [[1, True]]}, "histogram bucket must be"),
        ({"count": 5}, "histogram count 5 is not the sum of its buckets 2"),
        ({"max": None}, "do not fit"),
        ({"min": 9.0, "max": 1.0}, "do not fit"),
        ({"min": -1.0}, "do not fit"),
    ],
)
def test_from_json_names_what_is_wrong(changes: dict[str, Any], message: str) -> None:
    data = filled([1.0, 2.0]).to_json() | changes
    with pytest.raises(ReportFormatError, match=message):
        LatencyHistogram.from_json(data)
