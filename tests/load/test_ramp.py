"""``--ramp``: a rate or k6-like stages, their checks, the schedule they make, and a run that
follows one (units powered on and off as the stages say)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from vdtu.errors import ConfigError
from vdtu.load.command import _settings, plan
from vdtu.load.options import build_options, load_options
from vdtu.load.ramp import Schedule, Stage, parse_ramp, ramp_text, shard_stages
from vdtu.load.runner import DROP_QUIET_S, LoadRun

# -- the option ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "rate"),
    [("250", 250.0), ("250/s", 250.0), ("600/m", 10.0), (40, 40.0), (0.5, 0.5)],
)
def test_a_rate_is_units_per_second_as_a_number_or_per_unit_of_time(
    value: object, rate: float
) -> None:
    assert parse_ramp(value) == rate


def test_stages_are_duration_target_pairs_from_text_or_a_yaml_list() -> None:
    expected = (
        Stage(duration_s=30.0, target=1000),
        Stage(duration_s=60.0, target=1000),
        Stage(duration_s=10.0, target=5000),
        Stage(duration_s=0.0, target=0),
    )
    assert parse_ramp("30s:1000, 1m:1000,10s : 5000,0s:0") == expected
    assert parse_ramp(["30s:1000", "1m:1000", {"duration": 10, "target": 5000}, "0:0"]) == (
        expected
    )
    assert parse_ramp(ramp_text(expected)) == expected
    assert ramp_text(expected) == "30s:1000,60s:1000,10s:5000,0s:0"
    assert parse_ramp(ramp_text(1 / 3)) == 1 / 3  # a rate passes to --procs children exactly


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("fast", r"ramp must be a rate of units powered on per second \(100, 100/s, 600/m\) or "),
        (0, r"ramp must be .* DURATION:TARGET,\.\.\. \(30s:1000,1m:1000,10s:0\), not 0"),
        ("-5/s", "ramp must be a rate"),
        ("30s:10,1m", r"ramp stage 2 must be DURATION:TARGET such as 30s:1000, not '1m'"),
        ("30s:ten", r"ramp stage 1: the target must be a whole number of units >= 0, not 'ten'"),
        ("30s:-1", r"ramp stage 1: the target must be a whole number"),
        ("soon:10", r"ramp stage 1: a duration is a number of seconds or text like 250ms"),
        ([], "ramp: the list of stages is empty"),
        ([{"duration": 5, "units": 3}], "ramp stage 1: a mapping must have exactly the keys"),
        ([True], "ramp stage 1 must be DURATION:TARGET"),
    ],
)
def test_a_bad_ramp_is_refused_naming_the_option_the_stage_and_the_forms(
    value: object, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        build_options({"ramp": value})


def test_the_stages_peak_must_be_the_fleet_and_no_target_may_exceed_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"ramp stage 2: target 120 is more than --units 100"):
        build_options({"units": 100, "ramp": "10s:100,5s:120"})
    with pytest.raises(ConfigError, match=r"highest target is 80, but --units is 100"):
        build_options({"units": 100, "ramp": "10s:80,5s:0"})
    path = tmp_path / "fleet.yaml"
    path.write_text("units: 100\nramp:\n  - 10s:100\n  - {duration: 1m, target: 20}\n")
    assert load_options(path, {}).ramp == (Stage(10.0, 100), Stage(60.0, 20))


def test_the_plan_line_names_the_stages_and_children_get_them_back() -> None:
    options = build_options({"units": 100, "ramp": "10s:100,1m:100,5s:0", "procs": 2})
    assert plan(options) == (
        "100 units in 2 processes of up to 50 in 3 stages (10s:100,60s:100,5s:0): 75 s, "
        "then 60 s of sending and up to 10 s of grace"
    )
    settings = _settings(options, 1, "mqtt://127.0.0.1:1", Path("/tmp/r.json"))
    assert build_options({"units": 100, "ramp": settings["ramp"]}).ramp == options.ramp


# -- the schedule ------------------------------------------------------------------------------


def _changes(schedule: Schedule) -> list[float]:
    """Every instant the schedule's count changes, from ``next_change``."""
    found: list[float] = []
    at = schedule.next_change(-1.0)
    while at is not None:
        found.append(at)
        at = schedule.next_change(at)
    return found


