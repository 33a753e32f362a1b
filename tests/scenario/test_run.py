"""Running scenarios in virtual time: deterministic, expectations pass and fail with evidence,
and ``vdtu scenario`` exits 0, 1 or 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from vdtu.scenario.load import ScenarioError, parse_scenario
from vdtu.scenario.run import ScenarioRun

MIXED = """\
name: mixed fleet, small troubles
seed: 3
duration: 10m
units:
  - name: q
    count: 5
    profile: quec
    host: {uplink_every: 30s}
  - name: x
    count: 5
    host: {uplink_every: 30s}
steps:
  - at: 3m
    select: tag=q
    fault: link-blackhole
    for: 2m
  - at: 4m
    select: tag=x
    fault: sim-pull
    for: 1m
  - at: 8m
    poke: input
    params: {index: 2, level: 1}
expect:
  - name: nothing lost
    uplinks: {lost: 0, duplicated: 0}
  - state: {phase: connected}
  - serial: {select: tag=x, sequence: ["mqtt-disconnected", "mqtt-connected", "GPIO_INT.*in2:1"]}
  - reconnect_s: {select: tag=q, count: 5, max: {max: 60}}
"""


def run(text: str, *, seed: int | None = None) -> dict[str, Any]:
    return ScenarioRun(parse_scenario(text, "test.yaml"), seed=seed).run()


def test_a_mixed_fleet_rides_out_a_blackhole_and_a_pulled_sim() -> None:
    report = run(MIXED)
    assert report["passed"], report["expectations"]
    assert report["units"] == 10
    assert report["uplinks"]["lost"] == 0


def test_the_same_file_and_seed_give_the_same_transcript() -> None:
    first, second = run(MIXED), run(MIXED)
    assert first["transcript_sha256"] == second["transcript_sha256"]
    assert first["events"] == second["events"]
    other = run(MIXED, seed=4)
    assert other["transcript_sha256"] != first["transcript_sha256"]


def test_a_broken_expectation_fails_with_its_evidence() -> None:
    text = MIXED.replace("max: {max: 60}", "max: {max: 1}").replace(
        '"GPIO_INT.*in2:1"', '"GPIO_INT.*in3:1"'
    )
    report = run(text)
    assert not report["passed"]
    failed = {e["kind"]: e["evidence"] for e in report["expectations"] if not e["passed"]}
    assert set(failed) == {"serial", "reconnect_s"}
    assert failed["serial"].startswith("5 of 5 units did not: dtu5 matched 2 of 3, stopped before")
    assert "max " in failed["reconnect_s"]
    assert "is not <= 1" in failed["reconnect_s"]


def test_a_wait_that_times_out_is_reported_and_the_run_goes_on() -> None:
    text = MIXED.replace(
        "  - at: 8m\n",
        "  - at: 6m\n    wait: {serial: never-printed, select: tag=x, timeout: 30s}\n  - at: 8m\n",
    )
    report = run(text)
    waits = [e for e in report["expectations"] if e["kind"] == "wait"]
    assert waits == [
        {
            "name": "wait at step 2",
            "kind": "wait",
            "passed": False,
            "evidence": "after 30 s, 5 of 5 units had not reached a serial line "
            "/never-printed/: 5-9",
        }
    ]
    assert not report["passed"]


def test_a_refused_step_fails_the_run_unless_refusals_are_allowed() -> None:
    text = MIXED.replace(
        "fault: sim-pull\n    for: 1m", "fault: slave-offline\n    params: {address: 9}"
    )
    report = run(text)
    assert not report["passed"]
    (step,) = [e for e in report["expectations"] if e["kind"] == "step"]
    assert step["evidence"].startswith(
        "5 of 5 units refused it, first dtu5: no Modbus slave at address 9; present: none"
    )
    allowed = run(
        text.replace("params: {address: 9}", "params: {address: 9}\n    allow_refusal: true")
    )
    assert [e for e in allowed["expectations"] if e["kind"] == "step"] == []
    assert len(allowed["refused"]) == 5


TIMING = """\
name: timing
duration: 2h
units: [{name: a, count: 1}]
steps:
  - at: 0s
    wait: {state: nowhere, timeout: 90m}
  - at: 1h
    note: on time
  - every: 10m
    note: tick
