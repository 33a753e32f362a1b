"""``vdtu fleet`` options: flags, a YAML file, and their checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from vdtu.errors import ConfigError
from vdtu.identity import Identity, luhn_valid
from vdtu.load.options import LoadOptions, Shard, build_options, load_options


def test_options_from_yaml_and_flags(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text("units: 5000\nbroker: mqtt://127.0.0.1:1883\ninterval: 10\nshard: 1/4\n")
    options = load_options(path, {"duration": 30.0})
    assert options == LoadOptions(
        units=5000,
        broker="mqtt://127.0.0.1:1883",
        interval=10.0,
        duration=30.0,
        shard=Shard(index=1, count=4),
    )
    path.write_text("units: many\n")
    with pytest.raises(ConfigError, match="units"):
        load_options(path, {})
    path.write_text("unitz: 5\n")
    with pytest.raises(ConfigError, match="unknown options"):
        load_options(path, {})


def test_a_bad_option_names_itself() -> None:
    with pytest.raises(ConfigError, match="interval must be > 0 s"):
        build_options({"interval": 0})
    with pytest.raises(ConfigError, match="shard must be i/n"):
        build_options({"shard": "3/2"})
    with pytest.raises(ConfigError, match="--procs or --shard"):
        build_options({"procs": 2, "shard": "0/2"})


def test_identities_of_every_shard_are_distinct_with_valid_luhn_digits() -> None:
    units, seed = 3000, 11
    imeis: set[str] = set()
    iccids: set[str] = set()
    for index in range(4):
        for unit_id in Shard(index=index, count=4).block(units):
            identity = Identity.for_unit(seed, unit_id)
            assert luhn_valid(identity.imei)
            assert luhn_valid(identity.iccid)
            imeis.add(identity.imei)
            iccids.add(identity.iccid)
    assert len(imeis) == len(iccids) == units
