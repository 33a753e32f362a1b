"""A default config written by an older vdtu (the broker named by a run's 127.0.0.1 port)
is recognised and pointed at the local name; every other config is the user's and kept."""

from __future__ import annotations

from typing import Any

from vdtu.firmware.quec.config import DtuConfig, default_config, load_config, with_password
from vdtu.links.quec_stack import migrate_default_channel

IMEI = "867435059800763"
LOGIN = {"broker_username": IMEI, "broker_password": "0123456789abcdef0123456789abcdef"}


def _today() -> DtuConfig:
    return default_config(IMEI, broker_host="broker.vdtu", broker_port=1883, **LOGIN)


def _older_vdtu(port: int = 36235) -> DtuConfig:
    """What vdtu wrote before the local names: the embedded broker's address of that run."""
    return load_config(
        default_config(IMEI, broker_host="127.0.0.1", broker_port=port, **LOGIN).to_json()
    )


def _with_channels(config: DtuConfig, **channels: dict[str, Any]) -> DtuConfig:
    return load_config({**config.to_json(), "conf": channels})


def test_an_older_vdtu_default_gets_todays_channel() -> None:
    migrated = migrate_default_channel(_older_vdtu(), _today())
    assert migrated == _today()
    assert migrated is not None
    channel = migrated.to_json()["conf"]["1"]
    assert (channel["url"], channel["port"]) == ("broker.vdtu", "1883")


def test_the_rest_of_an_older_default_is_kept() -> None:
    """Settings the user changed since (code 51 here) survive; only the channel moves."""
    stored = with_password(_older_vdtu(40001), "654321")
    migrated = migrate_default_channel(stored, _today())
    assert migrated is not None
    assert migrated.password == "654321"
    assert migrated.conf["1"] == _today().conf["1"]


def test_other_channels_keep_their_place_and_addresses() -> None:
    old = _older_vdtu().to_json()["conf"]["1"]
    tcp = {"protocol": "tcp", "serialID": "2", "url": "127.0.0.1", "port": "9000"}
    stored = _with_channels(_older_vdtu(), **{"2": tcp, "1": old})
    migrated = migrate_default_channel(stored, _today())
    assert migrated is not None
    assert list(migrated.conf) == ["2", "1"]
    assert migrated.conf["2"] == stored.conf["2"]
    assert migrated.conf["1"] == _today().conf["1"]


def test_a_channel_the_user_pointed_elsewhere_is_kept() -> None:
    old = _older_vdtu().to_json()["conf"]["1"]
    for changed in (
        {"url": "192.168.1.5"},  # their own broker
        {"url": "localhost"},  # not the address vdtu wrote
        {"publish": {"0": f"quec/{IMEI}/up/plant"}},  # their own topics
        {"username": "someone"},  # their own login
        {"qos": "0"},
        {"keepAlive": 30},
    ):
        stored = _with_channels(_older_vdtu(), **{"1": {**old, **changed}})
        assert migrate_default_channel(stored, _today()) is None, changed


def test_another_units_default_is_not_this_units() -> None:
    other = default_config("867435059800771", broker_host="127.0.0.1", broker_port=36235, **LOGIN)
    assert migrate_default_channel(other, _today()) is None


def test_todays_default_and_other_channel_types_need_nothing() -> None:
    assert migrate_default_channel(_today(), _today()) is None
    tcp = {"protocol": "tcp", "serialID": "2", "url": "127.0.0.1", "port": "1"}
    assert migrate_default_channel(_with_channels(_today(), **{"1": tcp}), _today()) is None
