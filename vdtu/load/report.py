"""The JSON report of a load run, merging shards' reports, and why a run failed.

A ``FleetReport`` is one process's (one shard's) figures, or the merge of several.
It carries the latency and command round-trip histograms themselves, not only
their percentiles, so that ``merge`` can add the buckets and give exactly the
percentiles one tracker fed every shard's messages would give. The JSON::

    {"format": "vdtu-fleet-report/1",
     "units", "connected", "powered_off", "connect_failures", "connect_s",
     "connect_rate_per_s",
     "published", "delivered", "lost", "pending", "duplicated", "reordered", "unexpected",
     "latency_ms": {"p50", "p95", "p99", "max"}, "command_rtt_ms": {same},
     "reconnects", "rss_mb", "cpu_s", "duration_s",
     "shards": [...], "profile", "broker", "errors": {kind: count},
     "histograms": {"latency_ms": {...}, "command_rtt_ms": {...}}}

``connect_rate_per_s``, ``latency_ms`` and ``command_rtt_ms`` are derived (from
``connected``/``connect_s`` and the histograms); ``from_json`` recomputes them.

Merging: counts, ``rss_mb`` and ``cpu_s`` are summed (the fleet's total memory
and CPU over all its processes; divide by ``units`` for a per-unit figure).
Shards run side by side, so ``duration_s`` and ``connect_s`` are the longest
shard's, and the merged connect rate is all connections over that time. Shard ids
must be distinct (the same shard twice would count its messages twice); differing
profiles or brokers are kept, joined with ``,``.

Prometheus text (``vdtu/load/prometheus.py``) and the progress line
(``vdtu/load/progress.py``) are written from a ``FleetReport``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vdtu.histogram import LatencyHistogram, Percentiles, ReportFormatError
from vdtu.load.delivery import DeliveryTracker

REPORT_FORMAT = "vdtu-fleet-report/1"
"""The ``format`` value of a report's JSON."""