expect: []
"""


def test_every_and_at_steps_keep_their_times_whatever_a_wait_before_them_does() -> None:
    world_notes: list[tuple[float, int]] = []
    scenario = parse_scenario(TIMING, "timing.yaml")
    runner = ScenarioRun(scenario)
    original = runner.world.note

    def note(kind: str, data: dict[str, Any]) -> None:
        if kind == "step":
            world_notes.append((runner.world.clock.now, data["step"]))
        original(kind, data)

    runner.world.note = note  # type: ignore[method-assign]
    runner.run()
    assert (3600.0, 1) in world_notes
    ticks = [at for at, step in world_notes if step == 2]
    assert ticks == [600.0 * n for n in range(13)]


def test_the_progress_tells_each_steps_state_and_each_verdict_as_they_come() -> None:
    text = TIMING.replace(
        "expect: []",
        "expect:\n  - {name: up at 30m, state: {phase: connected, at: 30m}}\n"
        '  - {name: off at the end, state: {phase: "off"}}',
    )
    runner = ScenarioRun(parse_scenario(text, "timing.yaml"))
    told: list[tuple[float, str, object, object]] = []
    runner.progress.listeners.append(
        lambda data: told.append((data["sim_time"], data["what"],
                                  data.get("step", data.get("expectation")),
                                  data.get("state") or data.get("status") or data.get("phase")))
    )  # fmt: skip
    runner.run()
    assert told == [
        (0.0, "step", 2, "running"), (0.0, "step", 0, "running"),
        (1800.0, "expectation", 0, "pass"), (3600.0, "step", 1, "running"),
        (3600.0, "step", 1, "done"), (5400.0, "step", 0, "failed"),
        (7200.0, "phase", None, "grace"), (7200.0, "step", 2, "done"),
        (7230.0, "expectation", 1, "fail"), (7230.0, "phase", None, "finished"),
    ]  # fmt: skip
    view = runner.view()
    assert (view["phase"], view["passed"], view["current"]) == ("finished", False, [])
    steps = [(s["state"], s["runs"], s["started"], s["ended"]) for s in view["steps"]]
    assert steps == [("failed", 1, 0.0, 5400.0), ("done", 1, 3600.0, 3600.0),
                     ("done", 13, 0.0, 7200.0)]  # fmt: skip
    assert view["steps"][0]["what"] == "wait for state nowhere, at most 5400 s"
    assert view["steps"][0]["detail"] == (
        "after 5400 s, 1 of 1 units had not reached state nowhere: 0"
    )
    assert view["steps"][2]["when"] == "every 600 s from 0:00:00"
    assert [(e["status"], e["evidence"]) for e in view["expectations"]] == [
        ("pass", "at 0:30:00: all 1 units are connected"),
        ("fail", "1 of 1 units are not off: dtu0 connected/mqtt-connected"),
    ]


def test_a_refused_step_is_failed_in_the_progress_with_its_first_refusal() -> None:
    text = MIXED.replace(
        "fault: sim-pull\n    for: 1m", "fault: slave-offline\n    params: {address: 9}"
    )
    runner = ScenarioRun(parse_scenario(text, "test.yaml"))
    runner.run()
    step = runner.view()["steps"][1]
    assert (step["state"], step["what"], step["select"]) == (
        "failed",
        "fault slave-offline",
        "tag=x",
    )
    assert step["detail"] == "5 refusals, first dtu5: no Modbus slave at address 9; present: none"


def test_a_wait_sees_the_line_the_step_before_it_caused_at_once() -> None:
    text = MIXED.replace(
        "  - at: 4m\n    select: tag=x\n    fault: sim-pull\n    for: 1m\n",
        "  - at: 4m\n    select: tag=x\n    fault: sim-pull\n    for: 1m\n"
        "  - after: 0s\n    wait: {select: tag=x, serial: mqtt-disconnected, timeout: 1s}\n",
    )
    report = run(text)
    (wait,) = [e for e in report["expectations"] if e["kind"] == "wait"]
    assert wait["passed"], wait


def vdtu(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vdtu.cli", "scenario", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_command_exits_0_1_or_2_and_writes_its_reports(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(MIXED)
    broken = tmp_path / "broken.yaml"
    broken.write_text(MIXED.replace("max: {max: 60}", "max: {max: 1}"))
    bad.write_text(MIXED.replace("duration: 10m", "duration: soon"))
    report, junit, transcript = tmp_path / "r.json", tmp_path / "j.xml", tmp_path / "t.txt"
    passed = vdtu("run", str(good), "--report", str(report), "--junit", str(junit),
                  "--transcript", str(transcript), "--quiet")  # fmt: skip
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert passed.stdout.startswith("mixed fleet, small troubles: PASSED  (10 units")
    document = json.loads(report.read_text())
    assert {
        "passed",
        "seed",
        "units",
        "sim_s",
        "wall_s",
        "expectations",
        "transcript_sha256",
    } <= set(document)
    lines = transcript.read_text().splitlines()
    assert len(lines) == document["events"]
    suite = ElementTree.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("4", "0")
    failed = vdtu("run", str(broken), "--quiet")
    assert failed.returncode == 1
    assert "  FAIL  reconnect_s: max " in failed.stdout
    wrong = vdtu("check", str(bad))
    assert wrong.returncode == 2
    assert wrong.stderr.startswith(f"vdtu: {bad}:3: duration: a duration is")
    assert (
        vdtu("check", str(good))
        .stdout.strip()
        .endswith("mixed fleet, small troubles: 10 units, 3 steps, 4 expectations: valid")
    )


def test_a_groups_options_reach_its_firmware() -> None:
    """A 10 s keep-alive finds a blackhole within about two keep-alives; the default 60 s
    one has not found it 50 s in (at the end and its grace)."""
    text = """\
