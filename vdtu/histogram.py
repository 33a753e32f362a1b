"""Latency histograms (a load run's, a fleet's MQTT acknowledgements): constant memory,
mergeable across shards.

``LatencyHistogram`` keeps log-spaced buckets from ``floor_ms`` to ``ceiling_ms``,
each ``growth`` times wider than the last (1 % error at the default 1.02), plus one
bucket below the floor and one above the ceiling; the exact count, sum, min and max
ride along. Two histograms with the same layout merge exactly (bucket counts add
up), so percentiles of merged shards equal those of one histogram fed everything.
A percentile is the nearest-rank bucket's geometric middle, kept within the exact
min and max. ``to_json``/``from_json`` carry the layout and the non-empty buckets,
and ``from_json`` checks every field (``ReportFormatError`` names the bad one).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from vdtu.errors import VdtuError

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
