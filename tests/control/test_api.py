"""The control API over real HTTP on 127.0.0.1, against a real-time fleet in this process."""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.control.served import served_fleet
from vdtu.fleet import Fleet

Scenario = Callable[[aiohttp.ClientSession, Fleet], Awaitable[None]]


def run(
    tmp_path: Path,
    scenario: Scenario,
    *,
    units: int = 2,
    profile: str = "xgc",
    ports: tuple[str, ...] = (),
) -> None:
    async def main() -> None:
        served = served_fleet(tmp_path, units=units, profile=profile, ports=ports)
        async with served as (fleet, server):
            headers = {"Authorization": f"Bearer {server.token}"}
            async with aiohttp.ClientSession(server.url, headers=headers) as http:
                await scenario(http, fleet)

    asyncio.run(main())


async def call(
    http: aiohttp.ClientSession, method: str, path: str, body: Any = None, status: int = 200
) -> Any:
    async with http.request(method, path, json=body) as reply:
        document = await reply.json()
        assert reply.status == status, document
        return document


def test_up_json_names_the_api_and_its_token_readable_by_the_user_only(tmp_path: Path) -> None:
    async def scenario(http: aiohttp.ClientSession, fleet: Fleet) -> None:
        document = json.loads(fleet.discovery_path.read_text())
        assert document["control"]["url"].startswith("http://127.0.0.1:")
        assert len(document["control"]["token"]) >= 32
        assert stat.S_IMODE(fleet.discovery_path.stat().st_mode) == 0o600

    run(tmp_path, scenario)


def test_a_request_without_the_token_is_refused(tmp_path: Path) -> None:
    async def scenario(http: aiohttp.ClientSession, fleet: Fleet) -> None:
        url = json.loads(fleet.discovery_path.read_text())["control"]["url"]
        async with aiohttp.ClientSession(url) as bare:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
                async with bare.get("/v1/units", headers=headers) as reply:
                    assert reply.status == 401
                    assert "wrong token" in (await reply.json())["error"]

    run(tmp_path, scenario)


def test_units_are_listed_and_selected(tmp_path: Path) -> None:
    async def scenario(http: aiohttp.ClientSession, fleet: Fleet) -> None:
        rows = (await call(http, "GET", "/v1/units"))["units"]
        assert [row["unit"] for row in rows] == [0, 1, 2]
        assert rows[0]["imei"] == fleet.units[0].imei
        assert {"phase", "state", "csq", "sim", "faults", "counters"} <= set(rows[0])
        picked = await call(http, "GET", "/v1/units?select=1-2")
        assert [row["unit"] for row in picked["units"]] == [1, 2]
        nothing = await call(http, "GET", "/v1/units?select=7", status=404)
        assert nothing["error"] == "selector '7' matches no unit (the units: 0-2)"
        bad = await call(http, "GET", "/v1/units?select=dtu1", status=400)
        assert "bad selector term 'dtu1'" in bad["error"]

    run(tmp_path, scenario, units=3)


def test_a_fault_is_applied_shown_and_cleared(tmp_path: Path) -> None:
    async def scenario(http: aiohttp.ClientSession, fleet: Fleet) -> None:
        body = {"select": "0", "kind": "sim-pull", "params": {}, "for_s": 60}
        assert await call(http, "POST", "/v1/faults", body) == {
            "kind": "sim-pull",
            "applied": [0],
            "refused": {},
        }
        shown = await call(http, "GET", f"/v1/units/{fleet.units[0].imei}")
        assert shown["modem"]["sim"]["state"] == "ABSENT"
        (active,) = shown["active_faults"]
        assert active["kind"] == "sim-pull"
        assert active["until"] == pytest.approx(active["since"] + 60)
        again = await call(http, "POST", "/v1/faults", {"select": "0", "kind": "sim-pin-lock"})
        assert again["applied"] == []
        assert again["refused"] == {"0": "cannot PIN-lock the SIM: the slot is empty"}
        cleared = await call(http, "POST", "/v1/faults/clear", {"select": "all"})
        assert cleared["cleared"] == {"0": ["sim-pull"]}
        shown = await call(http, "GET", "/v1/units/0")
        assert shown["modem"]["sim"]["state"] != "ABSENT"
        assert shown["active_faults"] == []

    run(tmp_path, scenario)


