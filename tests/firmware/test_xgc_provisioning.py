"""The fleet's default project fills an empty flash only: what the host set is kept."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.xgc_harness import SEED_IDENTITY, XgcBench
from vdtu.firmware.xgc.states import DtuState
from vdtu.fleet import Fleet, FleetConfig
from vdtu.storage import Storage


def flash_of_a_new_vdtu_up(tmp_path: Path, *, provision: bool = True) -> tuple[Fleet, Storage]:
    """What ``vdtu up`` with ``--state-dir tmp_path`` gives the seed's unit as its flash."""
    loop = asyncio.new_event_loop()
    try:
        fleet = Fleet(
            loop, FleetConfig(state_dir=tmp_path, pty_dir=tmp_path / "pty", provision=provision)
        )
        return fleet, fleet._flash(SEED_IDENTITY, fleet.sides["xgc"])
    finally:
        loop.close()


def test_a_project_set_with_set_prjinfo_survives_the_next_vdtu_up(tmp_path: Path) -> None:
    """Run 1 provisions the default project; the host sets its own; run 2 keeps the host's."""
    fleet, flash = flash_of_a_new_vdtu_up(tmp_path)
    default = {"pid": fleet.project_id, "secret": fleet.project_secret}
    assert flash.load()["project"] == default
    bench = XgcBench(flash=flash)
    bench.boot(until=DtuState.GET_MQTT_INFO_FAIL)  # no platform in this bench
    replies = bench.command("SET_PRJINFO", "PID:hostproject1;PSECRET:hostsecret1")
    assert replies[0].content == "ok"
    assert bench.ask("SAVE_KEYS", "a:1") == "ok"
    _, flash = flash_of_a_new_vdtu_up(tmp_path)
    document = flash.load()
    assert document["project"] == {"pid": "hostproject1", "secret": "hostsecret1"}
    assert document["keys"] == {"a": "1"}


def test_an_unprovisioned_vdtu_up_still_erases_the_project(tmp_path: Path) -> None:
    """--unprovisioned erases whatever project the flash holds (as documented); keys stay."""
    _, flash = flash_of_a_new_vdtu_up(tmp_path)
    flash.save(flash.load() | {"keys": {"a": "1"}})
    _, flash = flash_of_a_new_vdtu_up(tmp_path, provision=False)
    assert flash.load() == {"keys": {"a": "1"}}
    _, flash = flash_of_a_new_vdtu_up(tmp_path)
    assert "project" in flash.load()
