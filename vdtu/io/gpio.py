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

Faults (their record lives in the ``_faults`` slot, None on healthy GPIO):

* ``pulse_input``: a train of ``count`` pulses of ``width_ms`` every ``period_ms``,
  away from the input's level and back; ``bounce_input``: a change to ``level``
  with contact bounce, ``bounces`` times back and forth, the edges evenly spaced
  over ``ms`` (a deterministic model of a bouncing contact; a real one's gaps are
  irregular), ending at ``level``. Both are one-shot: each edge is a real change
  announced to the listeners like any ``set_input``. ``stop_input_fault`` ends a
  train or a bounce early (a pulse train's input goes back to its level before the
  train, a bounce settles at its level). They are SimPy timers of the unit: a
  power cycle of the unit does not stop them (the input belongs to the outside).
* ``stick_relay``: the relay's contact stays at ``level`` whatever its coil is
  told (welded or burnt). The firmware's ``set_output`` is accepted and
  ``output_levels`` (what the firmware reads back: the coil it drives) follows
  it; ``contact_levels`` and the snapshot's ``contacts`` show the contact. It
  is mechanical, so it outlasts a power cycle, until ``unstick_relay``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vdtu.checks import check_choice, check_int, check_number

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
    contacts: dict[str, int] = field(default_factory=dict)
    """What each relay's contact actually does (``outputs`` is what its coil is told);
    they differ only for a stuck relay."""


MAX_PULSES = 1000
MAX_BOUNCES = 50