_COUNTS = (
    "units",
    "connected",
    "powered_off",
    "connect_failures",
    "published",
    "delivered",
    "lost",
    "pending",
    "duplicated",
    "reordered",
    "unexpected",
    "reconnects",
)
_FIGURES = ("connect_s", "rss_mb", "cpu_s", "duration_s")
_MISSING = object()


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetReport:
    """What one shard, or several merged, measured (see the module comment).

    Raises:
        ValueError: a count is not an integer >= 0, a figure not a finite number
            >= 0, a shard id repeats, or an error counter is not an integer >= 0.
    """

    units: int
    """Units this report covers."""
    connected: int
    """Units connected to their cloud when the report was made."""
    powered_off: int = 0
    """Units the ramp's stages had dropped (powered off) when the report was made."""
    connect_failures: int
    """Connection attempts that failed (refused, timed out, dropped before CONNACK)."""
    connect_s: float
    """Seconds from the start of the ramp until the last unit first connected (0 if none)."""
    published: int
    delivered: int
    lost: int
    pending: int
    duplicated: int
    reordered: int
    unexpected: int
    reconnects: int
    """Connections made again after a unit lost its cloud."""
    rss_mb: float
    """Resident memory in MiB (2**20 bytes), summed over processes."""
    cpu_s: float
    """CPU time (user + system) in seconds, summed over processes."""
    duration_s: float
    """Wall time of the run in seconds (the longest shard's)."""
    shards: tuple[str, ...]
    """Ids of the shards included (e.g. ``"0/2"``), in merge order."""
    profile: str
    """``xgc``, ``quec`` or ``mix`` (merged shards of differing profiles: joined with ``,``)."""
    broker: str
    """The broker URL, without credentials: the report and the metrics are not secret."""
    errors: Mapping[str, int] = field(default_factory=dict)
    """Counters of everything else that went wrong, by kind."""
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    """End-to-end uplink latency, ms."""
    command_rtt: LatencyHistogram = field(default_factory=LatencyHistogram)
    """Command probe round trips, ms."""

    def __post_init__(self) -> None:
        for name in _COUNTS:
            _check_count(name, getattr(self, name))
        for name in _FIGURES:
            _check_figure(name, getattr(self, name))
            object.__setattr__(self, name, float(getattr(self, name)))
        if len(set(self.shards)) != len(self.shards):
            raise ValueError(f"shards must be distinct, not {list(self.shards)!r}")
        for kind, count in self.errors.items():
            _check_count(f"errors[{kind!r}]", count)
        object.__setattr__(self, "errors", dict(sorted(self.errors.items())))

    @property
    def connect_rate_per_s(self) -> float:
        """Connections per second during the ramp (0 when nothing connected)."""
        return self.connected / self.connect_s if self.connect_s > 0 else 0.0

    @property
    def latency_ms(self) -> Percentiles:
        return self.latency.summary()

    @property
    def command_rtt_ms(self) -> Percentiles:
        return self.command_rtt.summary()

    @property
    def error_count(self) -> int:
        """All error counters together."""
        return sum(self.errors.values())

    @classmethod
    def collect(
        cls,
        *,
        tracker: DeliveryTracker,
        command_rtt: LatencyHistogram,
        shard: str,
        profile: str,
        broker: str,
        units: int,
        connected: int,
        powered_off: int = 0,
        connect_failures: int,
        connect_s: float,
        reconnects: int,
        duration_s: float,
        rss_mb: float,
        cpu_s: float,
        errors: Mapping[str, int] | None = None,
    ) -> FleetReport:
        """A report from a shard's tracker and counters, copying the histograms.

        The tracker's late arrivals and clock-skewed stamps go into ``errors`` as
        ``delivered_late`` and ``clock_skewed`` when there are any.

        Raises:
            ValueError: as the constructor.
        """
        totals = tracker.totals()
        found = dict(errors or {})
        for kind, count in (("delivered_late", totals.late), ("clock_skewed", totals.skewed)):
            if count:
                found[kind] = found.get(kind, 0) + count
        return cls(
            units=units,
            connected=connected,
            powered_off=powered_off,
            connect_failures=connect_failures,
            connect_s=connect_s,
            published=totals.published,
            delivered=totals.delivered,
            lost=totals.lost,
            pending=totals.pending,
            duplicated=totals.duplicated,
            reordered=totals.reordered,
            unexpected=totals.unexpected,
            reconnects=reconnects,
            rss_mb=rss_mb,
            cpu_s=cpu_s,
            duration_s=duration_s,
            shards=(shard,),
            profile=profile,
            broker=broker,
            errors=found,
            latency=tracker.latency.copy(),
            command_rtt=command_rtt.copy(),
        )

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON-ready dict (see the module comment)."""
        return {
            "format": REPORT_FORMAT,
            "units": self.units,
            "connected": self.connected,
            "powered_off": self.powered_off,
            "connect_failures": self.connect_failures,
            "connect_s": self.connect_s,
            "connect_rate_per_s": round(self.connect_rate_per_s, 3),
            "published": self.published,
            "delivered": self.delivered,
            "lost": self.lost,
            "pending": self.pending,
            "duplicated": self.duplicated,
            "reordered": self.reordered,
            "unexpected": self.unexpected,
            "reconnects": self.reconnects,
            "latency_ms": self.latency_ms.to_json(),
            "command_rtt_ms": self.command_rtt_ms.to_json(),
            "rss_mb": self.rss_mb,
            "cpu_s": self.cpu_s,
            "duration_s": self.duration_s,
            "shards": list(self.shards),
            "profile": self.profile,
            "broker": self.broker,
            "errors": dict(self.errors),
            "histograms": {
                "latency_ms": self.latency.to_json(),
                "command_rtt_ms": self.command_rtt.to_json(),
            },
        }

    @classmethod
    def from_json(cls, data: object) -> FleetReport:
        """Read back ``to_json()`` (the derived keys are recomputed, not read).

        Raises:
            ReportFormatError: not a report of this format, or a field is missing or
                wrong; the message names it.
        """
        if not isinstance(data, Mapping):
            raise ReportFormatError(f"a fleet report must be a JSON object, not {data!r:.80}")
        if data.get("format") != REPORT_FORMAT:
            raise ReportFormatError(
                f"report format must be {REPORT_FORMAT!r}, not {data.get('format')!r}"
            )
        histograms = _field(data, "histograms", Mapping, "an object")

        def count(key: str) -> int:
            return int(_field(data, key, int, "an integer"))

        def figure(key: str) -> float:
            return float(_field(data, key, (int, float), "a number"))

        def histogram(key: str) -> LatencyHistogram:
            return LatencyHistogram.from_json(_field(histograms, key, Mapping, "an object"))

        try:
            return cls(
                units=count("units"),
                connected=count("connected"),
                powered_off=count("powered_off") if "powered_off" in data else 0,
                connect_failures=count("connect_failures"),
                connect_s=figure("connect_s"),
                published=count("published"),
                delivered=count("delivered"),
                lost=count("lost"),
                pending=count("pending"),
                duplicated=count("duplicated"),
                reordered=count("reordered"),
                unexpected=count("unexpected"),
                reconnects=count("reconnects"),
                rss_mb=figure("rss_mb"),
                cpu_s=figure("cpu_s"),
                duration_s=figure("duration_s"),
                shards=tuple(_strings(data, "shards")),
                profile=_field(data, "profile", str, "a string"),
                broker=_field(data, "broker", str, "a string"),
                errors=_field(data, "errors", Mapping, "an object of counts"),
                latency=histogram("latency_ms"),
                command_rtt=histogram("command_rtt_ms"),
            )
        except ReportFormatError:
            raise
        except ValueError as exc:
            raise ReportFormatError(f"fleet report: {exc}") from exc


def merge(reports: Iterable[FleetReport]) -> FleetReport:
    """One report for several shards (the rules are in the module comment).

    Args:
        reports: at least one report; none is changed.

    Returns:
        The merged report; its histograms are new objects.

    Raises:
        ValueError: no report, a shard id appears twice, or histogram layouts differ.
    """
    group = list(reports)
    if not group:
        raise ValueError("merge needs at least one report, not none")
    latency = group[0].latency.empty_like()
    command_rtt = group[0].command_rtt.empty_like()
    errors: dict[str, int] = {}
    for report in group:
        latency.merge(report.latency)
        command_rtt.merge(report.command_rtt)
        for kind, count in report.errors.items():
            errors[kind] = errors.get(kind, 0) + count

    def total(name: str) -> Any:
        return sum(getattr(report, name) for report in group)

    def longest(name: str) -> float:
        return max(float(getattr(report, name)) for report in group)

    return FleetReport(
        units=total("units"),
        connected=total("connected"),
        powered_off=total("powered_off"),
        connect_failures=total("connect_failures"),
        connect_s=longest("connect_s"),
        published=total("published"),
        delivered=total("delivered"),
        lost=total("lost"),
        pending=total("pending"),
        duplicated=total("duplicated"),
        reordered=total("reordered"),
        unexpected=total("unexpected"),
        reconnects=total("reconnects"),
        rss_mb=math.fsum(report.rss_mb for report in group),
        cpu_s=math.fsum(report.cpu_s for report in group),
        duration_s=longest("duration_s"),
        shards=tuple(shard for report in group for shard in report.shards),
        profile=_joined(report.profile for report in group),
        broker=_joined(report.broker for report in group),
        errors=errors,
        latency=latency,
        command_rtt=command_rtt,
    )


def shortfalls(report: FleetReport) -> list[str]:
    """Why a run failed, one phrase per cause, empty when it passed (every unit connected
    at the end but those the ramp dropped, nothing lost): units never powered on (the run
    was stopped during its ramp), never connected, connected but not at the end, and
    uplinks lost."""
    never_on = report.errors.get("never_powered_on", 0)
    never = report.errors.get("never_connected", 0)
    dropped = report.units - report.connected - never - never_on - report.powered_off
    found = []
    if never_on:
        found.append(
            f"{never_on} of {report.units} units were never powered on "
            "(the run was stopped during its ramp)"
        )
    if never:
        found.append(f"{never} of {report.units} units never connected")
    if dropped > 0:
        found.append(
            f"{dropped} of {report.units} units were not connected at the end "
            f"({report.reconnects} reconnects, {report.connect_failures} failed attempts)"
        )
    if report.lost:
        found.append(f"{report.lost} uplinks lost (not delivered within the grace period)")
    return found


# -- helpers ----------------------------------------------------------------------------


def _joined(values: Iterable[str]) -> str:
    return ",".join(dict.fromkeys(values))


def _check_count(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, not {value!r}")


def _check_figure(name: str, value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")


def _field(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], wanted: str) -> Any:
    value = data.get(key, _MISSING)
    if value is _MISSING:
        raise ReportFormatError(f"report field {key!r} is missing; it must be {wanted}")
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ReportFormatError(f"report field {key!r} must be {wanted}, not {value!r:.80}")
    return value


def _strings(data: Mapping[str, Any], key: str) -> Sequence[str]:
    value = _field(data, key, list, "a list of strings")
    if not all(isinstance(item, str) for item in value):
        raise ReportFormatError(
            f"report field {key!r} must be a list of strings, not {value!r:.80}"
        )
    return [str(item) for item in value]
