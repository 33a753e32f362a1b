"""The fault catalogue: names, parameters and durations are checked, with messages that say why."""

from __future__ import annotations

import pytest

from vdtu.faults.catalogue import (
    CATALOGUE,
    MAX_DURATION_S,
    FaultError,
    Scope,
    parse_assignments,
    parse_request,
)
from vdtu.faults.effects import EFFECTS

ISSUE_KINDS = [
    "signal",
    "coverage-loss",
    "reg-reject",
    "roaming",
    "pdp-reject",
    "pdp-drop",
    "dns-fail",
    "modem-hang",
    "modem-reboot",
    "sim-pull",
    "sim-swap",
    "sim-pin-lock",
    "sim-puk-block",
    "sim-no-data",
    "link-latency",
    "link-bandwidth",
    "link-blackhole",
    "link-reset",
    "link-connect-timeout",
    "platform-refuse",
    "platform-slow",
    "broker-stop",
    "power-cut",
    "brown-out",
    "battery-drain",
    "vbus-off",
    "slave-offline",
    "slave-slow",
    "slave-crc",
    "slave-exception",
    "bus-noise",
    "host-garbage",
    "host-drop",
    "host-baud",
    "input-pulse",
    "input-bounce",
    "relay-stuck",
]


def test_the_catalogue_has_every_kind_the_issue_names() -> None:
    assert set(ISSUE_KINDS) <= set(CATALOGUE)


def test_every_unit_kind_has_an_effect_and_every_condition_a_clear() -> None:
    for name, kind in CATALOGUE.items():
        if kind.scope is Scope.FLEET:
            assert name not in EFFECTS
            continue
        assert name in EFFECTS, f"{name} has no effect on a unit"
        assert (EFFECTS[name].clear is None) == kind.one_shot, name


def test_a_request_gets_its_defaults_and_typed_values() -> None:
    request = parse_request("signal", {"csq": "5"}, "30")
    assert request.params == {"csq": 5, "over": 0.0}
    assert request.for_s == 30.0
    assert parse_request("link-latency", {"ms": 200, "jitter": "50"}).params == {
        "ms": 200.0,
        "jitter": 50.0,
    }


@pytest.mark.parametrize(
    ("kind", "params", "for_s", "message"),
    [
        ("bogus", {}, None, "unknown fault kind 'bogus'; the kinds are: signal, "),
        (
            "signal",
            {},
            None,
            "signal needs csq= (the target level (CSQ 0..31): an integer in 0..31)",
        ),
        ("signal", {"csq": "32"}, None, "signal: csq must be an integer in 0..31, not '32'"),
        ("signal", {"csq": "x"}, None, "csq must be an integer in 0..31, not 'x'"),
        ("signal", {"csq": True}, None, "csq must be an integer in 0..31, not True"),
        (
            "signal",
            {"csq": 5, "dbm": 3},
            None,
            "signal has no parameter 'dbm'; its parameters: csq, over",
        ),
        ("reg-reject", {"cause": 4}, None, "cause must be one of 3, 7, 11, 13, 15, 22, not 4"),
        ("modem-reboot", {}, 10, "modem-reboot is a one-shot event: it takes no duration"),
        ("roaming", {}, 0, "must be a number of seconds in 0..2.592e+06 (> 0), not 0"),
        ("roaming", {}, "soon", "not 'soon'"),
        ("roaming", {}, MAX_DURATION_S * 2, "not 5184000"),
        ("link-latency", {"ms": "nan"}, None, "ms must be a number in 0..60000, not 'nan'"),
        (
            "host-garbage",
            {"port": "usb"},
            None,
            "port must be one of uart, rs232, rs485, not 'usb'",
        ),
    ],
)
def test_a_bad_request_is_refused_naming_what_is_wrong(
    kind: str, params: dict[str, object], for_s: object, message: str
) -> None:
    with pytest.raises(FaultError) as raised:
        parse_request(kind, params, for_s)
    assert message in str(raised.value)


def test_assignments_are_name_equals_value_once_each() -> None:
    assert parse_assignments(["csq=5", "over=", "text=a=b"]) == {
        "csq": "5",
        "over": "",
        "text": "a=b",
    }
    with pytest.raises(FaultError, match="expected NAME=VALUE, not 'csq'"):
        parse_assignments(["csq"])
    with pytest.raises(FaultError, match="csq= is given twice"):
        parse_assignments(["csq=1", "csq=2"])
