"""Shard reports on the broker (``vdtu/load/runs.py``): the shard index from the environment,
what the collector takes and skips, and publishing and collecting through a real mosquitto
with the access rule docs/cluster.md gives."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import vdtu.load.command
from tests.conftest import require_tool
from vdtu.cloud.broker_url import BrokerUrl, parse_broker_url
from vdtu.cloud.mosquitto import Mosquitto
from vdtu.errors import ConfigError
from vdtu.histogram import LatencyHistogram
from vdtu.load.command import CRASHED_STATUS, STOPPED_STATUS, run_load
from vdtu.load.options import LoadOptions, Shard, build_options
from vdtu.load.report import FleetReport
from vdtu.load.runs import (
    Collection,
    CollectTimeoutError,
    ReportNotPublishedError,
    collect_reports,
    publish_report,
    report_payload,
    report_topic,
)

FLEET_ACL = """\
user vdtu-fleet
topic readwrite xgc/#
topic readwrite quec/#
topic readwrite vdtu/runs/#
user vdtu-collect
topic read vdtu/runs/#
"""
"""The access rule docs/cluster.md asks of a user's broker (the fleet's login, the collector's)."""
LOGINS = {"vdtu-fleet": "fleet-pw", "vdtu-collect": "collect-pw", "device": "device-pw"}


def _report(index: int, count: int, *, units: int = 10, delivered: int = 50) -> FleetReport:
    latency = LatencyHistogram()
    for ms in range(1, delivered + 1):
        latency.add(float(ms))
    return FleetReport(
        units=units, connected=units, connect_failures=0, connect_s=5.0, published=delivered,
        delivered=delivered, lost=0, pending=0, duplicated=0, reordered=0, unexpected=0,
        reconnects=0, rss_mb=50.0, cpu_s=2.0, duration_s=20.0, shards=(f"{index}/{count}",),
        profile="xgc", broker="mqtt://127.0.0.1:1883", latency=latency,
    )  # fmt: skip


# -- the shard index from the environment ---------------------------------------------------


def test_a_shard_index_is_read_from_the_variable_the_option_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "2")
    assert Shard.parse("env:JOB_COMPLETION_INDEX/4") == Shard(index=2, count=4)
    options = build_options({"shard": "env:JOB_COMPLETION_INDEX/4", "broker": "mqtt://h:1"})
    assert str(options.shard) == "2/4"  # the report's shard id is the resolved one


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "JOB_COMPLETION_INDEX is not set"),
        ("x", "JOB_COMPLETION_INDEX='x' is not a shard index \\(0..3\\)"),
        ("4", "JOB_COMPLETION_INDEX=4 is out of range for 4 shards \\(0..3\\)"),
        ("-1", "is not a shard index"),
    ],
)
def test_a_bad_shard_index_in_the_environment_is_named(
    monkeypatch: pytest.MonkeyPatch, value: str | None, message: str
) -> None:
    if value is None:
        monkeypatch.delenv("JOB_COMPLETION_INDEX", raising=False)
    else:
        monkeypatch.setenv("JOB_COMPLETION_INDEX", value)
    with pytest.raises(ConfigError, match=message):
        Shard.parse("env:JOB_COMPLETION_INDEX/4")


def test_a_run_id_needs_a_broker_that_outlives_the_run_and_a_topic_safe_name() -> None:
    with pytest.raises(ConfigError, match="run_id needs --broker"):
        LoadOptions(run_id="r1")
    for bad in ("a/b", "run+", "#", "", "-x", "x" * 65):
        with pytest.raises(ConfigError, match="run_id must be"):
            LoadOptions(run_id=bad, broker="mqtt://127.0.0.1:1883")
    assert LoadOptions(run_id="0f3c-uid.1_a", broker="mqtt://h:1").run_id == "0f3c-uid.1_a"
    with pytest.raises(ConfigError, match="metrics_host"):
        LoadOptions(metrics_host=" ")