def test_bad_fault_requests_get_a_400_naming_the_problem(tmp_path: Path) -> None:
    async def scenario(http: aiohttp.ClientSession, fleet: Fleet) -> None:
        cases = [
            ({"select": "0", "kind": "bogus"}, "unknown fault kind 'bogus'"),
            ({"select": "0", "kind": "signal"}, "signal needs csq="),
            ({"select": "0", "kind": "signal", "params": {"csq": 99}}, "csq must be"),
            ({"select": "0", "kind": "signal", "params": [1]}, "'params' must be a dict"),
            ({"kind": "roaming"}, "the request body needs 'select'"),
            ({"select": "0", "kind": "roaming", "for_s": -1}, "duration of roaming"),
        ]
        for body, message in cases:
            answer = await call(http, "POST", "/v1/faults", body, status=400)
            assert message in answer["error"]
        async with http.post("/v1/faults", data=b"{not json") as reply:
            assert reply.status == 400
            assert (await reply.json())["error"] == "the request body is not JSON"
        async with http.post("/v1/faults", data=b"x" * 300_000) as reply:
            assert reply.status == 400
        async with http.get("/v1/nothing") as reply:
            assert reply.status == 404
            assert "error" in await reply.json()

    run(tmp_path, scenario)


def test_pokes_drive_an_input_and_power(tmp_path: Path) -> None:
    async def scenario(http: aiohttp.ClientSession, fleet: Fleet) -> None:
        body = {"select": "1", "action": "input", "params": {"index": 3, "level": 1}}
        assert (await call(http, "POST", "/v1/pokes", body))["done"] == [1]
        assert fleet.units[1].gpio.input_levels()["in3"] == 1
        await call(http, "POST", "/v1/pokes", {"select": "0", "action": "power-off"})
        assert not fleet.units[0].powered
        refused = await call(
            http,
            "POST",
            "/v1/pokes",
            {"select": "0", "action": "host-write", "params": {"text": "hi"}},
        )
        assert refused["refused"] == {
            "0": "the unit is not running: nothing drives its uart transmitter"
        }
        bad = await call(http, "POST", "/v1/pokes", {"select": "0", "action": "dance"}, status=400)
        assert bad["error"].startswith("unknown poke 'dance'; the pokes are: input, sms,")

    run(tmp_path, scenario)


def test_units_are_added_to_the_running_fleet(tmp_path: Path) -> None:
    async def scenario(http: aiohttp.ClientSession, fleet: Fleet) -> None:
        assert await call(http, "POST", "/v1/units", {"count": 2}) == {"added": [2, 3]}
        assert len(fleet.units) == 4
        document = json.loads(fleet.discovery_path.read_text())
        assert fleet.units[3].imei in document["units"]
        assert "control" in document
        bad = await call(http, "POST", "/v1/units", {"count": 0}, status=400)
        assert bad["error"] == "count must be an integer in 1..10000, not 0"
        tagged = await call(http, "POST", "/v1/units", {"count": 2, "tags": ["north"]})
        assert tagged == {"added": [4, 5]}
        rows = (await call(http, "GET", "/v1/units?select=tag=north"))["units"]
        assert [(row["unit"], row["tags"]) for row in rows] == [(4, ["north"]), (5, ["north"])]
        bad = await call(http, "POST", "/v1/units", {"count": 1, "tags": ["a b"]}, status=400)
        assert bad["error"] == "tag 'a b' must be 1..64 letters, digits or '-_.:' characters"
        bad = await call(http, "POST", "/v1/units", {"profile": "quec"}, status=400)
        assert bad["error"] == "profile must be one of this fleet's: xgc (or none), not 'quec'"

    run(tmp_path, scenario)


def test_the_fleet_reports_its_uplinks_publish_to_puback_times(tmp_path: Path) -> None:
    async def scenario(http: aiohttp.ClientSession, fleet: Fleet) -> None:
        summary = await call(http, "GET", "/v1/fleet")
        async with asyncio.timeout(30):
            while summary["ack_ms"]["count"] < 2:  # each unit's retained "online", QoS 1
                await asyncio.sleep(0.2)
                summary = await call(http, "GET", "/v1/fleet")
        total = summary["ack_ms"]
        assert set(total) == {"count", "p50", "p95", "p99", "max"}
        assert 0 < total["p50"] <= total["p99"] <= total["max"] < 5000
        assert set(summary["ack_histograms"]) == {"total", "recent"}
        assert summary["ack_ms_recent"]["count"] <= total["count"]
        async with http.get("/v1/events") as reply:
            metrics = [e["data"] async for e in lines(reply) if e["kind"] == "metrics"]
        assert metrics
        assert set(metrics[-1]["ack_ms_recent"]) == {"count", "p50", "p95", "p99", "max"}
        assert sum(m["ack_ms_recent"]["count"] for m in metrics) <= total["count"]

    run(tmp_path, scenario)


