"""The DTU's digital I/O: relay outputs ``out1..outN`` and opto-isolated inputs ``in1..inN``.

How it works: outputs are driven by the firmware (``SET_GPIO``); inputs are
driven by the outside world (a scenario, the dashboard, a test) through
``set_input``, and every real change of an input level is announced to the
``on_input_change`` listeners (the firmware turns it into ``GPIO_INT``).

Invariants: levels are 0 or 1; indices are 1-based as on the terminal block;
a unit has 0..8 of each. Setting an input to the level it already has is not
a change and announces nothing. A power cycle (``reset``) drops every relay
(their coils lose power); inputs keep their level, since they belong to
whatever is wired to them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import simpy

MAX_PINS = 8
"""The most relays and the most inputs an XGC unit has."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GpioSnapshot:
    """A copy of every pin level."""

    outputs: dict[str, int]
    """``{"out1": 0, ...}``."""
    inputs: dict[str, int]
    """``{"in1": 1, ...}``."""


def _check_level(name: str, level: int) -> None:
    if isinstance(level, bool) or level not in (0, 1):
        raise ValueError(f"{name} level must be 0 or 1, not {level!r}")


def _check_index(kind: str, index: int, count: int) -> None:
    if count == 0:
        raise ValueError(f"this unit has no {kind}s, so {kind} {index!r} does not exist")
    if isinstance(index, bool) or not 1 <= index <= count:
        raise ValueError(f"{kind} index must be 1..{count}, not {index!r}")


class Gpio:
    """Relay outputs and opto inputs.

    Args:
        env: the SimPy environment (the common model interface; levels change
            only when called, so no process runs).
        outputs: number of relays, 0..8 (``out1``..).
        inputs: number of opto inputs, 0..8 (``in1``..).
        input_levels: initial input levels by index (1-based), default all 0.

    Raises:
        ValueError: a count outside 0..8, an index that does not exist or a
            level other than 0/1 in ``input_levels``.
    """

    __slots__ = ("_inputs", "_outputs", "env", "on_input_change")

    def __init__(
        self,
        env: simpy.Environment,
        *,
        outputs: int = MAX_PINS,
        inputs: int = MAX_PINS,
        input_levels: Mapping[int, int] | None = None,
    ) -> None:
        for name, count in (("outputs", outputs), ("inputs", inputs)):
            if isinstance(count, bool) or not 0 <= count <= MAX_PINS:
                raise ValueError(f"{name} must be 0..{MAX_PINS}, not {count!r}")
        self.env = env
        self.on_input_change: list[Callable[[str, int], None]] = []
        """Called as ``listener("in3", 1)`` when an input changes level."""
        self._outputs = [0] * outputs
        self._inputs = [0] * inputs
        for index, level in (input_levels or {}).items():
            _check_index("input", index, inputs)
            _check_level(f"in{index}", level)
            self._inputs[index - 1] = level

    def set_output(self, index: int, level: int) -> None:
        """Switch relay ``out<index>`` to ``level`` (0 or 1).

        Raises:
            ValueError: no such relay, or a level other than 0/1.
        """
        _check_index("output", index, len(self._outputs))
        _check_level(f"out{index}", level)
        self._outputs[index - 1] = level

    def set_input(self, index: int, level: int) -> None:
        """Drive opto input ``in<index>`` from outside; a change notifies the listeners.

        Raises:
            ValueError: no such input, or a level other than 0/1.
        """
        _check_index("input", index, len(self._inputs))
        _check_level(f"in{index}", level)
        if self._inputs[index - 1] == level:
            return
        self._inputs[index - 1] = level
        for listener in tuple(self.on_input_change):
            listener(f"in{index}", level)

    def output_levels(self) -> dict[str, int]:
        """``{"out1": level, ...}`` for every relay."""
        return {f"out{index}": level for index, level in enumerate(self._outputs, start=1)}

    def input_levels(self) -> dict[str, int]:
        """``{"in1": level, ...}`` for every input."""
        return {f"in{index}": level for index, level in enumerate(self._inputs, start=1)}

    def has(self, name: str) -> bool:
        """True if this unit has the pin called ``name`` (``out3``, ``in8``)."""
        for prefix, levels in (("out", self._outputs), ("in", self._inputs)):
            number = name.removeprefix(prefix)
            if number != name and number.isdigit() and not number.startswith("0"):
                return 1 <= int(number) <= len(levels)
        return False

    def reset(self) -> None:
        """Power cycle: every relay drops to 0; inputs keep their level."""
        self._outputs = [0] * len(self._outputs)

    def snapshot(self) -> GpioSnapshot:
        """A copy of every pin level."""
        return GpioSnapshot(outputs=self.output_levels(), inputs=self.input_levels())
