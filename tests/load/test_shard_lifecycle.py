"""The life of a sharded run as a Kubernetes Indexed Job lives it, on this machine.

Three ``vdtu fleet`` processes share one command line and take their shard index from
``JOB_COMPLETION_INDEX``, against one mosquitto whose access rule is the one
docs/cluster.md gives. Shard 1 is killed (SIGKILL, as a lost node or the OOM killer
would) once it has published uplinks, and started again with the same index, as the Job
controller does, and runs the same units (the same IMEIs and ICCIDs, asked of each
attempt's control API). ``vdtu fleet collect``, started while the shards run, must print one
merged report: every unit counted once (the killed attempt's figures gone, the restart's
in), nothing lost, and the numbers equal to the sum of the three reports that ended.
"""

from __future__ import annotations

import json
import os
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
from tests.load.test_runs import FLEET_ACL, LOGINS
from vdtu.cloud.mosquitto import Mosquitto

pytestmark = [pytest.mark.slow, pytest.mark.realtime]

UNITS = 24
SHARDS = 3
RUN_ID = "lifecycle-1"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _shard(broker: str, index: int, control: Path, metrics_port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vdtu.cli", "fleet", "--no-progress",
         "--units", str(UNITS), "--profile", "mix", "--broker", broker,
         "--shard", f"env:JOB_COMPLETION_INDEX/{SHARDS}", "--run-id", RUN_ID,
         "--duration", "15", "--interval", "1", "--ramp", "50", "--grace", "3",
         "--probe-rate", "2", "--metrics-port", str(metrics_port),
         "--control-dir", str(control)],
        env={**os.environ, "JOB_COMPLETION_INDEX": str(index)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def _published(metrics_port: int) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2) as got:
            text = got.read().decode()
    except OSError:
        return 0.0
    for line in text.splitlines():
        if line.startswith("vdtu_fleet_published_total "):
            return float(line.split()[1])
    return 0.0


def _identities(control: Path, process: subprocess.Popen[str]) -> list[tuple[int, str, str]]:
    """The shard's units (fleet id, IMEI, ICCID) from its control API (named in up.json),
    once all of them are powered on."""
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the shard's units never all appeared"
        try:
            entry = json.loads((control / "up.json").read_text())["control"]
            request = urllib.request.Request(
                f"{entry['url']}/v1/units", headers={"Authorization": f"Bearer {entry['token']}"}
            )
            with urllib.request.urlopen(request, timeout=5) as got:
                rows = json.loads(got.read())["units"]
        except (OSError, ValueError):
            rows = []
        if len(rows) == UNITS // SHARDS:
            return [(row["unit"], row["imei"], row["iccid"]) for row in rows]
        time.sleep(0.2)


def _ended(process: subprocess.Popen[str]) -> tuple[int, dict[str, Any], str]:
    out, err = process.communicate(timeout=60)
    return process.returncode, json.loads(out) if out.strip() else {}, err


@pytest.mark.timeout(120)
def test_a_killed_shard_restarted_with_its_index_is_counted_once_in_the_collected_report(
    tmp_path: Path,
) -> None:
    require_tool("mosquitto")
    with Mosquitto(users=LOGINS, acl=FLEET_ACL) as broker:
        fleet_url = f"mqtt://vdtu-fleet:{LOGINS['vdtu-fleet']}@127.0.0.1:{broker.port}"
        collect_url = f"mqtt://vdtu-collect:{LOGINS['vdtu-collect']}@127.0.0.1:{broker.port}"
        merged_file = tmp_path / "merged.json"
        collector = subprocess.Popen(
            [sys.executable, "-m", "vdtu.cli", "fleet", "collect", "--broker", collect_url,
             "--run-id", RUN_ID, "--timeout", "90", "--report", str(merged_file)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        ports = [_free_port() for _ in range(SHARDS + 1)]
        shards = [_shard(fleet_url, i, tmp_path / f"c{i}", ports[i]) for i in range(SHARDS)]
        restarted = None
        try:
            deadline = time.monotonic() + 40
            while _published(ports[1]) < 3:  # mid-run: its units are up and sending
                assert time.monotonic() < deadline, "shard 1 never published"
                assert shards[1].poll() is None, shards[1].communicate()
                time.sleep(0.3)
            before = _identities(tmp_path / "c1", shards[1])
            shards[1].send_signal(signal.SIGKILL)
            killed_status, killed_report, _ = _ended(shards[1])
            restarted = _shard(fleet_url, 1, tmp_path / "c1-again", ports[SHARDS])
            after = _identities(tmp_path / "c1-again", restarted)
            ended = [_ended(shards[0]), _ended(restarted), _ended(shards[2])]
            out, err = collector.communicate(timeout=90)
        finally:
            for process in (*shards, restarted, collector):
                if process is not None and process.poll() is None:
                    process.kill()
    assert (killed_status, killed_report) == (-signal.SIGKILL, {})
    # the same index, the same units: fleet ids 8..15 with the same IMEIs and ICCIDs
    assert [unit for unit, _imei, _iccid in after] == list(range(8, 16))
    assert after == before
    for index, (status, report, shard_err) in enumerate(ended):
        assert status == 0, shard_err
        assert report["shards"] == [f"{index}/{SHARDS}"]
        assert f"report published on vdtu/runs/{RUN_ID}/reports/{index}" in shard_err
    assert collector.returncode == 0, err
    merged = json.loads(out)
    assert merged["shards"] == ["0/3", "1/3", "2/3"]
    assert (merged["units"], merged["connected"]) == (UNITS, UNITS)
    for key in ("units", "published", "delivered", "connected", "reconnects"):
        assert merged[key] == sum(report[key] for _s, report, _e in ended), key
    assert merged["published"] >= UNITS  # every unit sent
    assert merged["delivered"] == merged["published"]
    assert (merged["lost"], merged["duplicated"], merged["unexpected"]) == (0, 0, 0)
    assert "never_connected" not in merged["errors"]
    written = json.loads(merged_file.read_text())
    assert written["histograms"]["latency_ms"]  # the file keeps what merges exactly
    assert written["histograms"]["latency_ms"]["count"] == merged["delivered"]
