"""Bad command-line values are refused with exit code 2 and a message naming the value."""

from __future__ import annotations

import json
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
        (["--tag", "a b"], "tag 'a b' must be 1..64 letters, digits or '-_.:' characters"),
        (["--control-port", "70000"], "control port must be 0..65535 (0: any free one), not 70000"),
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


QUEC_IMEI, XGC_IMEI = "867435059800771", "867435059800763"


def _cloud(pty_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vdtu.cli", "cloud", "--pty-dir", str(pty_dir), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.fixture
def fleet_dir(tmp_path: Path) -> Path:
    """An up.json as a running ``vdtu up --profile mix --units 2`` writes it (its broker is
    not running: each refusal comes before the console connects)."""
    document = {
        "broker": {"scheme": "mqtt", "host": "127.0.0.1", "port": 9, "ca_file": None},
        "username": "vdtu-console",
        "password": "x" * 32,
        "project": "1000a18db9b17958165c",
        "units": {XGC_IMEI: "xgc", QUEC_IMEI: "quec"},
    }
    (tmp_path / "up.json").write_text(json.dumps(document))
    return tmp_path


@pytest.mark.parametrize(
    "args",
    [
        ["send", "notanimei", '{"a": 1}'],
        ["send", "867435059800789", '{"a": 1}'],
        ["cmd", "notanimei", "0"],
        ["config", "notanimei", "a=1"],
        ["ota", "notanimei", "--url", "http://h/f.bin", "--version", "1.1"],
        ["watch", "notanimei", "--timeout", "1"],
    ],
)
def test_cloud_refuses_an_imei_the_running_fleet_does_not_have(
    fleet_dir: Path, args: list[str]
) -> None:
    result = _cloud(fleet_dir, *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"IMEI {args[1]!r} is not a unit of the running vdtu up" in lines[0]
    assert f"{XGC_IMEI} (xgc), {QUEC_IMEI} (quec)" in lines[0]


def test_cloud_cmd_refuses_an_xgc_unit(fleet_dir: Path) -> None:
    result = _cloud(fleet_dir, "cmd", XGC_IMEI, "0")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"vdtu: {XGC_IMEI} is an XGC unit; 'cmd' needs a QuecPython unit "
        "(an XGC unit takes 'send', 'config' and 'ota')"
    )


@pytest.mark.parametrize(
    "args", [["config", QUEC_IMEI, "a=1"], ["ota", QUEC_IMEI, "--url", "u", "--version", "1"]]
)
def test_cloud_config_and_ota_refuse_a_quec_unit(fleet_dir: Path, args: list[str]) -> None:
    result = _cloud(fleet_dir, *args)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"vdtu: {QUEC_IMEI} is a QuecPython unit; '{args[0]}' needs an XGC unit "
        "(a QuecPython unit takes 'send' and 'cmd': settings are codes 51..63)"
    )


def test_cloud_send_quec_flag_refuses_an_xgc_unit(fleet_dir: Path) -> None:
    result = _cloud(fleet_dir, "send", "--quec", XGC_IMEI, '{"a": 1}')
    assert result.returncode == 2
    assert "is an XGC unit; '--quec' needs a QuecPython unit" in result.stderr


@pytest.mark.parametrize(
    "options",
    [
        ["--pty-dir", "{dir}"],
        ["--broker", "mqtt://127.0.0.1:9", "--project", "p", "--pty-dir", "{dir}"],
        ["--ca-file", "/nonexistent.pem", "--pty-dir", "{dir}"],
    ],
)
def test_cloud_options_work_after_the_subcommand(fleet_dir: Path, options: list[str]) -> None:
    """``vdtu cloud send IMEI JSON --broker URL``, the way users type it: the options are
    the console's, read after the subcommand as before it."""
    given = [option.replace("{dir}", str(fleet_dir)) for option in options]
    result = subprocess.run(
        [sys.executable, "-m", "vdtu.cli", "cloud", "send", "notanimei", "{}", *given],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "usage:" not in result.stderr
    assert result.stderr.startswith("vdtu: IMEI 'notanimei' is not a unit of the running vdtu up")
