"""Delivery checks for a load run: which uplinks arrived, how often, in what order, how fast.

The runner calls ``DeliveryTracker.published(unit, seq)`` when a host hands an
uplink to its unit, and ``delivered(uplink, received_ms)`` when the verifying
subscriber reads one back. Per unit, the sequence numbers are published one after
the other from wherever the unit's first one starts (0 or 1 as the host likes:
n, n+1, n+2, ...); anything else is a runner bug and raises.

What is counted:

- ``delivered``: distinct published seqs seen at least once.
- ``duplicated``: every arrival of a seq already seen.
- ``reordered``: every first arrival of a seq lower than the highest seen so far
  for its unit (a lost seq is never reordered: it never arrives).
- ``unexpected``: distinct seqs that arrived but were never published, plus every
  arrival for a unit that never published (such units get no state, so garbage
  unit numbers cost no memory). A seq of a known unit that arrives before the
  runner reports it published counts here until it is published, then moves to
  ``delivered``.
- ``pending`` / ``lost``: published seqs not seen yet. While the run goes on
  they are ``pending`` (in flight); ``finish()`` turns them into ``lost``. The
  runner stops publishing, waits a grace period for the messages in flight, then
  calls ``finish()``; what arrives after that is only counted as ``late``.

Memory per unit stays small whatever the run length: the seqs seen are kept as
sorted half-open ranges ``[start, end)`` in one flat list (``[s0, e0, s1, e1,
...]``), so a unit that receives everything in order holds one range, and each
gap (a loss or a message still overtaken) costs one more range.

Latency goes into ``LatencyHistogram``: log-spaced buckets from ``floor_ms`` to
``ceiling_ms``, each ``growth`` times wider than the last (1 % error at the
default 1.02), plus one bucket below the floor and one above the ceiling. Two
histograms with the same layout merge exactly (bucket counts add up), so
percentiles of merged shards equal those of one histogram fed everything.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from vdtu.errors import VdtuError
from vdtu.load.payload import Uplink

QUANTILES = (50.0, 95.0, 99.0)
"""The percentiles every report gives, besides the maximum."""


class ReportFormatError(VdtuError, ValueError):
    """A saved report or histogram is malformed; the message names the field and its value."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Percentiles:
    """A latency summary in milliseconds; every field is None when nothing was measured."""

    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None

    def to_json(self) -> dict[str, float | None]:
        """``{"p50", "p95", "p99", "max"}``, each rounded to the microsecond."""
        return {
            "p50": _rounded(self.p50),
            "p95": _rounded(self.p95),
            "p99": _rounded(self.p99),
            "max": _rounded(self.max),
        }