name: keep-alive
duration: 80s
units:
  - {name: quick, count: 2, options: {keepalive_s: 10}}
  - {name: slow, count: 2}
steps:
  - at: 1m
    fault: link-blackhole
  - after: 0s
    wait: {select: tag=quick, serial: mqtt-disconnected, timeout: 25s}
expect:
  - serial: {select: tag=slow, absent: [mqtt-disconnected]}
"""
    report = run(text)
    assert report["passed"], report["expectations"]


def test_a_state_expectation_can_look_during_the_run() -> None:
    """At 4:30 the pulled SIMs are out (tag x is connecting); at the end all are back."""
    text = MIXED.replace(
        "  - state: {phase: connected}\n",
        "  - state: {phase: connected}\n"
        "  - name: the pulled ones are off the cloud meanwhile\n"
        "    state: {select: tag=x, phase: connecting, at: 270s}\n"
        "  - name: a wrong look during the run fails\n"
        "    state: {select: tag=x, phase: connected, at: 270s}\n",
    )
    outcomes = {e["name"]: e for e in run(text)["expectations"]}
    assert outcomes["the pulled ones are off the cloud meanwhile"]["passed"]
    wrong = outcomes["a wrong look during the run fails"]
    assert not wrong["passed"]
    assert wrong["evidence"].startswith("at 0:04:30: 5 of 5 units are not connected: dtu5 ")


FLASH = """\
name: flash
seed: 2
duration: 2m
units:
  - {name: x, count: 2}
  - {name: q, count: 2, profile: quec}
expect:
  - flash: {select: tag=x, key: project.pid, matches: "^[0-9a-f]{20}$"}
  - flash: {select: tag=q, file: dtu_config.json, key: conf.1.protocol, matches: "^mqtt$"}
  - flash: {select: tag=x, key: project.pid, matches: "^nothing like it$"}
  - flash: {select: tag=x, key: project.phone, matches: "."}
  - flash: {select: tag=x, file: dtu_config.json, matches: "."}
  - flash: {select: tag=q, file: dtu_config.json, key: conf.1, matches: '"port": "1883"'}
"""


def test_a_flash_expectation_reads_the_document_or_a_file_and_fails_with_the_value() -> None:
    outcomes = [(e["passed"], e["evidence"]) for e in run(FLASH)["expectations"]]
    assert outcomes[0] == (True, "all 2 units' flash project.pid matches /^[0-9a-f]{20}$/")
    assert outcomes[1] == (
        True,
        "all 2 units' dtu_config.json conf.1.protocol matches /^mqtt$/",
    )
    assert not outcomes[2][0]
    assert outcomes[2][1].startswith(
        "2 of 2 units' flash project.pid does not match /^nothing like it$/: dtu0 has '"
    )
    assert outcomes[3] == (
        False,
        "2 of 2 units' flash project.phone does not match /./: dtu0 has no project.phone",
    )
    assert outcomes[4] == (
        False,
        "2 of 2 units' dtu_config.json does not match /./: dtu0 has no file dtu_config.json",
    )
    assert outcomes[5][0], outcomes[5]


def test_a_flash_expectation_with_a_bad_key_names_it() -> None:
    text = FLASH.replace("key: project.phone", "key: project..phone")
    with pytest.raises(ScenarioError, match=r"test.yaml:\d+: expect\[3\].flash.key: "):
        parse_scenario(text, "test.yaml")


ROUND_TRIPS = """\
name: round trips
seed: 4
duration: 3m
units:
  - {name: x, count: 3, host: {uplink_every: 30s, jobs: true}}
  - {name: q, count: 2, profile: quec, host: {uplink_every: 30s}}
