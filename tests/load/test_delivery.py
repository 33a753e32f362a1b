"""Delivery tracking: counts per unit, outcomes of each arrival, compact state."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vdtu.load.delivery import DeliveryCounts, DeliveryTracker, Outcome
from vdtu.load.payload import Uplink


def up(unit: int, seq: int, sent_ms: int = 1000) -> Uplink:
    return Uplink(unit=unit, seq=seq, sent_ms=sent_ms)


def publish(tracker: DeliveryTracker, unit: int, seqs: range) -> None:
    for seq in seqs:
        tracker.published(unit, seq)


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
