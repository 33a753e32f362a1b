"""Delivery tracking and latency histograms: counts per unit, compact state, exact merging."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vdtu.load.delivery import DeliveryCounts, DeliveryTracker, Outcome
from vdtu.load.histogram import LatencyHistogram, Percentiles, ReportFormatError
from vdtu.load.payload import Uplink

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


def up(unit: int, seq: int, sent_ms: int = 1000) -> Uplink:
    return Uplink(unit=unit, seq=seq, sent_ms=sent_ms)


def publish(tracker: DeliveryTracker, unit: int, seqs: range) -> None:
    for seq in seqs:
        tracker.published(unit, seq)


# -- LatencyHistogram ----------------------------------------------------------------------


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


# -- DeliveryTracker -----------------------------------------------------------------------


def test_in_order_deliveries_are_counted_with_their_latency() -> None:
    tracker = DeliveryTracker()
    publish(tracker, 7, range(3))
    outcomes = [
        tracker.delivered(up(7, seq, sent_ms=1000), 1000 + 4 * (seq + 1)) for seq in range(3)
    ]
    assert outcomes == [Outcome.IN_ORDER] * 3
    assert tracker.totals() == DeliveryCounts(
        published=3, delivered=3, pending=0, lost=0, duplicated=0, reordered=0, unexpected=0
    )
    assert tracker.latency.count == 3
    assert tracker.latency.max == 12.0


def test_a_duplicate_is_counted_once_as_duplicated_and_not_delivered_again() -> None:
    tracker = DeliveryTracker()
    publish(tracker, 1, range(2))
    tracker.delivered(up(1, 0), 1001)
    assert tracker.delivered(up(1, 0), 1002) is Outcome.DUPLICATE
    assert tracker.delivered(up(1, 0), 1003) is Outcome.DUPLICATE
    totals = tracker.totals()
    assert (totals.delivered, totals.duplicated, totals.pending) == (1, 2, 1)
    assert tracker.latency.count == 1


def test_a_seq_arriving_after_a_higher_one_is_reordered_and_delivered() -> None:
    tracker = DeliveryTracker()
    publish(tracker, 1, range(4))
    assert tracker.delivered(up(1, 0), 1001) is Outcome.IN_ORDER
    assert tracker.delivered(up(1, 2), 1001) is Outcome.IN_ORDER
    assert tracker.delivered(up(1, 3), 1001) is Outcome.IN_ORDER
    assert tracker.delivered(up(1, 1), 1001) is Outcome.REORDERED
    totals = tracker.totals()
    assert (totals.delivered, totals.reordered, totals.pending) == (4, 1, 0)


def test_missing_seqs_are_pending_until_finish_then_lost() -> None:
    tracker = DeliveryTracker()
    publish(tracker, 1, range(5))
    tracker.delivered(up(1, 0), 1001)
    tracker.delivered(up(1, 4), 1001)
    assert (tracker.totals().pending, tracker.totals().lost) == (3, 0)
    tracker.finish()
    assert tracker.finished
    assert (tracker.totals().pending, tracker.totals().lost) == (0, 3)
    unit = tracker.unit(1)
    assert unit is not None
    assert unit.lost == 3


def test_arrivals_after_finish_are_only_counted_as_late() -> None:
    tracker = DeliveryTracker()
    publish(tracker, 1, range(2))
    tracker.finish()
    assert tracker.delivered(up(1, 1), 1001) is Outcome.LATE
    assert tracker.delivered(up(99, 1), 1001) is Outcome.LATE
    totals = tracker.totals()
    assert (totals.delivered, totals.lost, totals.late) == (0, 2, 2)
    tracker.finish()
    assert tracker.totals().lost == 2


def test_an_unknown_unit_is_unexpected_and_gets_no_state() -> None:
    tracker = DeliveryTracker()
    assert tracker.delivered(up(5, 0), 1001) is Outcome.UNEXPECTED
    assert tracker.delivered(up(5, 0), 1001) is Outcome.UNEXPECTED
    assert tracker.totals().unexpected == 2
    assert tracker.unit(5) is None
    assert tracker.latency.count == 0


def test_a_seq_never_published_is_unexpected() -> None:
    tracker = DeliveryTracker()
    publish(tracker, 1, range(2))
    assert tracker.delivered(up(1, 7), 1001) is Outcome.UNEXPECTED
    tracker.finish()
    totals = tracker.totals()
    assert (totals.unexpected, totals.delivered, totals.lost) == (1, 0, 2)
    assert tracker.per_unit()[1].unexpected == 1


def test_a_seq_arriving_before_it_is_reported_published_moves_to_delivered() -> None:
    tracker = DeliveryTracker()
    publish(tracker, 1, range(1))
    assert tracker.delivered(up(1, 1), 1001) is Outcome.UNEXPECTED
    assert tracker.totals().unexpected == 1
    tracker.published(1, 1)
    totals = tracker.totals()
    assert (totals.unexpected, totals.delivered, totals.pending) == (0, 1, 1)


def test_seqs_may_start_at_one() -> None:
    tracker = DeliveryTracker()
    publish(tracker, 3, range(1, 4))
    assert tracker.delivered(up(3, 0), 1001) is Outcome.UNEXPECTED
    for seq in (1, 2, 3):
        assert tracker.delivered(up(3, seq), 1001) is Outcome.IN_ORDER
    assert tracker.unit(3) == DeliveryCounts(
        published=3, delivered=3, pending=0, lost=0, duplicated=0, reordered=0, unexpected=1
    )


def test_published_seqs_must_follow_one_another() -> None:
    tracker = DeliveryTracker()
    tracker.published(2, 5)
    with pytest.raises(ValueError, match="unit 2 must publish seq 6 next, not 8"):
        tracker.published(2, 8)
    with pytest.raises(ValueError, match="unit 4 must start with a seq >= 0, not -1"):
        tracker.published(4, -1)


def test_publishing_after_finish_is_refused() -> None:
    tracker = DeliveryTracker()
    tracker.finish()
    with pytest.raises(RuntimeError, match="unit 1 published seq 0 after the tracker finished"):
        tracker.published(1, 0)


def test_a_receive_time_before_the_send_time_records_zero_latency_and_counts_skew() -> None:
    tracker = DeliveryTracker()
    publish(tracker, 1, range(2))
    tracker.delivered(up(1, 0, sent_ms=2000), 1500)
    tracker.delivered(up(1, 1, sent_ms=2000), math.inf)
    assert tracker.totals().skewed == 2
    assert tracker.latency.count == 1
    assert tracker.latency.max == 0.0


def test_per_unit_lists_only_units_with_problems() -> None:
    tracker = DeliveryTracker()
    for unit in range(4):
        publish(tracker, unit, range(3))
        for seq in range(3):
            tracker.delivered(up(unit, seq), 1001)
    tracker.delivered(up(1, 2), 1001)
    publish(tracker, 3, range(3, 4))
    assert tracker.per_unit() == {
        1: DeliveryCounts(
            published=3, delivered=3, pending=0, lost=0, duplicated=1, reordered=0, unexpected=0
        )
    }
    tracker.finish()
    assert sorted(tracker.per_unit()) == [1, 3]
    assert tracker.per_unit()[3].lost == 1


def test_state_stays_compact_over_a_long_run_with_losses() -> None:
    tracker = DeliveryTracker()
    publish(tracker, 0, range(20_000))
    for seq in range(20_000):
        if seq not in (500, 12_345):
            tracker.delivered(up(0, seq), 1001)
    ranges = tracker._units[0].ranges
    assert ranges == [0, 500, 501, 12_345, 12_346, 20_000]
    tracker.delivered(up(0, 500), 1001)
    tracker.delivered(up(0, 12_345), 1001)
    assert tracker._units[0].ranges == [0, 20_000]
    assert tracker.totals().reordered == 2


@st.composite
def traffic(draw: st.DrawFn) -> tuple[dict[int, range], list[tuple[int, int]]]:
    """Units with published ranges, and arrivals (some for other units or unpublished seqs)."""
    units = draw(st.dictionaries(st.integers(0, 4), st.integers(0, 2), max_size=4))
    published = {
        unit: range(start, start + draw(st.integers(1, 30))) for unit, start in units.items()
    }
    arrivals = draw(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 35)), max_size=120))
    return published, arrivals


@settings(max_examples=300)
@given(traffic())
def test_counts_match_a_model_that_keeps_every_seq(
    case: tuple[dict[int, range], list[tuple[int, int]]],
) -> None:
    published, arrivals = case
    tracker = DeliveryTracker()
    for unit, seqs in published.items():
        publish(tracker, unit, seqs)
    seen: dict[int, set[int]] = {}
    highest: dict[int, int] = {}
    expected = {"duplicated": 0, "reordered": 0, "strangers": 0}
    for unit, seq in arrivals:
        outcome = tracker.delivered(up(unit, seq), 1001)
        if unit not in published:
            expected["strangers"] += 1
            assert outcome is Outcome.UNEXPECTED
            continue
        if seq in seen.setdefault(unit, set()):
            expected["duplicated"] += 1
            assert outcome is Outcome.DUPLICATE
            continue
        seen[unit].add(seq)
        if seq not in published[unit]:
            assert outcome is Outcome.UNEXPECTED
            continue
        behind = seq < highest.get(unit, -1)
        highest[unit] = max(highest.get(unit, -1), seq)
        expected["reordered"] += behind
        assert outcome is (Outcome.REORDERED if behind else Outcome.IN_ORDER)
    tracker.finish()
    delivered = sum(len(seen.get(u, set()) & set(s)) for u, s in published.items())
    unpublished = sum(len(seen.get(u, set()) - set(s)) for u, s in published.items())
    total_published = sum(len(s) for s in published.values())
    assert tracker.totals() == DeliveryCounts(
        published=total_published,
        delivered=delivered,
        pending=0,
        lost=total_published - delivered,
        duplicated=expected["duplicated"],
        reordered=expected["reordered"],
        unexpected=expected["strangers"] + unpublished,
    )
    for unit, seqs in published.items():
        counts = tracker.unit(unit)
        assert counts is not None
        assert counts.delivered == len(seen.get(unit, set()) & set(seqs))
        assert counts.lost == len(set(seqs) - seen.get(unit, set()))
