"""How many units are up over a load run: a rate, or k6-like stages (pure).

``--ramp`` is either a rate (``100``, ``100/s``, ``600/m``: units powered on per second
until every unit is up) or a list of stages, each a duration and the number of units
up at its end: ``30s:1000,1m:1000,10s:5000,30s:5000,20s:0`` ramps to 1000 units in
30 s, holds them a minute, spikes to 5000 in 10 s, holds, then drops to none in 20 s.
In YAML the stages may also be a list of ``"30s:1000"`` strings or of
``{duration: 30s, target: 1000}`` mappings. Within a stage the count moves one unit at a
time, evenly spaced, the last change at the stage's end, so the count at a stage's end is
its target (a rate R is the one stage ``N/R s : N``: the k-th unit is powered on k/R s
after the start); a stage of ``0s`` jumps at once.

Targets are counts of the whole fleet; ``--units`` is the fleet at its peak (the
highest target must equal it). A shard of ``n`` takes its share of each target the way
it takes its block of units (``Shard.block``), so the shards' counts add up to the target
at every stage end. A rate stays a rate per process, as it always was.

``Schedule`` is one process's count over time: ``count_at(t)`` and ``next_change(t)``,
in seconds from the start of the ramp; the runner powers units on (lowest fleet id first)
or off (highest first) to follow it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from vdtu.durations import parse_duration, parse_rate
from vdtu.errors import ConfigError

MAX_STAGES = 1000
FORMS = (
    "a rate of units powered on per second (100, 100/s, 600/m) or stages "
    "DURATION:TARGET,... (30s:1000,1m:1000,10s:0)"
)
_EPSILON = 1e-9
_NUMBER = re.compile(r"\s*\d+(?:\.\d*)?\s*")
_STAGE = re.compile(r"\s*([^:,]+?)\s*:\s*([^:,]+?)\s*")


class RampError(ConfigError):
    """A ``--ramp`` value that is neither a rate nor a list of stages."""


@dataclass(frozen=True, slots=True)
class Stage:
    """Over ``duration_s`` seconds, move to ``target`` units up."""

    duration_s: float
    target: int

    def __str__(self) -> str:
        return f"{_plain(self.duration_s)}s:{self.target}"


Ramp = float | tuple[Stage, ...]
"""A rate (units per second) or stages."""


def parse_ramp(value: object) -> Ramp:
    """A rate or stages from a flag's text, a YAML number, string or list (see the module
    comment).

    Raises:
        RampError: naming ``ramp``, the stage at fault and the allowed forms.
    """
    if isinstance(value, str) and ":" in value:
        return _stages([part for part in value.split(",") if part.strip()] or [value])
    if isinstance(value, list | tuple):
        return _stages(value)
    try:
        return parse_rate(_number(value))
    except ValueError:
        raise RampError(f"ramp must be {FORMS}, not {value!r}") from None


def ramp_text(ramp: Ramp) -> str:
    """The ``--ramp`` text that ``parse_ramp`` reads back as ``ramp``."""
    if isinstance(ramp, tuple):
        return ",".join(str(stage) for stage in ramp)
    return _plain(ramp)


def _number(value: object) -> object:
    """A number written as text (``"250"``, a flag's value) as a float; anything else as is."""
    return float(value) if isinstance(value, str) and _NUMBER.fullmatch(value) else value


def _plain(number: float) -> str:
    """``number`` without an exponent, read back exactly (``0.5``, ``30``, ``0.00001``)."""
    text = repr(number)
    if "e" in text:
        text = format(number, ".20f").rstrip("0")
    return text.removesuffix(".0").removesuffix(".")


def _stages(items: Sequence[object]) -> tuple[Stage, ...]:
    if not items:
        raise RampError(f"ramp: the list of stages is empty; ramp must be {FORMS}")
    if len(items) > MAX_STAGES:
        raise RampError(f"ramp: at most {MAX_STAGES} stages, not {len(items)}")
    return tuple(_stage(index, item) for index, item in enumerate(items, start=1))


def _stage(index: int, item: object) -> Stage:
    where = f"ramp stage {index}"
    if isinstance(item, dict):
        if set(item) != {"duration", "target"}:
            raise RampError(
                f"{where}: a mapping must have exactly the keys duration and target, "
                f"not {sorted(map(str, item))}"
            )
        duration, target = item["duration"], item["target"]
    elif isinstance(item, str) and (match := _STAGE.fullmatch(item)):
        duration, target = match[1], match[2]
    else:
        raise RampError(f"{where} must be DURATION:TARGET such as 30s:1000, not {item!r}")
    try:
        seconds = parse_duration(_number(duration))
    except ValueError as exc:
        raise RampError(f"{where}: {exc}") from None
    if isinstance(target, bool) or not (
        isinstance(target, int) or (isinstance(target, str) and target.strip().isdigit())
    ):
        raise RampError(f"{where}: the target must be a whole number of units >= 0, not {target!r}")
    return Stage(duration_s=seconds, target=int(target))


def check_stages(stages: Sequence[Stage], units: int) -> None:
    """Refuse stages whose targets do not fit a fleet of ``units`` at its peak.

    Raises:
        RampError: a target above ``units``, or no target reaching it.
    """
    for index, stage in enumerate(stages, start=1):
        if stage.target > units:
            raise RampError(
                f"ramp stage {index}: target {stage.target} is more than --units {units} "
                "(the fleet at its peak)"
            )
    peak = max(stage.target for stage in stages)
    if peak != units:
        raise RampError(
            f"ramp: the stages' highest target is {peak}, but --units is {units}: --units is "
            f"the fleet at its peak, so give --units {peak} or a stage reaching {units}"
        )


def shard_stages(ramp: Ramp, *, block: range, shards: int, index: int) -> list[Stage]:
    """This process's stages, in counts of its own units (``block``, shard ``index`` of
    ``shards``): a rate is one stage bringing up the whole block at that rate; a target
    T becomes this shard's share of T (see the module comment)."""
    if not isinstance(ramp, tuple):
        return [Stage(duration_s=len(block) / ramp, target=len(block))]
    return [
        Stage(
            duration_s=stage.duration_s,
            target=stage.target * (index + 1) // shards - stage.target * index // shards,
        )
        for stage in ramp
    ]


class Schedule:
    """The number of units up over time, for one process (see the module comment).

    Args:
        stages: in this process's counts; the count starts at 0.
    """

    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = tuple(stages)
        self._starts: list[float] = []
        self._from: list[int] = []
        start, count = 0.0, 0
        for stage in self.stages:
            self._starts.append(start)
            self._from.append(count)
            start += stage.duration_s
            count = stage.target
        self.total_s = start
        """When the last stage ends."""
        self.peak = max((stage.target for stage in self.stages), default=0)
        """The most units up at once."""

    def count_at(self, t: float) -> int:
        """Units up ``t`` seconds after the start: every change due at or before ``t``."""
        count = 0
        for stage, start, before in zip(self.stages, self._starts, self._from, strict=True):
            if t < start:
                break
            steps = abs(stage.target - before)
            done = steps if stage.duration_s == 0 else self._changes_by(stage, start, steps, t)
            count = before + (done if stage.target >= before else -done)
        return count

    @staticmethod
    def _changes_by(stage: Stage, start: float, steps: int, t: float) -> int:
        """Changes of a stage due by ``t``: change i (1-based) is at start + d*i/steps (a
        time computed so counts as reached, whatever its last bit)."""
        done = math.floor((t - start) * steps / stage.duration_s + _EPSILON)
        return min(steps, max(0, done))

    def next_change(self, t: float) -> float | None:
        """When the count next changes after ``t`` (None: never again)."""
        for stage, start, before in zip(self.stages, self._starts, self._from, strict=True):
            steps = abs(stage.target - before)
            if steps == 0:
                continue
            if stage.duration_s == 0:
                if t < start:
                    return start
                continue  # it jumped at its start
            done = self._changes_by(stage, start, steps, t)
            if done < steps:
                return start + stage.duration_s * (done + 1) / steps
        return None
