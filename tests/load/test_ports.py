"""Before a run, a fleet whose connections do not fit the machine's ephemeral ports is warned
about, naming the range, the TIME_WAIT sockets and the sysctl (``vdtu/load/ports.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vdtu.load import ports
from vdtu.load.command import warnings
from vdtu.load.options import build_options

SOCKSTAT = """sockets: used 1812
TCP: inuse 1800 orphan 0 tw {tw} alloc 1801 mem 234
UDP: inuse 0 mem 0
"""


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A machine of 100 ephemeral ports (40000-40099) and no socket in TIME_WAIT."""
    port_range = tmp_path / "ip_local_port_range"
    port_range.write_text("40000\t40099\n")
    sockstat = tmp_path / "sockstat"
    sockstat.write_text(SOCKSTAT.format(tw=0))
    monkeypatch.setattr(ports, "PORT_RANGE", port_range)
    monkeypatch.setattr(ports, "SOCKSTAT", sockstat)
    return tmp_path


def test_connections_within_half_the_range_are_not_warned_about(machine: Path) -> None:
    assert ports.port_warning(50) is None


def test_connections_past_half_the_range_are_warned_about_as_dearer(machine: Path) -> None:
    warning = ports.port_warning(51)
    assert warning is not None
    assert warning.startswith("51 connections to one broker address take more than half of")
    assert "each connect dearer" in warning
    assert "TIME_WAIT" not in warning
    assert 'sysctl -w net.ipv4.ip_local_port_range="1024 65535"' in warning
    assert ports.port_warning(100) == warning.replace("51", "100", 1)


def test_connections_past_the_range_are_warned_about_naming_range_and_sysctl(
    machine: Path,
) -> None:
    warning = ports.port_warning(101)
    assert warning is not None
    assert warning.startswith("101 connections to one broker address need as many local ports")
    assert "net.ipv4.ip_local_port_range 40000-40099) are 100" in warning
    assert "EADDRNOTAVAIL" in warning
    assert 'sysctl -w net.ipv4.ip_local_port_range="1024 65535"' in warning


def test_ports_held_in_time_wait_are_counted_against_the_range(machine: Path) -> None:
    (machine / "sockstat").write_text(SOCKSTAT.format(tw=30))
    assert ports.time_wait_sockets() == 30
    assert ports.port_warning(20) is None
    crowded = ports.port_warning(21)
    assert crowded is not None
    assert "take more than half" in crowded
    assert "with 30 in TIME_WAIT" in crowded
    assert "TIME_WAIT" not in str(ports.port_warning(51))  # over half without them
    warning = ports.port_warning(71)
    assert warning is not None
    assert "30 may still be held by sockets in TIME_WAIT" in warning
    assert "wait a minute" in warning


def test_a_machine_that_does_not_say_gets_no_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ports, "PORT_RANGE", tmp_path / "absent")
    monkeypatch.setattr(ports, "SOCKSTAT", tmp_path / "absent too")
    assert ports.local_port_range() is None
    assert ports.time_wait_sockets() is None
    assert ports.port_warning(10**6) is None


@pytest.mark.parametrize(
    ("values", "connections"),
    [
        ({"units": 150}, 151),  # the units and the verifier
        ({"units": 150, "procs": 3}, 153),  # every child's units and verifier, one machine
        ({"units": 300, "shard": "1/2"}, 151),  # this shard's units only
    ],
)
def test_vdtu_fleet_warns_with_the_connections_this_machine_makes(
    machine: Path, values: dict[str, object], connections: int
) -> None:
    found = warnings(build_options({"duration": 60, "broker": "mqtt://127.0.0.1:1883", **values}))
    assert len(found) == 1, found
    assert found[0].startswith(f"{connections} connections to one broker address")


def test_vdtu_fleet_that_fits_gets_no_port_warning(machine: Path) -> None:
    assert warnings(build_options({"units": 49, "duration": 60})) == []