class LatencyHistogram:
    """Latencies in log-spaced buckets: constant memory, mergeable, ~1 % relative error.

    Args:
        floor_ms: the lower edge of the first regular bucket (> 0); below it one
            bucket holds everything.
        ceiling_ms: the regular buckets reach at least this far (> floor_ms);
            above it one bucket holds everything.
        growth: each bucket's upper edge over its lower edge (> 1).

    Raises:
        ValueError: a layout argument is out of range.
    """

    def __init__(
        self, *, floor_ms: float = 0.1, ceiling_ms: float = 60_000.0, growth: float = 1.02
    ) -> None:
        if not (math.isfinite(floor_ms) and floor_ms > 0):
            raise ValueError(f"floor_ms must be a finite number > 0, not {floor_ms!r}")
        if not (math.isfinite(ceiling_ms) and ceiling_ms > floor_ms):
            raise ValueError(
                f"ceiling_ms must be finite and > floor_ms {floor_ms}, not {ceiling_ms!r}"
            )
        if not (math.isfinite(growth) and 1 < growth <= 2):
            raise ValueError(f"growth must be in (1, 2], not {growth!r}")
        self.floor_ms = floor_ms
        self.ceiling_ms = ceiling_ms
        self.growth = growth
        self._log_growth = math.log(growth)
        self._regular = math.ceil(math.log(ceiling_ms / floor_ms) / self._log_growth)
        self._counts = [0] * (self._regular + 2)
        self.count = 0
        """How many latencies were added."""
        self.sum_ms = 0.0
        """Their sum (for a mean, and Prometheus' ``_sum``)."""
        self.min: float | None = None
        """The smallest latency added, exactly; None when empty."""
        self.max: float | None = None
        """The largest latency added, exactly; None when empty."""

    @property
    def layout(self) -> tuple[float, float, float]:
        """``(floor_ms, ceiling_ms, growth)``: histograms merge only with the same layout."""
        return (self.floor_ms, self.ceiling_ms, self.growth)

    def add(self, ms: float) -> None:
        """Count one latency.

        Raises:
            ValueError: ``ms`` is negative, NaN or infinite.
        """
        if not (math.isfinite(ms) and ms >= 0):
            raise ValueError(f"latency must be a finite number of ms >= 0, not {ms!r}")
        self._counts[self._index(ms)] += 1
        self.count += 1
        self.sum_ms += ms
        if self.min is None or ms < self.min:
            self.min = ms
        if self.max is None or ms > self.max:
            self.max = ms

    def percentile(self, p: float) -> float | None:
        """The nearest-rank ``p``-th percentile, to the bucket's precision; None when empty.

        The value is the bucket's geometric middle, kept within the exact min and
        max; ``percentile(100)`` is the exact max.

        Raises:
            ValueError: ``p`` is outside 0..100.
        """
        if not 0 <= p <= 100:
            raise ValueError(f"percentile must be in 0..100, not {p!r}")
        if self.min is None or self.max is None:
            return None
        if p == 100:
            return self.max
        rank = max(1, math.ceil(p / 100 * self.count))
        seen = 0
        for index, bucket in enumerate(self._counts):
            seen += bucket
            if seen >= rank:
                if index == self._regular + 1:
                    return self.max
                return min(max(self._middle(index), self.min), self.max)
        return self.max

    def summary(self) -> Percentiles:
        """p50, p95, p99 and max."""
        p50, p95, p99 = (self.percentile(q) for q in QUANTILES)
        return Percentiles(p50=p50, p95=p95, p99=p99, max=self.max)

    def merge(self, other: LatencyHistogram) -> None:
        """Add ``other``'s counts to this histogram (``other`` is unchanged).

        Raises:
            ValueError: the layouts differ, so buckets would not line up.
        """
        if other.layout != self.layout:
            raise ValueError(f"cannot merge histogram layout {other.layout} into {self.layout}")
        for index, bucket in enumerate(other._counts):
            self._counts[index] += bucket
        self.count += other.count
        self.sum_ms += other.sum_ms
        if other.min is not None and (self.min is None or other.min < self.min):
            self.min = other.min
        if other.max is not None and (self.max is None or other.max > self.max):
            self.max = other.max

    def empty_like(self) -> LatencyHistogram:
        """A new, empty histogram with the same layout."""
        return LatencyHistogram(
            floor_ms=self.floor_ms, ceiling_ms=self.ceiling_ms, growth=self.growth
        )

    def copy(self) -> LatencyHistogram:
        """An independent histogram with the same layout and counts."""
        twin = self.empty_like()
        twin.merge(self)
        return twin

    def to_json(self) -> dict[str, Any]:
        """The layout, the non-empty buckets as ``[index, count]`` pairs, count, sum, min, max."""
        return {
            "floor_ms": self.floor_ms,
            "ceiling_ms": self.ceiling_ms,
            "growth": self.growth,
            "buckets": [[i, n] for i, n in enumerate(self._counts) if n],
            "count": self.count,
            "sum_ms": self.sum_ms,
            "min": self.min,
            "max": self.max,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LatencyHistogram:
        """Read back ``to_json()``.

        Raises:
            ReportFormatError: a field is missing, of the wrong type or inconsistent; the
                message names it.
        """
        try:
            histogram = cls(
                floor_ms=_number(data, "floor_ms"),
                ceiling_ms=_number(data, "ceiling_ms"),
                growth=_number(data, "growth"),
            )
        except ReportFormatError:
            raise
        except ValueError as exc:
            raise ReportFormatError(f"histogram layout: {exc}") from exc
        buckets = data.get("buckets")
        if not isinstance(buckets, list):
            raise ReportFormatError(
                f"histogram buckets must be a list of [index, count], not {buckets!r}"
            )
        for pair in buckets:
            histogram._load_bucket(pair)
        histogram.count = sum(histogram._counts)
        histogram.sum_ms = _number(data, "sum_ms")
        histogram.min = _optional_number(data, "min")
        histogram.max = _optional_number(data, "max")
        if not _extremes_fit(histogram.count, histogram.min, histogram.max):
            raise ReportFormatError(
                f"histogram min {histogram.min!r} / max {histogram.max!r} do not fit "
                f"its {histogram.count} counted latencies"
            )
        if data.get("count") != histogram.count:
            raise ReportFormatError(
                f"histogram count {data.get('count')!r} is not the sum of its buckets "
                f"{histogram.count}"
            )
        return histogram

    __hash__: ClassVar[None]  # type: ignore[assignment]  # mutable, so not hashable

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LatencyHistogram):
            return NotImplemented
        return (
            self.layout == other.layout
            and self._counts == other._counts
            and (self.min, self.max) == (other.min, other.max)
        )

    def __repr__(self) -> str:
        return f"LatencyHistogram(count={self.count}, summary={self.summary()})"

    def _index(self, ms: float) -> int:
        if ms < self.floor_ms:
            return 0
        return min(int(math.log(ms / self.floor_ms) / self._log_growth) + 1, self._regular + 1)

    def _middle(self, index: int) -> float:
        """A representative value of bucket ``index`` (the geometric middle of its edges)."""
        if index == 0:
            return self.floor_ms / 2
        return self.floor_ms * math.pow(self.growth, index - 0.5)

    def _load_bucket(self, pair: object) -> None:
        if not (
            isinstance(pair, list)
            and len(pair) == 2
            and all(isinstance(x, int) and not isinstance(x, bool) for x in pair)
            and 0 <= pair[0] < len(self._counts)
            and pair[1] > 0
        ):
            raise ReportFormatError(
                f"histogram bucket must be [index 0..{len(self._counts) - 1}, count > 0], "
                f"not {pair!r}"
            )
        self._counts[pair[0]] += pair[1]


