"""The fleet report in Prometheus' text format: lines that parse, the issue's figures, NaN
for an empty summary, escaped labels."""

from __future__ import annotations

import math
import re

import pytest

from tests.load.test_report import report
from vdtu.load.prometheus import to_prometheus

SAMPLE_LINE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)"
    r'(?P<labels>\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*\})?'
    r" (?P<value>NaN|[+-]Inf|-?[0-9.eE+-]+)$"
)
COMMENT_LINE = re.compile(r"^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$")


def exposition(text: str) -> tuple[dict[str, str], dict[str, float]]:
    """Parse the text format strictly: (type by family, value by sample with its labels)."""
    assert text.endswith("\n")
    types: dict[str, str] = {}
    helps: set[str] = set()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        comment = COMMENT_LINE.match(line)
        if comment:
            kind, name, rest = comment.groups()
            if kind == "HELP":
                helps.add(name)
            else:
                assert rest in {"counter", "gauge", "summary"}
                types[name] = rest
            continue
        sample = SAMPLE_LINE.match(line)
        assert sample, f"not a valid sample line: {line!r}"
        family = re.sub(r"_(sum|count)$", "", sample["name"])
        assert sample["name"] in types or family in types, f"sample before its TYPE: {line!r}"
        samples[sample["name"] + (sample["labels"] or "")] = float(sample["value"])
    assert helps == set(types)
    return types, samples


def test_prometheus_lines_parse_and_every_family_has_help_and_type() -> None:
    subject = report()
    subject.latency.add(4.0)
    subject.latency.add(8.0)
    types, samples = exposition(to_prometheus(subject))
    assert types["vdtu_fleet_units"] == "gauge"
    assert types["vdtu_fleet_connected"] == "gauge"
    assert types["vdtu_fleet_published_total"] == "counter"
    assert types["vdtu_fleet_latency_seconds"] == "summary"
    assert all(name.endswith("_total") for name, kind in types.items() if kind == "counter")
    assert samples["vdtu_fleet_units"] == 10
    assert samples["vdtu_fleet_delivered_total"] == 98
    assert samples["vdtu_fleet_rss_bytes"] == 50 * 2**20
    assert samples['vdtu_fleet_errors_total{kind="publish_refused"}'] == 2
    assert samples['vdtu_fleet_latency_seconds{quantile="1"}'] == 0.008
    assert samples['vdtu_fleet_latency_seconds{quantile="0.5"}'] == pytest.approx(0.004, rel=0.01)
    assert samples["vdtu_fleet_latency_seconds_sum"] == pytest.approx(0.012)
    assert samples["vdtu_fleet_latency_seconds_count"] == 2


def test_prometheus_names_the_issue_figures() -> None:
    _, samples = exposition(to_prometheus(report()))
    for name in (
        "units",
        "connected",
        "connect_failures_total",
        "connect_rate_per_second",
        "published_total",
        "delivered_total",
        "lost_total",
        "duplicated_total",
        "reordered_total",
        "reconnects_total",
        "rss_bytes",
        "cpu_seconds_total",
        "command_rtt_seconds_count",
    ):
        assert f"vdtu_fleet_{name}" in samples


def test_prometheus_shows_an_empty_summary_as_nan() -> None:
    _, samples = exposition(to_prometheus(report()))
    assert math.isnan(samples['vdtu_fleet_command_rtt_seconds{quantile="0.99"}'])
    assert samples["vdtu_fleet_command_rtt_seconds_count"] == 0


def test_prometheus_escapes_label_values() -> None:
    text = to_prometheus(report(broker='mqtt://a"b\\c\nd:1883'))
    info = next(line for line in text.splitlines() if line.startswith("vdtu_fleet_info{"))
    assert 'broker="mqtt://a\\"b\\\\c\\nd:1883"' in info
    exposition(text)
