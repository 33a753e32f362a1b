"""Fleet reports: the JSON and reading it back, collecting a shard, exact merging of shards."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest

from vdtu.histogram import LatencyHistogram, ReportFormatError
from vdtu.load.delivery import DeliveryTracker
from vdtu.load.payload import Uplink
from vdtu.load.report import REPORT_FORMAT, FleetReport, merge

ISSUE_KEYS = {
    "units",
    "connected",
    "connect_failures",
    "connect_rate_per_s",
    "published",
    "delivered",
    "lost",
    "duplicated",
    "reordered",
    "latency_ms",
    "command_rtt_ms",
    "reconnects",
    "rss_mb",
    "cpu_s",
    "duration_s",
    "shards",
    "profile",
    "broker",
    "errors",
    "histograms",
}


def report(**changes: Any) -> FleetReport:
    fields: dict[str, Any] = {
        "units": 10,
        "connected": 9,
        "connect_failures": 1,
        "connect_s": 2.0,
        "published": 100,
        "delivered": 98,
        "lost": 0,
        "pending": 2,
        "duplicated": 1,
        "reordered": 3,
        "unexpected": 0,
        "reconnects": 4,
        "rss_mb": 50.0,
        "cpu_s": 1.5,
        "duration_s": 30.0,
        "shards": ("0/1",),
        "profile": "xgc",
        "broker": "mqtt://127.0.0.1:1883",
        "errors": {"publish_refused": 2},
    }
    return FleetReport(**(fields | changes))


def shard_tracker(units: range, rng: random.Random, everything: DeliveryTracker) -> DeliveryTracker:
    """A shard's tracker fed some traffic, the same traffic also fed to ``everything``."""
    tracker = DeliveryTracker()
    for unit in units:
        for seq in range(20):
            for target in (tracker, everything):
                target.published(unit, seq)
            if rng.random() < 0.05:
                continue
            uplink = Uplink(unit=unit, seq=seq, sent_ms=1000)
            received = 1000 + rng.lognormvariate(1.5, 1.0)
            for target in (tracker, everything):
                target.delivered(uplink, received)
                if seq % 7 == 3:
                    target.delivered(uplink, received + 1)
    return tracker


def shard_report(tracker: DeliveryTracker, rtt: LatencyHistogram, shard: str) -> FleetReport:
    return FleetReport.collect(
        tracker=tracker,
        command_rtt=rtt,
        shard=shard,
        profile="quec",
        broker="mqtt://127.0.0.1:1883",
        units=50,
        connected=50,
        connect_failures=0,
        connect_s=5.0,
        reconnects=0,
        duration_s=60.0,
        rss_mb=40.0,
        cpu_s=3.0,
    )


# -- the JSON report -----------------------------------------------------------------------


def test_json_has_every_key_the_issue_asks_for() -> None:
    data = report().to_json()
    assert data.keys() >= ISSUE_KEYS
    assert data["format"] == REPORT_FORMAT
    assert data["latency_ms"].keys() == {"p50", "p95", "p99", "max"}
    assert data["command_rtt_ms"].keys() == {"p50", "p95", "p99", "max"}
    assert data["connect_rate_per_s"] == 4.5


def test_json_round_trip_gives_an_equal_report() -> None:
    original = report(latency=LatencyHistogram(), errors={"b": 1, "a": 2})
    original.latency.add(3.5)
    original.latency.add(120.0)
    text = json.dumps(original.to_json())
    restored = FleetReport.from_json(json.loads(text))
    assert restored == original
    assert restored.latency_ms == original.latency_ms
    assert list(restored.errors) == ["a", "b"]


def test_an_empty_histogram_reports_null_percentiles() -> None:
    data = report().to_json()
    assert data["command_rtt_ms"] == {"p50": None, "p95": None, "p99": None, "max": None}


def test_connect_rate_is_zero_without_a_connect_time() -> None:
    assert report(connected=0, connect_s=0.0).connect_rate_per_s == 0.0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"units": -1}, "units must be an integer >= 0, not -1"),
        ({"lost": 1.5}, "lost must be an integer >= 0, not 1.5"),
        ({"delivered": True}, "delivered must be an integer >= 0, not True"),
        ({"cpu_s": math.nan}, "cpu_s must be a finite number >= 0, not nan"),
        ({"rss_mb": -2.0}, "rss_mb must be a finite number >= 0"),
        ({"shards": ("0/2", "0/2")}, "shards must be distinct"),
        ({"errors": {"x": -1}}, r"errors\['x'\] must be an integer >= 0"),
    ],
)
def test_the_report_refuses_impossible_figures_naming_them(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        report(**changes)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda d: d.update(format="other/9"), "report format must be 'vdtu-fleet-report/1'"),
        (lambda d: d.pop("published"), "'published' is missing; it must be an integer"),
        (lambda d: d.update(units="10"), "'units' must be an integer, not '10'"),
        (lambda d: d.update(cpu_s=None), "'cpu_s' must be a number, not None"),
        (lambda d: d.update(shards=["a", 1]), "'shards' must be a list of strings"),
        (lambda d: d.update(lost=-3), "lost must be an integer >= 0, not -3"),
        (lambda d: d["histograms"].pop("latency_ms"), "'latency_ms' is missing"),
        (lambda d: d["histograms"]["latency_ms"].update(count=9), "histogram count 9"),
        (lambda d: d.update(errors={"x": "many"}), r"errors\['x'\] must be an integer"),
    ],
)
def test_from_json_names_the_bad_field(mangle: Any, message: str) -> None:
    data = json.loads(json.dumps(report().to_json()))
    mangle(data)
    with pytest.raises(ReportFormatError, match=message):
        FleetReport.from_json(data)