class Outcome(StrEnum):
    """What one arrival was, as ``DeliveryTracker.delivered`` classifies it."""

    IN_ORDER = "in-order"
    """First arrival of a seq, not behind any seq seen before."""
    REORDERED = "reordered"
    """First arrival of a seq lower than the highest seen for its unit."""
    DUPLICATE = "duplicate"
    """A seq seen before."""
    UNEXPECTED = "unexpected"
    """A unit that never published, or a seq it has not published (yet)."""
    LATE = "late"
    """Arrived after ``finish()``: the seq was already counted as lost or delivered."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryCounts:
    """Delivery figures, for one unit or the whole tracker (see the module comment)."""

    published: int
    delivered: int
    pending: int
    """Published, not seen yet, before ``finish()``; 0 after it."""
    lost: int
    """Published, never seen by ``finish()``; 0 before it."""
    duplicated: int
    reordered: int
    unexpected: int
    late: int = 0
    """Arrivals after ``finish()`` (tracker totals only)."""
    skewed: int = 0
    """Arrivals stamped later than they were received (clocks apart); latency 0 recorded."""

    @property
    def has_problems(self) -> bool:
        """Anything lost, duplicated, reordered or unexpected."""
        return bool(self.lost or self.duplicated or self.reordered or self.unexpected)


class _UnitState:
    """One unit's seqs: how many published, which seen (as ranges), and the counters."""

    __slots__ = (
        "delivered",
        "duplicated",
        "early",
        "first",
        "highest",
        "published",
        "ranges",
        "reordered",
    )

    def __init__(self, first: int) -> None:
        self.first = first
        """The unit's first published seq."""
        self.published = 0
        self.delivered = 0
        self.early = 0
        """Distinct seqs seen but not published (yet)."""
        self.highest = -1
        self.duplicated = 0
        self.reordered = 0
        self.ranges: list[int] = []

    def was_published(self, seq: int) -> bool:
        return self.first <= seq < self.first + self.published

    def seen(self, seq: int) -> bool:
        return bisect_right(self.ranges, seq) % 2 == 1

    def mark(self, seq: int) -> bool:
        """Record ``seq`` as seen; False when it had been seen already."""
        ranges = self.ranges
        at = bisect_right(ranges, seq)
        if at % 2 == 1:
            return False
        joins_left = at > 0 and ranges[at - 1] == seq
        joins_right = at < len(ranges) and ranges[at] == seq + 1
        if joins_left and joins_right:
            del ranges[at - 1 : at + 1]
        elif joins_left:
            ranges[at - 1] = seq + 1
        elif joins_right:
            ranges[at] = seq
        else:
            ranges[at:at] = [seq, seq + 1]
        return True