def test_a_fleet_that_runs_no_scenario_answers_404_for_its_progress(tmp_path: Path) -> None:
    async def scenario(http: aiohttp.ClientSession, fleet: Fleet) -> None:
        answer = await call(http, "GET", "/v1/scenario", status=404)
        assert answer == {
            "error": "this fleet runs no scenario (vdtu scenario run --realtime serves one)"
        }

    run(tmp_path, scenario)


def test_units_of_a_chosen_profile_are_added_to_a_mixed_fleet(tmp_path: Path) -> None:
    async def scenario(http: aiohttp.ClientSession, fleet: Fleet) -> None:
        assert (await call(http, "GET", "/v1/fleet"))["profiles"] == ["xgc", "quec"]
        added = await call(http, "POST", "/v1/units", {"count": 2, "profile": "quec"})
        assert added == {"added": [2, 3]}
        rows = (await call(http, "GET", "/v1/units?select=2-3"))["units"]
        assert [row["profile"] for row in rows] == ["quec", "quec"]
        assert [unit.config.profile for unit in fleet.units[2:]] == ["quec", "quec"]
        for wrong in ("nope", 7):
            bad = await call(http, "POST", "/v1/units", {"profile": wrong}, status=400)
            assert bad["error"] == (
                f"profile must be one of this fleet's: xgc, quec (or none), not {wrong!r}"
            )
        assert len(fleet.units) == 4

    run(tmp_path, scenario, profile="mix")


async def lines(reply: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
    async for raw in reply.content:
        yield json.loads(raw)


def test_the_event_stream_reports_faults_and_follows_new_events(tmp_path: Path) -> None:
    async def scenario(http: aiohttp.ClientSession, fleet: Fleet) -> None:
        await call(http, "POST", "/v1/faults", {"select": "1", "kind": "roaming"})
        async with http.get("/v1/events", params={"select": "1"}) as reply:
            history = [event async for event in lines(reply)]
        faults = [e for e in history if e["kind"] == "fault"]
        assert faults[0]["unit"] == 1
        assert faults[0]["data"] == {"kind": "roaming", "params": {}, "for_s": None}
        assert all(e["unit"] in (1, None) for e in history)
        async with http.get("/v1/events", params={"select": "0", "follow": "1"}) as reply:
            await call(http, "POST", "/v1/faults", {"select": "0", "kind": "dns-fail"})
            async for event in lines(reply):
                if event["kind"] == "fault":
                    assert event["unit"] == 0
                    assert event["data"]["kind"] == "dns-fail"
                    break

    run(tmp_path, scenario)


def test_host_send_frames_a_command_as_vdtu_term_does_and_the_unit_answers_it(
    tmp_path: Path,
) -> None:
    async def scenario(http: aiohttp.ClientSession, fleet: Fleet) -> None:
        body = {"select": "0", "action": "host-send", "params": {"line": "GET_IMEI"}}
        seen: dict[str, dict[str, Any]] = {}
        async with (
            asyncio.timeout(30),
            http.get("/v1/events", params={"select": "0", "follow": "1"}) as reply,
        ):
            async for event in lines(reply):
                if event["kind"] == "to-host" and "init-ok" in event["data"]["text"]:
                    answer = await call(http, "POST", "/v1/pokes", body)  # the unit listens
                    assert answer["done"] == [0], answer
                for frame in event["data"].get("frames", []):
                    if frame["fields"].get("action") == "GET_IMEI":
                        seen[event["kind"]] = frame
                if "to-host" in seen:
                    break
        assert seen["from-host"]["kind"] == "XGC"
        assert seen["from-host"]["check_ok"] is True
        assert seen["to-host"]["kind"] == "XGC_ACK"
        assert seen["to-host"]["fields"]["content"] == fleet.units[0].imei
        blank = {"select": "0", "action": "host-send", "params": {"line": " "}}
        refused = await call(http, "POST", "/v1/pokes", blank)
        assert refused["refused"] == {"0": "line= is blank: give a command, e.g. GET_IMEI"}
        elsewhere = {
            "select": "0",
            "action": "host-send",
            "params": {"line": "GET_IMEI", "port": "rs232"},
        }
        refused = await call(http, "POST", "/v1/pokes", elsewhere)
        assert refused["refused"] == {
            "0": "nothing is at the host's end of rs232: no PTY and no simulated host"
        }

    run(tmp_path, scenario, ports=("uart",))