class _GpioFaults:
    """The faults of one unit's GPIO (see the module docstring)."""

    __slots__ = ("next_token", "stuck", "trains")

    def __init__(self) -> None:
        self.stuck: dict[int, int] = {}
        """Stuck relays: index -> the level their contact stays at."""
        self.trains: dict[int, tuple[int, int]] = {}
        """Inputs with a pulse train or bounce running: index -> (token, level to end at)."""
        self.next_token = 0

    @property
    def idle(self) -> bool:
        return not self.stuck and not self.trains


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

    __slots__ = ("_faults", "_inputs", "_outputs", "env", "on_input_change")

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
        self.on_input_change: tuple[Callable[[str, int], None], ...] = ()
        """Called as ``listener("in3", 1)`` when an input changes level."""
        self._outputs = [0] * outputs
        """What each relay's coil is told (what the firmware drives and reads back)."""
        self._inputs = [0] * inputs
        self._faults: _GpioFaults | None = None
        """Stuck relays and running pulse trains; None while healthy."""
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
        for listener in self.on_input_change:
            listener(f"in{index}", level)

    def output_levels(self) -> dict[str, int]:
        """``{"out1": level, ...}`` for every relay."""
        return {f"out{index}": level for index, level in enumerate(self._outputs, start=1)}

    def contact_levels(self) -> dict[str, int]:
        """``{"out1": level, ...}``: what each relay's contact does (a stuck one ignores its
        coil)."""
        levels = self.output_levels()
        if self._faults is not None:
            for index, level in self._faults.stuck.items():
                levels[f"out{index}"] = level
        return levels

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
        """A copy of every pin level: coils, contacts and inputs."""
        return GpioSnapshot(
            outputs=self.output_levels(),
            inputs=self.input_levels(),
            contacts=self.contact_levels(),
        )

    def faults_snapshot(self) -> dict[str, Any] | None:
        """The active faults, JSON-able (``stuck`` relays, inputs with a ``running`` train),
        or None while healthy."""
        faults = self._faults
        if faults is None:
            return None
        return {
            "stuck": {f"out{index}": level for index, level in sorted(faults.stuck.items())},
            "running": sorted(f"in{index}" for index in faults.trains),
        }

    # -- faults ---------------------------------------------------------------------------------

    def stick_relay(self, index: int, level: int) -> None:
        """The relay-stuck fault: ``out<index>``'s contact stays at ``level`` (0 or 1).

        Raises:
            ValueError: no such relay, or a level other than 0/1.
        """
        _check_index("output", index, len(self._outputs))
        check_choice("level", level, (0, 1))
        self._ensure_faults().stuck[index] = level

    def unstick_relay(self, index: int) -> None:
        """The contact of ``out<index>`` follows its coil again.

        Raises:
            ValueError: no such relay.
        """
        _check_index("output", index, len(self._outputs))
        if self._faults is not None:
            self._faults.stuck.pop(index, None)
            self._drop_idle_faults()

    def pulse_input(
        self, index: int, *, width_ms: float, count: int = 1, period_ms: float | None = None
    ) -> None:
        """The input-pulse fault (one-shot): ``count`` pulses on ``in<index>``.

        Each pulse takes the input away from the level it has now for ``width_ms`` and
        back; pulses start every ``period_ms``. Every edge is announced as a change.
        A train already running on the input is replaced.

        Args:
            index: the input, 1..inputs.
            width_ms: each pulse's width, 1..60000 ms.
            count: how many pulses, 1..1000.
            period_ms: from one pulse's start to the next, 2..600000 and, when ``count``
                > 1, more than ``width_ms`` (default twice the width).

        Raises:
            ValueError: any value out of range (nothing is started).
        """
        _check_index("input", index, len(self._inputs))
        width = check_number("width_ms", width_ms, 1.0, 60_000.0)
        pulses = check_int("count", count, 1, MAX_PULSES)
        period = (
            2 * width if period_ms is None else check_number("period_ms", period_ms, 2.0, 600_000.0)
        )
        if pulses > 1 and not period > width:
            raise ValueError(f"period_ms must be more than width_ms ({width:g}), not {period_ms!r}")
        base = self._inputs[index - 1]
        token = self._start_train(index, base)
        self.env.process(
            self._pulsing(
                index, token, base=base, width_s=width / 1000, count=pulses, period_s=period / 1000
            )
        )

    def bounce_input(self, index: int, level: int, *, bounces: int = 4, ms: float = 10.0) -> None:
        """The input-bounce fault (one-shot): ``in<index>`` changes to ``level`` with bounce.

        The input goes to ``level``, back, and so on ``bounces`` times, then stays at
        ``level``: ``2 * bounces + 1`` edges, evenly spaced over ``ms``, each announced.
        An input already at ``level`` does not move (a closed contact does not bounce).
        A train already running on the input is replaced.

        Args:
            index: the input, 1..inputs.
            level: where it settles, 0 or 1.
            bounces: extra back-and-forth pairs, 1..50.
            ms: from the first edge to the last, 0.1..1000 ms.

        Raises:
            ValueError: any value out of range (nothing is started).
        """
        _check_index("input", index, len(self._inputs))
        check_choice("level", level, (0, 1))
        edges = 2 * check_int("bounces", bounces, 1, MAX_BOUNCES) + 1
        span_s = check_number("ms", ms, 0.1, 1000.0) / 1000
        if self._inputs[index - 1] == level and (
            self._faults is None or index not in self._faults.trains
        ):
            return
        token = self._start_train(index, level)
        self.env.process(self._bouncing(index, token, level, edges, span_s / (edges - 1)))

    def stop_input_fault(self, index: int) -> None:
        """End a pulse train or bounce on ``in<index>`` now: the input goes to the level it
        would end at (a train's level before it started, a bounce's settled level).

        Raises:
            ValueError: no such input.
        """
        _check_index("input", index, len(self._inputs))
        faults = self._faults
        if faults is None or index not in faults.trains:
            return
        _token, end_level = faults.trains.pop(index)
        self._drop_idle_faults()
        self.set_input(index, end_level)

    def _ensure_faults(self) -> _GpioFaults:
        if self._faults is None:
            self._faults = _GpioFaults()
        return self._faults

    def _drop_idle_faults(self) -> None:
        if self._faults is not None and self._faults.idle:
            self._faults = None

    def _start_train(self, index: int, end_level: int) -> int:
        faults = self._ensure_faults()
        faults.next_token += 1
        faults.trains[index] = (faults.next_token, end_level)
        return faults.next_token

    def _running(self, index: int, token: int) -> bool:
        faults = self._faults
        return faults is not None and faults.trains.get(index, (0, 0))[0] == token

    def _finish_train(self, index: int, token: int) -> None:
        if self._running(index, token) and self._faults is not None:
            del self._faults.trains[index]
            self._drop_idle_faults()

    def _pulsing(
        self, index: int, token: int, *, base: int, width_s: float, count: int, period_s: float
    ) -> Generator[simpy.Event, Any, None]:
        """Process: ``count`` pulses away from ``base`` (stops when the train is replaced)."""
        for pulse in range(count):
            if pulse:
                yield self.env.timeout(period_s - width_s)
            if not self._running(index, token):
                return
            self.set_input(index, 1 - base)
            yield self.env.timeout(width_s)
            if not self._running(index, token):
                return
            self.set_input(index, base)
        self._finish_train(index, token)

    def _bouncing(
        self, index: int, token: int, level: int, edges: int, gap_s: float
    ) -> Generator[simpy.Event, Any, None]:
        """Process: ``edges`` alternating edges ``gap_s`` apart, the first and last to ``level``."""
        for edge in range(edges):
            if edge:
                yield self.env.timeout(gap_s)
            if not self._running(index, token):
                return
            self.set_input(index, level if edge % 2 == 0 else 1 - level)
        self._finish_train(index, token)
