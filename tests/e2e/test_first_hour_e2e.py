"""End to end: what a new user trips over in the first hour, as they would run it.

Two ``vdtu up`` on one ``--pty-dir``, a ``--pty-dir`` left by a killed run, ``vdtu term`` fed
from a file or ``/dev/null``, the host pipe moved to RS-485 under ``vdtu term``, closing
the terminal (SIGHUP), a ``--serial-tcp`` port someone else holds, and the table's TCP ports.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.e2e.running import Host, link, two_free_ports, vdtu_up, wait_until_listening

pytestmark = pytest.mark.pty

VDTU = (sys.executable, "-m", "vdtu.cli")


def _run(
    *args: str, stdin: int | None = None, timeout_s: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VDTU, *args],
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


# -- one --pty-dir, one vdtu up ------------------------------------------------------------


def test_a_second_vdtu_up_on_a_pty_dir_in_use_is_refused_and_the_first_keeps_its_links(
    tmp_path: Path,
) -> None:
    with vdtu_up("--pty-dir", str(tmp_path), "--no-state") as first:
        uart = link(first, "uart")
        discovery = (tmp_path / "up.json").read_text()
        second = _run("up", "--pty-dir", str(tmp_path), "--no-state", "--seed", "5")
        assert second.returncode == 2, second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1, second.stderr
        assert str(tmp_path) in lines[0]
        assert f"pid {first.process.pid}" in lines[0]
        assert "--pty-dir" in lines[0]
        # the first run is untouched: its links, its up.json, and its unit answers
        assert uart.is_symlink()
        assert (tmp_path / "up.json").read_text() == discovery
        host = Host(str(uart))
        try:
            wait_until_listening(host)
            assert host.ask("GET_IMEI").frame.content == first.units[0]["imei"]
        finally:
            host.close()
        code, err = first.stop()
    assert code == 0, err
    assert not any(tmp_path.iterdir()), list(tmp_path.iterdir())


def test_a_pty_dir_left_by_a_killed_vdtu_up_is_taken_over(tmp_path: Path) -> None:
    with vdtu_up("--pty-dir", str(tmp_path), "--no-state", "--units", "2", units=2) as first:
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=10)
    assert (tmp_path / "dtu1" / "uart").is_symlink()  # left behind by the killed run
    assert (tmp_path / "up.json").exists()
    with vdtu_up("--pty-dir", str(tmp_path), "--no-state", "--seed", "5") as second:
        host = Host(str(link(second, "uart")))
        try:
            wait_until_listening(host)
            assert host.ask("GET_IMEI").frame.content == second.units[0]["imei"]
        finally:
            host.close()
        discovery = json.loads((tmp_path / "up.json").read_text())
        assert list(discovery["units"]) == [second.units[0]["imei"]]
        # the killed run's unit 1 is not this run's: its stale links are gone
        assert not (tmp_path / "dtu1").exists()
        code, err = second.stop()
    assert code == 0, err
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if "taking over" in line]) == 1, err
    assert not any(tmp_path.iterdir()), list(tmp_path.iterdir())


# -- vdtu term -----------------------------------------------------------------------------


def test_vdtu_term_reads_commands_from_a_regular_file(tmp_path: Path) -> None:
    commands = tmp_path / "commands.txt"
    commands.write_text("GET_IMEI\nSAVE_KEYS a:1\nGET_KEYS a\n")
    with vdtu_up("--pty-dir", str(tmp_path / "pty"), "--no-state") as running:
        path = str(link(running, "uart"))
        host = Host(path)
        wait_until_listening(host)
        host.close()
        with commands.open() as stdin:
            result = _run("term", path, "--linger", "0.5", stdin=stdin.fileno())
        running.stop()
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    imei = running.units[0]["imei"]
    replies = [line for line in result.stdout.splitlines() if line.startswith("< ")]
    assert [line.split()[1] for line in replies] == ["GET_IMEI", "SAVE_KEYS", "GET_KEYS"]
    assert f"< GET_IMEI       {imei}" in replies[0]
    assert "< GET_KEYS       a:1" in replies[2]


def test_vdtu_term_with_stdin_from_dev_null_ends_at_once(tmp_path: Path) -> None:
    with vdtu_up("--pty-dir", str(tmp_path), "--no-state") as running:
        path = str(link(running, "uart"))
        with open(os.devnull, "rb") as stdin:
            started = time.monotonic()
            result = _run("term", path, "--linger", "0.2", stdin=stdin.fileno())
            elapsed = time.monotonic() - started
        running.stop()
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert elapsed < 10


def test_vdtu_term_says_where_the_host_pipe_went_after_set_dtu_pipe_485(tmp_path: Path) -> None:
    with vdtu_up("--pty-dir", str(tmp_path), "--no-state") as running:
        path = str(link(running, "uart"))
        host = Host(path)
        wait_until_listening(host)
        host.close()
        result = subprocess.run(
            [*VDTU, "term", path, "--linger", "0.5"],
            input="SET_DTU_PIPE#485\n",
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        rs485 = str(link(running, "rs485"))
        # the unit now answers on the bus: the note's command is the way back
        bus = Host(rs485, baud=9600)
        try:
            assert bus.ask("GET_DTU_PIPE").frame.content == "485"
        finally:
            bus.close()
        running.stop()
    assert result.returncode == 0, result.stderr
    assert "< SET_DTU_PIPE#485-ok" in result.stdout
    notes = [line for line in result.stdout.splitlines() if "RS-485" in line]
    assert len(notes) == 1, result.stdout
    assert f"vdtu term --baud 9600 {rs485}" in notes[0]
    assert "SET_DTU_PIPE#uart" in notes[0]


# -- closing the terminal, TCP ports -------------------------------------------------------


def test_sighup_stops_vdtu_up_and_removes_its_links_and_up_json(tmp_path: Path) -> None:
    with vdtu_up("--pty-dir", str(tmp_path), "--no-state") as running:
        uart = link(running, "uart")
        assert uart.is_symlink()
        assert (tmp_path / "up.json").exists()
        code, err = running.stop(signal.SIGHUP)
    assert code == 0, err
    assert not any(tmp_path.iterdir()), list(tmp_path.iterdir())


def test_a_busy_serial_tcp_port_is_named(tmp_path: Path) -> None:
    require_tool("socat")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = _run(
            "up", "--pty-dir", str(tmp_path), "--no-state", "--serial-tcp", f"uart={port}"
        )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"tcp port {port} is in use" in lines[0]
    assert "--serial-tcp" in lines[0]
    assert not any(tmp_path.iterdir()), list(tmp_path.iterdir())


def test_the_table_shows_the_tcp_ports(tmp_path: Path) -> None:
    require_tool("socat")
    port = two_free_ports()
    process = subprocess.Popen(
        [*VDTU, "up", "--pty-dir", str(tmp_path), "--no-state", "--units", "2",
         "--serial-tcp", f"uart={port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        table = [process.stdout.readline() for _ in range(4)]
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
    assert process.returncode == 0, err
    header, unit0, unit1, _broker = table
    assert "tcp uart" in header
    assert f"tcp://127.0.0.1:{port}" in unit0
    assert f"tcp://127.0.0.1:{port + 1}" in unit1
