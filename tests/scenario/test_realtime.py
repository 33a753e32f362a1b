"""The same scenario file on the wall clock: PTYs a user's host code can open, a real broker
(the embedded one, and mosquitto), the same steps and expectations as in virtual time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import require_tool
from vdtu.cloud.mosquitto import Mosquitto
from vdtu.scenario.load import parse_scenario
from vdtu.scenario.run import ScenarioRun

pytestmark = [pytest.mark.realtime, pytest.mark.slow, pytest.mark.pty, pytest.mark.timeout(120)]

SHORT = """\
name: real-time smoke
seed: 1
duration: 30s
units:
  - name: x
    count: 2
    host: {uplink_every: 5s}
  - name: q
    count: 1
    profile: quec
    host: {uplink_every: 5s}
  - name: dev
    count: 1
    host: external
steps:
  - at: 0s
    wait: {state: connected, timeout: 25s}
  - after: 1s
    select: 0
    fault: link-reset
  - after: 0s
    wait: {select: "0", serial: "GET_DTU_STATE#\\\\d+#0#mqtt-connected", timeout: 15s}
  - after: 1s
    downlink: '{"valve": "open"}'
    select: 0-1
expect:
  - name: nothing lost
    uplinks: {lost: 0}
  - state: {phase: connected}
  - serial: {select: 0-1, sequence: ["DATA_PACK#\\\\d+#0#valve:open"]}
  - reconnect_s: {select: "0", count: 1, max: {max: 15}}
"""


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "short.yaml"
    path.write_text(SHORT)
    return path


def run_realtime(
    path: Path, tmp_path: Path, *extra: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    report = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "vdtu.cli", "scenario", "run", str(path), "--realtime",
         "--pty-dir", str(tmp_path / "pty"), "--report", str(report), "--quiet", *extra],
        capture_output=True, text=True, timeout=110, check=False,
    )  # fmt: skip
    return result, json.loads(report.read_text()) if report.exists() else {}


def test_a_scenario_runs_on_the_wall_clock_with_ptys_and_the_embedded_broker(
    scenario_file: Path, tmp_path: Path
) -> None:
    result, report = run_realtime(scenario_file, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert report["realtime"] is True
    assert 30 <= float(report["sim_s"]) <= 40  # type: ignore[arg-type]
    lines = result.stderr.splitlines()
    assert lines[3].startswith("dtu3 xgc ")  # the external host's unit and its PTY
    assert lines[3].endswith(str(tmp_path / "pty" / "dtu3" / "uart"))
    assert lines[4].startswith("control API http://127.0.0.1:")
    assert lines[4].endswith(f"(in {tmp_path / 'pty' / 'up.json'})")


def test_the_same_file_runs_against_mosquitto(scenario_file: Path, tmp_path: Path) -> None:
    require_tool("mosquitto")
    with Mosquitto() as broker:
        result, report = run_realtime(
            scenario_file, tmp_path, "--broker", f"mqtt://127.0.0.1:{broker.port}"
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert report["uplinks"]["lost"] == 0  # type: ignore[index]


def test_the_same_file_passes_in_virtual_time() -> None:
    report = ScenarioRun(parse_scenario(SHORT, "short.yaml")).run()
    assert report["passed"], report["expectations"]


def test_realtime_options_need_realtime(scenario_file: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vdtu.cli", "scenario", "run", str(scenario_file), "--broker", "mqtt://x"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == "vdtu: --broker and --pty-dir go with --realtime"
    result = subprocess.run(
        [sys.executable, "-m", "vdtu.cli", "scenario", "run", str(scenario_file), "--stay"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "vdtu: --control-port and --stay go with --realtime (a virtual-time run serves no "
        "control API: docs/scenarios.md)"
    )


def test_with_stay_the_api_serves_the_finished_run_until_ctrl_c(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text("name: tiny\nduration: 2s\nunits: [{name: a, count: 1}]\nsteps: []\n"
                    "expect: [{state: {phase: 'off', select: '0'}}]\n")  # fmt: skip
    pty = tmp_path / "pty"
    process = subprocess.Popen(
        [sys.executable, "-m", "vdtu.cli", "scenario", "run", str(path), "--realtime",
         "--pty-dir", str(pty), "--stay", "--grace", "0.5", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        lines = [process.stderr.readline() for _ in range(3)]
        assert lines[1].startswith("control API http://127.0.0.1:"), lines
        assert lines[2] == "the run is over (failed); the units and the API stay up until Ctrl-C\n"
        control = json.loads((pty / "up.json").read_text())["control"]
        request = urllib.request.Request(
            control["url"] + "/v1/scenario", headers={"Authorization": f"Bearer {control['token']}"}
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            view = json.loads(reply.read())
        assert (view["name"], view["phase"], view["passed"]) == ("tiny", "finished", False)
        assert view["expectations"][0]["status"] == "fail"
        os.killpg(process.pid, signal.SIGINT)
        out, _err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 1
    assert out.startswith("tiny: FAILED  (1 units")
    assert not (pty / "up.json").exists()
