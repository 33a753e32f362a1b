"""A unit's Modbus slaves from a JSON file: good files load, bad ones name the problem."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vdtu.errors import ConfigError
from vdtu.io.modbus_config import load_slaves


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "slaves.json"
    path.write_text(json.dumps(data))
    return path


def test_a_slave_list_loads(tmp_path: Path) -> None:
    """Two slaves with tables and a counter load with their addresses and values."""
    path = write(
        tmp_path,
        [
            {"address": 2, "holding_registers": {"0": [277, 1]}},
            {
                "address": 3,
                "input_registers": {"0x10": [5]},
                "dynamics": [{"table": "input", "register": 16, "kind": "counter", "period_s": 1}],
            },
        ],
    )
    first, second = load_slaves(path)
    assert (first.address, second.address) == (2, 3)
    assert dict(first.holding_registers) == {0: (277, 1)}
    assert dict(second.input_registers) == {16: (5,)}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"address": 1}, "expected a JSON list"),
        ([{"address": 300}], "slave [0]: address"),
        ([{"address": 1, "colis": {}}], "slave [0]: unknown Modbus slave config keys ['colis']"),
        ([{"address": 1}, {"address": 1}], "slave addresses [1] are used twice"),
        (["x"], "slave [0] must be an object"),
    ],
)
def test_bad_slave_files_are_refused_naming_the_field(
    tmp_path: Path, data: object, message: str
) -> None:
    """Each kind of mistake gives a ConfigError with the file and the offending entry."""
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as caught:
        load_slaves(path)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)


def test_vdtu_up_refuses_a_bad_slave_file(tmp_path: Path) -> None:
    """vdtu up --slaves with a bad file exits 2 with the message, before opening any PTY."""
    path = write(tmp_path, [{"address": 0}])
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "vdtu.cli",
            "up",
            "--no-state",
            "--pty-dir",
            str(tmp_path / "pty"),
            "--slaves",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 2
    assert "slave [0]: address" in result.stderr
    assert not (tmp_path / "pty").exists()
