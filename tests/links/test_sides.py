"""The fleet sides: one per personality, in the registry's order, and what they give a fleet."""

from __future__ import annotations

import asyncio

from vdtu.firmware.registry import PERSONALITIES
from vdtu.fleet import MIX, Fleet, FleetConfig
from vdtu.links.sides import SIDES


def test_every_personality_has_a_fleet_side_in_the_registrys_order() -> None:
    assert tuple(SIDES) == tuple(PERSONALITIES)


def test_mix_alternates_over_the_personalities_and_makes_every_side() -> None:
    loop = asyncio.new_event_loop()
    try:
        fleet = Fleet(loop, FleetConfig(units=4, profile=MIX, state_dir=None))
        assert [fleet.profile_of(unit_id) for unit_id in range(4)] == ["xgc", "quec"] * 2
        assert tuple(fleet.sides) == tuple(PERSONALITIES)
        assert fleet.watch_topics() == ("xgc/#", "quec/#")
    finally:
        loop.close()


def test_a_quec_fleet_still_hosts_the_broker_on_the_xgc_side() -> None:
    loop = asyncio.new_event_loop()
    try:
        fleet = Fleet(loop, FleetConfig(profile="quec", state_dir=None))
        assert tuple(fleet.sides) == ("quec",)
        assert fleet.project_id == fleet.host.project_id
        assert fleet.watch_topics() == ("quec/#",)
    finally:
        loop.close()


def test_each_side_probes_as_the_verifier_did() -> None:
    loop = asyncio.new_event_loop()
    try:
        fleet = Fleet(loop, FleetConfig(units=2, profile=MIX, state_dir=None))
        imei = "867435053362828"
        xgc = fleet.sides["xgc"].probe(imei, "probe")
        assert xgc.topic == f"xgc/{fleet.project_id}/{imei}/down"
        assert xgc.command(7) == {"probe": 7}
        quec = fleet.sides["quec"].probe(imei, "probe")
        assert quec.topic == f"quec/{imei}/down"
        assert quec.command(7) == {"msg_id": 7, "cmd_code": 0}
    finally:
        loop.close()


def test_only_an_xgc_unit_gets_the_fleets_project_in_its_flash() -> None:
    loop = asyncio.new_event_loop()
    try:
        fleet = Fleet(loop, FleetConfig(units=2, profile=MIX, state_dir=None))
        document: dict[str, object] = {}
        assert fleet.sides["xgc"].provision(document)
        assert document == {"project": {"pid": fleet.project_id, "secret": fleet.project_secret}}
        assert not fleet.sides["quec"].provision({})
    finally:
        loop.close()