steps:
  - at: 1m
    select: tag=q
    downlink: '{"msg_id": 1234, "cmd_code": 0, "data": {}}'
  - at: 1m
    select: tag=x
    ota: {version: 2.0.1}
  - at: 80s
    downlink: '{"valve": "open"}'
  - at: 90s
    select: tag=q
    downlink: '{"msg_id": 1235, "cmd_code": 3, "data": {}}'
expect:
  - round_trip_s:
      select: tag=q
      request: downlink
      sent: cmd_code
      topic: /up$
      payload: '"status": 1'
      count: 4
      unanswered: 0
      max: {max: 1}
  - round_trip_s: {select: tag=x, request: ota, topic: /ota/status$, count: 3, p99: {max: 30}}
  - round_trip_s:
      {select: tag=q, request: downlink, topic: /up$, payload: '"status"', unanswered: 0}
  - round_trip_s: {select: tag=x, request: config, topic: /config/status$, p50: {max: 5}}
"""


def test_a_round_trip_expectation_times_each_request_to_its_answer() -> None:
    outcomes = [(e["passed"], e["evidence"]) for e in run(ROUND_TRIPS)["expectations"]]
    assert outcomes[0] == (
        True,
        "4 downlink requests answered on //up$/; count 4, unanswered 0, p50 0.04, p99 0.04, "
        "max 0.04",
    )
    assert outcomes[1][0], outcomes[1]
    assert outcomes[1][1].startswith("3 ota requests answered on //ota/status$/; count 3")
    # the valve downlink is a request too, and a QuecPython DTU in command mode only passes
    # it to its host: without `sent`, it waits for an answer that never comes
    assert outcomes[2][0] is False
    assert outcomes[2][1].startswith("unanswered 2 is not in 0..0 (4 downlink requests answered")
    assert outcomes[3] == (
        False,
        "no config requests answered on //config/status$/, so there is no p50",
    )


CONFIGURED = """\
name: configured QuecPython units
seed: 6
duration: 3m
units:
  - name: short
    count: 2
    profile: quec
    config: {conf: {"1": {keepAlive: "10"}}}
    host: {uplink_every: 20s}
  - name: default
    count: 2
    profile: quec
    host: {uplink_every: 20s}
steps:
  - at: 1m
    fault: link-blackhole
    for: 45s
expect:
  - name: the 10 s keep-alive found the blackhole within 20 s and waited out the rest
    reconnect_s: {select: tag=short, count: 2, p50: {min: 25}, max: {max: 45}}
  - name: the default one (60 s) did not, and met the reset after the clear
    reconnect_s: {select: tag=default, count: 2, max: {max: 15}}
  - flash: {select: tag=short, file: dtu_config.json, key: conf.1.keepAlive, matches: "^10$"}
  - flash: {select: tag=default, file: dtu_config.json, key: conf.1.keepAlive, matches: "^$"}
  - uplinks: {lost: 0, duplicated: 0}
"""


def test_a_groups_config_changes_its_units_dtu_config_json() -> None:
    report = run(CONFIGURED)
    assert report["passed"], report["expectations"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            '{conf: {"1": {keepAlive: "abc"}}}',
            "test.yaml:8: units[0].config: dtu_config.json: conf.1.keepAlive must be an integer",
        ),
        (
            "{work_mode: sideways}",
            "test.yaml:8: units[0].config: dtu_config.json: work_mode must be one of",
        ),
    ],
)
def test_a_bad_config_change_is_refused_with_its_field(change: str, message: str) -> None:
    text = CONFIGURED.replace('{conf: {"1": {keepAlive: "10"}}}', change)
    with pytest.raises(ScenarioError) as raised:
        parse_scenario(text, "test.yaml")
    assert message in str(raised.value)


def test_an_xgc_group_has_no_config_file() -> None:
    text = CONFIGURED.replace("    profile: quec\n    config", "    profile: xgc\n    config", 1)
    with pytest.raises(ScenarioError, match="an XGC unit keeps no configuration file"):
        parse_scenario(text, "test.yaml")