def test_a_schedule_ramps_holds_spikes_and_drops_one_unit_at_a_time() -> None:
    schedule = Schedule([Stage(1.0, 4), Stage(1.0, 4), Stage(0.0, 8), Stage(2.0, 0)])
    counts = [schedule.count_at(quarter / 4) for quarter in range(22)]
    assert counts == [0, 1, 2, 3, 4, 4, 4, 4, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0, 0, 0, 0, 0]
    assert [(at, schedule.count_at(at)) for at in _changes(schedule)] == [
        (0.25, 1), (0.5, 2), (0.75, 3), (1.0, 4), (2.0, 8),
        (2.25, 7), (2.5, 6), (2.75, 5), (3.0, 4), (3.25, 3), (3.5, 2), (3.75, 1), (4.0, 0),
    ]  # fmt: skip
    assert (schedule.total_s, schedule.peak) == (4.0, 8)


def test_a_rate_brings_up_the_kth_unit_k_over_rate_seconds_after_the_start() -> None:
    schedule = Schedule(shard_stages(300.0, block=range(1000), shards=1, index=0))
    count = 0
    for at in _changes(schedule):
        count += 1
        assert schedule.count_at(at) == count  # every change is seen once, in order
        assert at == pytest.approx(count / 300.0)
    assert count == 1000
    assert schedule.total_s == pytest.approx(1000 / 300.0)


def test_shards_take_shares_of_each_target_that_add_up_to_it() -> None:
    stages = parse_ramp("10s:1000,5s:333,5s:7")
    assert isinstance(stages, tuple)
    shares = [shard_stages(stages, block=range(0), shards=3, index=index) for index in range(3)]
    for position, stage in enumerate(stages):
        assert sum(share[position].target for share in shares) == stage.target
        assert {share[position].duration_s for share in shares} == {stage.duration_s}


# -- a run that follows stages -------------------------------------------------------------------


@pytest.mark.realtime
@pytest.mark.timeout(60)
def test_a_run_powers_units_on_and_off_as_its_stages_say() -> None:
    """6 units on the embedded broker: up to 4 in 2 s, hold, a jump to 6, a drop to 2 over 4 s,
    hold, and back to 4. Units come up lowest id first and go down highest first; a dropped
    unit's host stops at once and the unit loses power ``DROP_QUIET_S`` later; one brought back
    is powered again and its host runs again. Each look falls at least 0.25 s from any change,
    so a loaded machine's late wake-ups do not move a unit across one."""
    options = build_options(
        {
            "units": 6,
            "ramp": "2s:4,2s:4,0s:6,4s:2,2s:2,2s:4",
            "duration": 1,
            "grace": 0,
            "probe_rate": 0,
            "progress": False,
        }
    )
    seen: dict[str, Any] = {}

    async def main() -> None:
        run = LoadRun(asyncio.get_running_loop(), options, sys.stderr)
        task = asyncio.create_task(run.run(asyncio.Event()))
        for _ in range(1000):  # the broker and the verifier come first
            if run.started_at:
                break
            await asyncio.sleep(0.01)
        start = run.started_at  # the stages' time zero, on the loop's clock (time.monotonic)

        async def look(at_s: float, name: str) -> None:
            await asyncio.sleep(start + at_s - asyncio.get_running_loop().time())
            seen[name] = (
                sorted(uid for uid, host in run.hosts.items() if host.unit.powered),
                sorted(uid for uid, host in run.hosts.items() if not host.stopped),
                run.report().powered_off,
            )

        # units come up at 0.5, 1, 1.5 and 2 s; 4 and 5 at 4 s; 5, 4, 3 and 2 go quiet at 5, 6,
        # 7 and 8 s and lose power DROP_QUIET_S later; 2 and 3 come back at 11 and 12 s
        await look(1.25, "ramping")
        await look(3.0, "holding")
        await look(4.5, "spiked")
        await look(6.5, "dropping")
        await look(8.0 + DROP_QUIET_S + 0.5, "dropped")
        await look(12.5, "back")
        seen["report"] = (await task).to_json()

    asyncio.run(main())
    assert seen["ramping"] == ([0, 1], [0, 1], 0)
    assert seen["holding"] == ([0, 1, 2, 3], [0, 1, 2, 3], 0)
    assert seen["spiked"] == ([0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4, 5], 0)
    # 5 and 4 went quiet at 5 and 6 s; 5 lost power at 6 s, 4 keeps it until 7 s
    assert seen["dropping"] == ([0, 1, 2, 3, 4], [0, 1, 2, 3], 2)
    assert seen["dropped"] == ([0, 1], [0, 1], 4)
    assert seen["back"] == ([0, 1, 2, 3], [0, 1, 2, 3], 2)
    report = seen["report"]
    assert (report["units"], report["powered_off"]) == (6, 2)
    assert report["errors"].get("never_powered_on", 0) == 0
