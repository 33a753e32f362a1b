"""``vdtu fleet`` as a user runs it: reports, shards and processes, metrics, Ctrl-C, outages."""

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
from typing import Any

import pytest

from tests.conftest import require_tool
from vdtu.cloud.mosquitto import Mosquitto
from vdtu.load.options import Shard, build_options
from vdtu.load.runner import LoadRun

pytestmark = [pytest.mark.slow, pytest.mark.realtime]


def _fleet(*args: str, timeout_s: float = 120) -> tuple[int, dict[str, Any], str]:
    done = subprocess.run(
        [sys.executable, "-m", "vdtu.cli", "fleet", "--no-progress", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    return done.returncode, json.loads(done.stdout) if done.stdout else {}, done.stderr


@pytest.mark.timeout(150)
def test_two_processes_merge_into_one_report_with_nothing_lost(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    status, summary, err = _fleet(
        "--units", "40", "--procs", "2", "--profile", "mix", "--duration", "22",
        "--interval", "3", "--ramp", "40", "--grace", "5", "--report", str(report),
    )  # fmt: skip
    assert status == 0, err
    assert summary["shards"] == ["0/2", "1/2"]
    assert (summary["units"], summary["connected"]) == (40, 40)
    assert summary["published"] > 40
    assert summary["delivered"] == summary["published"]
    assert (summary["lost"], summary["duplicated"], summary["unexpected"]) == (0, 0, 0)
    assert summary["latency_ms"]["p99"] < 1000
    written = json.loads(report.read_text())
    assert "histograms" in written
    # each process reads its own units' uplink topics only: none of the other shard's
    assert "foreign_uplinks" not in written["errors"]


def test_a_shard_runs_only_its_block_of_the_fleet(tmp_path: Path) -> None:
    status, summary, err = _fleet(
        "--units", "20", "--shard", "1/2", "--duration", "16", "--interval", "4",
        "--grace", "3", "--probe-rate", "0",
    )  # fmt: skip
    assert status == 0, err
    assert summary["shards"] == ["1/2"]
    assert summary["units"] == 10
    assert summary["command_rtt_ms"]["p50"] is None


def test_shards_cover_the_fleet_without_overlap() -> None:
    blocks = [Shard(index=i, count=3).block(100) for i in range(3)]
    assert [list(b) for b in blocks] == [list(range(33)), list(range(33, 66)), list(range(66, 100))]


@pytest.mark.timeout(150)
def test_metrics_are_served_while_running_and_ctrl_c_still_writes_the_report(
    tmp_path: Path,
) -> None:
    report = tmp_path / "report.json"
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "vdtu.cli", "fleet", "--no-progress", "--units", "8",
         "--duration", "300", "--interval", "2", "--metrics-port", str(port),
         "--report", str(report), "--profile", "quec"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        metrics = ""
        deadline = time.monotonic() + 40
        while "vdtu_fleet_connected 8" not in metrics:
            assert time.monotonic() < deadline, metrics
            time.sleep(0.5)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as reply:
                    metrics = reply.read().decode()
            except OSError:
                continue
        assert "# TYPE vdtu_fleet_published_total counter" in metrics
        assert 'vdtu_fleet_latency_seconds{quantile="0.99"}' in metrics
        time.sleep(3)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    written = json.loads(report.read_text())
    assert written["connected"] == 8
    assert written["published"] > 0
    assert written["lost"] == 0
    assert written["duration_s"] < 100
    assert json.loads(out)["delivered"] == written["delivered"]


@pytest.mark.timeout(150)
def test_a_broker_outage_makes_units_reconnect_and_nothing_is_lost() -> None:
    require_tool("mosquitto")
    with Mosquitto(persistence=True) as broker:
        options = build_options(
            {
                "units": 30,
                "profile": "mix",
                "broker": str(broker.url),
                "duration": 35,
                "interval": 2,
                "grace": 15,
                "progress": False,
            }
        )

        async def main() -> dict[str, Any]:
            run = LoadRun(asyncio.get_running_loop(), options, sys.stderr)
            stop = asyncio.Event()
            task = asyncio.create_task(run.run(stop))
            for _ in range(80):
                if run.report().connected == 30:
                    break
                await asyncio.sleep(0.5)
            await asyncio.sleep(3)
            broker.stop()
            await asyncio.sleep(5)
            broker.start()
            return (await task).to_json()

        summary = asyncio.run(main())
    assert summary["connected"] == 30
    assert summary["reconnects"] >= 30
    assert summary["lost"] == 0, summary
    assert summary["delivered"] == summary["published"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.timeout(120)
def test_a_broker_that_refuses_the_units_shows_in_the_report() -> None:
    require_tool("mosquitto")
    with Mosquitto(users={"backend": "secret"}) as broker:
        status, summary, err = _fleet(
            "--units", "10", "--broker", str(broker.url), "--duration", "20", "--grace", "1",
            "--probe-rate", "0", "--verify-login", "backend:secret",
        )  # fmt: skip
    assert status == 1, err
    assert summary["connected"] == 0
    assert summary["connect_failures"] >= 10
    assert summary["published"] == 0


def test_a_verifier_the_broker_refuses_is_a_clear_error() -> None:
    require_tool("mosquitto")
    with Mosquitto(users={"backend": "secret"}) as broker:
        status, _summary, err = _fleet(
            "--units", "2", "--broker", str(broker.url), "--duration", "5",
            "--verify-login", "backend:wrong",
        )  # fmt: skip
    assert status == 2
    assert "verifying subscriber cannot connect" in err
    assert "Traceback" not in err
