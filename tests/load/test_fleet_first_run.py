"""``vdtu fleet`` as a first-time user runs it: the plan up front, warnings before a run that
cannot succeed, refusals of what the machine cannot hold, and a reason for every failure."""

from __future__ import annotations

import json
import resource
import socket
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import require_tool
from vdtu.cloud.mosquitto import Mosquitto

pytestmark = pytest.mark.realtime


def _fleet(*args: str, nofile: int | None = None) -> tuple[int, dict[str, Any], str]:
    def limit() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    done = subprocess.run(
        [sys.executable, "-m", "vdtu.cli", "fleet", "--no-progress", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=limit,
    )
    return done.returncode, json.loads(done.stdout) if done.stdout else {}, done.stderr


def test_a_run_too_short_for_registration_is_warned_about_and_its_failure_explained() -> None:
    status, summary, err = _fleet(
        "--units", "20", "--ramp", "100", "--duration", "2", "--grace", "0", "--probe-rate", "0"
    )
    lines = err.strip().splitlines()
    assert lines[0] == (
        "vdtu fleet: 20 units at 100 per second: a ramp of 0.2 s, then 2 s of sending "
        "and up to 0 s of grace"
    ), err
    assert lines[1].startswith("vdtu fleet: warning: --duration 2 s is shorter than the 15 s")
    assert "4-12 s" in lines[1]
    assert status == 1
    assert summary["connected"] < 20
    never = summary["errors"]["never_connected"]
    assert never == 20 - summary["connected"]
    assert lines[-1].startswith(f"vdtu fleet: {never} of 20 units never connected"), err
    assert "--duration 15" in lines[-1]
    assert "Traceback" not in err


def test_a_fleet_beyond_the_file_descriptor_limit_is_refused_naming_the_limit_and_procs() -> None:
    status, summary, err = _fleet("--units", "400", "--duration", "5", nofile=256)
    assert status == 2
    assert summary == {}
    refusals = [line for line in err.splitlines() if line.startswith("vdtu: ")]
    assert len(refusals) == 1, err
    assert err.strip().splitlines()[-1] == refusals[0]
    assert "--units 400" in refusals[0]
    assert "limit of 256 open files" in refusals[0]
    assert "--procs" in refusals[0]


def test_a_fleet_that_fits_when_split_is_refused_only_for_the_embedded_broker() -> None:
    status, _summary, err = _fleet("--units", "400", "--procs", "4", "--duration", "5", nofile=256)
    assert status == 2
    assert "embedded broker" in err
    assert "--broker" in err


def test_a_large_fleet_prints_its_ramp_time_before_it_starts() -> None:
    status, _summary, err = _fleet("--units", "100000", "--duration", "5", nofile=256)
    assert status == 2
    assert err.splitlines()[0] == (
        "vdtu fleet: 100000 units at 100 per second: a ramp of 1000 s, then 5 s of sending "
        "and up to 10 s of grace"
    )


def test_a_broker_that_is_not_there_is_named_without_the_login_hint() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    status, _summary, err = _fleet("--units", "2", "--broker", f"mqtt://127.0.0.1:{port}")
    assert status == 2
    assert "verifying subscriber cannot connect" in err
    assert "connection refused" in err
    assert "--verify-login" not in err


def test_a_verifier_login_the_broker_refuses_gets_the_login_hint() -> None:
    require_tool("mosquitto")
    with Mosquitto(users={"backend": "secret"}) as broker:
        status, _summary, err = _fleet(
            "--units", "2", "--broker", str(broker.url), "--verify-login", "backend:wrong"
        )
    assert status == 2
    assert "verifying subscriber cannot connect" in err
    assert "--verify-login USER:PASS" in err


def test_a_fleet_that_fits_once_the_broker_moves_to_the_parent_is_told_procs_2() -> None:
    """150 units and the embedded broker's 150 ends overflow 256 files in one process; in
    two, the parent holds the broker and each shard 75 units: the hint says --procs 2."""
    status, _summary, err = _fleet("--units", "150", "--duration", "5", nofile=256)
    assert status == 2
    assert err.strip().splitlines()[-1].endswith("or split the fleet with --procs 2"), err
