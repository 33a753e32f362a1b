"""Scenario files: a bad one is refused with every problem's line and field, a good one loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from vdtu.durations import parse_duration, parse_rate
from vdtu.scenario.load import ScenarioError, load_scenario, parse_scenario

BAD = """\
name: test
duration: 10x
units:
  - name: a
    count: 0
    profile: foo
  - name: b
    count: 2
    host: {uplink_every: 1m, colour: red}
steps:
  - at: 5m
    fault: signal
    params: {csq: 99}
  - at: 1m
    after: 2m
    poke: input
  - at: 2m
    select: "dtu1"
    fault: roaming
  - at: 3m
    wait: {state: connected}
expect:
  - uplinks: {lost: 0}
    state: {phase: connected}
  - serial: {sequence: ["(unclosed"]}
"""


def test_every_problem_is_named_with_its_line_and_field() -> None:
    with pytest.raises(ScenarioError) as raised:
        parse_scenario(BAD, "bad.yaml")
    assert str(raised.value).splitlines() == [
        "bad.yaml:2: duration: a duration is a number of seconds or text like 250ms, 90s, 5m, "
        "4m30s, 2h, 1d; not '10x'",
        "bad.yaml:5: units[0].count: Input should be greater than or equal to 1",
        "bad.yaml:6: units[0].profile: profile must be one of xgc, quec, not 'foo'",
        "bad.yaml:9: units[1].host.colour: Extra inputs are not permitted",
        "bad.yaml:11: steps[0]: signal: csq must be an integer in 0..31, not 99",
        "bad.yaml:14: steps[1]: a step needs exactly one of at, after, every; got ['at', 'after']",
        "bad.yaml:18: steps[2].select: bad selector term 'dtu1': a term is a unit id (7), a "
        "range (0-99), an IMEI (15 digits), all, profile=NAME, state=STATE, tag=TAG (NAME=A|B: "
        "either, NAME!=A: not) or "
        "random=PERCENT%[:SEED]",
        "bad.yaml:21: steps[3].wait.timeout: Field required",
        "bad.yaml:23: expect[0]: an expectation checks exactly one of uplinks, state, serial, "
        "reconnect_s, cloud, flash, round_trip_s; got ['uplinks', 'state']",
        "bad.yaml:25: expect[1].serial: '(unclosed' is not a regular expression: "
        "missing ), unterminated subpattern at position 0",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: [unclosed\n", "x.yaml:2: not valid YAML: expected ',' or ']'"),
        ("- a list\n", "x.yaml:1: a scenario is a mapping"),
        ("name: n\nduration: 1m\nunits: []\n", "units: give at least one unit group"),
        (
            "name: n\nduration: 1m\nunits: [{name: a, count: 1}, {name: a, count: 1}]\n",
            "unit group names must differ: a",
        ),
        (
            "name: n\nduration: 1m\nunits: [{name: a, count: 1}]\n"
            "steps: [{at: 1s, poke: input, params: {index: 9, level: 1}}]\n",
            "steps[0]: input: index must be an integer in 1..8, not 9",
        ),
        (
            "name: n\nduration: 1m\nunits: [{name: a, count: 1}]\n"
            "steps: [{at: 1s, clear: all, for: 5s}]\n",
            "steps[0]: for goes with a fault",
        ),
    ],
)
def test_a_bad_file_gets_a_specific_error(text: str, message: str) -> None:
    with pytest.raises(ScenarioError) as raised:
        parse_scenario(text, "x.yaml")
    assert message in str(raised.value)


def test_a_missing_or_huge_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="No such file"):
        load_scenario(tmp_path / "none.yaml")
    huge = tmp_path / "huge.yaml"
    huge.write_bytes(b"#" * (1 << 20 + 1))
    with pytest.raises(ScenarioError, match="a scenario file is at most 1 MiB"):
        load_scenario(huge)


def test_durations_and_rates_read_as_people_write_them() -> None:
    assert [parse_duration(v) for v in (90, "90s", "5m", "1.5h", "250ms", "2d", "4m30s")] == [
        90.0,
        90.0,
        300.0,
        5400.0,
        0.25,
        172800.0,
        270.0,
    ]
    assert [parse_rate(v) for v in ("50/s", "600/m", "36/h", 2)] == [50.0, 10.0, 0.01, 2.0]
    for bad in ("5 minutes", "-1s", True, "31d"):
        with pytest.raises(ValueError, match="duration"):
            parse_duration(bad)
    with pytest.raises(ValueError, match="rate"):
        parse_rate("0/s")


def test_every_example_in_scenarios_is_valid() -> None:
    examples = sorted(Path(__file__).parents[2].joinpath("scenarios").glob("*.yaml"))
    assert examples
    for path in examples:
        load_scenario(path)


def test_a_groups_firmware_options_are_checked_with_their_line() -> None:
    text = (
        "name: n\nduration: 1m\nunits:\n  - name: a\n    count: 1\n    options: {keepalive_s: 5}\n"
    )
    with pytest.raises(ScenarioError) as raised:
        parse_scenario(text, "o.yaml")
    assert str(raised.value) == (
        "o.yaml:4: units[0]: options: keepalive_s must be 0 (off) or 10..65535, not 5"
    )
    text = text.replace("keepalive_s: 5", "check_mode: loose")
    with pytest.raises(ScenarioError, match="check_mode must be one of strict, warn, off"):
        parse_scenario(text, "o.yaml")
