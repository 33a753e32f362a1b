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

The latencies of first arrivals go into a ``LatencyHistogram``
(``vdtu/histogram.py``).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from enum import StrEnum

from vdtu.histogram import LatencyHistogram
from vdtu.load.payload import Uplink


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