def test_from_json_refuses_what_is_not_an_object() -> None:
    with pytest.raises(ReportFormatError, match="must be a JSON object"):
        FleetReport.from_json([1, 2])


def test_collect_takes_the_trackers_totals_and_copies_its_histograms() -> None:
    tracker = DeliveryTracker()
    for seq in range(3):
        tracker.published(1, seq)
    tracker.delivered(Uplink(unit=1, seq=0, sent_ms=0), 5.0)
    tracker.delivered(Uplink(unit=1, seq=1, sent_ms=10), 5.0)
    tracker.finish()
    tracker.delivered(Uplink(unit=1, seq=2, sent_ms=0), 9.0)
    rtt = LatencyHistogram()
    rtt.add(40.0)
    collected = shard_report(tracker, rtt, "1/4")
    assert (collected.published, collected.delivered, collected.lost) == (3, 2, 1)
    assert collected.errors == {"clock_skewed": 1, "delivered_late": 1}
    assert collected.shards == ("1/4",)
    rtt.add(1.0)
    tracker.latency.add(1.0)
    assert collected.command_rtt.count == 1
    assert collected.latency.count == 2


# -- merging shards ------------------------------------------------------------------------


def test_merging_two_shards_gives_the_percentiles_of_one_tracker_fed_everything() -> None:
    rng = random.Random(5)
    everything = DeliveryTracker()
    first = shard_tracker(range(0, 50), rng, everything)
    second = shard_tracker(range(50, 100), rng, everything)
    for tracker in (first, second, everything):
        tracker.finish()
    rtt_a, rtt_b, rtt_all = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    for index in range(40):
        value = rng.uniform(5, 500)
        (rtt_a if index % 3 else rtt_b).add(value)
        rtt_all.add(value)
    merged = merge([shard_report(first, rtt_a, "0/2"), shard_report(second, rtt_b, "1/2")])
    whole = shard_report(everything, rtt_all, "all")
    assert merged.latency == everything.latency
    assert merged.latency_ms == whole.latency_ms
    assert merged.command_rtt_ms == whole.command_rtt_ms
    assert merged.latency_ms.p99 is not None
    totals = everything.totals()
    assert (merged.published, merged.delivered, merged.lost) == (
        totals.published,
        totals.delivered,
        totals.lost,
    )
    assert (merged.duplicated, merged.reordered) == (totals.duplicated, totals.reordered)
    assert merged.lost > 0
    assert merged.duplicated > 0


def test_merged_json_round_trips_and_merges_again_exactly() -> None:
    one = report(shards=("0/3",))
    one.latency.add(2.0)
    two = report(shards=("1/3",))
    two.latency.add(7.0)
    three = report(shards=("2/3",))
    three.latency.add(9.0)
    first_two = FleetReport.from_json(json.loads(json.dumps(merge([one, two]).to_json())))
    assert merge([first_two, three]) == merge([one, two, three])


def test_merge_sums_counts_and_resources_and_keeps_the_longest_times() -> None:
    merged = merge(
        [
            report(shards=("0/2",), connect_s=2.0, duration_s=30.0, errors={"a": 1}),
            report(shards=("1/2",), connect_s=4.0, duration_s=31.5, errors={"a": 2, "b": 5}),
        ]
    )
    assert (merged.units, merged.connected, merged.published) == (20, 18, 200)
    assert (merged.rss_mb, merged.cpu_s) == (100.0, 3.0)
    assert (merged.connect_s, merged.duration_s) == (4.0, 31.5)
    assert merged.connect_rate_per_s == 4.5
    assert merged.shards == ("0/2", "1/2")
    assert merged.errors == {"a": 3, "b": 5}


def test_merge_keeps_differing_profiles_and_brokers_once_each() -> None:
    merged = merge(
        [
            report(shards=("a",), profile="xgc"),
            report(shards=("b",), profile="quec", broker="mqtt://10.0.0.2:1883"),
            report(shards=("c",), profile="xgc"),
        ]
    )
    assert merged.profile == "xgc,quec"
    assert merged.broker == "mqtt://127.0.0.1:1883,mqtt://10.0.0.2:1883"


def test_merge_refuses_the_same_shard_twice() -> None:
    with pytest.raises(ValueError, match="shards must be distinct"):
        merge([report(shards=("0/2",)), report(shards=("0/2",))])


def test_merge_refuses_nothing() -> None:
    with pytest.raises(ValueError, match="at least one report"):
        merge([])


def test_merge_refuses_histograms_of_different_layouts() -> None:
    odd = report(shards=("b",), latency=LatencyHistogram(growth=1.1))
    with pytest.raises(ValueError, match="cannot merge histogram layout"):
        merge([report(shards=("a",)), odd])


def test_merge_leaves_its_inputs_unchanged() -> None:
    one = report(shards=("a",))
    one.latency.add(1.0)
    before = one.to_json()
    merge([one, report(shards=("b",))])
    assert one.to_json() == before
