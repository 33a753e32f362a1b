"""End to end: ``vdtu fleet --procs 2`` answers ``vdtu ctl`` for the whole fleet from its parent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.test_ctl_e2e import ctl

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]


def wait_for_api(directory: Path, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while not (directory / "up.json").exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run never named its control API"
        time.sleep(0.2)


def wait_until_connected(directory: Path, count: int) -> None:
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        rows = [json.loads(line) for line in ctl(directory, "units", "--json").stdout.splitlines()]
        if len(rows) == count and all(row["phase"] == "connected" for row in rows):
            return
        time.sleep(0.5)
    raise AssertionError(f"not every unit connected: {rows}")


def test_the_parent_of_shards_answers_for_every_unit(tmp_path: Path) -> None:
    control = tmp_path / "control"
    command = [
        sys.executable, "-m", "vdtu.cli", "fleet", "--units", "8", "--procs", "2",
        "--ramp", "50", "--duration", "40", "--grace", "2", "--no-progress",
        "--control-dir", str(control),
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        wait_for_api(control, process)
        wait_until_connected(control, 8)
        assert ctl(control, "events").returncode == 0  # a load test takes events from here on
        listed = ctl(control, "units", "--json")
        assert listed.returncode == 0, listed.stderr
        assert [json.loads(line)["unit"] for line in listed.stdout.splitlines()] == list(range(8))
        spanning = ctl(control, "fault", "2-5", "roaming", "--for", "30")
        assert spanning.stdout.strip() == "roaming for 30 s applied to 4 (2, 3, 4, 5)"
        faulted = [
            json.loads(line) for line in ctl(control, "units", "3-4", "--json").stdout.splitlines()
        ]
        assert [row["faults"] for row in faulted] == [["roaming"], ["roaming"]]
        assert json.loads(ctl(control, "show", "6").stdout)["unit"] == 6
        missing = ctl(control, "fault", "20", "roaming")
        assert (missing.returncode, missing.stderr.strip()) == (
            2,
            "vdtu: selector '20' matches no unit of any shard",
        )
        stopped = ctl(control, "fault", "all", "broker-stop", "--for", "2")
        assert stopped.stdout.strip() == "broker-stop for 2 s applied to 1 (fleet)"
        time.sleep(1)
        events = [json.loads(line) for line in ctl(control, "events", "--json").stdout.splitlines()]
        assert {"kind": "broker-stop", "for_s": 2.0} in [
            e["data"] for e in events if e["unit"] is None
        ]
        assert {e["unit"] for e in events if e["kind"] == "fault"} >= {2, 3, 4, 5}
        metrics = [e["data"] for e in events if e["kind"] == "metrics"]
        assert metrics, "the parent emits the whole fleet's figures every second"
        assert {m["units"] for m in metrics} == {8}  # never one shard's 4
        assert set(metrics[-1]["ack_ms_recent"]) == {"count", "p50", "p95", "p99", "max"}
        wait_until_connected(control, 8)
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the run ends early, with its report
        out, _err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    report = json.loads(out)
    assert (report["units"], report["lost"], report["delivered"]) == (8, 0, report["published"])
    assert report["reconnects"] >= 8, "every unit reconnected after the broker came back"
    assert not (control / "up.json").exists()