def test_the_cli_refuses_a_missing_index_variable_with_one_line_and_status_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "vdtu.cli", "fleet", "--shard", "env:VDTU_NO_SUCH_VAR/3"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "vdtu: shard env:VDTU_NO_SUCH_VAR/3: the environment variable VDTU_NO_SUCH_VAR is not "
        "set (a Kubernetes Indexed Job sets JOB_COMPLETION_INDEX in each pod; elsewhere give "
        "--shard i/n)"
    ]


# -- what the collector takes -----------------------------------------------------------------


def test_the_collector_takes_each_index_once_and_learns_the_count_from_the_reports() -> None:
    collection = Collection(run_id="r1")
    assert collection.missing == []
    assert not collection.complete
    line = collection.take(report_topic("r1", 1), report_payload("r1", _report(1, 3)))
    assert line == "shard 1/3 in (1 of 3)"
    assert collection.missing == [0, 2]
    # a restarted shard publishes again on its own topic: it replaces, never adds
    collection.take(report_topic("r1", 1), report_payload("r1", _report(1, 3, delivered=70)))
    collection.take(report_topic("r1", 0), report_payload("r1", _report(0, 3)))
    collection.take(report_topic("r1", 2), report_payload("r1", _report(2, 3)))
    assert collection.complete
    merged = collection.merged()
    assert merged.shards == ("0/3", "1/3", "2/3")
    assert (merged.units, merged.delivered) == (30, 50 + 70 + 50)
    assert merged.latency.count == 170


def test_the_collector_skips_what_is_not_this_runs_report_of_that_index() -> None:
    collection = Collection(run_id="r1")
    topic = report_topic("r1", 0)
    assert "not a fleet report" in str(collection.take(topic, b"{not json"))
    assert "not a fleet report" in str(collection.take(topic, b'{"format": "other"}'))
    other_run = report_payload("r0", _report(0, 2))
    assert "its run_id is 'r0', not 'r1'" in str(collection.take(topic, other_run))
    wrong_index = report_payload("r1", _report(1, 2))
    assert "holds the report of shard 1/2" in str(collection.take(topic, wrong_index))
    assert collection.reports == {}
    assert collection.count is None
    collection.take(topic, report_payload("r1", _report(0, 2)))
    assert collection.take(topic, b"") is None  # a cleared retained report
    assert collection.reports == {}


def test_reports_that_disagree_on_the_shard_count_are_two_runs_sharing_an_id() -> None:
    collection = Collection(run_id="r1")
    collection.take(report_topic("r1", 0), report_payload("r1", _report(0, 2)))
    with pytest.raises(ConfigError, match="two runs share the run id"):
        collection.take(report_topic("r1", 1), report_payload("r1", _report(1, 3)))
    told = Collection(run_id="r1", count=4)
    with pytest.raises(ConfigError, match="--shards says 4 shards"):
        told.take(report_topic("r1", 0), report_payload("r1", _report(0, 2)))


# -- through a real broker ---------------------------------------------------------------------


def _url(broker: Mosquitto, user: str) -> BrokerUrl:
    return parse_broker_url(f"mqtt://{user}:{LOGINS[user]}@127.0.0.1:{broker.port}")


@pytest.mark.timeout(60)
def test_reports_published_before_the_collector_came_are_collected_and_replaced() -> None:
    require_tool("mosquitto")
    with Mosquitto(users=LOGINS, acl=FLEET_ACL) as broker:
        fleet, collector = _url(broker, "vdtu-fleet"), _url(broker, "vdtu-collect")

        async def scenario() -> Collection:
            assert await publish_report(fleet, "r7", _report(0, 2)) == "vdtu/runs/r7/reports/0"
            await publish_report(fleet, "r7", _report(1, 2, delivered=10))  # a first attempt
            await publish_report(fleet, "r7", _report(1, 2, delivered=40))  # restarted: replaces
            return await collect_reports(collector, "r7", timeout_s=10)

        collection = asyncio.run(scenario())
    assert collection.count == 2
    assert collection.merged().delivered == 50 + 40


