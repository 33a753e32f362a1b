"""Selectors pick units by id, range, IMEI, profile, state, tag and a seeded random fraction."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from vdtu.control.selector import SelectorError, describe_ids, parse_selector


@dataclass(frozen=True)
class Facts:
    unit_id: int
    imei: str
    profile: str
    states: tuple[str, ...]
    tags: tuple[str, ...]


UNITS = [
    Facts(
        i,
        f"8674350598{i:05d}",
        "xgc" if i % 2 == 0 else "quec",
        ("connected", "mqtt-connected") if i < 50 else ("connecting", "mqtt-disconnected"),
        ("north",) if i < 10 else (),
    )
    for i in range(100)
]


def ids(text: str, seed: int = 0) -> list[int]:
    return [unit.unit_id for unit in parse_selector(text).pick(UNITS, fleet_seed=seed)]


def test_ids_ranges_and_imeis_add_up() -> None:
    assert ids("3") == [3]
    assert ids("0-4,7,95-200") == [0, 1, 2, 3, 4, 7, 95, 96, 97, 98, 99]
    assert ids("867435059800042") == [42]
    assert len(ids("all")) == 100


def test_filters_narrow_the_named_units_or_the_whole_fleet() -> None:
    assert ids("0-5,profile=quec") == [1, 3, 5]
    assert ids("tag=north,profile=xgc") == [0, 2, 4, 6, 8]
    assert ids("state=MQTT-DISCONNECTED") == list(range(50, 100))
    assert ids("state=connected,98-99") == []


def test_a_filter_takes_alternatives_and_can_be_turned_round() -> None:
    assert ids("0-9,tag=north|south,profile=quec") == [1, 3, 5, 7, 9]
    assert ids("0-5,profile=xgc|quec") == [0, 1, 2, 3, 4, 5]
    assert ids("tag!=north,0-11") == [10, 11]
    assert ids("state!=Connected|connecting") == []
    assert ids("45-55,state!=connected") == list(range(50, 56))
    quec_tenth = ids("profile!=xgc,random=10%")
    assert len(quec_tenth) == 5
    assert all(unit_id % 2 == 1 for unit_id in quec_tenth)
    assert parse_selector("state!=connected").reads_states
    assert not parse_selector("tag=a|b").reads_states


def test_a_random_fraction_is_the_same_for_the_same_seed() -> None:
    first = ids("random=10%")
    assert len(first) == 10
    assert ids("random=10%") == first
    assert ids("random=10%:7") != first
    assert ids("random=10%:7") == ids("random=10%:7", seed=99)
    assert ids("random=10%", seed=1) != first
    assert set(ids("profile=quec,random=50%")) <= {u.unit_id for u in UNITS if u.profile == "quec"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "a selector is 1..1000 characters"),
        ("9-3", "range '9-3' runs backwards; write 3-9"),
        ("colour=red", "bad selector term 'colour=red'"),
        ("dtu3", "bad selector term 'dtu3'"),
        ("random=0%", "random=0% is not a percentage in (0, 100]"),
        ("random=150%", "is not a percentage"),
        ("random=5%,random=6%", "random= is given twice"),
        ("profile=", "bad selector term 'profile='"),
        ("tag=a|", "bad selector term 'tag=a|'"),
        ("random!=5%", "bad selector term 'random!=5%'"),
        ("tag!!=a", "bad selector term 'tag!!=a'"),
    ],
)
def test_a_bad_selector_is_refused_naming_the_term(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as raised:
        parse_selector(text)
    assert message in str(raised.value)


def test_ids_are_described_as_ranges() -> None:
    assert describe_ids([5, 0, 1, 2, 9, 10]) == "0-2, 5, 9-10"
    assert describe_ids([]) == "none"
