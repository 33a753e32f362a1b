"""Relay outputs and opto inputs."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from vdtu.clock import VirtualClock
from vdtu.io.gpio import Gpio


@pytest.fixture
def gpio() -> Gpio:
    return Gpio(VirtualClock().env)


def watch(gpio: Gpio) -> list[tuple[str, int]]:
    log: list[tuple[str, int]] = []
    gpio.on_input_change += (lambda name, level: log.append((name, level)),)
    return log


def test_default_unit_has_eight_of_each_all_low(gpio: Gpio) -> None:
    """The default unit has out1..out8 and in1..in8, all at 0."""
    assert gpio.output_levels() == {f"out{i}": 0 for i in range(1, 9)}
    assert gpio.input_levels() == {f"in{i}": 0 for i in range(1, 9)}


def test_set_output_switches_one_relay(gpio: Gpio) -> None:
    """set_output changes exactly the named relay."""
    gpio.set_output(3, 1)
    assert gpio.output_levels()["out3"] == 1
    assert sum(gpio.output_levels().values()) == 1


def test_input_change_notifies_listeners_once(gpio: Gpio) -> None:
    """A change fires ("in1", 1); setting the same level again fires nothing."""
    log = watch(gpio)
    gpio.set_input(1, 1)
    gpio.set_input(1, 1)
    gpio.set_input(1, 0)
    assert log == [("in1", 1), ("in1", 0)]


def test_initial_input_levels(gpio: Gpio) -> None:
    """input_levels at construction set the inputs without notifying anyone."""
    board = Gpio(VirtualClock().env, outputs=2, inputs=3, input_levels={2: 1})
    assert board.input_levels() == {"in1": 0, "in2": 1, "in3": 0}
    assert board.output_levels() == {"out1": 0, "out2": 0}


def test_reset_drops_relays_and_keeps_inputs(gpio: Gpio) -> None:
    """A power cycle opens every relay; inputs keep the level the outside world gives them."""
    gpio.set_output(1, 1)
    gpio.set_output(8, 1)
    gpio.set_input(4, 1)
    log = watch(gpio)
    gpio.reset()
    assert set(gpio.output_levels().values()) == {0}
    assert gpio.input_levels()["in4"] == 1
    assert log == []


@pytest.mark.parametrize(
    ("name", "present"),
    [
        ("out1", True),
        ("out2", True),
        ("out3", False),
        ("in1", True),
        ("in2", False),
        ("in0", False),
        ("out01", False),
        ("in", False),
        ("relay1", False),
        ("out-1", False),
    ],
)
def test_has_names_only_existing_pins(name: str, present: bool) -> None:
    """has() is true exactly for out1..outN and in1..inN."""
    assert Gpio(VirtualClock().env, outputs=2, inputs=1).has(name) is present


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda g: g.set_output(9, 1), "output index must be 1..8, not 9"),
        (lambda g: g.set_output(0, 1), "output index must be 1..8, not 0"),
        (lambda g: g.set_input(9, 0), "input index must be 1..8, not 9"),
        (lambda g: g.set_output(1, 2), "out1 level must be 0 or 1, not 2"),
        (lambda g: g.set_input(2, -1), "in2 level must be 0 or 1, not -1"),
    ],
)
def test_bad_index_or_level_names_the_range(
    call: Callable[[Gpio], None], message: str, gpio: Gpio
) -> None:
    """An index that does not exist or a level other than 0/1 raises ValueError with the range."""
    with pytest.raises(ValueError, match=re.escape(message)):
        call(gpio)


def test_unit_without_relays() -> None:
    """A unit with no relays says so when asked to switch one."""
    board = Gpio(VirtualClock().env, outputs=0, inputs=2)
    assert board.output_levels() == {}
    with pytest.raises(ValueError, match="this unit has no outputs, so output 1 does not exist"):
        board.set_output(1, 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"outputs": 9}, "outputs must be 0..8, not 9"),
        ({"inputs": -1}, "inputs must be 0..8, not -1"),
        ({"inputs": 2, "input_levels": {3: 1}}, "input index must be 1..2, not 3"),
        ({"input_levels": {1: 5}}, "in1 level must be 0 or 1, not 5"),
    ],
)
def test_bad_construction(kwargs: dict[str, Any], message: str) -> None:
    """Counts outside 0..8 and bad initial levels are refused with the allowed range."""
    with pytest.raises(ValueError, match=re.escape(message)):
        Gpio(VirtualClock().env, **kwargs)


def test_snapshot_is_a_copy(gpio: Gpio) -> None:
    """A snapshot keeps the levels of the moment it was taken."""
    gpio.set_output(2, 1)
    snap = gpio.snapshot()
    gpio.set_output(2, 0)
    assert snap.outputs["out2"] == 1
    assert snap.inputs == gpio.input_levels()