@pytest.mark.timeout(60)
def test_a_collector_names_the_missing_shards_when_it_times_out() -> None:
    require_tool("mosquitto")
    with Mosquitto(users=LOGINS, acl=FLEET_ACL) as broker:
        fleet, collector = _url(broker, "vdtu-fleet"), _url(broker, "vdtu-collect")

        async def scenario() -> None:
            await publish_report(fleet, "r8", _report(1, 4))
            await collect_reports(collector, "r8", timeout_s=1.5)

        with pytest.raises(CollectTimeoutError) as caught:
            asyncio.run(scenario())
    assert str(caught.value) == "run r8: no report from shards 0, 2, 3 of 4 within 1.5 s"
    assert list(caught.value.collection.reports) == [1]


@pytest.mark.timeout(60)
def test_a_login_the_access_rule_keeps_off_the_run_topics_cannot_publish_a_report() -> None:
    """mosquitto acknowledges a publish its ACL drops; the shard still finds out."""
    require_tool("mosquitto")
    with Mosquitto(users=LOGINS, acl=FLEET_ACL) as broker:
        device = _url(broker, "device")
        with pytest.raises(ReportNotPublishedError, match="access rule let this login"):
            asyncio.run(publish_report(device, "r9", _report(0, 1), timeout_s=2))


def test_the_collect_command_gives_one_line_and_status_2_for_a_broker_not_there(
    tmp_path: Path,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = subprocess.run(
        [sys.executable, "-m", "vdtu.cli", "fleet", "collect", "--broker",
         f"mqtt://127.0.0.1:{port}", "--run-id", "r1", "--timeout", "2"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"vdtu: cannot connect to the broker mqtt://127.0.0.1:{port}: connection refused"
    )
    assert json.loads(done.stdout or "null") is None


def test_a_run_that_crashes_exits_4_not_1_which_says_the_run_failed_its_checks(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def crash(_options: LoadOptions) -> FleetReport:
        raise RuntimeError("a bug")

    monkeypatch.setattr(vdtu.load.command, "_run_here", crash)
    options = LoadOptions(units=2, broker="mqtt://127.0.0.1:1", run_id="r1")
    assert asyncio.run(run_load(options)) == CRASHED_STATUS == 4
    err = capsys.readouterr().err
    assert "RuntimeError: a bug" in err
    assert err.rstrip().endswith(
        "vdtu fleet: crashed (the traceback above is a bug in vdtu); no report (exit status 4)"
    )


@pytest.mark.timeout(90)
def test_a_shard_stopped_by_a_signal_publishes_a_report_saying_so_and_does_not_exit_0(
    tmp_path: Path,
) -> None:
    """An evicted pod gets SIGTERM: its short run must not count as the shard done."""
    require_tool("mosquitto")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with Mosquitto(users=LOGINS, acl=FLEET_ACL) as broker:
        fleet = f"mqtt://vdtu-fleet:{LOGINS['vdtu-fleet']}@127.0.0.1:{broker.port}"
        shard = subprocess.Popen(
            [sys.executable, "-m", "vdtu.cli", "fleet", "--no-progress", "--units", "4",
             "--broker", fleet, "--shard", "0/1", "--run-id", "r-stop", "--duration", "60",
             "--grace", "1", "--metrics-port", str(port), "--control-dir", str(tmp_path)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while True:  # /metrics answers once the run is under way (and handles signals)
                assert time.monotonic() < deadline
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.2)
            shard.send_signal(signal.SIGTERM)
            _out, err = shard.communicate(timeout=60)
        finally:
            if shard.poll() is None:
                shard.kill()
        assert shard.returncode == STOPPED_STATUS == 5, err
        assert err.rstrip().endswith(
            "vdtu fleet: shard 0/1 was stopped before its end (exit status 5)"
        )
        collected = subprocess.run(
            [sys.executable, "-m", "vdtu.cli", "fleet", "collect", "--broker",
             f"mqtt://vdtu-collect:{LOGINS['vdtu-collect']}@127.0.0.1:{broker.port}",
             "--run-id", "r-stop", "--timeout", "10"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert collected.returncode == 1
    assert json.loads(collected.stdout)["errors"]["stopped_early"] == 1
    assert "1 of 1 shards were stopped before their end" in collected.stderr.splitlines()[-1]
