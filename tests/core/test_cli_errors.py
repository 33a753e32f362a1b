"""Bad command-line values are refused with exit code 2 and a message naming the value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--uplink-queue", "0"], "uplink_queue must be 1..1000000, not 0"),
        (["--outputs", "9"], "outputs and inputs must be 0..8, not 9"),
        (["--keepalive", "-1"], "keepalive_s must be 0 (off) or 10..65535, not -1"),
        (["--keepalive", "2"], "keepalive_s must be 0 (off) or 10..65535, not 2"),
        (["--broker", "http://x"], "mqtt://"),
        (["--serial-tcp", "usb=7000"], "--serial-tcp takes PORT=VALUE"),
        (["--ports", "uart,usb"], "unknown port 'usb'"),
        (["--units", "0"], "units must be 1..100000, not 0"),
    ],
)
def test_vdtu_up_refuses_bad_values(tmp_path: Path, args: list[str], message: str) -> None:
    """Each bad option gives exit 2 and a message with the value and what is allowed."""
    result = subprocess.run(
        [sys.executable, "-m", "vdtu.cli", "up", "--no-state", "--pty-dir", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_cloud_console_without_a_running_fleet_says_so(tmp_path: Path) -> None:
    """vdtu cloud with no vdtu up running (and no --broker) explains how to proceed."""
    result = subprocess.run(
        [sys.executable, "-m", "vdtu.cli", "cloud", "--pty-dir", str(tmp_path), "watch"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "no running 'vdtu up' found" in result.stderr


@pytest.mark.parametrize(
    ("args", "usage"),
    [
        (["up", "--foo"], "usage: vdtu up "),
        (["fleet", "--foo"], "usage: vdtu fleet "),
        (["term", "/dev/null", "--foo"], "usage: vdtu term "),
        (["broker", "--foo"], "usage: vdtu broker "),
        (["cloud", "watch", "--foo"], "usage: vdtu cloud watch "),
        (["cloud", "--foo", "watch"], "usage: vdtu cloud "),
    ],
)
def test_an_unknown_option_prints_the_subcommands_usage(args: list[str], usage: str) -> None:
    """``vdtu fleet --foo`` shows fleet's usage and names --foo, not the top-level usage."""
    result = subprocess.run(
        [sys.executable, "-m", "vdtu.cli", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(usage), result.stderr
    assert "unrecognized arguments: --foo" in result.stderr
    assert "Traceback" not in result.stderr
