"""A load run's figures in Prometheus' text exposition format (version 0.0.4).

``to_prometheus`` writes one ``FleetReport`` with base units (seconds, bytes), every
name prefixed ``vdtu_fleet_``: gauges for what goes up and down (units, connected,
pending, memory, run time), counters ending in ``_total`` for what only grows, one
``errors_total`` sample per error kind (label ``kind``), the latencies as summaries
with quantiles 0.5, 0.95, 0.99 and 1 (the maximum, NaN while empty) plus ``_sum`` and
``_count``, and an ``info`` gauge whose labels say what the run was. Every family
has its ``# HELP`` and ``# TYPE`` lines; label values are escaped as the format asks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from vdtu.histogram import LatencyHistogram
from vdtu.load.report import FleetReport

_PREFIX = "vdtu_fleet_"
_QUANTILES = (("0.5", 50.0), ("0.95", 95.0), ("0.99", 99.0))

_GAUGES: tuple[tuple[str, str, Callable[[FleetReport], float]], ...] = (
    ("units", "Units in the fleet.", lambda r: r.units),
    ("connected", "Units connected to their cloud now.", lambda r: r.connected),
    (
        "powered_off",
        "Units the ramp's stages have dropped (powered off) now.",
        lambda r: r.powered_off,
    ),
    (
        "connect_rate_per_second",
        "Connections per second during the ramp.",
        lambda r: r.connect_rate_per_s,
    ),
    ("pending", "Uplinks published and not delivered yet.", lambda r: r.pending),
    ("rss_bytes", "Resident memory of the fleet's processes.", lambda r: r.rss_mb * 2**20),
    ("duration_seconds", "Wall time of the run so far.", lambda r: r.duration_s),
)
_COUNTERS: tuple[tuple[str, str, Callable[[FleetReport], float]], ...] = (
    ("connect_failures_total", "Connection attempts that failed.", lambda r: r.connect_failures),
    ("reconnects_total", "Connections made again after a loss.", lambda r: r.reconnects),
    ("published_total", "Uplinks handed to the units.", lambda r: r.published),
    ("delivered_total", "Distinct uplinks the subscriber received.", lambda r: r.delivered),
    ("lost_total", "Uplinks never delivered (counted when the run ends).", lambda r: r.lost),
    ("duplicated_total", "Uplinks received again.", lambda r: r.duplicated),
    ("reordered_total", "Uplinks received after a later one.", lambda r: r.reordered),
    ("unexpected_total", "Uplinks received that were never published.", lambda r: r.unexpected),
    ("cpu_seconds_total", "CPU time of the fleet's processes.", lambda r: r.cpu_s),
)
_SUMMARIES = (
    ("latency_seconds", "End-to-end uplink latency, host to subscriber.", "latency"),
    ("command_rtt_seconds", "Command probe round trip, cloud to reply.", "command_rtt"),
)


def to_prometheus(report: FleetReport) -> str:
    """The report in Prometheus' text exposition format (see the module comment).

    Returns:
        ``# HELP``/``# TYPE`` lines and samples, ending with a newline.
    """
    lines: list[str] = []
    for name, help_text, value in _GAUGES:
        lines += _metric(name, "gauge", help_text, [("", value(report))])
    for name, help_text, value in _COUNTERS:
        lines += _metric(name, "counter", help_text, [("", value(report))])
    errors = [(_labels(kind=kind), count) for kind, count in report.errors.items()]
    lines += _metric("errors_total", "counter", "Other errors, by kind.", errors)
    for name, help_text, attribute in _SUMMARIES:
        lines += _summary(name, help_text, getattr(report, attribute))
    info = _labels(profile=report.profile, broker=report.broker, shards=",".join(report.shards))
    lines += _metric("info", "gauge", "What the run was: profile, broker, shards.", [(info, 1)])
    return "\n".join(lines) + "\n"


def _metric(
    name: str, kind: str, help_text: str, samples: Sequence[tuple[str, float]]
) -> list[str]:
    full = _PREFIX + name
    lines = [f"# HELP {full} {help_text}", f"# TYPE {full} {kind}"]
    lines += [f"{full}{labels} {_number(value)}" for labels, value in samples]
    return lines


def _summary(name: str, help_text: str, histogram: LatencyHistogram) -> list[str]:
    full = _PREFIX + name
    lines = [f"# HELP {full} {help_text}", f"# TYPE {full} summary"]
    quantiles = [(label, histogram.percentile(p)) for label, p in _QUANTILES]
    quantiles.append(("1", histogram.max))
    for label, ms in quantiles:
        seconds = math.nan if ms is None else ms / 1000
        lines.append(f"{full}{_labels(quantile=label)} {_number(seconds)}")
    lines.append(f"{full}_sum {_number(histogram.sum_ms / 1000)}")
    lines.append(f"{full}_count {histogram.count}")
    return lines


def _labels(**labels: str) -> str:
    inner = ",".join(f'{key}="{_escaped(value)}"' for key, value in labels.items())
    return "{" + inner + "}"


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))
