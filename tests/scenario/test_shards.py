"""A scenario split over processes is the same run: the same report and transcript as in
one process, and a shard that fails, dies or leaves the timeline ends the run with an
error that names it."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import IO, Any

import pytest

from tests.scenario.test_run import vdtu
from vdtu.scenario.load import load_scenario, parse_scenario
from vdtu.scenario.run import ScenarioRun
from vdtu.scenario.schema import Scenario
from vdtu.scenario.shards import Exchange, ShardError, run_split

SCENARIOS = Path(__file__).parents[2] / "scenarios"
LONG = {"day-in-the-life"}
"""Examples run only split (in one process they take twice as long): the 1000-unit day takes
about a minute split in two on the 2-core machine, two with a test beside it."""

STATEFUL = """\
name: selectors that read states, waits for lines and uplinks, a ramp
seed: 11
duration: 7m
units:
  - name: x
    count: 7
    host: {uplink_every: 20s}
  - name: q
    count: 4
    profile: quec
    host: {uplink_every: 20s}
steps:
  - at: 1m
    select: tag=x,state=connected
    fault: sim-pull
    for: 30s
  - after: 0s
    wait: {select: tag=x, serial: mqtt-disconnected, timeout: 20s}
  - at: 2m
    select: state=connected,random=50%
    ramp: 2
    poke: input
    params: {index: 1, level: 1}
  - at: 3m
    select: tag=q
    fault: link-blackhole
    for: 2m
  - after: 1m
    wait: {select: tag=q, uplink: data, timeout: 2m}
  - after: 0s
    wait: {select: all, message: '/(up|state) ', timeout: 1m}
  - at: 6m
    select: 3,8
    poke: host-write
    params: {port: uart, text: "NO_SUCH_COMMAND"}
  - at: 6m30s
    select: 2-5
    fault: slave-offline
    params: {address: 9}
    allow_refusal: true
expect:
  - name: nothing lost
    uplinks: {lost: 0, duplicated: 0, reordered: 0}
  - state: {phase: connected}
  - state: {select: state=connected, phase: connected, at: 4m}
  - serial: {select: tag=x, sequence: ["mqtt-disconnected", "mqtt-connected"]}
  - cloud: {topic: ".", count: {min: 1}}
  - reconnect_s: {count: {min: 1}}
"""


def single(scenario: Scenario, transcript: IO[str] | None = None) -> dict[str, Any]:
    return ScenarioRun(scenario, transcript=transcript).run()


def split(scenario: Scenario, shards: int, transcript: IO[str] | None = None) -> dict[str, Any]:
    return run_split(
        scenario,
        lambda exchange, shard, out: ScenarioRun(
            scenario, transcript=out, exchange=exchange, shard=shard
        ).run(),
        shards=shards,
        transcript=transcript,
        progress=None,
    )


def same_run(report: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in report.items() if key not in ("wall_s", "processes")}


def test_a_split_run_has_the_same_report_and_transcript_as_one_process() -> None:
    scenario = parse_scenario(STATEFUL, "stateful.yaml")
    alone, text = io.StringIO(), {}
    reference = single(scenario, alone)
    assert reference["passed"], reference["expectations"]
    assert len(reference["refused"]) == 4, "units of both shards refuse a step"
    for shards in (2, 3):
        out = io.StringIO()
        report = split(scenario, shards, out)
        assert report["processes"] == shards
        assert same_run(report) == same_run(reference)
        text[shards] = out.getvalue()
    assert text[2] == text[3] == alone.getvalue()
    assert len(alone.getvalue().splitlines()) == reference["events"]


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(path, marks=[pytest.mark.slow, pytest.mark.timeout(600)])
        if path.stem in LONG
        else path
        for path in sorted(SCENARIOS.glob("*.yaml"))
    ],
    ids=lambda p: p.stem,
)
def test_every_example_passes_split_in_two_as_in_one_process(path: Path) -> None:
    scenario = load_scenario(path)
    report = split(scenario, 2)
    assert report["passed"], [e for e in report["expectations"] if not e["passed"]]
    if path.stem not in LONG:
        assert same_run(report) == same_run(single(scenario))


def test_a_failing_shard_ends_the_run_with_its_error() -> None:
    scenario = parse_scenario(STATEFUL, "stateful.yaml")

    def shard_fails(exchange: Exchange, shard: tuple[int, int], out: IO[str] | None) -> Any:
        if shard[0] == 1:
            raise ValueError("the model broke")
        exchange.gather("never answered", 0)  # shard 0 waits for shard 1 in vain

    with pytest.raises(ShardError, match=r"(?s)shard 1 failed:.*ValueError: the model broke"):
        run_split(scenario, shard_fails, shards=2, transcript=None, progress=None)


def test_a_shard_that_dies_ends_the_run() -> None:
    scenario = parse_scenario(STATEFUL, "stateful.yaml")

    def shard_dies(exchange: Exchange, shard: tuple[int, int], out: IO[str] | None) -> Any:
        if shard[0] == 0:
            os._exit(9)
        exchange.gather("never answered", 0)

    with pytest.raises(ShardError, match="shard 0 died without a word"):
        run_split(scenario, shard_dies, shards=2, transcript=None, progress=None)


def test_shards_that_gather_different_things_are_stopped() -> None:
    scenario = parse_scenario(STATEFUL, "stateful.yaml")

    def diverges(exchange: Exchange, shard: tuple[int, int], out: IO[str] | None) -> Any:
        exchange.gather(f"step {shard[0]}", 0)

    with pytest.raises(ShardError, match="left the one timeline"):
        run_split(scenario, diverges, shards=2, transcript=None, progress=None)


def test_procs_is_checked_and_is_for_virtual_time(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(STATEFUL)

    zero = vdtu("run", str(path), "--procs", "0")
    assert zero.returncode == 2
    assert "a number of processes is 1..64, not '0'" in zero.stderr
    realtime = vdtu("run", str(path), "--procs", "2", "--realtime")
    assert realtime.returncode == 2
    assert "--procs is for virtual time" in realtime.stderr
    ran = vdtu("run", str(path), "--procs", "2")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "PASSED  (11 units" in ran.stdout