class DeliveryTracker:
    """Counts every unit's published and delivered uplinks and their latency.

    Totals are kept up to date on every call, so ``totals()`` is cheap enough for
    a progress line; ``per_unit()`` walks every unit.

    Args:
        latency: where end-to-end latencies go (a default-layout histogram when None).
    """

    def __init__(self, latency: LatencyHistogram | None = None) -> None:
        self.latency = latency if latency is not None else LatencyHistogram()
        """End-to-end latency of each first arrival of a known unit's uplink."""
        self._units: dict[int, _UnitState] = {}
        self._finished = False
        self._published = 0
        self._delivered = 0
        self._early = 0
        self._duplicated = 0
        self._reordered = 0
        self._strangers = 0
        self._late = 0
        self._skewed = 0

    @property
    def finished(self) -> bool:
        """``finish()`` was called."""
        return self._finished

    def published(self, unit: int, seq: int) -> None:
        """Record that ``unit``'s host handed it uplink ``seq``.

        Args:
            unit: the unit number.
            seq: the unit's next seq: any number >= 0 the first time, then one
                more each time.

        Raises:
            ValueError: ``seq`` is not the unit's next one.
            RuntimeError: ``finish()`` was called already.
        """
        if self._finished:
            raise RuntimeError(f"unit {unit} published seq {seq} after the tracker finished")
        state = self._units.get(unit)
        if state is None:
            if not (isinstance(seq, int) and seq >= 0):
                raise ValueError(f"unit {unit} must start with a seq >= 0, not {seq!r}")
            state = self._units[unit] = _UnitState(seq)
        expected = state.first + state.published
        if seq != expected:
            raise ValueError(f"unit {unit} must publish seq {expected} next, not {seq!r}")
        state.published += 1
        self._published += 1
        if state.seen(seq):
            state.early -= 1
            state.delivered += 1
            self._early -= 1
            self._delivered += 1

    def delivered(self, uplink: Uplink, received_ms: float) -> Outcome:
        """Record one arrival, as the subscriber read it.

        Args:
            uplink: what ``find_uplink`` found in the message.
            received_ms: when it arrived, on the clock the sender stamped ``sent_ms`` with.

        Returns:
            How the arrival was counted.
        """
        if self._finished:
            self._late += 1
            return Outcome.LATE
        state = self._units.get(uplink.unit)
        if state is None:
            self._strangers += 1
            return Outcome.UNEXPECTED
        seq = uplink.seq
        if not state.mark(seq):
            state.duplicated += 1
            self._duplicated += 1
            return Outcome.DUPLICATE
        self._record_latency(received_ms - uplink.sent_ms)
        if not state.was_published(seq):
            state.early += 1
            self._early += 1
            return Outcome.UNEXPECTED
        state.delivered += 1
        self._delivered += 1
        behind = seq < state.highest
        state.highest = max(state.highest, seq)
        if behind:
            state.reordered += 1
            self._reordered += 1
            return Outcome.REORDERED
        return Outcome.IN_ORDER

    def finish(self) -> None:
        """End the run: seqs not seen by now are lost; later arrivals only count as late.

        Call it after the grace period the runner waits for messages in flight.
        Calling it again changes nothing.
        """
        self._finished = True

    def totals(self) -> DeliveryCounts:
        """The figures for every unit together."""
        missing = self._published - self._delivered
        return DeliveryCounts(
            published=self._published,
            delivered=self._delivered,
            pending=0 if self._finished else missing,
            lost=missing if self._finished else 0,
            duplicated=self._duplicated,
            reordered=self._reordered,
            unexpected=self._strangers + self._early,
            late=self._late,
            skewed=self._skewed,
        )

    def unit(self, unit: int) -> DeliveryCounts | None:
        """One unit's figures, or None for a unit that never published."""
        state = self._units.get(unit)
        return None if state is None else self._counts(state)

    def per_unit(self) -> dict[int, DeliveryCounts]:
        """The figures of every unit with a problem (``DeliveryCounts.has_problems``), by unit."""
        found = {unit: self._counts(state) for unit, state in self._units.items()}
        return {unit: counts for unit, counts in sorted(found.items()) if counts.has_problems}

    def _counts(self, state: _UnitState) -> DeliveryCounts:
        missing = state.published - state.delivered
        return DeliveryCounts(
            published=state.published,
            delivered=state.delivered,
            pending=0 if self._finished else missing,
            lost=missing if self._finished else 0,
            duplicated=state.duplicated,
            reordered=state.reordered,
            unexpected=state.early,
        )

    def _record_latency(self, ms: float) -> None:
        if not math.isfinite(ms):
            self._skewed += 1
            return
        if ms < 0:
            self._skewed += 1
            ms = 0.0
        self.latency.add(ms)


def _extremes_fit(count: int, low: float | None, high: float | None) -> bool:
    """None and None for an empty histogram, else 0 <= low <= high."""
    if count == 0:
        return low is None and high is None
    return low is not None and high is not None and 0 <= low <= high


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _number(data: Mapping[str, Any], key: str) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ReportFormatError(f"histogram {key} must be a number, not {value!r}")
    return float(value)


def _optional_number(data: Mapping[str, Any], key: str) -> float | None:
    return None if data.get(key) is None else _number(data, key)
